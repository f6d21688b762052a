// The "connect Microsoft" demo, for `npm run dev` without configuration and for the browser test
// (tests/browser/): what the flow needs and the settings leave out, started on loopback.
// - Without ZITADEL_DOMAIN: the fake ZITADEL with the demo organization, as the OpenID provider of
//   the demo OIDC app `demo-connect` (CONNECT_CLIENT_ID), the demo user signed in at once and
//   linked to the demo Microsoft account.
// - Without MS_CLIENT_ID: the fake Microsoft, which signs the demo account in and consents at once
//   (MS_AUTHORIZE_URL, MS_TOKEN_URL and the demo app's id and secret).
// - Without TOKEN_SEALING_KEY: the demo sealing key (and MS_ACCEPT_UNSEALED, so that the sample
//   call's token, stored in clear, still passes).
// - Without CONNECT_RETURN_URLS: a tiny demo "app" page with a "Connect Microsoft" link to the
//   worker, which says `connected=microsoft` (or the error) when the browser comes back. With the
//   fake ZITADEL and without TOKEN_EXCHANGE_CLIENTS, the app is also a back end of the token
//   exchange (`demo-backend`): its "Get a Graph token" button has the fake issue the demo user's
//   access token to it and exchanges that at the worker's `POST /token`, showing the answer.
// The worker's URL is known once it runs: `setWorkerUrl` registers its callbacks with the fakes.
import { createServer } from 'node:http';
import { join } from 'node:path';

import { WORK_ACCOUNT, startFakeMicrosoft } from '../tests/support/fake-microsoft.mjs';
import { loadFixture, startFakeZitadel } from '../tests/support/fake-zitadel.mjs';
import { ROOT } from '../tests/support/worker.mjs';

/** The sample payload's user: the one signed in at the fake ZITADEL. */
export const DEMO_USER = '312909075212468632';
export const DEMO_CONNECT_CLIENT_ID = 'demo-connect';
export const DEMO_MS_IDP_ID = 'demo-microsoft-idp';
/** A fixed demo key (32 bytes), never for production: anyone can open what it seals. */
export const DEMO_SEALING_KEY = `demo:${Buffer.from('demo-sealing-key-not-for-prod-32').toString('base64')}`;
const DEMO_MS_APP = { clientId: 'demo-entra-app', clientSecret: 'demo-entra-secret' };
/** The demo app as a back end of the token exchange (never for production). */
export const DEMO_BACK_END = { clientId: 'demo-backend', clientSecret: 'demo-backend-secret' };

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Starts the pieces `have` (the settings given, e.g. .dev.vars) lacks. `appPort`: the demo app's
 * port (0: any free one). Returns { vars, secrets (settings for the worker), notes (lines to
 * print), appUrl (the page to open, when the demo app runs), zitadel, microsoft (the fakes, when
 * started), setWorkerUrl(url), close() }.
 */
export async function startConnectDemo({ have = {}, appPort = 0 } = {}) {
  const vars = {};
  const secrets = {};
  const notes = [];
  const closers = [];
  let workerUrl;
  let zitadel;
  let microsoft;

  if (!have.ZITADEL_DOMAIN) {
    zitadel = await startFakeZitadel({ fixture: loadFixture(join(ROOT, 'tests/fixtures/zitadel/demo.json')), oidc: { signedIn: DEMO_USER } });
    closers.push(() => zitadel.close());
    const project = zitadel.addProject('zitadel-claims');
    zitadel.addOidcApp(project, 'zitadel-claims-connect', {
      responseTypes: ['OIDC_RESPONSE_TYPE_CODE'], grantTypes: ['OIDC_GRANT_TYPE_AUTHORIZATION_CODE'], appType: 'OIDC_APP_TYPE_USER_AGENT',
      authMethodType: 'OIDC_AUTH_METHOD_TYPE_NONE', devMode: true,
    }, { clientId: DEMO_CONNECT_CLIENT_ID });
    zitadel.setIdpLinks(DEMO_USER, [{ idpId: DEMO_MS_IDP_ID, userId: WORK_ACCOUNT.oid, userName: WORK_ACCOUNT.preferred_username }]);
    vars.ZITADEL_DOMAIN = zitadel.url;
    secrets.ZITADEL_ACCESS_TOKEN = zitadel.accessToken;
    if (!have.CONNECT_CLIENT_ID) vars.CONNECT_CLIENT_ID = DEMO_CONNECT_CLIENT_ID;
    notes.push(`no ZITADEL_DOMAIN in .dev.vars, so a fake ZITADEL with demo data runs at ${zitadel.url} (the demo user ${DEMO_USER} is signed in)`);
  }
  if (!have.MS_IDP_ID) vars.MS_IDP_ID = DEMO_MS_IDP_ID;
  if (!have.MS_CLIENT_ID && !have.MS_CLIENT_SECRET) {
    microsoft = await startFakeMicrosoft({ ...DEMO_MS_APP, account: WORK_ACCOUNT });
    closers.push(() => microsoft.close());
    secrets.MS_CLIENT_ID = microsoft.clientId;
    secrets.MS_CLIENT_SECRET = microsoft.clientSecret;
    if (!have.MS_AUTHORIZE_URL) vars.MS_AUTHORIZE_URL = microsoft.authorizeUrl();
    if (!have.MS_TOKEN_URL) vars.MS_TOKEN_URL = microsoft.tokenUrl();
    notes.push(`no MS_CLIENT_ID in .dev.vars, so a fake Microsoft runs at ${microsoft.url} (${WORK_ACCOUNT.preferred_username} signs in and consents at once)`);
  }
  if (!have.TOKEN_SEALING_KEY) {
    secrets.TOKEN_SEALING_KEY = DEMO_SEALING_KEY;
    if (!have.MS_ACCEPT_UNSEALED) vars.MS_ACCEPT_UNSEALED = 'true';
    notes.push('no TOKEN_SEALING_KEY in .dev.vars, so the demo key seals the tokens (and MS_ACCEPT_UNSEALED=true lets the sample call\'s cleartext token pass)');
  }

  const exchanges = zitadel && !have.TOKEN_EXCHANGE_CLIENTS;
  if (exchanges) {
    secrets.TOKEN_EXCHANGE_CLIENTS = `${DEMO_BACK_END.clientId}:${DEMO_BACK_END.clientSecret}`;
    notes.push(`no TOKEN_EXCHANGE_CLIENTS in .dev.vars, so the demo app is the back end ${DEMO_BACK_END.clientId} of the token exchange`);
  }

  let appUrl;
  if (!have.CONNECT_RETURN_URLS) {
    const app = createServer(async (req, res) => {
      const url = new URL(req.url, 'http://app');
      if (url.pathname === '/exchange' && req.method === 'POST' && exchanges) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        return res.end(appPage(new URLSearchParams(), await exchange()));
      }
      if (url.pathname !== '/') {
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('not found');
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(appPage(url.searchParams));
    });
    await new Promise((resolve) => app.listen(appPort, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => {
      app.closeAllConnections();
      app.close(resolve);
    }));
    appUrl = `http://127.0.0.1:${app.address().port}/`;
    vars.CONNECT_RETURN_URLS = appUrl;
  }

  /** What the demo back end gets from `POST /token` for the demo user: { status, body }. */
  async function exchange() {
    const subjectToken = zitadel.issueAccessToken({ user: DEMO_USER, clientId: DEMO_BACK_END.clientId });
    const basic = Buffer.from(`${encodeURIComponent(DEMO_BACK_END.clientId)}:${encodeURIComponent(DEMO_BACK_END.clientSecret)}`).toString('base64');
    try {
      const res = await fetch(`${workerUrl}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: subjectToken,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        }),
      });
      return { status: res.status, body: await res.json() };
    } catch (e) {
      return { status: 0, body: { error: 'the worker did not answer', error_description: e.message } };
    }
  }

  /** The exchange's answer as the page shows it: the token cut short. */
  function exchanged({ status, body }) {
    const shownBody = body.access_token ? { ...body, access_token: `${body.access_token.slice(0, 12)}…` } : body;
    return `<p>The token exchange answered HTTP ${status}:</p><pre id="exchange">${escape(JSON.stringify(shownBody, null, 2))}</pre>`;
  }

  function appPage(query, exchangeAnswer) {
    const connectUrl = workerUrl && `${workerUrl}/connect/microsoft?return_to=${encodeURIComponent(appUrl)}`;
    let status = '<p id="status">Not connected yet.</p>';
    if (query.get('connected')) status = `<p id="status" class="ok">connected=${escape(query.get('connected'))}: Microsoft is connected.</p>`;
    else if (query.get('error')) status = `<p id="status" class="error">error=${escape(query.get('error'))}: Microsoft was not connected.</p>`;
    const stored = zitadel ? Object.entries(zitadel.userMetadata(DEMO_USER)) : [];
    const metadata = stored.length
      ? `<p>The demo user's metadata in the fake ZITADEL:</p><ul id="metadata">${stored.map(([key, value]) => `<li><code>${escape(key)}</code>: ${escape(shown(value))}</li>`).join('')}</ul>`
      : '';
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo app</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}.ok{color:#060}.error{color:#a00}</style></head>
<body><h1>Demo app</h1>
${status}
${connectUrl ? `<p><a id="connect" href="${escape(connectUrl)}">Connect Microsoft</a></p>` : '<p>The worker is not running yet.</p>'}
${exchanges && workerUrl ? '<form method="post" action="/exchange"><button id="exchange-button">Get a Graph token (token exchange, as the back end)</button></form>' : ''}
${exchangeAnswer ? exchanged(exchangeAnswer) : ''}
${metadata}
</body></html>
`;
  }

  return {
    vars,
    secrets,
    notes,
    appUrl,
    zitadel,
    microsoft,
    /** Tells the fakes and the demo app where the worker runs (its origin, e.g. http://127.0.0.1:8787). */
    setWorkerUrl(url) {
      workerUrl = url.replace(/\/+$/, '');
      const origins = [workerUrl, workerUrl.replace('://127.0.0.1:', '://localhost:')];
      zitadel?.setOidcConfig(DEMO_CONNECT_CLIENT_ID, { redirectUris: [...new Set(origins)].map((o) => `${o}/connect/zitadel/callback`) });
      for (const o of new Set(origins)) microsoft?.addRedirectUri(`${o}/connect/microsoft/callback`);
    },
    async close() {
      for (const close of closers.reverse()) await close();
    },
  };
}

/** A stored value as the demo page shows it: a sealed one by its readable prefix and its size. */
function shown(value) {
  const text = Buffer.from(value).toString('latin1');
  if (!text.startsWith('sealed:v1:')) return `${text.slice(0, 24)}…`;
  return `${text.slice(0, text.indexOf(':', 'sealed:v1:'.length) + 1)}… (${value.length} bytes)`;
}
