// /wasm?n=N: N HMACs in wasm (src/lib.rs); /webcrypto?n=N: N awaited crypto.subtle.sign calls
// over the same 7.3 KB, with the key imported once, as the worker does.
import mod from './mac_cost.wasm';

const wasm = new WebAssembly.Instance(mod, {});
let key;

export default {
  async fetch(request) {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get('n') ?? 1000);
    if (url.pathname === '/wasm') {
      wasm.exports.run(n);
    } else if (url.pathname === '/webcrypto') {
      key ??= await crypto.subtle.importKey('raw', new TextEncoder().encode('bench-signing-key'), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      const message = new Uint8Array(7304).fill(120);
      for (let i = 0; i < n; i += 1) await crypto.subtle.sign('HMAC', key, message);
    }
    return new Response('ok');
  },
};
