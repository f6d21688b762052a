// A fake ZITADEL on loopback, for the end-to-end tests and for `npm run dev` without an instance.
//
// It speaks the real REST wire format of the APIs the worker calls (camelCase names, uint64 as
// JSON strings, metadata values as standard base64, grpc-gateway errors `{code, message, details}`),
// checks the bearer token (a PAT, or a token it issued through the client-credentials grant),
// and records every call so tests can count upstream requests. Tests can
// also make any route fail, hang or answer slowly with `fake.fault(...)`.
//
// Seed data comes from a fixture file (see tests/fixtures/zitadel/*.json):
//   { "accessToken": "<PAT the fake accepts>",
//     "clients": { "<client id>": "<client secret>" },      (client-credentials grant)
//     "organizations": { "<org id>": { "metadata": { "<key>": <value> } } } }
// A metadata value that is a string is stored as its UTF-8 bytes, `{"base64": "..."}` as those raw
// bytes, and anything else (an array, say) as its JSON text, which is how mapping metadata is
// usually written.
//
// Run alone: node tests/support/fake-zitadel.mjs [--port 8788] [--fixture tests/fixtures/zitadel/demo.json]
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const GRPC = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, PERMISSION_DENIED: 7, UNAUTHENTICATED: 16 };
const HTTP_OF = { 3: 400, 5: 404, 7: 403, 16: 401 };
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
const CREATED = '2025-03-11T09:12:44.518Z';

export function loadFixture(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Bytes a fixture value stands for. */
export function metadataBytes(value) {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value && typeof value === 'object' && !Array.isArray(value) && typeof value.base64 === 'string') {
    return Buffer.from(value.base64, 'base64');
  }
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/**
 * Options: `fixture` (seed data, above); `v2: false` answers 404 for the v2 APIs, like an instance
 * older than ZITADEL v4; `tokenLifetime` (seconds) of issued client-credentials tokens;
 * `latencyMs` added to every answer.
 */
export async function startFakeZitadel({ fixture = {}, port = 0, host = '127.0.0.1', v2 = true, tokenLifetime = 43199, latencyMs = 0 } = {}) {
  const state = {
    accessToken: fixture.accessToken ?? 'test-pat',
    clients: new Map(Object.entries(fixture.clients ?? {})),
    issuedTokens: new Set(),
    organizations: new Map(),
    users: new Map(), // user id -> Map(key -> bytes)
  };
  for (const [id, org] of Object.entries(fixture.organizations ?? {})) {
    state.organizations.set(id, new Map(Object.entries(org.metadata ?? {}).map(([k, v]) => [k, metadataBytes(v)])));
  }
  const calls = [];
  const faults = [];

  // [method, path, handler, needs a bearer token]
  const routes = [
    ['POST', /^\/oauth\/v2\/token$/, issueToken, false],
    ['POST', /^\/management\/v1\/metadata\/_search$/, searchOrgMetadataV1, true],
  ];
  if (v2) {
    routes.push(
      ['POST', /^\/v2\/organizations\/([^/]+)\/metadata\/search$/, searchOrganizationMetadata, true],
      ['POST', /^\/v2\/users\/([^/]+)\/metadata$/, setUserMetadata, true],
      ['POST', /^\/v2\/users\/([^/]+)\/metadata\/search$/, searchUserMetadata, true],
    );
  }

  /** Entries of one organization, filtered and sorted as ZITADEL does, or an error answer. */
  function metadataPage(orgId, pagination, filters, filterKey, methodPrefix) {
    const offset = Number(pagination?.offset ?? 0);
    const limit = Number(pagination?.limit ?? 0) || DEFAULT_LIMIT;
    if (!Number.isInteger(offset) || offset < 0) return { error: grpcError(GRPC.INVALID_ARGUMENT, 'invalid offset') };
    if (limit > MAX_LIMIT) return { error: grpcError(GRPC.INVALID_ARGUMENT, 'Errors.Query.LimitExceeded (QUERY-4M9sf)') };
    let entries = [...(state.organizations.get(orgId) ?? new Map())];
    for (const filter of filters ?? []) {
      const f = filter[filterKey];
      if (!f) return { error: grpcError(GRPC.INVALID_ARGUMENT, 'unknown filter') };
      const method = (f.method ?? `${methodPrefix}EQUALS`).replace(methodPrefix, 'TEXT_FILTER_METHOD_');
      entries = entries.filter(([key]) => textMatches(key, { key: f.key, method }));
    }
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (pagination?.asc === false) entries.reverse();
    return { total: entries.length, limit, page: entries.slice(offset, offset + limit) };
  }

  function rejectUnknown(body, allowed) {
    const unknown = Object.keys(body).find((k) => !allowed.includes(k));
    return unknown && grpcError(GRPC.INVALID_ARGUMENT, `unknown field "${unknown}"`);
  }

  function searchOrganizationMetadata(req, body, [orgId]) {
    const bad = rejectUnknown(body, ['pagination', 'filters', 'sortingColumn']);
    if (bad) return bad;
    const r = metadataPage(decodeURIComponent(orgId), body.pagination, body.filters, 'keyFilter', 'TEXT_FILTER_METHOD_');
    if (r.error) return r.error;
    return json(200, {
      pagination: { totalResult: String(r.total), appliedLimit: String(r.limit) },
      metadata: r.page.map(([key, bytes]) => ({ creationDate: CREATED, changeDate: CREATED, key, value: bytes.toString('base64') })),
    });
  }

  // UserService v2 SetUserMetadata: values are standard base64; each entry replaces its key.
  function setUserMetadata(req, body, [userId]) {
    const bad = rejectUnknown(body, ['metadata']);
    if (bad) return bad;
    if (!Array.isArray(body.metadata) || body.metadata.length === 0) return grpcError(GRPC.INVALID_ARGUMENT, 'metadata is required');
    const id = decodeURIComponent(userId);
    if (!state.users.has(id)) state.users.set(id, new Map());
    for (const { key, value } of body.metadata) {
      if (typeof key !== 'string' || !key || typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
        return grpcError(GRPC.INVALID_ARGUMENT, 'invalid metadata entry (value must be standard base64)');
      }
      state.users.get(id).set(key, Buffer.from(value, 'base64'));
    }
    return json(200, { setDate: new Date().toISOString() });
  }

  function searchUserMetadata(req, body, [userId]) {
    const bad = rejectUnknown(body, ['pagination', 'filters']);
    if (bad) return bad;
    const entries = [...(state.users.get(decodeURIComponent(userId)) ?? new Map())];
    return json(200, {
      pagination: { totalResult: String(entries.length), appliedLimit: String(DEFAULT_LIMIT) },
      metadata: entries.map(([key, bytes]) => ({ creationDate: CREATED, changeDate: CREATED, key, value: bytes.toString('base64') })),
    });
  }

  // Management API v1 (ListOrgMetadata): the organization comes from the x-zitadel-orgid header.
  function searchOrgMetadataV1(req, body) {
    const bad = rejectUnknown(body, ['query', 'queries']);
    if (bad) return bad;
    const orgId = req.headers['x-zitadel-orgid'];
    if (!orgId) return grpcError(GRPC.PERMISSION_DENIED, 'No matching permissions found (AUTH-5mWD2)');
    const r = metadataPage(orgId, body.query, body.queries, 'keyQuery', 'TEXT_QUERY_METHOD_');
    if (r.error) return r.error;
    return json(200, {
      details: { totalResult: String(r.total), viewTimestamp: CREATED },
      result: r.page.map(([key, bytes]) => ({
        details: { sequence: '1', creationDate: CREATED, changeDate: CREATED, resourceOwner: orgId },
        key,
        value: bytes.toString('base64'),
      })),
    });
  }

  // OAuth client-credentials grant with HTTP Basic client authentication (RFC 6749 2.3.1).
  function issueToken(req, _body, _match, raw) {
    const form = new URLSearchParams(raw.toString('utf8'));
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    const [id, secret] = basic ? Buffer.from(basic[1], 'base64').toString('utf8').split(':').map((p) => decodeURIComponent(p.replace(/\+/g, ' '))) : [];
    if (!basic || state.clients.get(id) !== secret) {
      return json(401, { error: 'invalid_client', error_description: 'client authentication failed' });
    }
    if (form.get('grant_type') !== 'client_credentials') return json(400, { error: 'unsupported_grant_type' });
    if (!(form.get('scope') ?? '').split(' ').includes('urn:zitadel:iam:org:project:id:zitadel:aud')) {
      return json(400, { error: 'invalid_scope', error_description: 'the ZITADEL API audience scope is missing' });
    }
    const token = `fake-token-${randomBytes(12).toString('hex')}`;
    state.issuedTokens.add(token);
    return json(200, { access_token: token, token_type: 'Bearer', expires_in: tokenLifetime });
  }

  const authorized = (header) => header === `Bearer ${state.accessToken}` || state.issuedTokens.has((header ?? '').replace(/^Bearer /, ''));

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://fake');
    const call = { method: req.method, path: url.pathname, authorization: req.headers.authorization ?? null, headers: req.headers, body: raw.toString('utf8') };
    calls.push(call);

    const fault = faults.find((f) => f.path.test(url.pathname) && (f.times === undefined || f.times > 0));
    if (fault) {
      if (fault.times !== undefined) fault.times -= 1;
      if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      if (fault.hang) return; // never answers; closed when the server stops
      if (fault.drop) return req.socket.destroy();
      if (fault.status) {
        res.writeHead(fault.status, { 'content-type': 'application/json', ...(fault.headers ?? {}) });
        return res.end(fault.body ?? JSON.stringify({ code: 13, message: 'injected fault', details: [] }));
      }
    }

    let answer;
    const route = routes.find(([m, re]) => re.test(url.pathname) && m === req.method);
    if (!route) {
      answer = grpcError(GRPC.NOT_FOUND, 'Not Found');
    } else if (route[3] && !authorized(call.authorization)) {
      answer = grpcError(GRPC.UNAUTHENTICATED, 'auth header missing or invalid (AUTH-7fs1e)');
    } else if (!route[3]) {
      answer = route[2](req, null, [], raw);
    } else {
      let body;
      try {
        body = raw.length ? JSON.parse(raw.toString('utf8')) : {};
      } catch {
        body = undefined;
      }
      answer = body === undefined || typeof body !== 'object' || Array.isArray(body)
        ? grpcError(GRPC.INVALID_ARGUMENT, 'invalid JSON body')
        : route[2](req, body, url.pathname.match(route[1]).slice(1), raw);
    }
    if (latencyMs) await new Promise((r) => setTimeout(r, latencyMs));
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  });

  await new Promise((resolve) => server.listen(port, host, resolve));
  const url = `http://${host}:${server.address().port}`;
  return {
    url,
    accessToken: state.accessToken,
    calls,
    /** Calls whose path matches `re`. */
    callsTo: (re) => calls.filter((c) => re.test(c.path)),
    /** Make requests to paths matching `path` fail: {status, body, headers, delayMs, hang, drop, times}. */
    fault(path, behaviour) {
      faults.push({ path, ...behaviour });
    },
    reset() {
      calls.length = 0;
      faults.length = 0;
    },
    /** Invalidates every client-credentials token issued so far (their next use gets 401). */
    revokeTokens() {
      state.issuedTokens.clear();
    },
    /** A user's metadata as { key: Buffer }. */
    userMetadata(userId) {
      return Object.fromEntries(state.users.get(userId) ?? new Map());
    },
    setMetadata(orgId, key, value) {
      if (!state.organizations.has(orgId)) state.organizations.set(orgId, new Map());
      state.organizations.get(orgId).set(key, metadataBytes(value));
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

function json(status, body) {
  return { status, body };
}

function grpcError(code, message) {
  return json(HTTP_OF[code] ?? 500, { code, message, details: [] });
}

function textMatches(value, { key, method = 'TEXT_FILTER_METHOD_EQUALS' }) {
  switch (method) {
    case 'TEXT_FILTER_METHOD_EQUALS': return value === key;
    case 'TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE': return value.toLowerCase() === key.toLowerCase();
    case 'TEXT_FILTER_METHOD_STARTS_WITH': return value.startsWith(key);
    case 'TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE': return value.toLowerCase().startsWith(key.toLowerCase());
    case 'TEXT_FILTER_METHOD_CONTAINS': return value.includes(key);
    case 'TEXT_FILTER_METHOD_CONTAINS_IGNORE_CASE': return value.toLowerCase().includes(key.toLowerCase());
    case 'TEXT_FILTER_METHOD_ENDS_WITH': return value.endsWith(key);
    case 'TEXT_FILTER_METHOD_ENDS_WITH_IGNORE_CASE': return value.toLowerCase().endsWith(key.toLowerCase());
    default: return false;
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const fixturePath = arg('--fixture', fileURLToPath(new URL('../fixtures/zitadel/demo.json', import.meta.url)));
  const fake = await startFakeZitadel({ fixture: loadFixture(fixturePath), port: Number(arg('--port', 0)) });
  console.log(`fake ZITADEL at ${fake.url} (accepts Authorization: Bearer ${fake.accessToken})`);
}
