// For comparison (BENCH_EXTRA_ENTRY=bench/same-work-in-js.mjs): the benchmark's call answered by
// plain JavaScript doing the same work as this worker with a warm cache, and nothing more: check
// the signature with WebCrypto (key imported once) and its time window, parse the body, map the
// roles through a kept permission map (the benchmark's 20 roles), build the flat roles and groups,
// pass the Microsoft token from the user's metadata while it is fresh, write one log line, and
// answer the same bytes as this worker (checked by tests/e2e/same-work.test.mjs). It shows
// what the work itself costs in workerd, apart from Rust and wasm.
let key;
const PERMISSIONS = new Map(Array.from({ length: 20 }, (_, r) => [`role-${r}`, ['app:read', `app:write-${r}`, `reports:${r}`]]));
const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');

export default {
  async fetch(request, env) {
    const started = Date.now();
    const raw = new Uint8Array(await request.arrayBuffer());
    const fields = Object.fromEntries((request.headers.get('zitadel-signature') ?? '').split(',').map((p) => p.trim().split('=')));
    if (!(Math.abs(started / 1000 - Number(fields.t)) <= 300)) return answer(400, { error: 'signature outside the time window' });
    key ??= await crypto.subtle.importKey('raw', new TextEncoder().encode(env.ZITADEL_SIGNING_KEY), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const prefix = new TextEncoder().encode(`${fields.t}.`);
    const message = new Uint8Array(prefix.length + raw.length);
    message.set(prefix);
    message.set(raw, prefix.length);
    if (hex(await crypto.subtle.sign('HMAC', key, message)) !== fields.v1) return answer(400, { error: 'bad signature' });

    const call = JSON.parse(new TextDecoder().decode(raw));
    const roles = [];
    const flat = [];
    const permissions = new Set();
    for (const grant of call.user_grants ?? []) {
      for (const role of grant.roles ?? []) {
        roles.push(role);
        flat.push(`${grant.project_id}:${role}`);
        for (const p of PERMISSIONS.get(role) ?? []) permissions.add(p);
      }
    }
    const metadata = Object.fromEntries((call.user_metadata ?? []).map((m) => [m.key, atob(m.value)]));
    const claims = [
      { key: 'permissions', value: [...permissions] },
      { key: 'my:zitadel:grants', value: flat },
      { key: 'groups', value: roles },
    ];
    if (Number(metadata.microsoft_access_token_expires_at) > started / 1000 + 60) {
      claims.push({ key: 'urn:custom:ms_access_token', value: JSON.parse(metadata.microsoft_access_token) });
    }
    console.log(JSON.stringify({ method: request.method, path: new URL(request.url).pathname, function: call.function, user_id: call.user?.id, org_id: call.org?.id, outcome: 'ok', status: 200, claims: claims.map((c) => c.key), roles: roles.length, cache: 'hit', ms_token: 'passed', duration_ms: Date.now() - started }));
    return answer(200, { append_claims: claims });
  },
};

function answer(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
}
