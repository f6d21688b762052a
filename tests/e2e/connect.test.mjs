// The "connect Microsoft" browser flow end to end (issue 21): the built worker in workerd, the fake
// ZITADEL as the OpenID provider of the worker's own OIDC app, the fake Microsoft as the Entra app.
// A browser is played by hand: fetch with `redirect: 'manual'`, every Location followed in turn, and
// the worker's one cookie carried as a browser would (kept, replaced, removed by Max-Age=0).
// Then the tokens the flow wrote, sealed, in the claims path: passed on for their user only,
// refreshed with the sealed refresh token, and a refresh token planted in clear never redeemed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { claim, postSigned } from '../support/calls.mjs';
import { WORK_ACCOUNT, startFakeMicrosoft } from '../support/fake-microsoft.mjs';
import { startFakeZitadel } from '../support/fake-zitadel.mjs';
import { b64, now } from '../support/sample.mjs';
import { connectStateAad, metadataAad, newSealingKey, openBytes, seal, sealBytes } from '../support/seal.mjs';
import { startWorker, withLogLine } from '../support/worker.mjs';

const SIGNING_KEY = 'connect-signing-key';
const SEALING_KEY = newSealingKey('k1');
const COOKIE = '__Host-zitadel-claims-connect';
const MS_IDP = 'ms-idp-1';
const RETURN_URLS = 'https://app.example/settings';
const RETURN_TO = 'https://app.example/settings/connections?tab=ms';
const KEYS = ['microsoft_access_token', 'microsoft_refresh_token', 'microsoft_access_token_expires_at'];
/** ZITADEL users, one per story, so that what one test writes is not another's. */
const USERS = {
  linked: '312909075212468632', unlinked: '312909075212468633', mismatch: '312909075212468634',
  personal: '312909075212468635', writeFails: '312909075212468636', other: '312909075212468699',
};
/** A personal Microsoft account: its oid is 16 zeros and the id Graph gives, which ZITADEL links. */
const PERSONAL = { oid: '00000000-0000-0000-fde9-26f844473904', sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ', tid: '9188040d-6c67-4c5b-b112-36a304b66dad', preferred_username: 'ada@outlook.com', name: 'Ada' };

const cleanup = [];
after(async () => {
  for (const stop of cleanup.reverse()) await stop();
});

let zitadel;
let ms;
let w;
let clientId;
/** Every code, state, nonce, challenge, cookie and token the tests saw: none may be logged. */
const secrets = new Set();

before(async () => {
  zitadel = await startFakeZitadel({ oidc: { signedIn: USERS.linked } });
  cleanup.push(() => zitadel.close());
  ms = await startFakeMicrosoft();
  cleanup.push(() => ms.close());
  const project = zitadel.addProject('zitadel-claims');
  clientId = zitadel.addOidcApp(project, 'zitadel-claims-connect', {
    redirectUris: ['https://placeholder.example/'], responseTypes: ['OIDC_RESPONSE_TYPE_CODE'],
    grantTypes: ['OIDC_GRANT_TYPE_AUTHORIZATION_CODE'], appType: 'OIDC_APP_TYPE_USER_AGENT',
    authMethodType: 'OIDC_AUTH_METHOD_TYPE_NONE', devMode: true,
  }).oidcConfig.clientId;
  zitadel.setIdpLinks(USERS.linked, [
    { idpId: 'google', userId: '1093', userName: 'ada@gmail.example' },
    { idpId: MS_IDP, userId: WORK_ACCOUNT.oid.toUpperCase(), userName: WORK_ACCOUNT.preferred_username },
  ]);
  zitadel.setIdpLinks(USERS.mismatch, [{ idpId: MS_IDP, userId: 'a0b1c2d3-0000-4000-8000-000000000001', userName: 'bob@contoso.example' }]);
  zitadel.setIdpLinks(USERS.personal, [{ idpId: MS_IDP, userId: 'fde926f844473904', userName: PERSONAL.preferred_username }]);
  w = await startWorker({
    secrets: {
      ZITADEL_SIGNING_KEY: SIGNING_KEY, ZITADEL_ACCESS_TOKEN: zitadel.accessToken, MS_CLIENT_ID: ms.clientId,
      MS_CLIENT_SECRET: ms.clientSecret, TOKEN_SEALING_KEY: SEALING_KEY,
    },
    vars: {
      ZITADEL_DOMAIN: zitadel.url, CONNECT_CLIENT_ID: clientId, CONNECT_RETURN_URLS: RETURN_URLS,
      MS_AUTHORIZE_URL: ms.authorizeUrl(), MS_TOKEN_URL: ms.tokenUrl(), MS_IDP_ID: MS_IDP, MS_TOKEN_CLIENT_IDS: '*',
      PERMISSIONS_CLAIM: '', FLAT_ROLES_CLAIM: '', LOG_CLAIMS: 'true',
    },
  });
  cleanup.push(() => w.stop());
  zitadel.setOidcConfig(clientId, { redirectUris: [`${w.url}/connect/zitadel/callback`] });
  ms.addRedirectUri(`${w.url}/connect/microsoft/callback`);
  for (const s of [SEALING_KEY, ms.clientSecret, zitadel.accessToken, SIGNING_KEY]) secrets.add(s);
});

/**
 * A browser: GETs without following redirects, keeping the worker's cookies as a browser does
 * (a Set-Cookie replaces, Max-Age=0 removes) and sending them to the worker only. `cookie`
 * overrides the Cookie header of one request (null: none).
 */
function browser() {
  const jar = new Map();
  return {
    jar,
    cookie: () => jar.get(COOKIE),
    async get(url, { cookie } = {}) {
      const toWorker = url.startsWith(w.url);
      const header = cookie !== undefined ? cookie : toWorker && jar.size ? [...jar].map(([k, v]) => `${k}=${v}`).join('; ') : null;
      const res = await fetch(url, { redirect: 'manual', headers: header ? { cookie: header } : {} });
      const hop = { url, status: res.status, location: res.headers.get('location'), headers: res.headers, setCookies: res.headers.getSetCookie(), text: await res.text() };
      for (const u of [url, hop.location]) {
        if (!u) continue;
        for (const name of ['code', 'state', 'nonce', 'code_challenge']) {
          const v = new URL(u).searchParams.get(name);
          if (v?.length >= 8) secrets.add(v); // not the tests' own `code=c&state=s`
        }
      }
      if (toWorker) {
        for (const c of hop.setCookies) {
          const [pair] = c.split(';');
          const name = pair.slice(0, pair.indexOf('='));
          const value = pair.slice(pair.indexOf('=') + 1);
          if (value) secrets.add(value);
          if (/;\s*Max-Age=0(;|$)/i.test(c)) jar.delete(name);
          else jar.set(name, value);
        }
      }
      return hop;
    },
  };
}

const startUrl = (returnTo = RETURN_TO) => `${w.url}/connect/microsoft?return_to=${encodeURIComponent(returnTo)}`;
const params = (url) => Object.fromEntries(new URL(url).searchParams);
const withParams = (url, changes) => {
  const u = new URL(url);
  for (const [k, v] of Object.entries(changes)) u.searchParams.set(k, v);
  return u.toString();
};

/** The flow up to ZITADEL's redirect back to the worker (not followed). */
async function toZitadelCallback(b, returnTo) {
  const start = await b.get(startUrl(returnTo));
  assert.equal(start.status, 302, start.text);
  const authorize = await b.get(start.location);
  assert.equal(authorize.status, 302, authorize.text);
  return { start, authorize, callback: authorize.location };
}

/** The flow up to Microsoft's redirect back to the worker (not followed). */
async function toMicrosoftCallback(b, returnTo) {
  const z = await toZitadelCallback(b, returnTo);
  const zitadelCallback = await b.get(z.callback);
  assert.equal(zitadelCallback.status, 302, zitadelCallback.text);
  assert.ok(zitadelCallback.location.startsWith(ms.authorizeUrl()), zitadelCallback.location);
  const authorize = await b.get(zitadelCallback.location);
  assert.equal(authorize.status, 302, authorize.text);
  return { ...z, zitadelCallback, msAuthorize: authorize, callback: authorize.location };
}

/** The stored metadata of `user` as { key: bytes }, and each value opened (as text). */
function stored(user) {
  const raw = Object.fromEntries(Object.entries(zitadel.userMetadata(user)).map(([k, v]) => [k, Buffer.from(v)]));
  const opened = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, openBytes(SEALING_KEY, metadataAad(user, k), v).toString('utf8')]));
  for (const v of [...Object.values(raw).map((b) => b.toString('base64')), ...Object.values(opened)]) secrets.add(v);
  return { raw, opened };
}

/** A preaccesstoken call for `user` whose user metadata holds `metadata` ({ key: stored text }). */
function tokenCall(user, metadata) {
  const body = {
    function: 'function/preaccesstoken', user: { id: user }, org: { id: 'org-1' },
    user_metadata: Object.entries(metadata).map(([key, value]) => ({ key, value: b64(value) })),
  };
  return postSigned(w.url, JSON.stringify(body), SIGNING_KEY);
}

/** The worker's log lines of the connect routes since `from`. */
const connectLines = (from = 0) => w.logLines().slice(from).filter((l) => l.path.startsWith('/connect/'));

/** A redirect back to return_to with `error=<code>`, clearing the cookie. */
function assertBackWith(hop, code) {
  assert.equal(hop.status, 302, hop.text);
  assert.equal(hop.location, `${RETURN_TO}&error=${code}`);
  assert.ok(hop.setCookies.some((c) => c.startsWith(`${COOKIE}=;`) && /Max-Age=0/.test(c)), hop.setCookies.join('\n'));
}

/** The error page (no trusted return_to): an HTML page with `status`, no redirect. */
function assertPage(hop, status = 400) {
  assert.equal(hop.status, status, hop.text);
  assert.equal(hop.location, null);
  assert.match(hop.headers.get('content-type'), /^text\/html/);
  assert.match(hop.text, /^<!doctype html>/);
  assert.equal(hop.headers.get('cache-control'), 'no-store');
}

describe('connect Microsoft: the whole flow', () => {
  it('signs in at ZITADEL, consents at Microsoft, writes the tokens sealed and goes back with connected=microsoft', async () => {
    zitadel.signIn(USERS.linked);
    ms.signIn(WORK_ACCOUNT);
    zitadel.reset();
    ms.reset();
    const b = browser();
    await w.settleLog();
    const from = w.logLines().length;
    const before = now();

    // 1. the worker sends the browser to ZITADEL, with a PKCE challenge, a state and a nonce
    const start = await b.get(startUrl());
    assert.equal(start.status, 302);
    const authorizeUrl = new URL(start.location);
    assert.equal(`${authorizeUrl.origin}${authorizeUrl.pathname}`, `${zitadel.url}/oauth/v2/authorize`);
    const z = params(start.location);
    assert.deepEqual(Object.keys(z).sort(), ['client_id', 'code_challenge', 'code_challenge_method', 'nonce', 'redirect_uri', 'response_type', 'scope', 'state']);
    assert.deepEqual({ ...z, state: 'x', nonce: 'x', code_challenge: 'x' }, {
      client_id: clientId, redirect_uri: `${w.url}/connect/zitadel/callback`, response_type: 'code', scope: 'openid',
      state: 'x', nonce: 'x', code_challenge: 'x', code_challenge_method: 'S256',
    });
    assert.match(z.code_challenge, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(start.setCookies.length, 1);
    assert.match(start.setCookies[0], new RegExp(`^${COOKIE}=sealed:v1:k1:[A-Za-z0-9_-]+:[A-Za-z0-9_-]+; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax$`));
    assert.equal(start.headers.get('cache-control'), 'no-store');
    assert.equal(start.headers.get('referrer-policy'), 'no-referrer');
    const firstCookie = b.cookie();

    // 2. ZITADEL (the user is signed in) sends it back with a code
    const authorize = await b.get(start.location);
    assert.equal(authorize.status, 302);
    assert.ok(authorize.location.startsWith(`${w.url}/connect/zitadel/callback?`));
    assert.equal(params(authorize.location).state, z.state);

    // 3. the worker redeems the code, checks the ID token, reads the link, sends it to Microsoft
    const zitadelCallback = await b.get(authorize.location);
    assert.equal(zitadelCallback.status, 302, zitadelCallback.text);
    const [tokenCall_] = zitadel.callsTo(/^\/oauth\/v2\/token$/);
    const form = Object.fromEntries(new URLSearchParams(tokenCall_.body));
    assert.deepEqual({ ...form, code_verifier: 'v' }, {
      grant_type: 'authorization_code', code: params(authorize.location).code, redirect_uri: `${w.url}/connect/zitadel/callback`,
      client_id: clientId, code_verifier: 'v',
    });
    assert.equal(createHash('sha256').update(form.code_verifier).digest('base64url'), z.code_challenge, 'the verifier of the challenge sent');
    assert.equal(tokenCall_.authorization, null, 'a public client: no credentials');
    const [links] = zitadel.callsTo(/\/links\/_search$/);
    assert.equal(links.path, `/v2/users/${USERS.linked}/links/_search`);
    assert.equal(links.authorization, `Bearer ${zitadel.accessToken}`);
    const m = params(zitadelCallback.location);
    assert.deepEqual({ ...m, state: 'x', code_challenge: 'x' }, {
      client_id: ms.clientId, response_type: 'code', redirect_uri: `${w.url}/connect/microsoft/callback`, response_mode: 'query',
      scope: 'openid offline_access User.Read', state: 'x', code_challenge: 'x', code_challenge_method: 'S256',
      login_hint: WORK_ACCOUNT.preferred_username,
    });
    assert.notEqual(m.state, z.state, 'a new state for the second step');
    assert.notEqual(b.cookie(), firstCookie, 'the cookie is replaced');
    assert.match(zitadelCallback.setCookies[0], /; Path=\/; Max-Age=600; HttpOnly; Secure; SameSite=Lax$/);

    // 4. Microsoft (consent) sends it back with a code
    const msAuthorize = await b.get(zitadelCallback.location);
    assert.equal(msAuthorize.status, 302);
    assert.ok(msAuthorize.location.startsWith(`${w.url}/connect/microsoft/callback?`));

    // 5. the worker redeems it, checks the account, writes the tokens sealed, goes back
    const done = await b.get(msAuthorize.location);
    assert.equal(done.status, 302, done.text);
    assert.equal(done.location, `${RETURN_TO}&connected=microsoft`);
    assert.equal(done.setCookies.length, 1);
    assert.equal(done.setCookies[0], `${COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax`);
    assert.equal(b.jar.size, 0, 'the cookie is gone');
    const msToken = ms.calls.find((c) => c.method === 'POST');
    assert.deepEqual({ ...msToken.form, code_verifier: 'v' }, {
      grant_type: 'authorization_code', code: params(msAuthorize.location).code, redirect_uri: `${w.url}/connect/microsoft/callback`,
      code_verifier: 'v', client_id: ms.clientId, client_secret: ms.clientSecret,
    });
    assert.equal(createHash('sha256').update(msToken.form.code_verifier).digest('base64url'), m.code_challenge);

    const writes = zitadel.callsTo(new RegExp(`^/v2/users/${USERS.linked}/metadata$`));
    assert.equal(writes.length, 1);
    const body = JSON.parse(writes[0].body);
    assert.deepEqual(body.metadata.map((e) => e.key), KEYS);
    for (const e of body.metadata) {
      assert.match(e.value, /^[A-Za-z0-9+/]+={0,2}$/, 'standard base64');
      // The binary form: the prefix and key id, then 12 bytes of IV and at least the 16-byte tag.
      const bytes = Buffer.from(e.value, 'base64');
      assert.equal(bytes.subarray(0, 13).toString(), 'sealed:v1:k1:');
      assert.ok(bytes.length >= 13 + 12 + 16, `${bytes.length} bytes`);
    }
    const { raw, opened } = stored(USERS.linked);
    assert.deepEqual(Object.keys(raw), KEYS);
    assert.match(opened.microsoft_access_token, /^EwB-fake-connect-access-\d+$/);
    assert.match(opened.microsoft_refresh_token, /^M\.C-connect-rt-/);
    const expiresAt = Number(opened.microsoft_access_token_expires_at);
    assert.ok(expiresAt >= before + 3599 && expiresAt <= now() + 3599, String(expiresAt));
    assert.throws(() => openBytes(SEALING_KEY, metadataAad(USERS.other, 'microsoft_access_token'), raw.microsoft_access_token), 'bound to its user');

    // the log: one line per step, the user named once known, the write on the last
    await w.settleLog();
    const lines = connectLines(from);
    assert.deepEqual(lines.map((l) => [l.path, l.status, l.outcome]), [
      ['/connect/microsoft', 302, 'ok'], ['/connect/zitadel/callback', 302, 'ok'], ['/connect/microsoft/callback', 302, 'connected'],
    ]);
    assert.equal(lines[2].user_id, USERS.linked);
    assert.equal(lines[2].metadata_written, true);
    assert.equal(lines[1].user_id, USERS.linked, 'the ZITADEL callback names the user it signed in');
  });

  it('a later preaccesstoken call carrying the sealed metadata gets the Microsoft token claim', async () => {
    const { raw, opened } = stored(USERS.linked);
    ms.reset();
    const res = await tokenCall(USERS.linked, raw);
    assert.equal(res.status, 200, res.text);
    assert.equal(claim(res, 'urn:custom:ms_access_token'), opened.microsoft_access_token);
    assert.equal(res.json.set_user_metadata, undefined, 'fresh: nothing refreshed');
    assert.equal(ms.calls.length, 0);
  });

  it('an ES256 ID token is checked as well as an RS256 one (ZITADEL web keys of either kind)', async () => {
    zitadel.signIn(USERS.unlinked);
    zitadel.setIdTokenAlg('ES256');
    try {
      const b = browser();
      const { callback } = await toMicrosoftCallback(b);
      const done = await b.get(callback);
      assert.equal(done.location, `${RETURN_TO}&connected=microsoft`);
    } finally {
      zitadel.setIdTokenAlg('RS256');
    }
  });

  it('a user with no Microsoft link gets no login_hint and connects the account that signs in', async () => {
    zitadel.signIn(USERS.unlinked);
    ms.signIn(PERSONAL);
    const b = browser();
    const { zitadelCallback, callback } = await toMicrosoftCallback(b);
    assert.equal(params(zitadelCallback.location).login_hint, undefined);
    const done = await b.get(callback);
    assert.equal(done.location, `${RETURN_TO}&connected=microsoft`);
    assert.deepEqual(Object.keys(stored(USERS.unlinked).raw), KEYS);
  });

  it('a personal account connects to the user whose link holds its 16-digit id', async () => {
    zitadel.signIn(USERS.personal);
    ms.signIn(PERSONAL);
    const b = browser();
    const { zitadelCallback, callback } = await toMicrosoftCallback(b);
    assert.equal(params(zitadelCallback.location).login_hint, PERSONAL.preferred_username);
    const done = await b.get(callback);
    assert.equal(done.location, `${RETURN_TO}&connected=microsoft`);
  });
});

describe('connect Microsoft: refusals', () => {
  it('a return_to outside CONNECT_RETURN_URLS, or none, gets a 400 page, never a redirect', async () => {
    const b = browser();
    for (const url of [
      `${w.url}/connect/microsoft`, startUrl('https://evil.example/settings'), startUrl('https://app.example/other'),
      startUrl('https://app.example/settings/../admin'), startUrl('javascript:alert(1)'), startUrl('https://app.example.evil.example/settings'),
      startUrl(''),
    ]) {
      const hop = await b.get(url);
      assertPage(hop, 400);
      assert.ok(!hop.setCookies.some((c) => /Max-Age=600/.test(c)), 'no flow starts');
      assert.doesNotMatch(hop.text, /evil/);
    }
    assert.equal(b.jar.size, 0);
  });

  it('a callback without the cookie gets a page (there is no trusted return_to)', async () => {
    zitadel.signIn(USERS.linked);
    const b = browser();
    const z = await toZitadelCallback(b);
    const { line, res } = await withLogLine(w, () => b.get(z.callback, { cookie: null }));
    assertPage(res, 400);
    assert.equal(line.outcome, 'invalid_request');
    assertPage(await b.get(`${w.url}/connect/microsoft/callback?code=c&state=s`, { cookie: null }), 400);
  });

  it('an expired flow gets a page: a state past its 10 minutes, sealed with the worker key, is refused', async () => {
    const b = browser();
    const state = (exp) => seal(SEALING_KEY, connectStateAad('microsoft'), JSON.stringify({
      provider: 'microsoft', next: 'zitadel', exp, state: 'st4te', nonce: 'n0nce', verifier: 'v'.repeat(43), return_to: RETURN_TO,
    }));
    const url = `${w.url}/connect/zitadel/callback?code=some-code&state=st4te`;
    assertPage(await b.get(url, { cookie: `${COOKIE}=${state(now() - 5)}` }), 400);
    // the same state still valid passes the cookie check (and fails later, on the unknown code)
    assertBackWith(await b.get(url, { cookie: `${COOKIE}=${state(now() + 300)}` }), 'invalid_request');
  });

  it('a cookie sealed under another key, or changed, gets a page', async () => {
    zitadel.signIn(USERS.linked);
    const b = browser();
    const z = await toZitadelCallback(b);
    const good = b.cookie();
    const foreign = seal(newSealingKey('k1'), connectStateAad('microsoft'), Buffer.from('{}'));
    const flipped = good.slice(0, -2) + (good.at(-2) === 'A' ? 'B' : 'A') + good.at(-1);
    for (const value of [foreign, flipped, 'not-sealed', good.replace(':k1:', ':k2:')]) {
      assertPage(await b.get(z.callback, { cookie: `${COOKIE}=${value}` }), 400);
    }
    // each refusal cleared the cookie (Max-Age=0); the genuine one still works: the refusals were the cookie's
    assert.equal(b.jar.size, 0);
    const ok = await b.get(z.callback, { cookie: `${COOKIE}=${good}` });
    assert.equal(ok.status, 302);
    assert.ok(ok.location.startsWith(ms.authorizeUrl()));
  });

  it("a cookie of another step is refused: the Microsoft step's at ZITADEL's callback, and ZITADEL's at Microsoft's", async () => {
    zitadel.signIn(USERS.linked);
    ms.signIn(WORK_ACCOUNT);
    const b = browser();
    const m = await toMicrosoftCallback(b);
    assertPage(await b.get(m.callback.replace('/connect/microsoft/callback', '/connect/zitadel/callback')), 400);
    const b2 = browser();
    const z = await toZitadelCallback(b2);
    assertPage(await b2.get(z.callback.replace('/connect/zitadel/callback', '/connect/microsoft/callback')), 400);
  });

  it('a reused callback is refused: with the cookie that replaced it, and with the old cookie (the code is spent)', async () => {
    zitadel.signIn(USERS.linked);
    ms.signIn(WORK_ACCOUNT);
    const b = browser();
    const z = await toZitadelCallback(b);
    const oldCookie = b.cookie();
    const first = await b.get(z.callback);
    assert.equal(first.status, 302);
    assertPage(await b.get(z.callback), 400);
    assertBackWith(await b.get(z.callback, { cookie: `${COOKIE}=${oldCookie}` }), 'invalid_request');

    const m = await toMicrosoftCallback(b);
    const msCookie = b.cookie();
    const done = await b.get(m.callback);
    assert.equal(done.location, `${RETURN_TO}&connected=microsoft`);
    zitadel.reset();
    assertPage(await b.get(m.callback), 400);
    assertBackWith(await b.get(m.callback, { cookie: `${COOKIE}=${msCookie}` }), 'invalid_request');
    assert.equal(zitadel.callsTo(/\/metadata$/).length, 0, 'nothing written again');
  });

  it('a state that is not the cookie\'s goes back with error=invalid_request, at either callback', async () => {
    zitadel.signIn(USERS.linked);
    ms.signIn(WORK_ACCOUNT);
    const b = browser();
    const z = await toZitadelCallback(b);
    zitadel.reset();
    assertBackWith(await b.get(withParams(z.callback, { state: 'another-state' })), 'invalid_request');
    assert.equal(zitadel.callsTo(/\/oauth\/v2\/token$/).length, 0, 'the code is not redeemed');
    const b2 = browser();
    const m = await toMicrosoftCallback(b2);
    ms.reset();
    const u = new URL(m.callback);
    u.searchParams.delete('state');
    assertBackWith(await b2.get(u.toString()), 'invalid_request');
    assert.equal(ms.calls.length, 0, 'the code is not redeemed');
  });

  it("a code injected into another browser's flow fails PKCE at ZITADEL and at Microsoft: error=invalid_request", async () => {
    zitadel.signIn(USERS.linked);
    ms.signIn(WORK_ACCOUNT);
    const victim = browser();
    const attacker = browser();
    // ZITADEL: the attacker's code, the victim's state and cookie
    const a = await toZitadelCallback(attacker);
    const v = await toZitadelCallback(victim);
    zitadel.reset();
    const injected = withParams(v.callback, { code: params(a.callback).code });
    const { res, line } = await withLogLine(w, () => victim.get(injected));
    assertBackWith(res, 'invalid_request');
    assert.equal(line.outcome, 'invalid_request');
    const [token] = zitadel.callsTo(/\/oauth\/v2\/token$/);
    assert.equal(createHash('sha256').update(new URLSearchParams(token.body).get('code_verifier')).digest('base64url'), params(v.start.location).code_challenge, "the victim's verifier was sent");
    // Microsoft: likewise
    const a2 = await toMicrosoftCallback(browser());
    const v2b = browser();
    const v2 = await toMicrosoftCallback(v2b);
    ms.reset();
    assertBackWith(await v2b.get(withParams(v2.callback, { code: params(a2.callback).code })), 'invalid_request');
    assert.deepEqual(ms.calls.map((c) => c.form?.grant_type), ['authorization_code']);
  });

  it('access_denied at ZITADEL, and at Microsoft, goes back with error=access_denied', async () => {
    zitadel.signIn(USERS.linked);
    ms.signIn(WORK_ACCOUNT);
    const b = browser();
    zitadel.denyNextAuthorization('access_denied');
    const z = await toZitadelCallback(b);
    assert.equal(params(z.callback).error, 'access_denied');
    const { res, line } = await withLogLine(w, () => b.get(z.callback));
    assertBackWith(res, 'access_denied');
    assert.equal(line.outcome, 'access_denied');

    const b2 = browser();
    ms.denyNextConsent('access_denied');
    const m = await toMicrosoftCallback(b2);
    assert.equal(params(m.callback).error, 'access_denied');
    assertBackWith(await b2.get(m.callback), 'access_denied');
  });

  it('a Microsoft account other than the linked one is account_mismatch, and nothing is written', async () => {
    zitadel.signIn(USERS.mismatch);
    ms.signIn(WORK_ACCOUNT);
    const b = browser();
    const m = await toMicrosoftCallback(b);
    assert.equal(params(m.zitadelCallback.location).login_hint, 'bob@contoso.example');
    zitadel.reset();
    const { res, line } = await withLogLine(w, () => b.get(m.callback));
    assertBackWith(res, 'account_mismatch');
    assert.equal(line.outcome, 'account_mismatch');
    assert.equal(line.user_id, USERS.mismatch);
    assert.equal(zitadel.callsTo(/\/metadata$/).length, 0);
    assert.deepEqual(zitadel.userMetadata(USERS.mismatch), {});
  });

  it('an ID token ZITADEL gave for another client, or without the nonce, is refused: error=invalid_request', async () => {
    zitadel.signIn(USERS.linked);
    for (const change of [(c) => ({ ...c, aud: ['someone-else', 'project'], azp: 'someone-else' }), (c) => ({ ...c, nonce: 'replayed' }), (c) => ({ ...c, exp: now() - 3600 })]) {
      const b = browser();
      const z = await toZitadelCallback(b);
      zitadel.changeNextIdToken(change);
      assertBackWith(await b.get(z.callback), 'invalid_request');
    }
  });

  it('ZITADEL down at the token endpoint, or the metadata write failing, is upstream_unavailable', async () => {
    zitadel.signIn(USERS.writeFails);
    ms.signIn(WORK_ACCOUNT);
    const b = browser();
    const z = await toZitadelCallback(b);
    zitadel.fault(/^\/oauth\/v2\/token$/, { status: 503, times: 1 });
    assertBackWith(await b.get(z.callback), 'upstream_unavailable');

    const b2 = browser();
    const m = await toMicrosoftCallback(b2);
    zitadel.fault(/\/metadata$/, { status: 503, times: 1 });
    const { res, line } = await withLogLine(w, () => b2.get(m.callback));
    assertBackWith(res, 'upstream_unavailable');
    assert.equal(line.metadata_written, false);
    assert.deepEqual(zitadel.userMetadata(USERS.writeFails), {});
  });

  it('no log line holds a code, a state, a nonce, a cookie or a token', async () => {
    await w.settleLog();
    const lines = w.logLines();
    assert.ok(connectLines().length > 30, `the tests above went through the flow (${connectLines().length} lines)`);
    assert.ok(secrets.size > 50, `secrets seen: ${secrets.size}`);
    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    for (const s of secrets) assert.ok(!text.includes(s), `a log line holds a secret (${s.slice(0, 12)}…)`);
    for (const l of connectLines()) {
      const allowed = ['method', 'path', 'outcome', 'status', 'claims', 'user_id', 'metadata_written', 'upstream_calls', 'duration_ms', 'upstream_error'];
      assert.deepEqual(Object.keys(l).filter((k) => !allowed.includes(k)), [], JSON.stringify(l));
      assert.deepEqual(l.claims, []);
    }
    // nor anything else the worker or wrangler printed
    const output = w.output();
    for (const s of secrets) assert.ok(!output.includes(s), `the output holds a secret (${s.slice(0, 12)}…)`);
  });
});

describe('sealed tokens in the claims path', () => {
  it('a stale token is refreshed with the sealed refresh token and written back sealed', async () => {
    const { raw, opened } = stored(USERS.linked);
    const staleAt = sealBytes(SEALING_KEY, metadataAad(USERS.linked, 'microsoft_access_token_expires_at'), String(now() - 10));
    ms.reset();
    const { res, line } = await withLogLine(w, () => tokenCall(USERS.linked, { ...raw, microsoft_access_token_expires_at: staleAt }));
    assert.equal(res.status, 200, res.text);
    assert.equal(line.ms_token, 'refreshed');
    assert.equal(ms.calls.length, 1);
    assert.equal(ms.calls[0].form.grant_type, 'refresh_token');
    assert.equal(ms.calls[0].form.refresh_token, opened.microsoft_refresh_token, 'the sealed refresh token, opened');
    const access = claim(res, 'urn:custom:ms_access_token');
    assert.match(access, /^EwB-fake-access-\d+$/);
    secrets.add(access);
    const written = Object.fromEntries(res.json.set_user_metadata.map((m) => [m.key, Buffer.from(m.value, 'base64')]));
    assert.deepEqual(Object.keys(written), KEYS);
    for (const [key, value] of Object.entries(written)) assert.match(value.toString('latin1'), /^sealed:v1:k1:/, key);
    assert.equal(openBytes(SEALING_KEY, metadataAad(USERS.linked, 'microsoft_access_token'), written.microsoft_access_token).toString(), access);
    assert.match(openBytes(SEALING_KEY, metadataAad(USERS.linked, 'microsoft_refresh_token'), written.microsoft_refresh_token).toString(), /^ms-rt-/);
  });

  it("a sealed value copied to another user's metadata gives no claim, and is not refreshed", async () => {
    const { raw } = stored(USERS.linked);
    ms.reset();
    const fresh = await tokenCall(USERS.other, raw);
    assert.equal(fresh.status, 200, fresh.text);
    assert.equal(claim(fresh, 'urn:custom:ms_access_token'), undefined);
    const staleAt = sealBytes(SEALING_KEY, metadataAad(USERS.other, 'microsoft_access_token_expires_at'), String(now() - 10));
    const stale = await tokenCall(USERS.other, { ...raw, microsoft_access_token_expires_at: staleAt });
    assert.equal(claim(stale, 'urn:custom:ms_access_token'), undefined);
    assert.equal(stale.json.set_user_metadata, undefined);
    assert.equal(ms.calls.length, 0, 'the copied refresh token is never sent');
  });

  it('a refresh token planted in clear is never sent to Microsoft', async () => {
    const planted = `planted-rt-${Date.now()}`;
    ms.addRefreshToken(planted);
    ms.reset();
    const { res, line } = await withLogLine(w, () => tokenCall(USERS.other, {
      microsoft_access_token: 'planted-access', microsoft_refresh_token: planted, microsoft_access_token_expires_at: String(now() - 10),
    }));
    assert.equal(res.status, 200, res.text);
    assert.equal(claim(res, 'urn:custom:ms_access_token'), undefined);
    assert.deepEqual(ms.calls.filter((c) => c.form?.grant_type === 'refresh_token'), []);
    assert.ok(!JSON.stringify(line).includes(planted));
  });
});

describe('connect Microsoft: feature off', () => {
  it('each route answers 404 feature_off naming the settings it still needs', async () => {
    const off = await startWorker({
      secrets: { ZITADEL_SIGNING_KEY: SIGNING_KEY, ZITADEL_ACCESS_TOKEN: zitadel.accessToken, MS_CLIENT_ID: ms.clientId, MS_CLIENT_SECRET: ms.clientSecret },
      vars: { ZITADEL_DOMAIN: zitadel.url, PERMISSIONS_CLAIM: '', MS_TOKEN_URL: ms.tokenUrl() },
    });
    cleanup.push(() => off.stop());
    for (const path of ['/connect/microsoft?return_to=https%3A%2F%2Fapp.example%2F', '/connect/zitadel/callback?code=c&state=s', '/connect/microsoft/callback?code=c&state=s']) {
      const res = await fetch(`${off.url}${path}`, { redirect: 'manual' });
      const body = await res.json();
      assert.equal(res.status, 404, path);
      assert.equal(body.error, 'feature_off');
      assert.match(body.message, /microsoft_connect needs TOKEN_SEALING_KEY, CONNECT_CLIENT_ID, CONNECT_RETURN_URLS/);
      assert.equal(res.headers.get('location'), null);
    }
  });
});
