// A fake Microsoft identity platform token endpoint (v2.0) on loopback, for the refresh tests:
// `POST /{tenant}/oauth2/v2.0/token` with the refresh_token grant, as Entra ID answers it.
//
// It knows one confidential client and a set of refresh tokens. A good refresh token gets a new
// opaque access token and a rotated refresh token (the old one stays usable, as with Entra ID);
// an unknown or revoked one gets `invalid_grant`. Tests can inject faults like the fake ZITADEL.
import { createServer } from 'node:http';

import { applyFault, takeFault } from './faults.mjs';

export async function startFakeMicrosoft({ clientId = 'entra-app', clientSecret = 'entra-secret', refreshTokens = [], expiresIn = 3599 } = {}) {
  const valid = new Set(refreshTokens);
  const needsInteraction = new Set();
  const calls = [];
  const faults = [];
  let issued = 0;

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const call = { method: req.method, path: req.url, form: Object.fromEntries(form) };
    calls.push(call);

    const fault = takeFault(faults);
    if (fault && (await applyFault(fault, req, res, JSON.stringify({ error: 'temporarily_unavailable' })))) return;

    const answer = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || !/^\/[^/]+\/oauth2\/v2\.0\/token$/.test(req.url)) return answer(404, { error: 'not_found' });
    if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) {
      return answer(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.', error_codes: [7000215] });
    }
    if (form.get('grant_type') !== 'refresh_token') return answer(400, { error: 'unsupported_grant_type' });
    const rt = form.get('refresh_token');
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

  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    /** The token URL for MS_TOKEN_URL. */
    tokenUrl: (tenant = 'common') => `${url}/${tenant}/oauth2/v2.0/token`,
    clientId,
    clientSecret,
    calls,
    addRefreshToken: (rt) => valid.add(rt),
    revoke: (rt) => valid.delete(rt),
    requireInteraction: (rt) => needsInteraction.add(rt),
    fault: (behaviour) => faults.push(behaviour),
    reset() {
      calls.length = 0;
      faults.length = 0;
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}
