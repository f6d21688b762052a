// For comparison (BENCH_PAYLOADS=exchange BENCH_EXTRA_ENTRY=bench/exchange-in-js.mjs): the token
// exchange (`POST /token`, RFC 8693) answered by plain JavaScript doing the same work as this
// worker on a warm call, and nothing more: the back end's HTTP Basic credentials (base64, the id
// and secret each form-urldecoded, every secret of TOKEN_EXCHANGE_CLIENTS compared as this worker
// does, through SHA-256 of both sides), the content type and the form (each parameter once, the
// same checks), the subject token's RS256 or ES256 signature with WebCrypto against the instance's
// key set (read once from ZITADEL_DOMAIN, each key imported once), the same claim checks (iss,
// exp, nbf, iat with 60 s of leeway, `act`, `client_id` the authenticated client compared in
// constant time, `sub`), a Map lookup of the user's Graph token kept in memory (at most 5 minutes,
// never within 5 minutes of its expiry), the same answer bytes and headers, and one log line as
// this worker writes it (bench/same-work-check.mjs checks both; `npm run bench` runs that check
// before it measures this entry). It shows what the work itself costs in workerd, apart from Rust
// and wasm.
// The first call for a user (the benchmark's warm-up) reads the user's metadata from ZITADEL with
// ZITADEL_ACCESS_TOKEN and opens the sealed tokens (AES-256-GCM, TOKEN_SEALING_KEY), once for
// concurrent calls, as this worker does; what only a cold call needs beyond that is left out: no
// refresh at Microsoft (a stale stored token is answered 503), no scope narrower than MS_SCOPES,
// no introspection of opaque tokens, and the key set is never read again.
const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const GRAPH = 'https://graph.microsoft.com';
const MAX_FORM_BYTES = 64 * 1024;
const LEEWAY_S = 60;
const KEEP_S = 300;
const EXPIRY_MARGIN_S = 300;
const MAX_KEPT = 1000;
const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'];
const KEYS = { access: 'microsoft_access_token', refresh: 'microsoft_refresh_token', expires: 'microsoft_access_token_expires_at' };
const SIGNING = {
  RS256: { kty: 'RSA', import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, verify: { name: 'RSASSA-PKCS1-v1_5' } },
  ES256: { kty: 'EC', crv: 'P-256', size: 64, import: { name: 'ECDSA', namedCurve: 'P-256' }, verify: { name: 'ECDSA', hash: 'SHA-256' } },
};
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const fromB64url = (s) => Uint8Array.fromBase64(s, { alphabet: 'base64url' });

let settings;
let keySet;
const webKeys = new Map();
/** user + ' ' + scopes -> { issued: { access_token, expires_at, scope }, until } */
const kept = new Map();
/** The reads of a user's stored tokens under way, shared by concurrent calls. */
const flights = new Map();

/** The settings, read once per isolate. */
function settingsOf(env) {
  if (settings) return settings;
  const base = env.ZITADEL_DOMAIN.replace(/\/+$/, '');
  const clients = env.TOKEN_EXCHANGE_CLIENTS.split(',').map((pair) => pair.trim()).filter(Boolean).map((pair) => {
    const i = pair.indexOf(':');
    return { id: pair.slice(0, i).trim(), secret: pair.slice(i + 1).trim() };
  });
  const sealingKeys = new Map(env.TOKEN_SEALING_KEY.split(',').map((item) => {
    const i = item.trim().indexOf(':');
    return [item.trim().slice(0, i), { raw: Uint8Array.fromBase64(item.trim().slice(i + 1)) }];
  }));
  const scopes = env.MS_SCOPES ?? 'offline_access User.Read';
  const issuers = [base, ...(env.ZITADEL_ISSUERS ?? '').split(',').map((s) => s.trim().replace(/\/+$/, '')).filter(Boolean)];
  const graphScope = scopes.split(/\s+/).filter((s) => s && !OIDC_SCOPES.includes(s)).join(' ');
  settings = { base, clients, sealingKeys, issuers, graphScope, skew: Number(env.MS_REFRESH_SKEW_SECONDS ?? 300), pat: env.ZITADEL_ACCESS_TOKEN };
  return settings;
}

export default {
  async fetch(request, env) {
    const started = Date.now();
    const { pathname } = new URL(request.url);
    const trace = { user_id: undefined, client_id: undefined, upstream_calls: 0, ms_token: undefined, notes: [] };
    if (request.method !== 'POST' || pathname !== '/token') {
      // As this worker: any other route is not found, with its log line (the tests' log barrier).
      log(request, pathname, { ...trace, outcome: 'not_found', status: 404 }, started);
      return new Response(JSON.stringify({ error: 'not_found' }), { status: 404, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } });
    }
    let response;
    try {
      response = await exchange(request, settingsOf(env), trace);
    } catch (e) {
      if (!(e instanceof OAuthError)) throw e;
      trace.outcome = e.error;
      response = e.response();
    }
    log(request, pathname, { ...trace, outcome: trace.outcome ?? 'ok', status: response.status }, started);
    return response;
  },
};

async function exchange(request, config, trace) {
  const client = await authenticate(config.clients, request.headers.get('authorization'));
  if (!client) throw OAuthError.invalidClient();
  trace.client_id = client.id;
  const type = (request.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw OAuthError.invalidRequest('the body must be application/x-www-form-urlencoded');
  const body = await request.arrayBuffer();
  if (body.byteLength > MAX_FORM_BYTES) throw OAuthError.invalidRequest('the body could not be read, or is larger than 64 KiB');
  const form = parseForm(decoder.decode(body));
  const grantType = form.get('grant_type');
  if (!grantType) throw OAuthError.invalidRequest('grant_type is missing');
  if (grantType !== GRANT_TYPE) throw new OAuthError(400, 'unsupported_grant_type', 'only token exchange is supported');
  const subjectToken = form.required('subject_token');
  const tokenType = form.required('subject_token_type');
  if (tokenType !== ACCESS_TOKEN_TYPE && tokenType !== JWT_TYPE) throw OAuthError.invalidRequest('subject_token_type must be an access token or a JWT');
  if (form.get('requested_token_type') && form.get('requested_token_type') !== ACCESS_TOKEN_TYPE) throw OAuthError.invalidRequest('requested_token_type may only be an access token');
  if (form.get('actor_token') || form.get('actor_token_type')) throw OAuthError.invalidRequest('actor_token is not supported: the back end acts as itself');
  for (const name of ['audience', 'resource']) {
    if (form.get(name) && form.get(name).replace(/\/+$/, '') !== GRAPH) throw new OAuthError(400, 'invalid_target', 'tokens are issued for https://graph.microsoft.com only');
  }
  if (form.get('scope')?.trim()) throw OAuthError.invalidRequest('scope: not done by the comparison worker');

  const now = Math.floor(Date.now() / 1000);
  const user = await verify(config, subjectToken, client.id, now, trace);
  trace.user_id = user;
  const key = `${user} `;
  const found = kept.get(key);
  if (found && found.until > now) {
    trace.ms_token = 'cached';
    return exchanged(found.issued, now);
  }
  let flight = flights.get(key);
  if (!flight) {
    flight = stored(config, user, trace).finally(() => flights.delete(key));
    flights.set(key, flight);
  }
  const issued = await flight;
  trace.ms_token = 'stored';
  const later = Math.floor(Date.now() / 1000);
  keep(key, issued, later);
  return exchanged(issued, later);
}

/** The client of TOKEN_EXCHANGE_CLIENTS whose id and secret the Basic credentials carry. */
async function authenticate(clients, authorization) {
  const credentials = basicCredentials(authorization);
  if (!credentials) return undefined;
  let found;
  for (const client of clients) {
    const secretMatches = await sameInConstantTime(credentials.secret, client.secret);
    if (secretMatches && client.id === credentials.id) found = client;
  }
  return found;
}

function basicCredentials(authorization) {
  const header = (authorization ?? '').trim();
  const space = header.indexOf(' ');
  if (space < 0 || header.slice(0, space).toLowerCase() !== 'basic') return undefined;
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.fromBase64(header.slice(space + 1).trim()));
  } catch {
    return undefined;
  }
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { id: formDecode(text.slice(0, colon)), secret: formDecode(text.slice(colon + 1)) };
}

const formDecode = (value) => new URLSearchParams(`v=${value}`).get('v') ?? '';

/** As this worker: the SHA-256 of both sides compared, so that neither length nor content shows in the time taken. */
async function sameInConstantTime(a, b) {
  const [x, y] = await Promise.all([crypto.subtle.digest('SHA-256', encoder.encode(a)), crypto.subtle.digest('SHA-256', encoder.encode(b))]);
  return crypto.subtle.timingSafeEqual(x, y);
}

function parseForm(text) {
  const params = new URLSearchParams(text);
  const seen = new Set();
  for (const name of params.keys()) {
    if (seen.has(name)) throw OAuthError.invalidRequest('a parameter appears more than once');
    seen.add(name);
  }
  return {
    get: (name) => params.get(name) || undefined,
    required(name) {
      const value = params.get(name);
      if (!value) throw OAuthError.invalidRequest(`${name} is missing`);
      return value;
    },
  };
}

const SUBJECT_ERRORS = {
  subject_token_malformed: 'the subject token is not a ZITADEL access token of the announced type',
  subject_token_signature: "the subject token's signature does not verify under the instance's keys",
  subject_token_issuer: 'the subject token was not issued by this ZITADEL instance',
  subject_token_expired: 'the subject token has expired',
  subject_token_not_yet_valid: 'the subject token is not valid yet',
  subject_token_without_sub: 'the subject token names no user',
  subject_token_other_client: 'the subject token was not issued to this client',
  subject_token_impersonated: 'the subject token was issued to someone acting for the user (impersonation): it is never exchanged',
  subject_token_is_an_id_token: "the subject token is an ID token: send the user's access token",
};

function refused(code, trace) {
  trace.notes.push(code);
  return OAuthError.invalidRequest(SUBJECT_ERRORS[code]);
}

/** The user of `token`: a JWT of the instance, issued to `clientId` for the user itself. */
async function verify(config, token, clientId, now, trace) {
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    throw OAuthError.invalidRequest('opaque access tokens need introspection, which is not configured (INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET): send a JWT access token');
  }
  const payload = await openJws(config, token, trace);
  if (!payload) throw refused('subject_token_signature', trace);
  let claims;
  try {
    claims = JSON.parse(decoder.decode(payload));
  } catch {
    throw refused('subject_token_malformed', trace);
  }
  const text = (v) => v === undefined || v === null || typeof v === 'string';
  const number = (v) => v === undefined || v === null || typeof v === 'number';
  if (!claims || typeof claims !== 'object' || Array.isArray(claims) || ![claims.iss, claims.sub, claims.client_id].every(text) || ![claims.exp, claims.nbf, claims.iat].every(number)) {
    throw refused('subject_token_malformed', trace);
  }
  if (!config.issuers.includes(claims.iss)) throw refused('subject_token_issuer', trace);
  const seconds = (t) => Math.max(0, Math.trunc(t));
  if (typeof claims.exp !== 'number' || seconds(claims.exp) + LEEWAY_S <= now) throw refused('subject_token_expired', trace);
  const future = (t) => typeof t === 'number' && seconds(t) > now + LEEWAY_S;
  if (future(claims.nbf) || future(claims.iat)) throw refused('subject_token_not_yet_valid', trace);
  const present = (v) => v !== undefined && v !== null;
  if (present(claims.at_hash) || present(claims.nonce)) throw refused('subject_token_is_an_id_token', trace);
  if (claims.act !== undefined && claims.act !== null) throw refused('subject_token_impersonated', trace);
  if (typeof claims.client_id !== 'string' || !(await sameInConstantTime(claims.client_id, clientId))) throw refused('subject_token_other_client', trace);
  if (!claims.sub) throw refused('subject_token_without_sub', trace);
  return claims.sub;
}

/** The payload of the compact JWS `token` once its signature verifies under the instance's key it names, else null. */
async function openJws(config, token, trace) {
  const [h, p, s] = token.split('.');
  let header;
  try {
    header = JSON.parse(decoder.decode(fromB64url(h)));
  } catch {
    return null;
  }
  const alg = SIGNING[header?.alg];
  if (!alg || typeof header.kid !== 'string') return null;
  if (!keySet) {
    trace.upstream_calls += 1;
    keySet = await fetch(`${config.base}/oauth/v2/keys`).then((r) => r.json());
  }
  let verifying = webKeys.get(header.kid);
  if (!verifying) {
    const jwk = keySet.keys.find((k) => k.kid === header.kid);
    if (!jwk || (jwk.use && jwk.use !== 'sig') || jwk.kty !== alg.kty || (jwk.alg && jwk.alg !== header.alg) || (alg.crv && jwk.crv !== alg.crv)) return null;
    const { kty, n, e, crv, x, y } = jwk;
    verifying = await crypto.subtle.importKey('jwk', { kty, n, e, crv, x, y }, alg.import, false, ['verify']);
    webKeys.set(header.kid, verifying);
  }
  const signature = fromB64url(s);
  if (alg.size && signature.length !== alg.size) return null;
  const ok = await crypto.subtle.verify(alg.verify, verifying, signature, encoder.encode(`${h}.${p}`));
  return ok ? fromB64url(p) : null;
}

/** The user's stored Microsoft token while fresh: the metadata read from ZITADEL, the values opened. */
async function stored(config, user, trace) {
  trace.upstream_calls += 1;
  const res = await fetch(`${config.base}/v2/users/${encodeURIComponent(user)}/metadata/search`, {
    method: 'POST',
    headers: { authorization: `Bearer ${config.pat}`, 'content-type': 'application/json' },
    body: JSON.stringify({ pagination: { offset: '0', limit: 100, asc: true }, filters: [{ keyFilter: { key: 'microsoft_', method: 'TEXT_FILTER_METHOD_STARTS_WITH' } }] }),
  });
  if (!res.ok) throw OAuthError.unavailable('ZITADEL is unavailable');
  const values = {};
  for (const { key, value } of (await res.json()).metadata ?? []) {
    if (Object.values(KEYS).includes(key)) values[key] = await open(config, user, key, Uint8Array.fromBase64(value));
  }
  if (!values[KEYS.refresh]) throw OAuthError.unavailable('the comparison worker: the user is not connected');
  const expiresAt = Number(values[KEYS.expires]);
  if (!values[KEYS.access] || !(expiresAt - config.skew > Math.floor(Date.now() / 1000))) throw OAuthError.unavailable('the comparison worker does not refresh');
  return { access_token: values[KEYS.access], expires_at: expiresAt, scope: config.graphScope };
}

/** A metadata value: `sealed:v1:<key id>:` then the IV and the AES-256-GCM ciphertext, for this user and key; or cleartext. */
async function open(config, user, key, bytes) {
  const prefix = 'sealed:v1:';
  const head = decoder.decode(bytes.subarray(0, 64));
  if (!head.startsWith(prefix)) return decoder.decode(bytes);
  const colon = head.indexOf(':', prefix.length);
  const sealing = config.sealingKeys.get(head.slice(prefix.length, colon));
  sealing.key ??= await crypto.subtle.importKey('raw', sealing.raw, 'AES-GCM', false, ['decrypt']);
  const body = bytes.subarray(colon + 1);
  const aad = framed(['zitadel-claims-worker/sealed/v1', 'metadata', user, key]);
  const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: body.subarray(0, 12), additionalData: aad, tagLength: 128 }, sealing.key, body.subarray(12));
  return decoder.decode(plain);
}

function framed(parts) {
  const encoded = parts.map((p) => encoder.encode(p));
  const out = new Uint8Array(encoded.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of encoded) {
    view.setUint32(at, p.length);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

function keep(key, issued, now) {
  const until = Math.min(now + KEEP_S, issued.expires_at - EXPIRY_MARGIN_S);
  if (until <= now) return;
  if (kept.size >= MAX_KEPT) {
    for (const [k, v] of kept) if (v.until <= now) kept.delete(k);
    if (kept.size >= MAX_KEPT) kept.clear();
  }
  kept.set(key, { issued, until });
}

/** The exchange's answer (RFC 8693 §2.2.1), as this worker writes it. */
function exchanged(issued, now) {
  const body = JSON.stringify({
    access_token: issued.access_token,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: Math.max(0, issued.expires_at - now),
    scope: issued.scope,
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' } });
}

class OAuthError {
  constructor(status, error, description) {
    Object.assign(this, { status, error, description });
  }

  static invalidRequest(description) {
    return new OAuthError(400, 'invalid_request', description);
  }

  static invalidClient() {
    return new OAuthError(401, 'invalid_client', 'client authentication failed: send HTTP Basic with a pair of TOKEN_EXCHANGE_CLIENTS');
  }

  static unavailable(description) {
    return new OAuthError(503, 'temporarily_unavailable', description);
  }

  response() {
    const headers = { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' };
    if (this.error === 'invalid_client') headers['www-authenticate'] = 'Basic realm="zitadel-claims"';
    return new Response(JSON.stringify({ error: this.error, error_description: this.description }), { status: this.status, headers });
  }
}

/** The request's one log line, with this worker's fields in its order. */
function log(request, path, t, started) {
  console.log(JSON.stringify({
    method: request.method, path, user_id: t.user_id, client_id: t.client_id, outcome: t.outcome, status: t.status, claims: [],
    upstream_calls: t.upstream_calls || undefined, ms_token: t.ms_token, notes: t.notes.length ? t.notes : undefined, duration_ms: Date.now() - started,
  }));
}
