// bench/series.mjs on made-up runs: one row per run, in time order, and the median of each column.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { FLOOR } from '../../bench/targets.mjs';

const SCRIPT = new URL('../../bench/series.mjs', import.meta.url).pathname;

function run(dir, file, date, inspector, ours) {
  const scenarios = { [FLOOR]: { p50_ratio_to_floor: 1 }, 'cache on (TTL 60 s)': { p50_ratio_to_floor: ours } };
  writeFileSync(join(dir, file), JSON.stringify({ date, runtime: { inspector, scenarios } }));
}

describe('bench/series.mjs', () => {
  it('lists the runs of each mode in time order with the median of each column', () => {
    const dir = mkdtempSync(join(tmpdir(), 'series-test-'));
    try {
      run(dir, 'a.json', '2026-11-30T16:00:00Z', false, 1.4);
      run(dir, 'b.json', '2026-11-30T15:00:00Z', false, 1.1);
      run(dir, 'c.json', '2026-11-30T17:00:00Z', false, 1.2);
      run(dir, 'd.json', '2026-11-30T15:30:00Z', true, 1.5);
      run(dir, 'e.json', '2026-11-30T16:30:00Z', true, 1.8);
      const out = execFileSync('node', [SCRIPT, dir], { encoding: 'utf8' });
      const rows = (heading) => out.split(heading)[1].split('\n\n')[1].split('\n').filter((l) => l.startsWith('| 2026') || l.startsWith('| median'));
      assert.deepEqual(rows('without the inspector'), [
        '| 2026-11-30T15:00 (b.json) | 1.1 |',
        '| 2026-11-30T16:00 (a.json) | 1.4 |',
        '| 2026-11-30T17:00 (c.json) | 1.2 |',
        '| median of 3 | 1.20 |',
      ]);
      assert.deepEqual(rows('the wrangler dev CLI'), ['| 2026-11-30T15:30 (d.json) | 1.5 |', '| 2026-11-30T16:30 (e.json) | 1.8 |', '| median of 2 | 1.65 |']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
