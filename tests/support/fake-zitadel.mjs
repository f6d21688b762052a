// A fake ZITADEL on loopback, for the end-to-end tests and for `npm run dev` without an instance.
//
// It speaks the real REST wire format of the APIs the worker calls, as ZITADEL's grpc-gateway
// does: camelCase names, uint64 as JSON strings, bytes as base64 (standard on output; standard or
// URL-safe, padded or not, on input, as protojson reads them), unknown request fields ignored,
// errors as `{code, message, details}` with ZITADEL's error detail, and an unknown route answered
// with the gateway's bare `404 {"code":5,"message":"Not Found"}` (405 for a known path with
// another method). It checks the bearer token (a PAT, or a token it issued through the
// client-credentials grant) and the permission each route needs (`org.read`, `user.write`,
// `action.target.read`, ...: a PAT without it gets 403, code 7), and records every call so tests
// can count upstream requests. Tests can also make any route fail, hang or answer slowly with
// `fake.fault(...)`. Management v1 without `x-zitadel-orgid` reads the caller's organization
// (`callerOrg`), and refuses an organization that does not exist (403), as ZITADEL does.
//
// It also holds the Action API V2 (targets and executions, as `npm run setup` uses them), with the
// public keys a target's payloads are encrypted to (PAYLOAD_TYPE_JWE): added inactive, at most one
// active, the active one not removable; only PEM SPKI RSA or EC keys, fingerprinted as ZITADEL does.
// And the instance's key set (JWKS) at `GET /oauth/v2/keys`, public as ZITADEL's is, holding the
// keys a test gives it (`fake.setWebKeys`), for the worker to check signed payloads with.
// And the projects and OIDC apps of the management API v1 (`npm run setup -- --connect`), in the
// caller's organization: ListProjects, AddProject, ListApps, AddOIDCApp and UpdateOIDCAppConfig,
// which (proto3) sets every field of the configuration, absent ones to their zero value, and
// refuses a request that changes nothing, as ZITADEL does.
//
// And an OpenID provider for those OIDC apps (the worker's connect flow): `GET /oauth/v2/authorize`
// (authorization code, PKCE) for the user signed in (`fake.signIn`; none: the login page), which
// checks the client, its redirect URI, `response_type`, `scope` and the PKCE challenge as ZITADEL
// does (an unknown client or redirect URI gets an error page, never a redirect) and can be told to
// answer `access_denied` (`fake.denyNextAuthorization`); `POST /oauth/v2/token` with the
// authorization_code grant (single-use codes; redirect URI, client and the S256 code verifier
// checked, else `invalid_grant`), whose ID token is signed RS256 (ZITADEL's default) or ES256
// (`fake.setIdTokenAlg`) with web keys of its own, published in the key set when `oidc` is on;
// its claims are ZITADEL's: iss (the fake's URL), sub, aud (the project's client ids and the
// project id), azp, client_id, exp, iat, auth_time, nonce, amr, sid. And the users' links to
// identity providers (`POST /v2/users/{id}/links/_search`, `user.read`).
// And users' access tokens (`fake.issueAccessToken`, and the code grant's): a JWT signed with the
// provider's key (an app whose access token type is JWT) with ZITADEL's claims (iss, sub, aud: the
// client and the project, exp, iat, nbf, jti, client_id, and `act` for an impersonation token),
// or an opaque token that `POST /oauth/v2/introspect` knows (RFC 7662, HTTP Basic of an API
// application; active only for a token whose audience holds that application's project, as
// ZITADEL checks). And a user's metadata read (ListUserMetadata, filtered and paged) and removed
// (DeleteUserMetadata, which refuses a key the user does not have), and the same through management
// v1 (BulkSetUserMetadata, ListUserMetadata, BulkRemoveUserMetadata), which `v2: false` keeps.
//
// Seed data comes from a fixture file (see tests/fixtures/zitadel/*.json):
//   { "accessToken": "<PAT the fake accepts>",
//     "clients": { "<client id>": "<client secret>" },      (client-credentials grant)
//     "organizations": { "<org id>": { "metadata": { "<key>": <value> } } },
//     "permissions": { "<PAT>": ["org.read", "action.target.read", ...] },  (more PATs, each with
//                                        only these permissions; accessToken and issued tokens have all)
//     "callerOrg": "<org id>",                             (the organization of the PAT's user)
//     "targets": [ { "name", "endpoint", "timeout", "restCall": {...}, "id"?, "signingKey"? } ],
//     "executions": [ { "condition": { "function": { "name": "preaccesstoken" } },
//                       "targets": ["<target id or name>"] } ],
//     "webKeys": [ <public JWK>, ... ],                    (the key set at /oauth/v2/keys)
//     "projects": [ { "name", "apps": [ { "name", "clientId"?, <AddOIDCApp's fields> } ] } ],
//     "idpLinks": { "<user id>": [ { "idpId", "userId", "userName" } ] },
//     "apiClients": { "<client id>": { "secret", "projectId" } },  (API applications, for introspection)
//     "oidc": { "signedIn": "<user id>" } }               (the OpenID provider on, and who is signed in)
// A metadata value that is a string is stored as its UTF-8 bytes, `{"base64": "..."}` as those raw
// bytes, and anything else (an array, say) as its JSON text, which is how mapping metadata is
// usually written.
//
// Run alone: node tests/support/fake-zitadel.mjs [--port 8788] [--fixture tests/fixtures/zitadel/demo.json]
import { createServer } from 'node:http';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, randomInt, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { applyFault, takeFault } from './faults.mjs';

const GRPC = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, FAILED_PRECONDITION: 9, UNIMPLEMENTED: 12, UNAUTHENTICATED: 16 };
const HTTP_OF = { 3: 400, 5: 404, 6: 409, 7: 403, 9: 400, 12: 501, 16: 401 };
/** Every permission the fake checks; the main PAT and issued tokens hold them all. */
export const ALL_PERMISSIONS = [
  'org.read', 'user.read', 'user.write',
  'action.target.read', 'action.target.write', 'action.target.delete', 'action.execution.read', 'action.execution.write',
  'project.read', 'project.create', 'project.app.read', 'project.app.write',
];
/** Functions an execution can be bound to (ListExecutionFunctions). */
const FUNCTIONS = ['preaccesstoken', 'preuserinfo', 'presamlresponse'];
const MAX_TARGET_TIMEOUT_SECONDS = 270;
/** AddPublicKeyRequest.public_key: `min_len: 1, max_len: 8192` (bytes of the PEM). */
const MAX_PUBLIC_KEY_BYTES = 8192;
/** The curves Go's x509.ParsePKIXPublicKey reads (Node's names); ZITADEL refuses other EC keys. */
const GO_CURVES = ['secp224r1', 'prime256v1', 'secp384r1', 'secp521r1'];
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
 * `latencyMs` added to every answer; `oidc` (as the fixture's) turns the OpenID provider's
 * signing keys on.
 */
export async function startFakeZitadel({ fixture = {}, port = 0, host = '127.0.0.1', v2 = true, tokenLifetime = 43199, latencyMs = 0, oidc = fixture.oidc } = {}) {
  const state = {
    accessToken: fixture.accessToken ?? 'test-pat',
    clients: new Map(Object.entries(fixture.clients ?? {})),
    issuedTokens: new Set(),
    organizations: new Map(),
    users: new Map(), // user id -> Map(key -> bytes)
    permissions: new Map(Object.entries(fixture.permissions ?? {})), // extra PAT -> its permissions
    targets: new Map(), // target id -> target, in creation order
    executions: new Map(), // condition key -> { condition, targets: [id], creationDate, changeDate }
    callerOrg: fixture.callerOrg ?? 'caller-org',
    webKeys: [], // the public JWKs served at /oauth/v2/keys
    webKeyHeaders: {}, // extra headers of that answer (e.g. cache-control)
    projects: new Map(), // project id -> { id, name, org, apps: Map(app id -> app) }, in creation order
    idpLinks: new Map(Object.entries(fixture.idpLinks ?? {})), // user id -> [{ idpId, userId, userName }]
    signedIn: oidc?.signedIn ?? null, // the user of the browser's session at /oauth/v2/authorize
    authorizeErrors: [], // errors the next authorizations answer, one each
    codes: new Map(), // authorization code -> what it was issued for
    idTokenAlg: oidc?.alg ?? 'RS256',
    idTokenChanges: [], // functions that change the claims of the next ID tokens, one each
    opaqueTokens: new Map(), // opaque access token -> its claims (and projectId), for introspection
    revokedTokens: new Set(),
    apiClients: new Map(Object.entries(fixture.apiClients ?? {}).map(([id, { secret, projectId }]) => [id, { secret, projectId }])),
    signingKeys: oidc ? oidcSigningKeys() : {}, // alg -> { kid, privateKey, jwk }
  };
  for (const [id, org] of Object.entries(fixture.organizations ?? {})) {
    state.organizations.set(id, new Map(Object.entries(org.metadata ?? {}).map(([k, v]) => [k, metadataBytes(v)])));
  }
  const calls = [];
  const faults = [];

  // [method, path, handler, needs a bearer token, permission checked (none for the worker's APIs)]
  // The first match wins, so `targets/search` stands before `targets/{id}`.
  const routes = [
    ['POST', /^\/oauth\/v2\/token$/, issueToken, false],
    ['GET', /^\/oauth\/v2\/authorize$/, authorize, false],
    ['GET', /^\/oauth\/v2\/keys$/, webKeySet, false],
    ['POST', /^\/oauth\/v2\/introspect$/, introspect, false],
    ['POST', /^\/management\/v1\/metadata\/_search$/, searchOrgMetadataV1, true, 'org.read'],
    ['POST', /^\/management\/v1\/users\/([^/]+)\/metadata\/_bulk$/, bulkSetUserMetadataV1, true, 'user.write'],
    ['DELETE', /^\/management\/v1\/users\/([^/]+)\/metadata\/_bulk$/, bulkRemoveUserMetadataV1, true, 'user.write'],
    ['POST', /^\/management\/v1\/users\/([^/]+)\/metadata\/_search$/, searchUserMetadataV1, true, 'user.read'],
    ['POST', /^\/management\/v1\/projects\/_search$/, listProjects, true, 'project.read'],
    ['POST', /^\/management\/v1\/projects$/, addProjectRoute, true, 'project.create'],
    ['POST', /^\/management\/v1\/projects\/([^/]+)\/apps\/_search$/, listApps, true, 'project.app.read'],
    ['POST', /^\/management\/v1\/projects\/([^/]+)\/apps\/oidc$/, addOidcAppRoute, true, 'project.app.write'],
    ['PUT', /^\/management\/v1\/projects\/([^/]+)\/apps\/([^/]+)\/oidc_config$/, updateOidcConfig, true, 'project.app.write'],
    ['POST', /^\/management\/v1\/projects\/([^/]+)\/apps\/api$/, addApiAppRoute, true, 'project.app.write'],
    ['POST', /^\/management\/v1\/projects\/([^/]+)\/apps\/([^/]+)\/api_config\/_generate_client_secret$/, regenerateApiClientSecret, true, 'project.app.write'],
  ];
  if (v2) {
    routes.push(
      // v2 filters what the caller may read: without org.read, an empty list, not a 403 (the org
      // v2 integration tests, "without permission").
      ['POST', /^\/v2\/organizations\/([^/]+)\/metadata\/search$/, searchOrganizationMetadata, true, 'org.read', 'empty'],
      ['POST', /^\/v2\/users\/([^/]+)\/metadata$/, setUserMetadata, true, 'user.write'],
      ['POST', /^\/v2\/users\/([^/]+)\/metadata\/search$/, searchUserMetadata, true, 'user.read'],
      ['DELETE', /^\/v2\/users\/([^/]+)\/metadata$/, deleteUserMetadata, true, 'user.write'],
      ['POST', /^\/v2\/users\/([^/]+)\/links\/_search$/, listIdpLinks, true, 'user.read'],
      ['POST', /^\/v2\/actions\/targets\/search$/, listTargets, true, 'action.target.read'],
      ['POST', /^\/v2\/actions\/targets$/, createTarget, true, 'action.target.write'],
      ['GET', /^\/v2\/actions\/targets\/([^/]+)$/, getTarget, true, 'action.target.read'],
      ['POST', /^\/v2\/actions\/targets\/([^/]+)$/, updateTarget, true, 'action.target.write'],
      ['DELETE', /^\/v2\/actions\/targets\/([^/]+)$/, deleteTarget, true, 'action.target.delete'],
      ['POST', /^\/v2\/actions\/targets\/([^/]+)\/publickeys\/search$/, listPublicKeys, true, 'action.target.read'],
      ['POST', /^\/v2\/actions\/targets\/([^/]+)\/publickeys$/, addPublicKeyRoute, true, 'action.target.write'],
      ['POST', /^\/v2\/actions\/targets\/([^/]+)\/publickeys\/([^/]+)\/activate$/, activatePublicKey, true, 'action.target.write'],
      ['POST', /^\/v2\/actions\/targets\/([^/]+)\/publickeys\/([^/]+)\/deactivate$/, deactivatePublicKey, true, 'action.target.write'],
      ['DELETE', /^\/v2\/actions\/targets\/([^/]+)\/publickeys\/([^/]+)$/, removePublicKey, true, 'action.target.write'],
      ['POST', /^\/v2\/actions\/executions\/search$/, listExecutions, true, 'action.execution.read'],
      ['PUT', /^\/v2\/actions\/executions$/, setExecution, true, 'action.execution.write'],
    );
  }

  /** Entries of one organization (or of the map `store`), filtered and sorted as ZITADEL does, or an error answer. */
  function metadataPage(orgId, pagination, filters, filterKey, methodPrefix, store = state.organizations.get(orgId)) {
    const offset = Number(pagination?.offset ?? 0);
    const limit = Number(pagination?.limit ?? 0) || DEFAULT_LIMIT;
    if (!Number.isInteger(offset) || offset < 0) return { error: grpcError(GRPC.INVALID_ARGUMENT, 'invalid offset') };
    if (limit > MAX_LIMIT) return { error: grpcError(GRPC.INVALID_ARGUMENT, 'Errors.Query.LimitExceeded (QUERY-4M9sf)') };
    let entries = [...(store ?? new Map())];
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

  function searchOrganizationMetadata(req, body, [orgId]) {
    const r = metadataPage(decodeURIComponent(orgId), body.pagination, body.filters, 'keyFilter', 'TEXT_FILTER_METHOD_');
    if (r.error) return r.error;
    return json(200, {
      pagination: { totalResult: String(r.total), appliedLimit: String(r.limit) },
      metadata: r.page.map(([key, bytes]) => ({ creationDate: CREATED, changeDate: CREATED, key, value: bytes.toString('base64') })),
    });
  }

  // UserService v2 SetUserMetadata: values are standard base64; each entry replaces its key.
  function setUserMetadata(req, body, [userId]) {
    if (!Array.isArray(body.metadata) || body.metadata.length === 0) return grpcError(GRPC.INVALID_ARGUMENT, 'metadata is required');
    const id = decodeURIComponent(userId);
    if (!state.users.has(id)) state.users.set(id, new Map());
    for (const { key, value } of body.metadata) {
      const bytes = protoBytes(value);
      if (typeof key !== 'string' || !key || bytes === undefined) {
        return grpcError(GRPC.INVALID_ARGUMENT, 'invalid value for bytes field value');
      }
      state.users.get(id).set(key, bytes);
    }
    return json(200, { setDate: new Date().toISOString() });
  }

  // UserService v2 ListUserMetadata: paged and filtered as the organization's.
  function searchUserMetadata(req, body, [userId]) {
    const store = state.users.get(decodeURIComponent(userId));
    const r = metadataPage(null, body.pagination, body.filters, 'keyFilter', 'TEXT_FILTER_METHOD_', store);
    if (r.error) return r.error;
    return json(200, {
      pagination: { totalResult: String(r.total), appliedLimit: String(r.limit) },
      metadata: r.page.map(([key, bytes]) => ({ creationDate: CREATED, changeDate: CREATED, key, value: bytes.toString('base64') })),
    });
  }

  // UserService v2 DeleteUserMetadata (`DELETE /v2/users/{id}/metadata`, body `{"keys":[...]}`): a
  // key the user does not have is refused, and then nothing is removed.
  function deleteUserMetadata(req, body, [userId]) {
    const keys = body.keys;
    if (!Array.isArray(keys) || keys.length === 0 || keys.some((k) => typeof k !== 'string' || !k)) {
      return grpcError(GRPC.INVALID_ARGUMENT, 'invalid DeleteUserMetadataRequest.Keys: value must contain at least 1 item(s)');
    }
    const store = state.users.get(decodeURIComponent(userId)) ?? new Map();
    if (keys.some((k) => !store.has(k))) return grpcError(GRPC.NOT_FOUND, 'Errors.Metadata.NotFound (META-2m0fs)');
    for (const k of keys) store.delete(k);
    return json(200, { deletionDate: new Date().toISOString() });
  }

  // UserService v2 ListIDPLinks: every link of the user, in one page.
  function listIdpLinks(req, body, [userId]) {
    const links = state.idpLinks.get(decodeURIComponent(userId)) ?? [];
    return json(200, {
      details: { totalResult: String(links.length), timestamp: new Date().toISOString() },
      result: links.map(({ idpId, userId: linked, userName }) => ({ idpId, userId: linked, userName })),
    });
  }

  // Management API v1 (ListOrgMetadata): the organization comes from the x-zitadel-orgid header,
  // else it is the caller's own; one that does not exist is refused in ZITADEL's auth step.
  function searchOrgMetadataV1(req, body) {
    const orgId = req.headers['x-zitadel-orgid'] || state.callerOrg;
    if (!state.organizations.has(orgId)) return grpcError(GRPC.PERMISSION_DENIED, "Organisation doesn't exist (AUTH-Bs7Ds)");
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

  // Management API v1's user metadata (ZITADEL v3 and older have no v2 route for it): BulkSetUserMetadata,
  // ListUserMetadata and BulkRemoveUserMetadata, the same store as the v2 routes.
  function bulkSetUserMetadataV1(req, body, [userId]) {
    return setUserMetadata(req, body, [userId]);
  }

  function searchUserMetadataV1(req, body, [userId]) {
    const store = state.users.get(decodeURIComponent(userId));
    const r = metadataPage(null, body.query, body.queries, 'keyQuery', 'TEXT_QUERY_METHOD_', store);
    if (r.error) return r.error;
    return json(200, {
      details: { totalResult: String(r.total), viewTimestamp: CREATED },
      result: r.page.map(([key, bytes]) => ({ details: { sequence: '1', creationDate: CREATED, changeDate: CREATED }, key, value: bytes.toString('base64') })),
    });
  }

  function bulkRemoveUserMetadataV1(req, body, [userId]) {
    return deleteUserMetadata(req, body, [userId]);
  }

  // ---- Management API v1: projects and OIDC apps (the caller's organization) ----

  /** The fields of an OIDC configuration UpdateOIDCAppConfig sets, with their zero values. */
  const OIDC_FIELDS = {
    redirectUris: [], responseTypes: [], grantTypes: [], appType: 'OIDC_APP_TYPE_WEB',
    authMethodType: 'OIDC_AUTH_METHOD_TYPE_BASIC', postLogoutRedirectUris: [], devMode: false,
    accessTokenType: 'OIDC_TOKEN_TYPE_BEARER', accessTokenRoleAssertion: false, idTokenRoleAssertion: false,
    idTokenUserinfoAssertion: false, clockSkew: '0s', additionalOrigins: [], skipNativeAppSuccessPage: false,
    backChannelLogoutUri: '', loginVersion: null,
  };
  const OIDC_ENUMS = {
    responseTypes: ['OIDC_RESPONSE_TYPE_CODE', 'OIDC_RESPONSE_TYPE_ID_TOKEN', 'OIDC_RESPONSE_TYPE_ID_TOKEN_TOKEN'],
    grantTypes: ['OIDC_GRANT_TYPE_AUTHORIZATION_CODE', 'OIDC_GRANT_TYPE_IMPLICIT', 'OIDC_GRANT_TYPE_REFRESH_TOKEN', 'OIDC_GRANT_TYPE_DEVICE_CODE', 'OIDC_GRANT_TYPE_TOKEN_EXCHANGE'],
    appType: ['OIDC_APP_TYPE_WEB', 'OIDC_APP_TYPE_USER_AGENT', 'OIDC_APP_TYPE_NATIVE'],
    authMethodType: ['OIDC_AUTH_METHOD_TYPE_BASIC', 'OIDC_AUTH_METHOD_TYPE_POST', 'OIDC_AUTH_METHOD_TYPE_NONE', 'OIDC_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT'],
    accessTokenType: ['OIDC_TOKEN_TYPE_BEARER', 'OIDC_TOKEN_TYPE_JWT'],
  };

  /** A request's OIDC configuration, every field set (absent ones to their zero value), or an error answer. */
  function oidcConfig(body) {
    const config = {};
    for (const [field, zero] of Object.entries(OIDC_FIELDS)) {
      const value = body[field] ?? zero;
      const allowed = OIDC_ENUMS[field];
      const bad = allowed
        ? (Array.isArray(zero) ? !Array.isArray(value) || value.some((v) => !allowed.includes(v)) : !allowed.includes(value))
        : Array.isArray(zero) ? !Array.isArray(value) || value.some((v) => typeof v !== 'string') : value !== null && typeof value !== typeof zero && field !== 'loginVersion';
      if (bad) return { error: grpcError(GRPC.INVALID_ARGUMENT, `invalid value for field ${field}`) };
      config[field] = Array.isArray(value) ? [...value] : value;
    }
    return { config };
  }

  /** The caller's organization (x-zitadel-orgid, else the PAT user's). */
  const orgOf = (req) => req.headers['x-zitadel-orgid'] || state.callerOrg;

  function addProject(name, org = state.callerOrg) {
    const project = { id: newId(), name, org, creationDate: new Date().toISOString(), apps: new Map() };
    state.projects.set(project.id, project);
    return project;
  }

  function renderProject(p) {
    return { id: p.id, details: { sequence: '1', creationDate: p.creationDate, changeDate: p.creationDate, resourceOwner: p.org }, name: p.name, state: 'PROJECT_STATE_ACTIVE' };
  }

  /** An app as ListApps shows it: protojson leaves out false, empty lists and an enum's zero value. */
  function renderApp(a) {
    if (a.apiConfig) return renderApiApp(a);
    const shown = { clientId: a.clientId };
    for (const [field, value] of Object.entries(a.config)) {
      const zero = OIDC_FIELDS[field];
      const empty = Array.isArray(value) ? value.length === 0 : value === zero || value === null || value === '';
      if (!empty) shown[field] = Array.isArray(value) ? [...value] : value;
    }
    return { id: a.id, details: { sequence: '1', creationDate: a.creationDate, changeDate: a.changeDate }, state: 'APP_STATE_ACTIVE', name: a.name, oidcConfig: shown };
  }

  function nameQueries(queries, key) {
    const checks = [];
    for (const q of queries ?? []) {
      if (!q.nameQuery) return { error: grpcError(GRPC.INVALID_ARGUMENT, 'unknown query') };
      const method = (q.nameQuery.method ?? 'TEXT_QUERY_METHOD_EQUALS').replace('TEXT_QUERY_METHOD_', 'TEXT_FILTER_METHOD_');
      checks.push((item) => textMatches(item[key], { key: q.nameQuery.name ?? '', method }));
    }
    return { matches: (item) => checks.every((c) => c(item)) };
  }

  function listProjects(req, body) {
    const q = nameQueries(body.queries, 'name');
    if (q.error) return q.error;
    const found = [...state.projects.values()].filter((p) => p.org === orgOf(req) && q.matches(p));
    return json(200, { details: { totalResult: String(found.length), viewTimestamp: CREATED }, result: found.map(renderProject) });
  }

  function addProjectRoute(req, body) {
    if (typeof body.name !== 'string' || body.name.length < 1 || body.name.length > 200) {
      return grpcError(GRPC.INVALID_ARGUMENT, 'invalid AddProjectRequest.Name: value length must be between 1 and 200 runes');
    }
    const p = addProject(body.name, orgOf(req));
    return json(200, { id: p.id, details: { sequence: '1', creationDate: p.creationDate, resourceOwner: p.org } });
  }

  /** The project of a path in the caller's organization, or undefined. */
  function projectOf(req, rawId) {
    const p = state.projects.get(decodeURIComponent(rawId));
    return p && p.org === orgOf(req) ? p : undefined;
  }

  function listApps(req, body, [rawId]) {
    const q = nameQueries(body.queries, 'name');
    if (q.error) return q.error;
    const found = [...(projectOf(req, rawId)?.apps.values() ?? [])].filter(q.matches);
    // protojson leaves out an empty list
    return json(200, { details: { totalResult: String(found.length), viewTimestamp: CREATED }, ...(found.length ? { result: found.map(renderApp) } : {}) });
  }

  function addOidcApp(project, name, body, clientId = `${newId()}@${project.name}`) {
    const c = oidcConfig(body);
    if (c.error) return c;
    const now = new Date().toISOString();
    const app = { id: newId(), name, clientId, config: c.config, creationDate: now, changeDate: now };
    project.apps.set(app.id, app);
    return { app };
  }

  function addOidcAppRoute(req, body, [rawId]) {
    const project = projectOf(req, rawId);
    if (!project) return grpcError(GRPC.NOT_FOUND, 'Errors.Project.NotFound (PROJECT-3M9sd)');
    if (typeof body.name !== 'string' || body.name.length < 1 || body.name.length > 200) {
      return grpcError(GRPC.INVALID_ARGUMENT, 'invalid AddOIDCAppRequest.Name: value length must be between 1 and 200 runes');
    }
    if ([...project.apps.values()].some((a) => a.name === body.name)) return grpcError(GRPC.ALREADY_EXISTS, 'Errors.Project.App.AlreadyExists (PROJECT-PAJ8d)');
    const r = addOidcApp(project, body.name, body);
    if (r.error) return r.error;
    const secret = ['OIDC_AUTH_METHOD_TYPE_BASIC', 'OIDC_AUTH_METHOD_TYPE_POST'].includes(r.app.config.authMethodType);
    return json(200, {
      appId: r.app.id,
      details: { sequence: '1', creationDate: r.app.creationDate, resourceOwner: project.org },
      clientId: r.app.clientId,
      ...(secret ? { clientSecret: newSigningKey() } : {}),
    });
  }

  function updateOidcConfig(req, body, [rawProject, rawApp]) {
    const app = projectOf(req, rawProject)?.apps.get(decodeURIComponent(rawApp));
    if (!app) return grpcError(GRPC.NOT_FOUND, 'Errors.Project.App.NotExisting (COMMAND-2n8uU)');
    const c = oidcConfig(body);
    if (c.error) return c.error;
    if (JSON.stringify(c.config) === JSON.stringify(app.config)) return grpcError(GRPC.FAILED_PRECONDITION, 'Errors.NoChangesFound (COMMAND-1m88i)');
    app.config = c.config;
    app.changeDate = new Date().toISOString();
    return json(200, { details: { sequence: '2', changeDate: app.changeDate } });
  }

  // ---- Management API v1: API apps (AddAPIApp, RegenerateAPIClientSecret), as ZITADEL's
  // command code has them: app names unique in the project, a secret only for BASIC (shown once,
  // in the answer; kept on the app as `clientSecret`), a new secret replacing the old one. ----

  /** APIAuthMethodType: BASIC is the zero value. */
  const API_AUTH_METHODS = ['API_AUTH_METHOD_TYPE_BASIC', 'API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT'];

  /** An API app as ListApps shows it: never its secret; protojson leaves out BASIC, the zero value. */
  function renderApiApp(a) {
    const { clientId, authMethodType } = a.apiConfig;
    const apiConfig = authMethodType === API_AUTH_METHODS[0] ? { clientId } : { clientId, authMethodType };
    return { id: a.id, details: { sequence: '1', creationDate: a.creationDate, changeDate: a.changeDate }, state: 'APP_STATE_ACTIVE', name: a.name, apiConfig };
  }

  function addApiAppRoute(req, body, [rawId]) {
    const project = projectOf(req, rawId);
    if (!project) return grpcError(GRPC.FAILED_PRECONDITION, 'Errors.Project.NotFound (PROJECT-9fnsf)');
    if (typeof body.name !== 'string' || body.name.length < 1 || body.name.length > 200) {
      return grpcError(GRPC.INVALID_ARGUMENT, 'invalid AddAPIAppRequest.Name: value length must be between 1 and 200 runes');
    }
    // protojson reads an enum by name or number; absent is the zero value.
    const method = typeof body.authMethodType === 'number' ? API_AUTH_METHODS[body.authMethodType] : body.authMethodType ?? API_AUTH_METHODS[0];
    if (!API_AUTH_METHODS.includes(method)) {
      return grpcError(GRPC.INVALID_ARGUMENT, 'invalid AddAPIAppRequest.AuthMethodType: value must be one of the defined enum values');
    }
    if ([...project.apps.values()].some((a) => a.name === body.name)) return grpcError(GRPC.ALREADY_EXISTS, 'Errors.Project.App.AlreadyExists (PROJECT-PAJ8d)');
    const now = new Date().toISOString();
    // ZITADEL v4 gives an API app a bare id as client id (older versions `<id>@<project name>`).
    const clientId = newId();
    const clientSecret = method === API_AUTH_METHODS[0] ? newSigningKey() : undefined;
    const app = { id: newId(), name: body.name, clientId, apiConfig: { clientId, authMethodType: method }, clientSecret, creationDate: now, changeDate: now };
    project.apps.set(app.id, app);
    return json(200, {
      appId: app.id,
      details: { sequence: '1', creationDate: now, resourceOwner: project.org },
      clientId,
      ...(clientSecret ? { clientSecret } : {}),
    });
  }

  function regenerateApiClientSecret(req, body, [rawProject, rawApp]) {
    const project = projectOf(req, rawProject);
    const app = project?.apps.get(decodeURIComponent(rawApp));
    if (!app) return grpcError(GRPC.NOT_FOUND, 'Errors.Project.App.NotExisting (COMMAND-2g66f)');
    if (!app.apiConfig) return grpcError(GRPC.INVALID_ARGUMENT, 'Errors.Project.App.IsNotAPI (COMMAND-aeH4)');
    app.clientSecret = newSigningKey();
    app.changeDate = new Date().toISOString();
    return json(200, { clientSecret: app.clientSecret, details: { sequence: '2', changeDate: app.changeDate, resourceOwner: project.org } });
  }

  // ---- Action API V2: targets (zitadel.action.v2.ActionService) ----

  const TARGET_TYPES = ['restWebhook', 'restCall', 'restAsync'];

  /** A target as the API shows it (GetTarget, ListTargets): the signing key included, as ZITADEL v4 does. */
  function renderTarget(t) {
    return {
      id: t.id,
      creationDate: t.creationDate,
      changeDate: t.changeDate,
      name: t.name,
      [t.type]: { ...t.typeSettings },
      timeout: t.timeout,
      endpoint: t.endpoint,
      signingKey: t.signingKey,
      ...(t.payloadType ? { payloadType: t.payloadType } : {}),
    };
  }

  /** Checks the fields shared by CreateTarget and UpdateTarget; `create` makes them required. */
  function targetFields(body, create) {
    const has = (k) => body[k] !== undefined && body[k] !== null;
    if (create || has('name')) {
      if (typeof body.name !== 'string' || body.name.length < 1 || body.name.length > 1000) {
        return { error: grpcError(GRPC.INVALID_ARGUMENT, 'invalid request: Name: value length must be between 1 and 1000 runes') };
      }
    }
    if (create || has('endpoint')) {
      if (typeof body.endpoint !== 'string' || body.endpoint.length < 1 || body.endpoint.length > 2048) {
        return { error: grpcError(GRPC.INVALID_ARGUMENT, 'invalid request: Endpoint: value length must be between 1 and 2048 runes') };
      }
    }
    let timeout;
    if (create || has('timeout')) {
      timeout = parseDuration(body.timeout);
      if (timeout === undefined || timeout <= 0 || timeout > MAX_TARGET_TIMEOUT_SECONDS) {
        return { error: grpcError(GRPC.INVALID_ARGUMENT, 'invalid request: Timeout: value must be inside range [0s, 4m30s]') };
      }
    }
    const types = TARGET_TYPES.filter(has);
    if (types.length > 1 || (create && types.length === 0)) {
      return { error: grpcError(GRPC.INVALID_ARGUMENT, 'Errors.Target.Invalid: exactly one of restWebhook, restCall, restAsync') };
    }
    const type = types[0];
    if (type) {
      const settings = body[type];
      if (typeof settings !== 'object' || Array.isArray(settings)) return { error: grpcError(GRPC.INVALID_ARGUMENT, `invalid ${type}`) };
      const unknown = Object.keys(settings).find((k) => k !== 'interruptOnError' || type === 'restAsync');
      if (unknown) return { error: grpcError(GRPC.INVALID_ARGUMENT, `unknown field "${unknown}" in ${type}`) };
      if (settings.interruptOnError !== undefined && typeof settings.interruptOnError !== 'boolean') {
        return { error: grpcError(GRPC.INVALID_ARGUMENT, 'invalid value for bool field interruptOnError') };
      }
    }
    return { type, timeout };
  }

  function nameTaken(name, exceptId) {
    return [...state.targets.values()].some((t) => t.name === name && t.id !== exceptId);
  }

  function addTarget(spec) {
    const type = TARGET_TYPES.find((k) => spec[k]) ?? 'restCall';
    const now = new Date().toISOString();
    const target = {
      id: spec.id ?? newId(),
      name: spec.name,
      endpoint: spec.endpoint,
      timeout: spec.timeout ?? '10s',
      type,
      typeSettings: type === 'restAsync' ? {} : { interruptOnError: Boolean(spec[type]?.interruptOnError) },
      signingKey: spec.signingKey ?? newSigningKey(),
      // protojson leaves an enum at its zero value out: a target created without one shows none.
      payloadType: spec.payloadType === 'PAYLOAD_TYPE_UNSPECIFIED' ? undefined : spec.payloadType,
      creationDate: now,
      changeDate: now,
      publicKeys: new Map(), // key id -> { keyId, active, pem (Buffer), fingerprint, expirationDate?, creationDate, changeDate }, in the order added
    };
    state.targets.set(target.id, target);
    return target;
  }

  function createTarget(req, body) {
    const f = targetFields(body, true);
    if (f.error) return f.error;
    if (nameTaken(body.name)) return grpcError(GRPC.ALREADY_EXISTS, 'Errors.Target.AlreadyExists (INSTANCE-9axkz0jvzm)');
    const t = addTarget(body);
    return json(200, { id: t.id, creationDate: t.creationDate, signingKey: t.signingKey });
  }

  function updateTarget(req, body, [rawId]) {
    const t = state.targets.get(decodeURIComponent(rawId));
    if (!t) return grpcError(GRPC.NOT_FOUND, 'Errors.Target.NotFound (QUERY-xrerfffd7r)');
    const f = targetFields(body, false);
    if (f.error) return f.error;
    const rotate = body.expirationSigningKey !== undefined && body.expirationSigningKey !== null;
    if (rotate && parseDuration(body.expirationSigningKey) !== 0) {
      return grpcError(GRPC.INVALID_ARGUMENT, 'invalid request: ExpirationSigningKey: value must equal 0s');
    }
    if (body.name !== undefined && nameTaken(body.name, t.id)) return grpcError(GRPC.ALREADY_EXISTS, 'Errors.Target.AlreadyExists (INSTANCE-9axkz0jvzm)');
    if (body.name !== undefined) t.name = body.name;
    if (body.endpoint !== undefined) t.endpoint = body.endpoint;
    if (body.timeout !== undefined) t.timeout = body.timeout;
    if (f.type) {
      t.type = f.type;
      t.typeSettings = f.type === 'restAsync' ? {} : { interruptOnError: Boolean(body[f.type].interruptOnError) };
    }
    // UpdateTarget leaves the payload type as it is when the request gives none (or UNSPECIFIED).
    if (body.payloadType !== undefined && body.payloadType !== 'PAYLOAD_TYPE_UNSPECIFIED') t.payloadType = body.payloadType;
    t.changeDate = new Date().toISOString();
    if (!rotate) return json(200, { changeDate: t.changeDate });
    t.signingKey = newSigningKey();
    return json(200, { changeDate: t.changeDate, signingKey: t.signingKey });
  }

  // DeleteTarget (`DELETE /v2/actions/targets/{id}`): ZITADEL removes the target from every
  // execution too, and answers success for a target that is not there ("the desired state is
  // already achieved").
  function deleteTarget(req, _body, [rawId]) {
    const id = decodeURIComponent(rawId);
    state.targets.delete(id);
    for (const e of state.executions.values()) e.targets = e.targets.filter((t) => t !== id);
    return json(200, { deletionDate: new Date().toISOString() });
  }

  function getTarget(req, _body, [rawId]) {
    const t = state.targets.get(decodeURIComponent(rawId));
    if (!t) return grpcError(GRPC.NOT_FOUND, 'Errors.Target.NotFound (QUERY-xrerfffd7r)');
    return json(200, { target: renderTarget(t) });
  }

  function listTargets(req, body) {
    let targets = [...state.targets.values()];
    for (const filter of body.filters ?? []) {
      if (filter.targetNameFilter) {
        const { targetName, method = 'TEXT_FILTER_METHOD_EQUALS' } = filter.targetNameFilter;
        targets = targets.filter((t) => textMatches(t.name, { key: targetName ?? '', method }));
      } else if (filter.inTargetIdsFilter) {
        const ids = filter.inTargetIdsFilter.targetIds ?? [];
        targets = targets.filter((t) => ids.includes(t.id));
      } else {
        return grpcError(GRPC.INVALID_ARGUMENT, 'unknown filter');
      }
    }
    const p = page(targets, body.pagination);
    return json(200, { pagination: p.pagination, targets: p.items.map(renderTarget) });
  }

  // ---- Action API V2: a target's public keys (payload encryption) ----

  function findTarget(idOrName) {
    return state.targets.get(idOrName) ?? [...state.targets.values()].find((t) => t.name === idOrName);
  }

  /** After its expiration date a key counts as deactivated (AddPublicKeyRequest.expiration_date). */
  const isActive = (k) => k.active && !(k.expirationDate && Date.parse(k.expirationDate) <= Date.now());

  /** A key as ListPublicKeys shows it: the PEM as base64 (`bytes`); `active` left out when false, as protojson leaves out a false bool. */
  function renderPublicKey(k) {
    return {
      keyId: k.keyId,
      ...(isActive(k) ? { active: true } : {}),
      publicKey: k.pem.toString('base64'),
      fingerprint: k.fingerprint,
      ...(k.expirationDate ? { expirationDate: k.expirationDate } : {}),
      creationDate: k.creationDate,
      changeDate: k.changeDate,
    };
  }

  /** Adds a key (PEM bytes) to a target, inactive, or answers the error ZITADEL gives. */
  function putPublicKey(t, pem, expirationDate) {
    if (!Buffer.isBuffer(pem) || pem.length < 1 || pem.length > MAX_PUBLIC_KEY_BYTES) {
      return { error: grpcError(GRPC.INVALID_ARGUMENT, `invalid AddPublicKeyRequest.PublicKey: value length must be between 1 and ${MAX_PUBLIC_KEY_BYTES} bytes`) };
    }
    let expiration;
    if (expirationDate !== undefined && expirationDate !== null) {
      const ms = typeof expirationDate === 'string' ? Date.parse(expirationDate) : NaN;
      if (Number.isNaN(ms)) return { error: grpcError(GRPC.INVALID_ARGUMENT, 'invalid value for Timestamp field expirationDate') };
      if (ms <= Date.now()) return { error: grpcError(GRPC.INVALID_ARGUMENT, 'Errors.Target.InvalidExpirationDate') };
      expiration = new Date(ms).toISOString();
    }
    const fingerprint = publicKeyFingerprint(pem);
    if (!fingerprint) return { error: grpcError(GRPC.INVALID_ARGUMENT, 'Errors.Target.InvalidPublicKey') };
    const now = new Date().toISOString();
    const key = { keyId: newId(), active: false, pem: Buffer.from(pem), fingerprint, expirationDate: expiration, creationDate: now, changeDate: now };
    t.publicKeys.set(key.keyId, key);
    return { key };
  }

  /** Makes `keyId` the target's one active key (the one before it is deactivated), or answers an error. */
  function activateKey(t, keyId) {
    const key = t.publicKeys.get(keyId);
    if (!key) return { error: grpcError(GRPC.NOT_FOUND, 'Errors.Target.PublicKeyNotFound') };
    if (key.expirationDate && Date.parse(key.expirationDate) <= Date.now()) {
      return { error: grpcError(GRPC.FAILED_PRECONDITION, 'Errors.Target.PublicKeyExpired') };
    }
    const now = new Date().toISOString();
    if (!key.active) {
      for (const other of t.publicKeys.values()) {
        if (other.active) Object.assign(other, { active: false, changeDate: now });
      }
      Object.assign(key, { active: true, changeDate: now });
    }
    return { changeDate: key.changeDate };
  }

  /** The target of a public-key route, or the error answer. */
  function keyTarget(rawId) {
    const t = state.targets.get(decodeURIComponent(rawId));
    return t ? { t } : { error: grpcError(GRPC.NOT_FOUND, 'Errors.Target.NotFound (QUERY-xrerfffd7r)') };
  }

  function listPublicKeys(req, body, [rawId]) {
    const { t, error } = keyTarget(rawId);
    if (error) return error;
    return json(200, { publicKeys: [...t.publicKeys.values()].map(renderPublicKey) });
  }

  // AddPublicKey: `publicKey` is a protobuf `bytes` field, so the PEM text arrives as base64.
  function addPublicKeyRoute(req, body, [rawId]) {
    const { t, error } = keyTarget(rawId);
    if (error) return error;
    const pem = body.publicKey === undefined || body.publicKey === null ? Buffer.alloc(0) : protoBytes(body.publicKey);
    if (pem === undefined) return grpcError(GRPC.INVALID_ARGUMENT, 'invalid value for bytes field publicKey');
    const r = putPublicKey(t, pem, body.expirationDate);
    if (r.error) return r.error;
    return json(200, { keyId: r.key.keyId, creationDate: r.key.creationDate });
  }

  function activatePublicKey(req, body, [rawId, rawKeyId]) {
    const { t, error } = keyTarget(rawId);
    if (error) return error;
    const r = activateKey(t, decodeURIComponent(rawKeyId));
    return r.error ?? json(200, { changeDate: r.changeDate });
  }

  // Deactivating the active key leaves the target without one (JWE calls then fail).
  function deactivatePublicKey(req, body, [rawId, rawKeyId]) {
    const { t, error } = keyTarget(rawId);
    if (error) return error;
    const key = t.publicKeys.get(decodeURIComponent(rawKeyId));
    if (!key) return grpcError(GRPC.NOT_FOUND, 'Errors.Target.PublicKeyNotFound');
    if (key.active) Object.assign(key, { active: false, changeDate: new Date().toISOString() });
    return json(200, { changeDate: key.changeDate });
  }

  // RemovePublicKey: the active key cannot be removed; a key that does not exist is no error.
  function removePublicKey(req, body, [rawId, rawKeyId]) {
    const { t, error } = keyTarget(rawId);
    if (error) return error;
    const keyId = decodeURIComponent(rawKeyId);
    const key = t.publicKeys.get(keyId);
    if (key && isActive(key)) return grpcError(GRPC.FAILED_PRECONDITION, 'Errors.Target.PublicKeyActive');
    t.publicKeys.delete(keyId);
    return json(200, { deletionDate: new Date().toISOString() });
  }

  /** A key as the test handles show it: the PEM as text. */
  function publicKeyView(k) {
    const { publicKey: _base64, ...shown } = renderPublicKey(k);
    return { ...shown, active: isActive(k), pem: k.pem.toString('utf8') };
  }

  // ---- The instance's key set (public, as ZITADEL's /oauth/v2/keys is) ----

  /** The keys served: the OpenID provider's own signing keys (when on), then setWebKeys' keys. */
  const servedKeys = () => [...Object.values(state.signingKeys).map((k) => k.jwk), ...state.webKeys].map((k) => ({ ...k }));

  function webKeySet() {
    return { ...json(200, { keys: servedKeys() }), headers: { ...state.webKeyHeaders } };
  }

  function setWebKeys(keys, { headers = {} } = {}) {
    if (!Array.isArray(keys) || keys.some((k) => !k || typeof k !== 'object' || Array.isArray(k))) {
      throw new TypeError('setWebKeys takes an array of JWK objects');
    }
    state.webKeys = keys.map((k) => ({ ...k }));
    state.webKeyHeaders = { ...headers };
  }

  // ---- Action API V2: executions ----

  /** A canonical key for a condition, or an error answer when ZITADEL would refuse it. */
  function conditionKey(condition) {
    if (!condition || typeof condition !== 'object' || Array.isArray(condition)) return { error: 'condition is required' };
    const kinds = Object.keys(condition);
    if (kinds.length !== 1) return { error: 'condition must have exactly one of request, response, function, event' };
    const [kind] = kinds;
    const c = condition[kind];
    if (!c || typeof c !== 'object') return { error: `invalid ${kind} condition` };
    if (kind === 'function') {
      if (!FUNCTIONS.includes(c.name)) return { error: `Errors.Execution.ConditionInvalid: unknown function "${c.name}"` };
      return { key: `function/${c.name}`, condition: { function: { name: c.name } } };
    }
    const fields = { request: ['method', 'service', 'all'], response: ['method', 'service', 'all'], event: ['event', 'group', 'all'] }[kind];
    if (!fields) return { error: `unknown condition "${kind}"` };
    const set = fields.filter((f) => c[f] !== undefined);
    if (set.length !== 1 || Object.keys(c).length !== 1) return { error: `${kind} condition needs exactly one of ${fields.join(', ')}` };
    const [field] = set;
    if (field === 'all' ? c.all !== true : typeof c[field] !== 'string' || !c[field]) return { error: `invalid ${kind}.${field}` };
    return { key: `${kind}/${field}/${c[field]}`, condition: { [kind]: { [field]: c[field] } } };
  }

  function renderExecution(e) {
    return { condition: e.condition, targets: [...e.targets], creationDate: e.creationDate, changeDate: e.changeDate };
  }

  function putExecution(condition, targets) {
    const c = conditionKey(condition);
    if (c.error) throw new Error(c.error);
    const now = new Date().toISOString();
    if (targets.length === 0) {
      state.executions.delete(c.key);
      return now;
    }
    const existing = state.executions.get(c.key);
    state.executions.set(c.key, { condition: c.condition, targets: [...targets], creationDate: existing?.creationDate ?? now, changeDate: now });
    return now;
  }

  // SetExecution REPLACES the condition's target list (an empty list removes the execution).
  function setExecution(req, body) {
    const c = conditionKey(body.condition);
    if (c.error) return grpcError(GRPC.INVALID_ARGUMENT, c.error);
    const targets = body.targets ?? [];
    if (!Array.isArray(targets) || targets.some((t) => typeof t !== 'string')) {
      return grpcError(GRPC.INVALID_ARGUMENT, 'targets must be a list of target ids');
    }
    // Refused here (whatever ZITADEL does) so that a duplicate binding never goes unnoticed in tests.
    if (new Set(targets).size !== targets.length) return grpcError(GRPC.INVALID_ARGUMENT, 'a target is listed twice');
    const unknown = targets.find((id) => !state.targets.has(id));
    if (unknown) return grpcError(GRPC.NOT_FOUND, `Errors.Target.NotFound (COMMAND-17dmsr): ${unknown}`);
    return json(200, { setDate: putExecution(body.condition, targets) });
  }

  function listExecutions(req, body) {
    let executions = [...state.executions.values()].filter((e) => e.targets.length > 0);
    for (const filter of body.filters ?? []) {
      if (filter.inConditionsFilter) {
        const keys = [];
        for (const condition of filter.inConditionsFilter.conditions ?? []) {
          const c = conditionKey(condition);
          if (c.error) return grpcError(GRPC.INVALID_ARGUMENT, c.error);
          keys.push(c.key);
        }
        executions = executions.filter((e) => keys.includes(conditionKey(e.condition).key));
      } else if (filter.targetFilter) {
        executions = executions.filter((e) => e.targets.includes(filter.targetFilter.targetId));
      } else {
        return grpcError(GRPC.INVALID_ARGUMENT, 'unknown filter');
      }
    }
    const p = page(executions, body.pagination);
    return json(200, { pagination: p.pagination, executions: p.items.map(renderExecution) });
  }

  /** One page of `items` as ZITADEL's v2 list calls page them. */
  function page(items, pagination) {
    const offset = Number(pagination?.offset ?? 0);
    const limit = Number(pagination?.limit ?? 0) || DEFAULT_LIMIT;
    return {
      pagination: { totalResult: String(items.length), appliedLimit: String(limit) },
      items: items.slice(offset, offset + limit),
    };
  }

  // ---- The OpenID provider: authorization-code grant with PKCE for the projects' OIDC apps ----

  /** The app with this client id and its project, or undefined. */
  function appOf(clientId) {
    for (const project of state.projects.values()) {
      for (const app of project.apps.values()) if (app.clientId === clientId) return { project, app };
    }
    return undefined;
  }

  /** ZITADEL's own error page, for what it cannot send back to the client (no redirect). */
  const errorPage = (status, message) => ({
    status, raw: `<!doctype html><title>ZITADEL error</title><p>${message}</p>`, headers: { 'content-type': 'text/html; charset=utf-8' },
  });
  const redirectTo = (location) => ({ status: 302, raw: '', headers: { location, 'cache-control': 'no-store' } });
  const withQuery = (base, params) => {
    const u = new URL(base);
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, v);
    return u.toString();
  };

  // GET /oauth/v2/authorize (OIDC Core 3.1.2.1, RFC 7636 4.3). Errors about the client or its
  // redirect URI are shown, never sent to an unchecked URI; later ones go back with `error`.
  function authorize(req) {
    const q = new URL(req.url, 'http://fake').searchParams;
    const found = appOf(q.get('client_id') ?? '');
    if (!found) return errorPage(400, 'Errors.App.NotFound: unknown client_id');
    const { project, app } = found;
    const redirectUri = q.get('redirect_uri') ?? '';
    if (!app.config.redirectUris.includes(redirectUri)) return errorPage(400, 'The requested redirect_uri is missing in the client configuration.');
    const back = (error, description) => redirectTo(withQuery(redirectUri, { error, error_description: description, state: q.get('state') }));
    if (q.get('response_type') !== 'code' || !app.config.responseTypes.includes('OIDC_RESPONSE_TYPE_CODE')) {
      return back('unsupported_response_type', 'The response type is not allowed for this client');
    }
    if (!(q.get('scope') ?? '').split(' ').includes('openid')) return back('invalid_scope', 'The scope openid is missing');
    const challenge = q.get('code_challenge');
    const method = q.get('code_challenge_method');
    if (app.config.authMethodType === 'OIDC_AUTH_METHOD_TYPE_NONE' && !challenge) return back('invalid_request', 'code_challenge required');
    if (challenge && method !== 'S256') return back('invalid_request', 'code_challenge_method must be S256');
    if (challenge && !/^[A-Za-z0-9_-]{43}$/.test(challenge)) return back('invalid_request', 'code_challenge is not an S256 challenge');
    const error = state.authorizeErrors.shift();
    if (error) return back(error, 'The user denied the request');
    if (!state.signedIn) {
      return { status: 200, raw: '<!doctype html><title>Login</title><p>Sign in to ZITADEL (the fake has no session)</p>', headers: { 'content-type': 'text/html; charset=utf-8' } };
    }
    const code = randomBytes(24).toString('base64url');
    state.codes.set(code, {
      clientId: app.clientId, projectId: project.id, redirectUri, challenge, nonce: q.get('nonce'), user: state.signedIn,
      scope: q.get('scope'), issuedAt: Date.now(), used: false,
    });
    return redirectTo(withQuery(redirectUri, { code, state: q.get('state') }));
  }

  // POST /oauth/v2/token, grant authorization_code, for a public client (auth method none: the
  // client id in the form, no secret) or one that sends its id and secret too.
  function redeemCode(form) {
    const refuse = (description) => json(400, { error: 'invalid_grant', error_description: description });
    const found = appOf(form.get('client_id') ?? '');
    if (!found) return json(401, { error: 'invalid_client', error_description: 'client not found' });
    const issued = state.codes.get(form.get('code') ?? '');
    if (!issued || Date.now() - issued.issuedAt > 600_000) return refuse('invalid code');
    if (issued.used) return refuse('code has already been used');
    if (issued.clientId !== found.app.clientId) return refuse('invalid code');
    if (issued.redirectUri !== form.get('redirect_uri')) return refuse('redirect_uri does not correspond');
    if (issued.challenge || found.app.config.authMethodType === 'OIDC_AUTH_METHOD_TYPE_NONE') {
      const verifier = form.get('code_verifier') ?? '';
      const computed = createHash('sha256').update(verifier).digest('base64url');
      if (!issued.challenge || !/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || computed !== issued.challenge) return refuse('invalid code challenge');
    }
    issued.used = true;
    const now = Math.floor(Date.now() / 1000);
    const clientIds = [...found.project.apps.values()].map((a) => a.clientId);
    let claims = {
      iss: url, sub: issued.user, aud: [...clientIds, found.project.id], exp: now + 43200, iat: now, auth_time: now,
      amr: ['pwd'], azp: issued.clientId, client_id: issued.clientId, at_hash: randomBytes(16).toString('base64url'),
      sid: `V1_${newId()}`, ...(issued.nonce ? { nonce: issued.nonce } : {}),
    };
    const change = state.idTokenChanges.shift();
    if (change) claims = change(claims) ?? claims;
    const accessToken = issueAccessToken({
      user: issued.user, clientId: issued.clientId, projectId: found.project.id, audience: claims.aud,
      jwt: found.app.config.accessTokenType === 'OIDC_TOKEN_TYPE_JWT',
    });
    return json(200, {
      access_token: accessToken, token_type: 'Bearer', expires_in: 43199,
      id_token: signJwt(state.signingKeys[state.idTokenAlg], claims),
    });
  }

  // Access tokens of users, as ZITADEL issues them to an application: a JWT (the app's access
  // token type JWT) signed with the OpenID provider's key, with `client_id` and, for a token of its
  // token exchange (impersonation), `act`; or an opaque token, known to introspection.
  function issueAccessToken({ user, clientId, projectId = 'fake-project', audience, act, expiresIn = 43200, jwt = true, alg = state.idTokenAlg }) {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: url, sub: user, aud: audience ?? [clientId, projectId], exp: now + expiresIn, iat: now, nbf: now,
      jti: newId(), client_id: clientId, ...(act ? { act } : {}),
    };
    if (jwt) {
      if (!state.signingKeys[alg]) throw new Error('access tokens as JWTs need the OpenID provider (oidc on)');
      return signJwt(state.signingKeys[alg], claims);
    }
    const token = `fake-opaque-${randomBytes(16).toString('base64url')}`;
    state.opaqueTokens.set(token, { ...claims, projectId });
    return token;
  }

  // OAuth 2.0 introspection (RFC 7662) as ZITADEL answers an API application (HTTP Basic, id and
  // secret form-encoded): `active` only for a token that is known, not revoked, not expired and
  // whose audience holds the API application's project; then its claims, `act` included.
  function introspect(req, _body, _match, raw) {
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    const [id, secret] = basic ? Buffer.from(basic[1], 'base64').toString('utf8').split(':').map((p) => decodeURIComponent(p.replace(/\+/g, ' '))) : [];
    const apiApp = basic && apiClient(id);
    if (!apiApp || apiApp.secret !== secret) return json(401, { error: 'invalid_client', error_description: 'client authentication failed' });
    const token = new URLSearchParams(raw.toString('utf8')).get('token') ?? '';
    const jwtClaims = () => {
      const parts = token.split('.');
      if (parts.length !== 3) return undefined;
      try {
        return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
      } catch {
        return undefined;
      }
    };
    const claims = state.opaqueTokens.get(token) ?? jwtClaims();
    const now = Math.floor(Date.now() / 1000);
    const audience = Array.isArray(claims?.aud) ? claims.aud : [claims?.aud];
    if (!claims || state.revokedTokens.has(token) || claims.exp <= now || !audience.includes(apiApp.projectId)) {
      return json(200, { active: false });
    }
    const { projectId: _, ...answer } = claims;
    return json(200, { active: true, scope: 'openid', token_type: 'Bearer', username: claims.sub, ...answer });
  }

  /** The API application with this client id: added by a test, or made through the management API. */
  function apiClient(id) {
    if (state.apiClients.has(id)) return state.apiClients.get(id);
    for (const project of state.projects.values()) {
      for (const app of project.apps.values()) {
        if (app.apiConfig?.clientId === id && app.clientSecret) return { secret: app.clientSecret, projectId: project.id };
      }
    }
    return undefined;
  }

  for (const { name, apps = [], id } of fixture.projects ?? []) {
    const project = addProject(name);
    if (id) {
      state.projects.delete(project.id);
      project.id = id;
      state.projects.set(id, project);
    }
    for (const { name: appName, clientId, ...config } of apps) {
      const r = addOidcApp(project, appName, config, clientId);
      if (r.error) throw new Error(r.error.body.message);
    }
  }
  for (const spec of fixture.targets ?? []) addTarget(spec);
  if (fixture.webKeys) setWebKeys(fixture.webKeys);
  for (const { condition, targets } of fixture.executions ?? []) {
    const ids = targets.map((ref) => (state.targets.has(ref) ? ref : [...state.targets.values()].find((t) => t.name === ref)?.id ?? ref));
    putExecution(condition, ids);
  }

  // OAuth client-credentials grant with HTTP Basic client authentication (RFC 6749 2.3.1); the
  // authorization_code grant of the OpenID provider.
  function issueToken(req, _body, _match, raw) {
    const form = new URLSearchParams(raw.toString('utf8'));
    if (form.get('grant_type') === 'authorization_code') return redeemCode(form);
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

  const bearer = (header) => (/^Bearer (.+)$/.exec(header ?? '') ?? [])[1];
  const authorized = (header) => {
    const token = bearer(header);
    return token !== undefined && (token === state.accessToken || state.issuedTokens.has(token) || state.permissions.has(token));
  };
  /** The main PAT and issued tokens hold every permission; the fixture's other PATs only theirs. */
  const permitted = (header, permission) => {
    const token = bearer(header);
    return !state.permissions.has(token) || token === state.accessToken
      ? true
      : state.permissions.get(token).includes(permission);
  };

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url, 'http://fake');
    const call = { method: req.method, path: url.pathname, authorization: req.headers.authorization ?? null, headers: req.headers, body: raw.toString('utf8') };
    calls.push(call);

    const fault = takeFault(faults, (f) => f.path.test(url.pathname));
    const injected = JSON.stringify({ code: 13, message: 'injected fault', details: [] });
    if (fault && (await applyFault(fault, req, res, injected))) return;

    let answer;
    const route = routes.find(([m, re]) => re.test(url.pathname) && m === req.method);
    if (!route) {
      // grpc-gateway's own answers: a bare status, without ZITADEL's error details.
      answer = routes.some(([, re]) => re.test(url.pathname))
        ? json(405, { code: GRPC.UNIMPLEMENTED, message: 'Method Not Allowed' })
        : json(404, { code: GRPC.NOT_FOUND, message: 'Not Found' });
    } else if (route[3] && !authorized(call.authorization)) {
      answer = grpcError(GRPC.UNAUTHENTICATED, 'auth header missing or invalid (AUTH-7fs1e)');
    } else if (route[4] && !permitted(call.authorization, route[4]) && route[5] === 'empty') {
      answer = json(200, { pagination: { totalResult: '0', appliedLimit: String(DEFAULT_LIMIT) }, metadata: [] });
    } else if (route[4] && !permitted(call.authorization, route[4])) {
      answer = grpcError(GRPC.PERMISSION_DENIED, 'No matching permissions found (AUTH-5mWD2)');
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
    res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
    res.end(answer.raw ?? JSON.stringify(answer.body));
  });

  await new Promise((resolve) => server.listen(port, host, resolve));
  const url = `http://${host}:${server.address().port}`;
  return {
    url,
    accessToken: state.accessToken,
    calls,
    /** Calls whose path matches `re`. */
    callsTo: (re) => calls.filter((c) => re.test(c.path)),
    /** Make requests to paths matching `path` fail: {status, body, headers, delayMs, hang, drop, stream (bytes), times}. */
    fault(path, behaviour) {
      faults.push({ path, ...behaviour });
    },
    reset() {
      calls.length = 0;
      faults.length = 0;
      state.authorizeErrors.length = 0;
      state.idTokenChanges.length = 0;
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
    /** Every target as GetTarget shows it (signing key included), in creation order. */
    targets: () => [...state.targets.values()].map(renderTarget),
    /** The target with this id or name, as GetTarget shows it, or undefined. */
    target(idOrName) {
      const t = state.targets.get(idOrName) ?? [...state.targets.values()].find((x) => x.name === idOrName);
      return t && renderTarget(t);
    },
    /** Adds a target: { name, endpoint, timeout?, restCall?|restWebhook?|restAsync?, id?, signingKey? }. */
    addTarget: (spec) => renderTarget(addTarget(spec)),
    /** Every execution that has targets: [{ condition, targets, creationDate, changeDate }]. */
    executions: () => [...state.executions.values()].filter((e) => e.targets.length > 0).map(renderExecution),
    /** The target ids bound to a condition such as { function: { name: 'preaccesstoken' } }. */
    executionTargets(condition) {
      return [...(state.executions.get(conditionKey(condition).key)?.targets ?? [])];
    },
    /** Binds exactly these target ids to a condition (replaces, like SetExecution). */
    setExecution: (condition, targets) => {
      putExecution(condition, targets);
    },
    /**
     * The public keys of the target with this id or name, in the order added:
     * [{ keyId, active, pem (the PEM text), fingerprint, expirationDate?, creationDate, changeDate }];
     * undefined when there is no such target.
     */
    publicKeys(idOrName) {
      const t = findTarget(idOrName);
      return t && [...t.publicKeys.values()].map(publicKeyView);
    },
    /** The target's active public key (as `publicKeys` shows it), or undefined. */
    activeKey(idOrName) {
      const t = findTarget(idOrName);
      const key = t && [...t.publicKeys.values()].find(isActive);
      return key && publicKeyView(key);
    },
    /** Adds a public key (PEM text) to a target as AddPublicKey does; `active` activates it too. Throws what ZITADEL would refuse. */
    addPublicKey(idOrName, pem, { active = false, expirationDate } = {}) {
      const t = findTarget(idOrName);
      if (!t) throw new Error(`no target ${idOrName}`);
      const r = putPublicKey(t, Buffer.from(pem, 'utf8'), expirationDate);
      if (r.error) throw new Error(r.error.body.message);
      if (active) activateKey(t, r.key.keyId);
      return publicKeyView(r.key);
    },
    /** Every project of every organization, with its apps as ListApps shows them: [{ id, name, org, apps }]. */
    projects: () => [...state.projects.values()].map((p) => ({ id: p.id, name: p.name, org: p.org, apps: [...p.apps.values()].map(renderApp) })),
    /** Adds a project to the caller's organization (or `org`); its id. */
    addProject: (name, org) => addProject(name, org).id,
    /**
     * Adds an OIDC app to a project (`config`: AddOIDCApp's fields, absent ones at their zero
     * value; `clientId` to choose it); the app as ListApps shows it.
     */
    addOidcApp(projectId, name, config = {}, { clientId } = {}) {
      const r = addOidcApp(state.projects.get(projectId), name, config, clientId);
      if (r.error) throw new Error(r.error.body.message);
      return renderApp(r.app);
    },
    /** Changes fields of the OIDC configuration of the app with this client id (e.g. redirectUris). */
    setOidcConfig(clientId, changes) {
      const found = appOf(clientId);
      if (!found) throw new Error(`no app with client id ${clientId}`);
      const c = oidcConfig({ ...found.app.config, ...changes });
      if (c.error) throw new Error(c.error.body.message);
      found.app.config = c.config;
    },
    /** Signs a user in to the OpenID provider (the browser session /oauth/v2/authorize uses); null signs out. */
    signIn(userId) {
      state.signedIn = userId;
    },
    /** The next authorization (one) goes back with this `error` instead of a code. */
    denyNextAuthorization(error = 'access_denied') {
      state.authorizeErrors.push(error);
    },
    /** The algorithm of the ID tokens issued from now on: RS256 or ES256 (both keys are published). */
    setIdTokenAlg(alg) {
      if (!state.signingKeys[alg]) throw new Error(`no ${alg} signing key (is oidc on?)`);
      state.idTokenAlg = alg;
    },
    /** The next ID token (one) gets the claims `change(claims)` returns. */
    changeNextIdToken(change) {
      state.idTokenChanges.push(change);
    },
    /**
     * A user's access token as ZITADEL issues it to `clientId`: a JWT (`jwt: false` for an opaque
     * one, known to introspection), with `act` when given (impersonation), living `expiresIn` s.
     */
    issueAccessToken: (options) => issueAccessToken(options),
    /** Revokes an access token: introspection answers `active: false` for it from now on. */
    revokeAccessToken(token) {
      state.revokedTokens.add(token);
    },
    /** An API application that may introspect tokens whose audience holds `projectId`. */
    addApiClient(id, secret, projectId = 'fake-project') {
      state.apiClients.set(id, { secret, projectId });
    },
    /** Sets a user's metadata: { key: value } (values as in the fixture). */
    setUserMetadata(userId, entries) {
      if (!state.users.has(userId)) state.users.set(userId, new Map());
      for (const [key, value] of Object.entries(entries)) state.users.get(userId).set(key, metadataBytes(value));
    },
    /** Sets a user's links to identity providers: [{ idpId, userId, userName }]. */
    setIdpLinks(userId, links) {
      state.idpLinks.set(userId, links.map((l) => ({ ...l })));
    },
    /** Sets the key set at /oauth/v2/keys (an array of public JWKs); `headers` go with its answers (e.g. cache-control). */
    setWebKeys,
    /** The key set's keys as served (the OpenID provider's own first, when on). */
    webKeys: servedKeys,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

function json(status, body) {
  return { status, body };
}

/** The OpenID provider's signing keys, one per algorithm, made for this run. */
function oidcSigningKeys() {
  const keys = {};
  for (const [alg, type, options] of [['RS256', 'rsa', { modulusLength: 2048 }], ['ES256', 'ec', { namedCurve: 'P-256' }]]) {
    const { privateKey, publicKey } = generateKeyPairSync(type, options);
    const kid = `fake-oidc-${alg.toLowerCase()}-${randomBytes(4).toString('hex')}`;
    keys[alg] = { alg, kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
  }
  return keys;
}

/** A compact JWS of `claims` signed with `key` (one of oidcSigningKeys'). */
function signJwt(key, claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${part({ alg: key.alg, kid: key.kid, typ: 'JWT' })}.${part(claims)}`;
  const signature = sign('sha256', Buffer.from(input), key.alg === 'ES256' ? { key: key.privateKey, dsaEncoding: 'ieee-p1363' } : key.privateKey);
  return `${input}.${signature.toString('base64url')}`;
}

// Ids look like ZITADEL's (18-digit snowflakes), keys like its signing keys (32 letters and digits).
function newId() {
  return `3${String(Date.now()).slice(-10)}${String(randomInt(10_000_000)).padStart(7, '0')}`;
}

function newSigningKey() {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length: 32 }, () => alphabet[randomInt(alphabet.length)]).join('');
}

/**
 * The fingerprint ZITADEL gives an uploaded public key (`checkPublicKeyAndComputeFingerprint`):
 * `SHA256:` and the unpadded standard base64 of the SHA-256 of the DER in the first PEM block,
 * or undefined when ZITADEL refuses the key. Like Go's pem.Decode the block's type is not checked;
 * like x509.ParsePKIXPublicKey the DER must be SPKI, of an RSA key or an EC key on a curve Go reads.
 * node:crypto (createPublicKey, SPKI DER) checks the key.
 */
export function publicKeyFingerprint(pem) {
  const text = Buffer.isBuffer(pem) ? pem.toString('latin1') : String(pem);
  const block = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/m.exec(text);
  if (!block) return undefined;
  const body = block[2].replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) return undefined;
  const der = Buffer.from(body, 'base64');
  let key;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
  const ok = key.asymmetricKeyType === 'rsa' || (key.asymmetricKeyType === 'ec' && GO_CURVES.includes(key.asymmetricKeyDetails?.namedCurve));
  if (!ok) return undefined;
  return `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
}

/** Seconds of a protobuf JSON duration ("10s", "2.5s"), or undefined when it is not one. */
function parseDuration(value) {
  if (typeof value !== 'string' || !/^-?\d+(\.\d{1,9})?s$/.test(value)) return undefined;
  return Number(value.slice(0, -1));
}

/**
 * An error as ZITADEL's services answer it over the gateway: the message with its error id in
 * parentheses, and the same as a `zitadel.v1.ErrorDetail`.
 */
function grpcError(code, message) {
  const id = /\(([^)]+)\)$/.exec(message)?.[1] ?? 'FAKE-0';
  const key = message.replace(/ \([^)]+\)$/, '');
  const detail = { '@type': 'type.googleapis.com/zitadel.v1.ErrorDetail', id, message: key };
  return json(HTTP_OF[code] ?? 500, { code, message: message.includes('(') ? message : `${message} (${id})`, details: [detail] });
}

/** The bytes of a protobuf `bytes` field as protojson reads it (standard or URL-safe base64,
 * padded or not; one alphabet per string), or undefined when it is none of those. */
export function protoBytes(text) {
  if (typeof text !== 'string') return undefined;
  const urlSafe = /[-_]/.test(text);
  const alphabet = urlSafe ? /^[A-Za-z0-9_-]*={0,2}$/ : /^[A-Za-z0-9+/]*={0,2}$/;
  const padded = text.length % 4 === 0;
  if (!alphabet.test(text) || (!padded && text.includes('=')) || text.length % 4 === 1) return undefined;
  // Go's decoder, like Buffer, is not strict about the unused bits of the last character.
  return Buffer.from(text, urlSafe ? 'base64url' : 'base64');
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
