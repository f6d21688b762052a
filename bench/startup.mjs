// The worker's startup CPU as `wrangler check startup` profiles it (workerd, locally), beside the
// JavaScript comparison worker (bench/same-work-in-js.mjs), each profiled BENCH_STARTUP_RUNS (5)
// times. The profiler samples coarsely (a few samples per run), so single runs move by several
// ms; the medians and ranges are what to compare. Run alone (`node bench/startup.mjs`) or from
// bench/bench.mjs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** One `wrangler check startup` in `cwd`: { active_ms, sampled_ms, samples }. */
function profile(cwd, env) {
  const dir = mkdtempSync(join(tmpdir(), 'startup-profile-'));
  try {
    const out = spawnSync(join(ROOT, 'node_modules/.bin/wrangler'), ['check', 'startup', '--cwd', cwd, '--outfile', join(dir, 'p.cpuprofile')], { cwd: ROOT, env, encoding: 'utf8' });
    const text = out.stdout + out.stderr;
    const number = (label) => Number(new RegExp(`${label}: ([\\d.]+)`).exec(text)?.[1]);
    const result = { active_ms: number('Active'), sampled_ms: number('Sampled time'), samples: number('Samples') };
    if (Number.isNaN(result.active_ms)) throw new Error(`no profile in wrangler's output:\n${text.slice(-2000)}`);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function summary(runs) {
  const active = runs.map((r) => r.active_ms).sort((a, b) => a - b);
  return { runs, active_ms_median: active[Math.floor(active.length / 2)], active_ms_min: active[0], active_ms_max: active.at(-1) };
}

/** Profiles this worker (ROOT's wrangler.toml) and the JavaScript comparison worker. */
export function startupProfiles(env = process.env, runs = Number(env.BENCH_STARTUP_RUNS ?? 5)) {
  const compatibility = /compatibility_date\s*=\s*"([^"]+)"/.exec(readFileSync(join(ROOT, 'wrangler.toml'), 'utf8'))[1];
  const js = mkdtempSync(join(tmpdir(), 'same-work-in-js-'));
  writeFileSync(join(js, 'wrangler.toml'), `name = "same-work-in-js"\nmain = "${join(ROOT, 'bench', 'same-work-in-js.mjs')}"\ncompatibility_date = "${compatibility}"\n`);
  try {
    const ours = [];
    const theirs = [];
    for (let i = 0; i < runs; i += 1) {
      ours.push(profile(ROOT, env));
      theirs.push(profile(js, env));
    }
    return { runs, worker: summary(ours), same_work_in_js: summary(theirs) };
  } finally {
    rmSync(js, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = startupProfiles({ ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' });
  console.log(JSON.stringify(result, null, 2));
}
