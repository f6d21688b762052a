// `npm run sample`: sends one signed call, as ZITADEL would, to the worker started by
// `npm run dev`, and prints the answer.
//
//   npm run sample [-- --url http://127.0.0.1:8787/] [--function preaccesstoken|preuserinfo]
//                  [--payload tests/fixtures/payloads/preaccesstoken.json]
//
// It signs with the first key of ZITADEL_SIGNING_KEY (or AUTHORIZATION_SIGNING_KEY) in .dev.vars,
// else with the demo key that `npm run dev` uses when .dev.vars has none.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { readDotenv } from '../tests/support/dotenv.mjs';
import { SIGNATURE_HEADER, signatureHeader } from '../tests/support/signature.mjs';

export const DEMO_SIGNING_KEY = 'demo-signing-key-not-for-production';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function main() {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
  };
  const url = arg('--url', `http://127.0.0.1:${process.env.PORT ?? 8787}/`);
  const fn = arg('--function', 'preaccesstoken').replace(/^function\//, '');
  const payload = JSON.parse(readFileSync(arg('--payload', join(ROOT, 'tests/fixtures/payloads/preaccesstoken.json')), 'utf8'));
  payload.function = `function/${fn}`;
  const body = JSON.stringify(payload);

  const devVars = readDotenv(join(ROOT, '.dev.vars'));
  const keys = devVars.ZITADEL_SIGNING_KEY ?? devVars.AUTHORIZATION_SIGNING_KEY ?? DEMO_SIGNING_KEY;
  const key = keys.split(',').map((k) => k.trim()).find(Boolean);

  console.log(`POST ${url}  (function/${fn}, ${body.length} bytes, signed)`);
  let res;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signatureHeader(body, key) },
      body,
      signal: AbortSignal.timeout(15_000),
    });
  } catch (e) {
    console.error(`no answer from ${url}: ${e.cause?.code ?? e.message}. Is \`npm run dev\` running?`);
    process.exit(1);
  }
  const text = await res.text();
  console.log(`HTTP ${res.status}`);
  try {
    console.log(JSON.stringify(JSON.parse(text), null, 2));
  } catch {
    console.log(text);
  }
  process.exit(res.ok ? 0 : 1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
