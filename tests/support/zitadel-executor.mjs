// A test double of ZITADEL running a FUNCTION execution (function/preaccesstoken, preuserinfo,
// presamlresponse) with several `restCall` targets, written from ZITADEL's Go source
// (internal/execution/execution.go, internal/api/oidc/userinfo.go, internal/api/saml/storage.go;
// summarized in docs/zitadel-contract.md), not from the worker's code, so the end-to-end tests
// check the worker against ZITADEL's behaviour.
//
// What it models:
// - execution.CallTargets: targets run one after another and share ONE ContextInfoResponse. Before
//   each call the whole ContextInfo is marshalled as encoding/json would (struct field order,
//   omitempty, sorted map keys, []byte as std base64, the HTML escapes \u003c \u003e \u0026 and
//   \u2028 \u2029), with `response` present once an answer reached SetHTTPResponseBody. Each call is
//   a POST with Content-Type application/json and the ZITADEL-Signature header over the sent string.
// - HandleResponse: non-2xx, transport errors and timeouts are errors; a 2xx body decoding as
//   ErrorBody with forwardedStatusCode != 0 or forwardedErrorMessage != "" is an error; an empty 2xx
//   body applies nothing. Errors stop the flow with interruptOnError, else the target is skipped.
// - SetHTTPResponseBody: json.Valid, then json.Unmarshal into the shared struct: keys matched to
//   fields case-insensitively, unknown keys ignored, a present list replaces the earlier one, null
//   clears it, a wrong type is an UnmarshalTypeError that leaves that field as it was while the
//   rest still decodes (the answer is applied partly and counts as an error). A top-level
//   non-object allocates the (empty) response but changes nothing, as in Go.
// - applyContextInfoResponse (OIDC) and the end of getCustomAttributes (SAML), run once on the
//   final response: metadata writes, claims (reserved prefix dropped, first key wins), log claim;
//   SAML attributes in a map (last wins) and a log attribute for metadata failures.
//
// What it approximates:
// - Elements of a replaced list are decoded afresh. Go decodes into the old elements at the same
//   index (golang/go#21092), so a member missing from a new element can keep the earlier value.
// - Numbers go through JSON.parse: Go's int fields reject the literal `1.0`, here it is 1; numbers
//   out of float64 range become Infinity instead of a type error.
// - Key matching uses toLowerCase, not Go's exact Unicode folding; duplicate keys in one object
//   follow JS (last value, first position), not strictly document order.
// - The byte offset in "illegal base64 data at input byte N" is the start of the failing 4-char group.
// - Metadata writes fail only when IsValid() does (empty key or value), never for other reasons.
// - Context objects are marshalled with JSON.stringify in the test's key order (ZITADEL's
//   oidc.UserInfo with custom claims marshals as a map, so its keys would be sorted).
// - goQuote (Go's %q) is JSON.stringify: the same for printable text.
// - A null element in a list makes Go dereference a nil pointer when applying; here that fails the
//   flow with error.target === null. Error reasons are Go-like texts, not ZITADEL error objects.
import { createServer } from 'node:http';

import { CompactEncrypt, CompactSign } from 'jose';

import { SIGNATURE_HEADER, signatureHeader } from './signature.mjs';

export const LOG_CLAIM = (fn) => `urn:zitadel:iam:action:${fn}:log`;
const RESERVED_PREFIX = 'urn:zitadel:iam';
const SAML = 'function/presamlresponse';
const CONTEXT_FIELDS = {
  'function/preaccesstoken': ['userinfo', 'user', 'user_metadata', 'org', 'user_grants', 'application', 'actor'],
  'function/preuserinfo': ['userinfo', 'user', 'user_metadata', 'org', 'user_grants', 'application', 'actor'],
  [SAML]: ['user', 'user_grants'],
};
const JSON_PAYLOADS = ['PAYLOAD_TYPE_JSON', 'PAYLOAD_TYPE_UNSPECIFIED'];
const goQuote = (s) => JSON.stringify(s); // Go's %q, for printable text

// ---- encoding/json, as far as these structs need it ----

const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'boolean' ? 'bool' : typeof v); // object | string | number

/** One json.Unmarshal: keeps the first error, as Go's decodeState.saveError does. */
class Decoding {
  error = undefined;
  fail(message) {
    this.error ??= message;
  }
  typeError(value, type, at, keep) {
    const into = at.path.length ? `Go struct field ${at.struct}.${at.path.join('.')}` : 'Go value';
    this.fail(`json: cannot unmarshal ${value} into ${into} of type ${type}`);
    return keep;
  }
}

/** Go-marshals a decoded `any` value (map keys sorted bytewise, as Go sorts them). */
function goJson(v) {
  if (v === null) return 'null';
  if (Buffer.isBuffer(v)) return JSON.stringify(v.toString('base64'));
  if (typeof v === 'string') return JSON.stringify(v.toWellFormed()); // Go's decoder made lone surrogates U+FFFD
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(goJson).join(',')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return `{${keys.map((k) => `${goJson(k)}:${goJson(v[k])}`).join(',')}}`;
  }
  return String(v);
}

/** What Go's json.Marshal escapes in every string; these characters only occur inside strings. */
const htmlEscape = (json) => json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

// Go types: `decode(v, old, d, at)` returns the new value (`old` when Go leaves it as it was),
// `marshal(value)` the JSON text. `at` = { struct, path } names the field in Go's error messages.
const goString = {
  name: 'string',
  zero: () => '',
  decode: (v, old, d, at) => (v === null ? old : typeof v === 'string' ? v : d.typeError(kind(v), 'string', at, old)),
  marshal: goJson,
};
const goInt = (name, min, max) => ({
  name,
  zero: () => 0,
  decode(v, old, d, at) {
    if (v === null) return old;
    if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) return v;
    return d.typeError(typeof v === 'number' ? `number ${v}` : kind(v), name, at, old);
  },
  marshal: String,
});
const goUint8 = goInt('uint8', 0, 255);
const goAny = { name: 'interface {}', zero: () => null, decode: (v) => v, marshal: goJson };
const goBytes = {
  name: '[]uint8',
  zero: () => null,
  decode(v, old, d, at) {
    if (v === null) return null;
    if (Array.isArray(v)) return Buffer.from(v.map((x) => goUint8.decode(x, 0, d, at))); // Go accepts byte arrays too
    if (typeof v !== 'string') return d.typeError(kind(v), '[]uint8', at, old);
    const s = v.replace(/[\r\n]/g, ''); // Go's base64 decoder skips newlines
    if (/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) return Buffer.from(s, 'base64');
    d.fail(`illegal base64 data at input byte ${/^(?:[A-Za-z0-9+/]{4})*/.exec(s)[0].length}`);
    return old;
  },
  marshal: goJson,
};
const goSlice = (elem) => ({
  name: `[]${elem.name}`,
  zero: () => null,
  decode(v, old, d, at) {
    if (v === null) return null;
    if (!Array.isArray(v)) return d.typeError(kind(v), this.name, at, old);
    return v.map((x) => elem.decode(x, elem.zero(), d, at));
  },
  marshal: (list) => (list === null ? 'null' : `[${list.map(elem.marshal).join(',')}]`),
});
/** A *struct: the JS object is keyed by the JSON names, in field order. */
const goStruct = (name, fields, { omitempty = false } = {}) => ({
  name: `*${name}`,
  zero: () => null,
  fresh: () => Object.fromEntries(fields.map(([key, type]) => [key, type.zero()])),
  decode(v, old, d, at) {
    if (v === null) return null;
    const target = old ?? this.fresh(); // Go allocates the struct before it finds the type wrong
    if (kind(v) !== 'object') return d.typeError(kind(v), name, at, target);
    const struct = name.split('.').pop();
    for (const [key, x] of Object.entries(v)) {
      const field = fields.find(([k]) => k === key) ?? fields.find(([k]) => k.toLowerCase() === key.toLowerCase());
      if (field) target[field[0]] = field[1].decode(x, target[field[0]], d, { struct, path: [...at.path, field[0]] });
    }
    return target;
  },
  marshal(s) {
    if (s === null) return 'null';
    const shown = fields.filter(([key]) => !omitempty || (s[key] !== null && s[key].length !== 0));
    return `{${shown.map(([key, type]) => `${JSON.stringify(key)}:${type.marshal(s[key])}`).join(',')}}`;
  },
});

/** json.Unmarshal(text, target) where target is an allocated struct: returns the first error. */
function unmarshal(type, v, target) {
  const d = new Decoding();
  if (v !== null) type.decode(v, target, d, { path: [] }); // null into a struct: no-op
  return d.error;
}

// domain.Metadata has no JSON tags (its embedded ObjectRoot is all `json:"-"`).
const METADATA = goStruct('domain.Metadata', [['State', goInt('domain.MetadataState', -(2 ** 31), 2 ** 31 - 1)], ['Key', goString], ['Value', goBytes]]);
const RESPONSE = {
  oidc: goStruct(
    'oidc.ContextInfoResponse',
    [
      ['set_user_metadata', goSlice(METADATA)],
      ['append_claims', goSlice(goStruct('oidc.AppendClaim', [['key', goString], ['value', goAny]]))],
      ['append_log_claims', goSlice(goString)],
    ],
    { omitempty: true },
  ),
  saml: goStruct(
    'saml.ContextInfoResponse',
    [
      ['set_user_metadata', goSlice(METADATA)],
      ['append_attribute', goSlice(goStruct('saml.AppendAttribute', [['name', goString], ['name_format', goString], ['value', goSlice(goString)]]))],
    ],
    { omitempty: true },
  ),
};
const ERROR_BODY = goStruct('execution.ErrorBody', [['forwardedStatusCode', goInt('int', -(2 ** 53), 2 ** 53)], ['forwardedErrorMessage', goString]]);

/** ContextInfo.GetHTTPRequestBody: json.Marshal of the whole struct. */
function contextBody(fn, context, response, responseType) {
  const fields = [['function', JSON.stringify(fn)]];
  for (const key of CONTEXT_FIELDS[fn]) {
    const v = context[key];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) fields.push([key, JSON.stringify(v)]);
  }
  if (response) fields.push(['response', responseType.marshal(response)]);
  return htmlEscape(`{${fields.map(([k, v]) => `"${k}":${v}`).join(',')}}`);
}

// ---- the execution ----

/** One call and HandleResponse: { status, text, bytes, error }. */
async function call(url, body, signature, timeoutMs) {
  let res;
  let bytes;
  try {
    const headers = { 'Content-Type': 'application/json', [SIGNATURE_HEADER]: signature };
    res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
    bytes = Buffer.from(await res.arrayBuffer());
  } catch (e) {
    const why = e.name === 'TimeoutError' ? 'context deadline exceeded' : (e.cause?.message ?? e.message);
    return { status: res?.status ?? 0, text: '', bytes: Buffer.alloc(0), error: `Post ${goQuote(url)}: ${why}` };
  }
  const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes); // a BOM stays and is invalid JSON, as in Go
  const answer = { status: res.status, text, bytes };
  if (res.status < 200 || res.status > 299) return { ...answer, error: `EXEC-dra6yamk98 Errors.Execution.Failed (HTTP ${res.status})` };
  const parsed = parseJson(text);
  const errorBody = ERROR_BODY.fresh();
  if (parsed.ok && unmarshal(ERROR_BODY, parsed.value, errorBody) === undefined) {
    const { forwardedStatusCode: code, forwardedErrorMessage: message } = errorBody;
    if (code >= 400 && code < 500) return { ...answer, error: `EXEC-reUaUZCzCp forwarded ${code}: ${message}` };
    if (code !== 0 || message !== '') return { ...answer, error: `EXEC-bmhNhpcqpF ${message}` };
  }
  return answer;
}

function parseJson(text) {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

class Panic extends Error {}
const deref = (entry, list) => {
  if (entry === null) throw new Panic(`panic: runtime error: invalid memory address or nil pointer dereference (a null entry in ${list})`);
  return entry;
};

/**
 * Runs the execution of `fn` ('function/preaccesstoken' | 'function/preuserinfo' |
 * 'function/presamlresponse') as ZITADEL does.
 * - context: the ContextInfo fields but `function` and `response` (OIDC: userinfo, user,
 *   user_metadata, org, user_grants, application, actor; SAML: user, user_grants).
 * - targets: [{ url, signingKey, interruptOnError = false, timeoutMs = 10000, payloadType = 'PAYLOAD_TYPE_JSON' }]
 * - claims (OIDC) / attributes (SAML, name -> { nameFormat, value }): what is set before the targets.
 * - encode: async (json, target) => the body to send; by default zitadelPayload, which needs a
 *   target's `webKey` for PAYLOAD_TYPE_JWT and also its `encryptionKey` for PAYLOAD_TYPE_JWE.
 * Returns { ok, error: { target, reason } when !ok, calls: [{ url, body, signature, status, text,
 * outcome }], response (the shared struct keyed by its JSON names; null while no answer reached
 * it), claims (OIDC) or attributes (SAML; `value` null where Go's is nil), metadata: [{ key, value:
 * Buffer }] written with SetUserMetadata, logs }. When !ok, claims/attributes are as given.
 */
/**
 * The body ZITADEL sends a target (internal/execution/execution.go, payload()): the JSON itself;
 * for PAYLOAD_TYPE_JWT a compact JWS of exactly those bytes, signed with the instance's active web
 * key (header alg, kid, typ JWT; no claims added); for PAYLOAD_TYPE_JWE that JWS encrypted with
 * A256GCM to the target's active public key (RSA-OAEP-256 for RSA, ECDH-ES+A256KW for EC; header
 * kid, typ JWT, cty JWT). `webKey`: { privateKey, kid, alg }; `encryptionKey`: { publicKey, kid, alg }.
 */
export async function zitadelPayload(json, { payloadType, webKey, encryptionKey }) {
  if (JSON_PAYLOADS.includes(payloadType)) return json;
  if (!webKey) throw new Error(`${payloadType} needs the target's webKey`);
  const jws = await new CompactSign(Buffer.from(json, 'utf8'))
    .setProtectedHeader({ alg: webKey.alg, kid: webKey.kid, typ: 'JWT' })
    .sign(webKey.privateKey);
  if (payloadType === 'PAYLOAD_TYPE_JWT') return jws;
  if (payloadType !== 'PAYLOAD_TYPE_JWE' || !encryptionKey) throw new Error(`${payloadType} needs the target's encryptionKey`);
  return new CompactEncrypt(Buffer.from(jws, 'utf8'))
    .setProtectedHeader({ alg: encryptionKey.alg, enc: 'A256GCM', kid: encryptionKey.kid, typ: 'JWT', cty: 'JWT' })
    .encrypt(encryptionKey.publicKey);
}

export async function execute({ function: fn, context = {}, targets, claims = {}, attributes = {}, encode }) {
  if (!CONTEXT_FIELDS[fn]) throw new Error(`unknown function ${fn}`);
  const unknown = Object.keys(context).filter((k) => !CONTEXT_FIELDS[fn].includes(k));
  if (unknown.length) throw new Error(`ContextInfo of ${fn} has no field ${unknown.join(', ')}`);
  const saml = fn === SAML;
  const type = saml ? RESPONSE.saml : RESPONSE.oidc;
  targets = targets.map(({ interruptOnError = false, timeoutMs = 10000, payloadType = 'PAYLOAD_TYPE_JSON', ...t }) => ({ ...t, interruptOnError, timeoutMs, payloadType }));
  encode ??= zitadelPayload;

  let response = null; // ContextInfo.Response, a nil pointer until SetHTTPResponseBody allocates it
  const calls = [];
  const result = (extra) => ({ calls, response, claims: saml ? undefined : { ...claims }, attributes: saml ? { ...attributes } : undefined, metadata: [], logs: [], ...extra });

  for (const [index, target] of targets.entries()) {
    const json = contextBody(fn, context, response, type);
    let body;
    let signature;
    let answer;
    try {
      body = await encode(json, target);
      signature = signatureHeader(body, target.signingKey);
      answer = await call(target.url, body, signature, target.timeoutMs);
    } catch (e) {
      answer = { status: 0, text: '', bytes: Buffer.alloc(0), error: `payload: ${e.message}` }; // as a failed payload() in Go
    }
    const record = { url: target.url, body, signature, status: answer.status, text: answer.text, outcome: undefined };
    calls.push(record);
    let error = answer.error;
    if (!error && answer.bytes.length === 0) record.outcome = 'empty';
    else if (!error) {
      const parsed = parseJson(answer.text);
      if (!parsed.ok) error = 'ACTION-4m9s2 Errors.Execution.ResponseIsNotValidJSON';
      else {
        response ??= type.fresh();
        error = unmarshal(type, parsed.value, response);
        // an object decodes field by field; any other top-level value is refused whole (skipped below)
        record.outcome = !error ? 'applied' : kind(parsed.value) === 'object' ? `applied partly: ${error}` : undefined;
      }
    }
    if (error && target.interruptOnError) {
      record.outcome = `fatal: ${error}`;
      return result({ ok: false, error: { target: index, reason: error } });
    }
    record.outcome ??= `skipped: ${error}`;
  }

  // applyContextInfoResponse (OIDC) / the end of getCustomAttributes (SAML), on the final response
  const out = result({ ok: true });
  if (!response) return out;
  try {
    for (const m of response.set_user_metadata ?? []) {
      const { Key: key, Value: value } = deref(m, 'set_user_metadata');
      if (key === '' || value === null || value.length === 0) out.logs.push(`failed to set user metadata key ${goQuote(key)}`);
      else out.metadata.push({ key, value });
    }
    if (saml) {
      for (const a of response.append_attribute ?? []) {
        const { name, name_format: nameFormat, value } = deref(a, 'append_attribute');
        out.attributes[name] = { nameFormat, value };
      }
      if (out.logs.length) out.attributes[LOG_CLAIM(fn)] = { nameFormat: '', value: out.logs };
    } else {
      for (const c of response.append_claims ?? []) {
        const { key, value } = deref(c, 'append_claims');
        if (key.startsWith(RESERVED_PREFIX)) continue;
        if (out.claims[key] === undefined || out.claims[key] === null) out.claims[key] = value;
        else out.logs.push(`key ${goQuote(key)} already exists`);
      }
      out.logs.push(...(response.append_log_claims ?? []));
      if (out.logs.length) out.claims[LOG_CLAIM(fn)] = out.logs;
    }
  } catch (e) {
    if (!(e instanceof Panic)) throw e;
    return { ...out, ok: false, error: { target: null, reason: e.message } };
  }
  return out;
}

// ---- a stand-in target ----

const SIGNATURE_TOLERANCE_S = 300;

function signatureValid(header, raw, key) {
  const t = /^t=(\d+),/.exec(header ?? '')?.[1];
  if (t === undefined || Math.floor(Date.now() / 1000) - Number(t) > SIGNATURE_TOLERANCE_S) return false;
  return header === signatureHeader(raw, key, t); // ZITADEL sends exactly one v1
}

/**
 * A target on 127.0.0.1: checks the ZITADEL-Signature of each call (401 if wrong), parses the JSON
 * payload (the parsed JSON, or null for a JWT or JWE body) and answers `await answer(payload, raw)` = { status = 200, body }
 * (an object is sent as JSON, a string as is, undefined as an empty body). `calls` holds the
 * accepted calls: { payload, raw (string), headers }.
 */
export async function startStandIn({ signingKey, answer = () => ({}) }) {
  const calls = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks);
    const send = (status, body = '', type = 'text/plain') => {
      if (res.socket && !res.socket.destroyed) res.writeHead(status, { 'Content-Type': type }).end(body);
    };
    if (!signatureValid(req.headers[SIGNATURE_HEADER.toLowerCase()], raw, signingKey)) return send(401, 'bad signature');
    const parsed = parseJson(raw.toString('utf8'));
    const payload = parsed.ok ? parsed.value : null;
    calls.push({ payload, raw: raw.toString('utf8'), headers: req.headers });
    try {
      const { status = 200, body } = (await answer(payload, raw.toString('utf8'))) ?? {};
      if (body === undefined) send(status);
      else if (typeof body === 'string') send(status, body, 'application/json');
      else send(status, JSON.stringify(body), 'application/json');
    } catch (e) {
      send(500, String(e?.stack ?? e));
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    calls,
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
}
