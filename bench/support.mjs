// Shared by bench/bench.mjs and bench/profile-workerd.mjs: the runtime benchmark's call and the
// fake ZITADEL's data, in the shape of bench/hot_path.rs (5 grants × 4 roles, 20 mapping entries
// per organization, a 3 KB Microsoft token, a full user object); one signed POST; the token
// exchange's users, settings and calls; and the processes that serve a worker under wrangler.
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';

import { exportJWK, exportPKCS8, generateKeyPair } from 'jose';

import { sealMetadata } from '../tests/support/seal.mjs';
import { signatureHeader } from '../tests/support/signature.mjs';
import { zitadelPayload } from '../tests/support/zitadel-executor.mjs';

/** The fake ZITADEL's fixture: `orgs` organizations, each mapping role-0..role-19 to three permissions. */
export function benchFixture(orgs) {
  const fixture = { accessToken: 'bench-pat', organizations: {} };
  for (let o = 0; o < orgs; o += 1) {
    const metadata = {};
    for (let r = 0; r < 20; r += 1) metadata[`role-${r}`] = ['app:read', `app:write-${r}`, `reports:${r}`];
    fixture.organizations[`org-${o}`] = { metadata };
  }
  return fixture;
}

/** A preaccesstoken call for a user of `org`, signed with `key` now. */
/** The sealing key of the sealed scenario (TOKEN_SEALING_KEY). */
export const BENCH_SEALING_KEY = `bench:${Buffer.alloc(32, 1).toString('base64')}`;

export function benchPayload(org, key) {
  const b64 = (s) => Buffer.from(s).toString('base64');
  const token = `EwB${'x'.repeat(3 * 1024 - 3)}`;
  const grants = Array.from({ length: 5 }, (_, g) => ({
    id: `31290907521391${g}`, grant_id: '', state: 1, creation_date: '2025-03-11T09:20:01.220Z', change_date: '2025-03-11T09:20:01.220Z', sequence: 2,
    user_id: '312909075212468632', roles: Array.from({ length: 4 }, (_, r) => `role-${g * 4 + r}`), resource_owner: org,
    project_id: `31290907521286${g}`, project_name: `Project ${g}`, org_name: 'ACME', org_primary_domain: 'acme.example', user_resource_owner: org,
  }));
  const body = JSON.stringify({
    function: 'function/preaccesstoken',
    userinfo: { sub: '312909075212468632', name: 'Ada Lovelace', email: 'ada@acme.example', email_verified: true },
    user: {
      id: '312909075212468632', resource_owner: org, state: 1, username: 'ada@acme.example', preferred_login_name: 'ada@acme.example',
      human: { first_name: 'Ada', last_name: 'Lovelace', display_name: 'Ada Lovelace', email: 'ada@acme.example', is_email_verified: true, preferred_language: 'en' },
    },
    user_metadata: [
      { key: 'microsoft_access_token', value: b64(JSON.stringify(token)) },
      { key: 'microsoft_access_token_expires_at', value: b64(String(Math.floor(Date.now() / 1000) + 3600)) },
    ],
    org: { id: org, name: 'ACME', primary_domain: 'acme.example' },
    user_grants: grants,
  });
  return { body: Buffer.from(body), header: signatureHeader(body, key), signedAt: Date.now() };
}

/**
 * The keys of the JWT and JWE scenarios, as ZITADEL's defaults make them: an RS256 web key (RSA
 * 2048) and a target key for RSA-OAEP-256 (RSA 2048, the setup tool's default). `jwk`: the public
 * web key for the fake's key set; `decryptionKey`: the PAYLOAD_DECRYPTION_KEY secret.
 */
export async function benchJoseKeys() {
  const web = await generateKeyPair('RS256', { extractable: true });
  const target = await generateKeyPair('RSA-OAEP-256', { extractable: true });
  const der = (await exportPKCS8(target.privateKey)).replace(/-----[A-Z ]+-----|\s/g, '');
  return {
    web,
    target,
    jwk: { ...(await exportJWK(web.publicKey)), kid: '300000000000000001', alg: 'RS256', use: 'sig' },
    decryptionKey: `300000000000000002:${der}`,
  };
}

/**
 * A benchmark call (from benchPayload) as `kind` sends it: `json` as is, `jwt` as ZITADEL's
 * payloadJWT makes it, `jwe` as its payloadJWE does; signed again with `key` over the new body.
 */
export async function benchBody(call, kind, keys, key) {
  if (kind === 'json') return call;
  if (kind === 'sealed') {
    // The same call with the Microsoft token and its expiry sealed for the user (TOKEN_SEALING_KEY).
    const payload = JSON.parse(call.body.toString('utf8'));
    for (const entry of payload.user_metadata) {
      if (!entry.key.startsWith('microsoft_')) continue;
      let text = Buffer.from(entry.value, 'base64').toString('utf8');
      if (text.startsWith('"')) text = JSON.parse(text);
      entry.value = sealMetadata(BENCH_SEALING_KEY, payload.user.id, entry.key, text).toString('base64');
    }
    const body = JSON.stringify(payload);
    return { body: Buffer.from(body), header: signatureHeader(body, key), signedAt: Date.now() };
  }
  const body = await zitadelPayload(call.body.toString('utf8'), {
    payloadType: kind === 'jwt' ? 'PAYLOAD_TYPE_JWT' : 'PAYLOAD_TYPE_JWE',
    webKey: { privateKey: keys.web.privateKey, kid: keys.jwk.kid, alg: 'RS256' },
    encryptionKey: { publicKey: keys.target.publicKey, kid: '300000000000000002', alg: 'RSA-OAEP-256' },
  });
  return { body: Buffer.from(body), header: signatureHeader(body, key), signedAt: Date.now() };
}

/** One signed POST of `body`: `{ status, headers, text }`, status 0 with the error code when it failed. */
export function post(url, agent, body, header) {
  return postTo(url, agent, body, { 'content-type': 'application/json', 'ZITADEL-Signature': header });
}

/** One POST of a benchmark call: a signed call (`{ body, header }`) to `/`, or one with its own `path` and `headers` (the exchange's). */
export function send(url, agent, call) {
  return call.path ? postTo(`${url}${call.path}`, agent, call.body, call.headers) : post(url, agent, call.body, call.header);
}

function postTo(url, agent, body, headers) {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', (e) => resolve({ status: 0, text: e.code ?? e.message }));
    req.end(body);
  });
}

// The token exchange (BENCH_PAYLOADS=exchange): a back end of TOKEN_EXCHANGE_CLIENTS exchanges
// its users' ZITADEL access tokens (JWT, RS256, issued by the fake ZITADEL's OpenID provider) for
// their Microsoft tokens, stored sealed in the users' metadata as the connect flow leaves them.

/** The back end: a ZITADEL client id (with `@`, so form-urlencoded inside Basic) and a secret of 64 characters, as long as ZITADEL's. */
export const BENCH_EXCHANGE_CLIENT = { id: '312909075212468700@shop', secret: 'bench-back-end-secret'.padEnd(64, '-0123456789') };
const EXCHANGE_PROJECT = '312909075212468690';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * What the worker needs for the exchange beside ZITADEL_DOMAIN and ZITADEL_ACCESS_TOKEN (the
 * connect flow's settings, the sealing key, the back end), for the fake ZITADEL `fake`. No call
 * should reach Microsoft: the stored tokens stay fresh for hours, and MS_TOKEN_URL points at a
 * route the fake does not have, so a refresh would show as an error.
 */
export function exchangeSettings(fake) {
  return {
    secrets: {
      TOKEN_SEALING_KEY: BENCH_SEALING_KEY, MS_CLIENT_ID: 'bench-ms-app', MS_CLIENT_SECRET: 'bench-ms-secret',
      TOKEN_EXCHANGE_CLIENTS: `${BENCH_EXCHANGE_CLIENT.id}:${BENCH_EXCHANGE_CLIENT.secret}`,
    },
    vars: {
      CONNECT_CLIENT_ID: '312909075212468699@shop', CONNECT_RETURN_URLS: 'https://app.example/',
      MS_TOKEN_URL: `${fake.url}/bench/no-refresh-expected`, MS_SCOPES: 'offline_access User.Read Mail.Read',
    },
  };
}

/**
 * Connects `users` users in `fake` (a fake ZITADEL started with `oidc: {}`): their Microsoft access
 * token (3 KB, as the claim's), refresh token and expiry (6 h on) sealed in their metadata, and
 * returns one exchange call per user, `{ path, body, headers, user }`, with the user's ZITADEL
 * access token for the back end (12 h).
 */
export function exchangeCalls(fake, users, client = BENCH_EXCHANGE_CLIENT) {
  const expiresAt = String(Math.floor(Date.now() / 1000) + 6 * 3600);
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(client.id)}:${encodeURIComponent(client.secret)}`).toString('base64')}`;
  return Array.from({ length: users }, (_, u) => {
    const user = `31290907521246${String(8800 + u).padStart(4, '0')}`;
    const access = `EwB${user}${'x'.repeat(3 * 1024 - 3 - user.length)}`;
    const stored = { microsoft_access_token: access, microsoft_refresh_token: `M.C5${user}_${'r'.repeat(400)}`, microsoft_access_token_expires_at: expiresAt };
    fake.setUserMetadata(user, Object.fromEntries(Object.entries(stored).map(([key, value]) => [key, { base64: sealMetadata(BENCH_SEALING_KEY, user, key, value).toString('base64') }])));
    const subjectToken = fake.issueAccessToken({ user, clientId: client.id, projectId: EXCHANGE_PROJECT });
    const body = Buffer.from(new URLSearchParams({ grant_type: GRANT, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN }).toString());
    return { path: '/token', body, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, user };
  });
}

/**
 * The processes serving one worker: wrangler's Node, the workerd that takes the requests
 * (wrangler's proxy, listening on the worker's port), and the workerd that runs the worker.
 */
export function servingProcesses(worker) {
  const port = new URL(worker.url).port;
  const ps = spawnSync('ps', ['-eo', 'pid=,pgid=,comm=,args='], { encoding: 'utf8' }).stdout;
  const kind = (comm, args) => (comm === 'node' ? 'wrangler_node' : comm !== 'workerd' ? null : args.join(' ').includes(`entry=127.0.0.1:${port} `) ? 'workerd_proxy' : 'workerd_worker');
  return ps.split('\n').map((l) => l.trim().split(/\s+/)).filter(([, pgid]) => Number(pgid) === worker.pid)
    .map(([pid, , comm, ...args]) => ({ pid, kind: kind(comm, args) })).filter((p) => p.kind);
}
