// Removes the `name` custom section from the built wasm: worker-build keeps it (it runs wasm-opt
// with --debuginfo), and it is about a fifth of the upload. Without it, a panic's stack trace
// shows function numbers instead of names; build with KEEP_WASM_NAMES=1 to keep them.
//
//   node scripts/strip-wasm-names.mjs build/index_bg.wasm
import { readFileSync, writeFileSync } from 'node:fs';

const path = process.argv[2];
const wasm = readFileSync(path);
if (wasm.readUInt32BE(0) !== 0x0061736d) throw new Error(`${path} is not a wasm module`);

function leb128(buf, at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = buf[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [value, at];
  }
}

const kept = [wasm.subarray(0, 8)];
let at = 8;
let removed = 0;
while (at < wasm.length) {
  const start = at;
  const id = wasm[at];
  const [size, contentAt] = leb128(wasm, at + 1);
  const end = contentAt + size;
  let drop = false;
  if (id === 0) {
    const [nameLength, nameAt] = leb128(wasm, contentAt);
    drop = wasm.toString('utf8', nameAt, nameAt + nameLength) === 'name';
  }
  if (drop) removed += end - start;
  else kept.push(wasm.subarray(start, end));
  at = end;
}
if (removed > 0) writeFileSync(path, Buffer.concat(kept));
console.log(`strip-wasm-names: removed ${removed} bytes of function names from ${path}`);
