// scripts/setup.sh (`npm run setup`): it builds the tool with cargo, says so on stderr the first
// time (when there is no binary yet), then runs the binary with the arguments. Run in a copy of the
// script beside a fake `cargo` that "builds" a binary printing its arguments.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/setup.sh', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'setup-script-'));
after(() => rmSync(root, { recursive: true, force: true }));

it('builds the tool, says so only when there was none, and runs it with the arguments', () => {
  mkdirSync(join(root, 'scripts'));
  copyFileSync(SCRIPT, join(root, 'scripts', 'setup.sh'));
  const bin = join(root, 'bin');
  mkdirSync(bin);
  const builds = join(root, 'builds');
  // The fake cargo records its arguments and leaves a binary that prints its own.
  writeFileSync(join(bin, 'cargo'), [
    '#!/bin/sh',
    `echo "$@" >> '${builds}'`,
    'mkdir -p target/release',
    "printf '#!/bin/sh\\necho \"tool: $*\"\\n' > target/release/zitadel-claims-setup",
    'chmod +x target/release/zitadel-claims-setup',
    '',
  ].join('\n'));
  chmodSync(join(bin, 'cargo'), 0o755);
  const run = () => spawnSync('bash', [join(root, 'scripts', 'setup.sh'), '--domain', 'z', '--dry-run'], {
    cwd: tmpdir(),
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    encoding: 'utf8',
  });

  const first = run();
  assert.equal(first.status, 0, first.stderr);
  assert.equal(first.stderr, 'Building the setup tool (first run only, about a minute)…\n');
  assert.equal(first.stdout, 'tool: --domain z --dry-run\n');
  const second = run();
  assert.equal(second.status, 0, second.stderr);
  assert.equal(second.stderr, '', 'built before: nothing said');
  assert.equal(second.stdout, 'tool: --domain z --dry-run\n');
  // Each run asks cargo to build (it does nothing when nothing changed), in the repository's root.
  assert.deepEqual(readFileSync(builds, 'utf8').trim().split('\n'), Array(2).fill('build --quiet --release -p zitadel-claims-setup'));
});
