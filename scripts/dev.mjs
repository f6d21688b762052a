// `npm run dev`: builds the worker and serves it with `wrangler dev` (workerd) on
// http://127.0.0.1:8787 (PORT to change it).
//
// Settings come from .dev.vars (see .dev.vars.example). What it leaves out is filled with demo
// settings (scripts/connect-demo.mjs): without ZITADEL_DOMAIN a fake ZITADEL is started on
// loopback, seeded with the demo organization of tests/fixtures/zitadel/demo.json and acting as the
// OpenID provider of the connect flow; without MS_CLIENT_ID a fake Microsoft; without
// TOKEN_SEALING_KEY a demo sealing key; without CONNECT_RETURN_URLS a demo app page on
// http://127.0.0.1:8790 (DEMO_APP_PORT to change it) with a "Connect Microsoft" link; without a
// signing key the demo key, the one `npm run sample` signs with.
import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { readDotenv } from '../tests/support/dotenv.mjs';
import { ROOT } from '../tests/support/worker.mjs';
import { startConnectDemo } from './connect-demo.mjs';
import { DEMO_SIGNING_KEY } from './sample.mjs';

const port = Number(process.env.PORT ?? 8787);
const devVars = readDotenv(join(ROOT, '.dev.vars'));
const url = `http://127.0.0.1:${port}`;

const demo = await startConnectDemo({ have: devVars, appPort: Number(process.env.DEMO_APP_PORT ?? 8790) });
demo.setWorkerUrl(url);
for (const note of demo.notes) console.log(`dev: ${note}`);
const vars = { ...demo.vars, ...demo.secrets };
// The demo's Microsoft token claim: the sample payload's client gets it. .dev.vars overrides it.
if (!devVars.MS_TOKEN_CLIENT_IDS) vars.MS_TOKEN_CLIENT_IDS = '312909075213386136';
if (!devVars.ZITADEL_SIGNING_KEY && !devVars.AUTHORIZATION_SIGNING_KEY) {
  vars.ZITADEL_SIGNING_KEY = DEMO_SIGNING_KEY;
  console.log('dev: no signing key in .dev.vars, so the demo key is used (the one `npm run sample` signs with)');
}

const args = ['dev', '--ip', '127.0.0.1', '--port', String(port), '--show-interactive-dev-session=false'];
for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
const wrangler = spawn(join(ROOT, 'node_modules/.bin/wrangler'), args, {
  cwd: ROOT,
  stdio: 'inherit',
  detached: true, // own process group, so stopping ends workerd too
  env: { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', ...process.env },
});

let stopping = false;
async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  try {
    process.kill(-wrangler.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  await demo.close();
  process.exit(code);
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
wrangler.on('exit', (code) => stop(code ?? 0));

// Tell the developer what to do once the worker answers.
for (let i = 0; i < 600 && !stopping; i += 1) {
  try {
    const res = await fetch(`${url}/healthz`);
    const health = await res.json();
    console.log(`\ndev: worker ready at ${url}/ (health: ${health.status})`);
    if (health.problems) for (const p of health.problems) console.log(`dev:   ${p.setting} ${p.problem}`);
    console.log(`dev: send a signed sample call with:  npm run sample${port === 8787 ? '' : ` -- --url ${url}/`}`);
    console.log('dev: (and `npm run sample -- --function preuserinfo` for the userinfo flavour)');
    if (demo.appUrl) console.log(`dev: to connect Microsoft in a browser, open ${demo.appUrl} and click "Connect Microsoft"`);
    console.log('');
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 500));
  }
}
