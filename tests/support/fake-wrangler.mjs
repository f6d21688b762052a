#!/usr/bin/env node
// Stands in for `npx wrangler` in the setup tests (SETUP_WRANGLER=<this file>): appends one JSON
// line `{"argv": [...], "stdin": "..."}` per run to the file named by FAKE_WRANGLER_LOG, prints
// what wrangler prints on success (never the value), and exits with FAKE_WRANGLER_EXIT (default 0).
// `secret list --format json` prints the secrets named in FAKE_WRANGLER_SECRETS (comma-separated)
// as wrangler does: a JSON array of {"name", "type"}. With FAKE_WRANGLER_WORKER (the URL of
// tests/support/fake-worker.mjs), `secret put` hands the value to that worker, as Cloudflare does.
import { appendFileSync } from 'node:fs';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const stdin = Buffer.concat(chunks).toString('utf8');
const argv = process.argv.slice(2);

if (process.env.FAKE_WRANGLER_LOG) {
  appendFileSync(process.env.FAKE_WRANGLER_LOG, `${JSON.stringify({ argv, stdin })}\n`);
}
const exit = Number(process.env.FAKE_WRANGLER_EXIT ?? 0);
if (exit !== 0) {
  console.error('✘ [ERROR] In a non-interactive environment, it\'s necessary to set a CLOUDFLARE_API_TOKEN environment variable for wrangler to work.');
  process.exit(exit);
}
if (argv[0] === 'secret' && argv[1] === 'list') {
  const names = (process.env.FAKE_WRANGLER_SECRETS ?? '').split(',').filter(Boolean);
  console.log(JSON.stringify(names.map((name) => ({ name, type: 'secret_text' })), null, '  '));
}
if (argv[0] === 'secret' && argv[1] === 'put') {
  if (process.env.FAKE_WRANGLER_WORKER) {
    await fetch(`${process.env.FAKE_WRANGLER_WORKER}/__secrets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: argv[2], value: stdin }),
    });
  }
  console.log(`🌀 Creating the secret for the Worker "zitadel-claims"`);
  console.log(`✨ Success! Uploaded secret ${argv[2]}`);
}
