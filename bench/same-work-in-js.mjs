// For comparison (BENCH_EXTRA_ENTRY=bench/same-work-in-js.mjs): the benchmark's call answered by
// plain JavaScript doing the same work as this worker with a warm cache, and nothing more: check
// the signature with WebCrypto (key imported once) and its time window, parse the body, map the
// roles through a kept permission map (the benchmark's 20 roles), build the flat roles and groups,
// pass the Microsoft token from the user's metadata while it is fresh, write one log line, and
// answer the same bytes as this worker (checked by bench/same-work-check.mjs, which `npm run bench`
// runs before it measures this entry). It shows what the work itself costs in workerd, apart from
// Rust and wasm.
// A JWT or JWE payload gets the same WebCrypto work as in this worker: the instance's key set read
// once from ZITADEL_DOMAIN, each key imported once; for a JWE the PAYLOAD_DECRYPTION_KEY
// (`<kid>:<base64 PKCS#8 DER>`, one RSA key) imported once, RSA-OAEP-256 for the content key and
// AES-256-GCM for the JWS, then the JWS checked.
let key;
let keySet;
const webKeys = new Map();
let decryptionKey;
// The runtime's own base64 decoder (workerd has Uint8Array.fromBase64).
const fromB64url = (s) => Uint8Array.fromBase64(s, { alphabet: 'base64url' });
const text = (bytes) => new TextDecoder().decode(bytes);
const RSA_SIGN = { RS256: 'SHA-256', RS384: 'SHA-384', RS512: 'SHA-512' };

/** The JSON inside a JWT: its RS* signature checked against the instance's key set. */
async function openJws(compact, env) {
  const [h, p, sig] = compact.split('.');
  const header = JSON.parse(text(fromB64url(h)));
  const hash = RSA_SIGN[header.alg];
  if (!hash || !header.kid) return null;
  keySet ??= await fetch(`${env.ZITADEL_DOMAIN}/oauth/v2/keys`).then((r) => r.json());
  let verifying = webKeys.get(header.kid);
  if (!verifying) {
    const jwk = keySet.keys.find((k) => k.kid === header.kid);
    if (!jwk) return null;
    verifying = await crypto.subtle.importKey('jwk', { kty: jwk.kty, n: jwk.n, e: jwk.e }, { name: 'RSASSA-PKCS1-v1_5', hash }, false, ['verify']);
    webKeys.set(header.kid, verifying);
  }
  const ok = await crypto.subtle.verify('RSASSA-PKCS1-v1_5', verifying, fromB64url(sig), new TextEncoder().encode(`${h}.${p}`));
  return ok ? fromB64url(p) : null;
}

/** The JWS inside a JWE (RSA-OAEP-256, A256GCM). */
async function openJwe(compact, env) {
  const [h, encryptedKey, iv, ciphertext, tag] = compact.split('.');
  decryptionKey ??= await crypto.subtle.importKey('pkcs8', Uint8Array.fromBase64(env.PAYLOAD_DECRYPTION_KEY.split(':')[1]), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']);
  const cek = await crypto.subtle.decrypt({ name: 'RSA-OAEP' }, decryptionKey, fromB64url(encryptedKey));
  const content = await crypto.subtle.importKey('raw', cek, 'AES-GCM', false, ['decrypt']);
  const [body, mac] = [fromB64url(ciphertext), fromB64url(tag)];
  const sealed = new Uint8Array(body.length + mac.length);
  sealed.set(body);
  sealed.set(mac, body.length);
  const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: fromB64url(iv), additionalData: new TextEncoder().encode(h), tagLength: 128 }, content, sealed);
  return text(plain);
}
const PERMISSIONS = new Map(Array.from({ length: 20 }, (_, r) => [`role-${r}`, ['app:read', `app:write-${r}`, `reports:${r}`]]));
const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');

export default {
  async fetch(request, env) {
    const started = Date.now();
    const { pathname } = new URL(request.url);
    if (request.method !== 'POST' || pathname !== '/') {
      // As this worker: any other route is not found, with its log line (the tests' log barrier).
      console.log(JSON.stringify({ method: request.method, path: pathname, outcome: 'not_found', status: 404, duration_ms: Date.now() - started }));
      return answer(404, { error: 'not_found' });
    }
    const raw = new Uint8Array(await request.arrayBuffer());
    const fields = Object.fromEntries((request.headers.get('zitadel-signature') ?? '').split(',').map((p) => p.trim().split('=')));
    if (!(Math.abs(started / 1000 - Number(fields.t)) <= 300)) return answer(400, { error: 'signature outside the time window' });
    key ??= await crypto.subtle.importKey('raw', new TextEncoder().encode(env.ZITADEL_SIGNING_KEY), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const prefix = new TextEncoder().encode(`${fields.t}.`);
    const message = new Uint8Array(prefix.length + raw.length);
    message.set(prefix);
    message.set(raw, prefix.length);
    if (hex(await crypto.subtle.sign('HMAC', key, message)) !== fields.v1) return answer(400, { error: 'bad signature' });

    const body = text(raw).trim();
    const dots = body.split('.').length - 1;
    const kind = body.startsWith('{') ? 'json' : dots === 2 ? 'jwt' : 'jwe';
    let json = body;
    if (kind !== 'json') {
      const opened = await openJws(kind === 'jwe' ? await openJwe(body, env) : body, env);
      if (!opened) return answer(401, { error: 'invalid_payload_signature' });
      json = text(opened);
    }
    const call = JSON.parse(json);
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
    console.log(JSON.stringify({ method: request.method, path: pathname, function: call.function, payload: kind, user_id: call.user?.id, org_id: call.org?.id, outcome: 'ok', status: 200, claims: claims.map((c) => c.key), roles: roles.length, cache: 'hit', ms_token: 'passed', duration_ms: Date.now() - started }));
    return answer(200, { append_claims: claims });
  },
};

function answer(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
}
