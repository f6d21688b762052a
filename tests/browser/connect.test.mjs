// The connect flow in a real browser: headless Chromium (Debian's `chromium`, driven by
// puppeteer-core) clicks "Connect Microsoft" on the demo app of `npm run dev` (scripts/
// connect-demo.mjs: the fake ZITADEL signing the demo user in, the fake Microsoft consenting, the
// demo sealing key) and follows the redirects as a browser does: the worker's `__Host-` cookie set,
// replaced and cleared by the browser itself (Secure cookies count on http://127.0.0.1), and back
// on the app with connected=microsoft. Then the app, as a back end, exchanges the user's ZITADEL
// access token for the Graph token at `POST /token`. The worker is the built one under `wrangler dev`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

import puppeteer from 'puppeteer-core';

import { DEMO_SEALING_KEY, DEMO_USER, startConnectDemo } from '../../scripts/connect-demo.mjs';
import { metadataAad, openBytes } from '../support/seal.mjs';
import { startWorker } from '../support/worker.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const COOKIE = '__Host-zitadel-claims-connect';

let demo;
let w;
let browser;
before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  demo = await startConnectDemo();
  w = await startWorker({ vars: { ...demo.vars, MS_TOKEN_CLIENT_IDS: '*' }, secrets: { ZITADEL_SIGNING_KEY: 'browser-test-key', ...demo.secrets } });
  demo.setWorkerUrl(w.url);
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  await w?.stop();
  await demo?.close();
});

/** The cookies of the worker's origin in a browser context. */
async function workerCookies(page) {
  const cdp = await page.createCDPSession();
  const { cookies } = await cdp.send('Network.getAllCookies');
  return cookies.filter((c) => c.domain === '127.0.0.1' && c.name === COOKIE);
}

/** Opens the demo app in a fresh context, clicks "Connect Microsoft", and waits for the way back to the app. */
async function connect() {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const seen = [];
  page.on('request', (r) => r.isNavigationRequest() && seen.push(r.url()));
  await page.goto(demo.appUrl, { waitUntil: 'load' });
  assert.match(await page.$eval('#status', (e) => e.textContent), /Not connected yet/);
  await Promise.all([
    page.waitForFunction((app) => location.href.startsWith(app) && location.search !== '', { timeout: 30_000 }, demo.appUrl),
    page.click('#connect'),
  ]);
  await page.waitForSelector('#status');
  return { context, page, seen };
}

describe('connect Microsoft in a browser (the npm run dev demo)', () => {
  it('a click on "Connect Microsoft" comes back to the app with connected=microsoft, the tokens sealed in ZITADEL', async () => {
    const { context, page, seen } = await connect();
    try {
      const final = new URL(page.url());
      assert.equal(`${final.origin}${final.pathname}`, demo.appUrl);
      assert.equal(final.searchParams.get('connected'), 'microsoft', page.url());
      assert.match(await page.$eval('#status', (e) => e.textContent), /connected=microsoft/);
      // the browser went through every step, and ended without the flow's cookie
      const paths = seen.map((u) => new URL(u).pathname);
      for (const step of ['/connect/microsoft', '/oauth/v2/authorize', '/connect/zitadel/callback', '/common/oauth2/v2.0/authorize', '/connect/microsoft/callback']) {
        assert.ok(paths.includes(step), `${step} in ${paths.join(' ')}`);
      }
      assert.deepEqual(await workerCookies(page), []);
      const stored = demo.zitadel.userMetadata(DEMO_USER);
      assert.deepEqual(Object.keys(stored), ['microsoft_access_token', 'microsoft_refresh_token', 'microsoft_access_token_expires_at']);
      const access = openBytes(DEMO_SEALING_KEY, metadataAad(DEMO_USER, 'microsoft_access_token'), stored.microsoft_access_token).toString();
      assert.match(access, /^EwB-fake-connect-access-\d+$/);
      assert.match(await page.$eval('#metadata', (e) => e.textContent), /microsoft_access_token: sealed:v1:demo:/);
      // The demo app, as a back end, exchanges the user's ZITADEL token for that Graph token.
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#exchange-button')]);
      const answer = await page.$eval('#exchange', (e) => e.textContent);
      assert.match(await page.$eval('body', (e) => e.textContent), /answered HTTP 200/);
      assert.equal(JSON.parse(answer).access_token, `${access.slice(0, 12)}…`, answer);
      assert.equal(JSON.parse(answer).issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
    } finally {
      await context.close();
    }
  });

  it('declining consent at Microsoft comes back with error=access_denied', async () => {
    demo.microsoft.denyNextConsent('access_denied');
    const { context, page } = await connect();
    try {
      assert.equal(new URL(page.url()).searchParams.get('error'), 'access_denied', page.url());
      assert.match(await page.$eval('#status', (e) => e.textContent), /error=access_denied/);
      assert.deepEqual(await workerCookies(page), []);
    } finally {
      await context.close();
    }
  });
});
