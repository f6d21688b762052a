// A fake Microsoft identity platform (v2.0) on loopback, as Entra ID answers:
// - `POST /{tenant}/oauth2/v2.0/token` with the refresh_token grant (the refresh tests) and the
//   authorization_code grant (the connect flow);
// - `GET /{tenant}/oauth2/v2.0/authorize` (the connect flow): the account signed in (`signIn`)
//   consents at once and goes back to the redirect URI with a code, or with
//   `error=access_denied` when told to (`denyNextConsent`).
//
// It knows one confidential client and a set of refresh tokens. A good refresh token gets a new
// opaque access token and a rotated refresh token (the old one stays usable, as with Entra ID);
// an unknown or revoked one gets `invalid_grant`; one throttled with `rateLimit(rt, { retryAfter,
// times })` gets `429 Too Many Requests` with `Retry-After: retryAfter` (seconds, default 1) for
// its next `times` refreshes (all, if absent; `reset` ends it), as Entra ID throttles one user's
// requests. The authorize endpoint shows an error page (no
// redirect) for an unknown client or a redirect URI not registered (`redirectUris`,
// `addRedirectUri`), and wants `response_type=code`, `openid` in the scope and an S256 PKCE
// challenge. A code is single-use, for its redirect URI and challenge: anything else gets
// `invalid_grant`. Its answer holds an access token, a refresh token (valid for refresh from then
// on), `expires_in` and an ID token of the account (`oid`, `sub`, `tid`, `preferred_username`;
// signed with a key of the fake's own, which nobody checks: the worker reads it from the token
// endpoint over TLS). Every request is recorded in `calls` (`form` for a POST, `query` for a GET);
// tests can inject faults like the fake ZITADEL.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';

import { applyFault, takeFault } from './faults.mjs';

/** A work account in a tenant of its own. */
export const WORK_ACCOUNT = {
  oid: '6f1c3a52-2b7d-4a8e-9c41-0d5e7f2a9b13', sub: 'aF3kT9xQ0mZ7bR2vL5nW8yC1dE4gH6jK', tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  preferred_username: 'ada@contoso.example', name: 'Ada Lovelace',
};

export async function startFakeMicrosoft({ clientId = 'entra-app', clientSecret = 'entra-secret', refreshTokens = [], expiresIn = 3599, account = WORK_ACCOUNT, redirectUris = [] } = {}) {
  const valid = new Set(refreshTokens);
  const needsInteraction = new Set();
  const throttled = new Map(); // refresh token -> { retryAfter, times }
  const calls = [];
  const faults = [];
  const registered = new Set(redirectUris);
  const codes = new Map(); // code -> { redirectUri, challenge, account, scope, used }
  const consentErrors = [];
  let signedIn = account;
  let issued = 0;
  const idTokenKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const url = new URL(req.url, 'http://fake');
    const call = req.method === 'GET'
      ? { method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams) }
      : { method: req.method, path: req.url, form: Object.fromEntries(form) };
    calls.push(call);

    const fault = takeFault(faults);
    if (fault && (await applyFault(fault, req, res, JSON.stringify({ error: 'temporarily_unavailable' })))) return;

    const answer = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && /^\/[^/]+\/oauth2\/v2\.0\/authorize$/.test(url.pathname)) return authorize(url.searchParams, res);
    if (req.method !== 'POST' || !/^\/[^/]+\/oauth2\/v2\.0\/token$/.test(req.url)) return answer(404, { error: 'not_found' });
    if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) {
      return answer(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.', error_codes: [7000215] });
    }
    if (form.get('grant_type') === 'authorization_code') return redeem(form, answer);
    if (form.get('grant_type') !== 'refresh_token') return answer(400, { error: 'unsupported_grant_type' });
    const rt = form.get('refresh_token');
    const throttle = throttled.get(rt);
    if (throttle && throttle.times !== 0) {
      if (throttle.times !== undefined) throttle.times -= 1;
      res.writeHead(429, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'retry-after': String(throttle.retryAfter) });
      return res.end(JSON.stringify({ error: 'temporarily_unavailable', error_description: 'Too many requests.' }));
    }
    if (needsInteraction.has(rt)) {
      return answer(400, { error: 'interaction_required', error_description: 'AADSTS50076: MFA required.', error_codes: [50076] });
    }
    if (!valid.has(rt)) {
      return answer(400, { error: 'invalid_grant', error_description: 'AADSTS70000: The provided grant has expired or was revoked.', error_codes: [70000] });
    }
    issued += 1;
    const rotated = `ms-rt-${issued}-${Math.random().toString(36).slice(2)}`;
    valid.add(rotated);
    return answer(200, {
      token_type: 'Bearer',
      scope: form.get('scope') ?? '',
      expires_in: expiresIn,
      ext_expires_in: expiresIn,
      access_token: `EwB-fake-access-${issued}`,
      refresh_token: rotated,
    });
  });

  // GET /authorize: Entra's own error page for what it cannot send back (unknown client, redirect
  // URI not registered), else back to the redirect URI (response_mode=query) with a code or error.
  function authorize(q, res) {
    const page = (message) => {
      res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>Sign in to your account</title><p>${message}</p>`);
    };
    if (q.get('client_id') !== clientId) return page(`AADSTS700016: Application with identifier '${q.get('client_id')}' was not found.`);
    const redirectUri = q.get('redirect_uri') ?? '';
    if (!registered.has(redirectUri)) return page('AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.');
    const back = (params) => {
      const to = new URL(redirectUri);
      for (const [k, v] of Object.entries({ ...params, state: q.get('state') })) if (v != null) to.searchParams.set(k, v);
      res.writeHead(302, { location: to.toString(), 'cache-control': 'no-store' });
      res.end();
    };
    if (q.get('response_type') !== 'code') return back({ error: 'unsupported_response_type', error_description: 'AADSTS70005: response_type is not enabled for the client.' });
    if (q.get('response_mode') && q.get('response_mode') !== 'query') return back({ error: 'invalid_request', error_description: 'AADSTS900144: response_mode' });
    if (!(q.get('scope') ?? '').split(' ').includes('openid')) return back({ error: 'invalid_request', error_description: 'AADSTS900144: The request body must contain the openid scope.' });
    if (q.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(q.get('code_challenge') ?? '')) {
      return back({ error: 'invalid_request', error_description: 'AADSTS501491: Invalid size of Code_Challenge parameter or not S256.' });
    }
    const error = consentErrors.shift();
    if (error) return back({ error, error_description: 'AADSTS65004: User declined to consent to access the app.' });
    if (!signedIn) return page('Sign in (the fake has no account signed in)');
    const code = `M.C-code-${randomBytes(24).toString('base64url')}`;
    codes.set(code, { redirectUri, challenge: q.get('code_challenge'), account: signedIn, scope: q.get('scope'), used: false });
    return back({ code });
  }

  // The authorization_code grant of a confidential client with PKCE (RFC 6749 4.1.3, RFC 7636 4.5).
  function redeem(form, answer) {
    const refuse = (description, code) => answer(400, { error: 'invalid_grant', error_description: description, error_codes: [code] });
    const issuedFor = codes.get(form.get('code') ?? '');
    if (!issuedFor) return refuse('AADSTS70000: The provided authorization code is invalid.', 70000);
    if (issuedFor.used) return refuse('AADSTS54005: OAuth2 Authorization code was already redeemed.', 54005);
    if (issuedFor.redirectUri !== form.get('redirect_uri')) return refuse('AADSTS70000: redirect_uri does not match.', 70000);
    const computed = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
    if (computed !== issuedFor.challenge) return refuse('AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.', 501481);
    issuedFor.used = true;
    issued += 1;
    const refresh = `M.C-connect-rt-${issued}-${randomBytes(8).toString('hex')}`;
    valid.add(refresh);
    const now = Math.floor(Date.now() / 1000);
    const { oid, sub, tid, preferred_username, name } = issuedFor.account;
    const claims = { aud: clientId, iss: `https://login.microsoftonline.com/${tid}/v2.0`, iat: now, nbf: now, exp: now + 3600, name, oid, preferred_username, sub, tid, ver: '2.0' };
    return answer(200, {
      token_type: 'Bearer', scope: issuedFor.scope.split(' ').filter((s) => s !== 'openid' && s !== 'offline_access').join(' '),
      expires_in: expiresIn, ext_expires_in: expiresIn, access_token: `EwB-fake-connect-access-${issued}`, refresh_token: refresh,
      id_token: jwt(claims),
    });
  }

  function jwt(claims) {
    const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const input = `${part({ typ: 'JWT', alg: 'ES256', kid: 'fake-entra-key' })}.${part(claims)}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key: idTokenKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  }

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    /** The token URL for MS_TOKEN_URL. */
    tokenUrl: (tenant = 'common') => `${url}/${tenant}/oauth2/v2.0/token`,
    /** The authorize URL for MS_AUTHORIZE_URL. */
    authorizeUrl: (tenant = 'common') => `${url}/${tenant}/oauth2/v2.0/authorize`,
    /** Registers a redirect URI of the app. */
    addRedirectUri: (uri) => registered.add(uri),
    /** The account that signs in at /authorize from now on ({ oid, sub, tid, preferred_username, name }); null: none. */
    signIn: (who) => { signedIn = who; },
    /** The next authorization (one) goes back with this `error` (the user declined to consent). */
    denyNextConsent: (error = 'access_denied') => consentErrors.push(error),
    clientId,
    clientSecret,
    calls,
    addRefreshToken: (rt) => valid.add(rt),
    revoke: (rt) => valid.delete(rt),
    requireInteraction: (rt) => needsInteraction.add(rt),
    /** Answers 429 with `Retry-After: retryAfter` to this refresh token's next `times` refreshes (all, if absent). */
    rateLimit: (rt, { retryAfter = 1, times } = {}) => throttled.set(rt, { retryAfter, times }),
    fault: (behaviour) => faults.push(behaviour),
    reset() {
      calls.length = 0;
      faults.length = 0;
      consentErrors.length = 0;
      throttled.clear();
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}
