// The p50 ratios of several runs of `npm run bench` side by side, with their medians: the ratios
// move between runs on a shared machine more than the scenarios differ, so a verdict should rest
// on a series. Save each run's results/runtime.json (or runtime-no-inspector.json) under one
// directory, then: node bench/series.mjs <directory>   (bench/results/series-2026-11-30 holds one)
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { FLOOR } from './targets.mjs';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node bench/series.mjs <directory of runtime*.json files>');
  process.exit(2);
}
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const runs = readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
  .map((file) => ({ file, report: JSON.parse(readFileSync(join(dir, file), 'utf8')) }))
  .sort((a, b) => a.report.date.localeCompare(b.report.date));
for (const inspector of [false, true]) {
  const series = runs.filter((r) => r.report.runtime.inspector === inspector);
  if (!series.length) continue;
  const names = Object.keys(series[0].report.runtime.scenarios).filter((n) => n !== FLOOR);
  console.log(`\n## ${inspector ? 'the wrangler dev CLI (inspector on)' : 'without the inspector'}: p50 / p50 of the floor\n`);
  console.log(`| run | ${names.join(' | ')} |`);
  console.log(`|---|${names.map(() => '---').join('|')}|`);
  for (const { file, report } of series) {
    console.log(`| ${report.date.slice(0, 16)} (${file}) | ${names.map((n) => report.runtime.scenarios[n]?.p50_ratio_to_floor ?? '-').join(' | ')} |`);
  }
  const ratio = (n) => series.map((r) => r.report.runtime.scenarios[n]?.p50_ratio_to_floor).filter((v) => v !== undefined);
  console.log(`| median of ${series.length} | ${names.map((n) => median(ratio(n)).toFixed(2)).join(' | ')} |`);
}
