// The V1 action zitadel/actions/storeMicrosoftTokens.js: it parses as ECMAScript 5 (what goja, the
// runtime of ZITADEL's V1 actions, accepts), and run the way ZITADEL runs it (script evaluated in a
// bare context, then the global function named like the action called with ctx and api) it stores
// exactly the metadata entries the worker reads.
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

import * as acorn from 'acorn';

const ACTION = new URL('../../zitadel/actions/storeMicrosoftTokens.js', import.meta.url);
const SOURCE = readFileSync(ACTION, 'utf8');

const ACCESS = 'microsoft_access_token';
const REFRESH = 'microsoft_refresh_token';
const EXPIRES = 'microsoft_access_token_expires_at';

const b64url = (text) => Buffer.from(text, 'utf8').toString('base64url');
const jwt = (payload, header = { alg: 'RS256', typ: 'JWT', kid: 'k1' }) =>
  `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.c2lnbmF0dXJl-_x`;

// What ZITADEL stores for appendMetadata(key, value): Go's json.Marshal(value), which escapes
// <, >, & and U+2028/U+2029 where JSON.stringify does not.
const goJsonMarshal = (value) =>
  JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

// The worker's reading rule (crates/core/src/claims/microsoft.rs, decode_text): the metadata value travels as base64
// of the stored bytes; a JSON string is unquoted.
function workerReads(storedBytes) {
  const base64 = Buffer.from(storedBytes, 'utf8').toString('base64');
  const text = Buffer.from(base64, 'base64').toString('utf8');
  try {
    const parsed = JSON.parse(text);
    return typeof parsed === 'string' ? parsed : text;
  } catch {
    return text;
  }
}

/** A fresh goja-like context with the action loaded. */
function loadAction() {
  const context = vm.createContext({});
  // V8 puts a `console` in every context; goja has none, so a use of it must fail here too.
  vm.runInContext('delete this.console;', context);
  vm.runInContext(SOURCE, context, { filename: 'storeMicrosoftTokens.js' });
  return context;
}

/** Runs the action as ZITADEL does and returns what it stored, as [key, stored bytes] pairs. */
function run(context, ctxFields) {
  const stored = [];
  const api = {
    v1: {
      user: {
        appendMetadata(key, value) {
          stored.push([key, goJsonMarshal(value)]);
        },
      },
    },
  };
  const ctx = {
    accessToken: '',
    idToken: '',
    getClaim: () => null,
    claimsJSON: () => '{}',
    ...ctxFields,
    v1: {
      authError: 'none',
      externalUser: { externalIdpId: 'ms-idp', externalId: 'entra-oid', human: { firstName: 'Ada' } },
      ...ctxFields.v1,
    },
  };
  context.storeMicrosoftTokens(ctx, api);
  return stored;
}

const EXP = 1767225600;
const OPAQUE = 'EwBwA8l6BAAUbDba3x2OMJElkF7gJ4z/+abc+def/ghi==';
const REFRESH_TOKEN = 'M.C507_BAY.0.U.-Cl4YF0*aH!sYE7rxkY$';

describe('V1 action storeMicrosoftTokens: ECMAScript 5.1', () => {
  it('parses as ECMAScript 5 (a script, as goja runs it)', () => {
    const ast = acorn.parse(SOURCE, { ecmaVersion: 5, sourceType: 'script' });
    const declared = ast.body.filter((n) => n.type === 'FunctionDeclaration').map((n) => n.id.name);
    assert.ok(declared.includes('storeMicrosoftTokens'), 'a top-level function named like the action');
    const vars = Object.fromEntries(
      ast.body
        .filter((n) => n.type === 'VariableDeclaration')
        .flatMap((n) => n.declarations)
        .map((d) => [d.id.name, d.init && d.init.value]),
    );
    assert.equal(vars.MICROSOFT_IDP_ID, '');
    assert.equal(vars.ACCESS_TOKEN_KEY, ACCESS);
    assert.equal(vars.REFRESH_TOKEN_KEY, undefined, 'ZITADEL gives actions no refresh token to store');
    assert.equal(vars.EXPIRES_AT_KEY, EXPIRES);
  });

  it('the ES5 check would catch later syntax', () => {
    for (const later of ['let a = 1;', 'var f = () => 1;', 'var s = `t`;', 'for (var x of []) {}', 'class A {}']) {
      assert.throws(() => acorn.parse(later, { ecmaVersion: 5, sourceType: 'script' }), SyntaxError, later);
    }
  });

  it('uses no globals goja lacks', () => {
    assert.doesNotMatch(SOURCE, /\b(atob|btoa|Buffer|console|require|setTimeout)\b/);
  });

  it('loads in a bare context without atob, Buffer or console', () => {
    const context = loadAction();
    assert.equal(
      vm.runInContext(
        'typeof atob + "," + typeof Buffer + "," + typeof console + "," + typeof storeMicrosoftTokens',
        context,
      ),
      'undefined,undefined,undefined,function',
    );
  });
});

describe('V1 action storeMicrosoftTokens: what it stores', () => {
  let context;
  beforeEach(() => {
    context = loadAction();
  });

  it('JWT access token with exp: token and expiry; a refreshToken in the context (which ZITADEL never sets) is not stored', () => {
    const access = jwt({ aud: '00000003-0000-0000-c000-000000000000', exp: EXP, name: 'Ada?>', oid: 'x' });
    const stored = run(context, { accessToken: access, refreshToken: REFRESH_TOKEN });
    assert.deepEqual(stored, [
      [ACCESS, `"${access}"`],
      [EXPIRES, `"${EXP}"`],
    ]);
    assert.ok(!stored.some(([key]) => key === REFRESH));
    assert.equal(workerReads(stored[0][1]), access);
    assert.equal(workerReads(stored[1][1]), String(EXP));
    assert.match(workerReads(stored[1][1]), /^\d+$/);
  });

  it('decodes payloads of every length (base64url without padding, with - and _)', () => {
    for (let extra = 0; extra < 8; extra++) {
      // ">?" and "~~" give "+", "/" in base64, hence "-", "_" in base64url.
      const payload = { exp: EXP + extra, pad: 'x'.repeat(extra), odd: '>?~~>>>?' };
      const encoded = b64url(JSON.stringify(payload));
      const access = jwt(payload);
      const stored = run(context, { accessToken: access });
      assert.deepEqual(stored, [
        [ACCESS, `"${access}"`],
        [EXPIRES, `"${EXP + extra}"`],
      ], `payload of ${encoded.length} characters`);
    }
    const encodings = new Set(
      [0, 1, 2, 3].map((n) => b64url(JSON.stringify({ exp: EXP, pad: 'x'.repeat(n), odd: '>?~~>>>?' })).length % 4),
    );
    assert.deepEqual([...encodings].sort(), [0, 2, 3], 'all unpadded lengths covered');
    assert.match(b64url('>?~~>>>?'), /[-_]/);
  });

  it('tolerates "=" padding, a fractional exp and non-ASCII text in the payload', () => {
    const payload = b64url(JSON.stringify({ exp: EXP + 0.75, name: 'Zoë Müller' }));
    const access = `eyJhbGciOiJSUzI1NiJ9.${payload}==.sig`;
    assert.deepEqual(run(context, { accessToken: access }), [
      [ACCESS, `"${access}"`],
      [EXPIRES, `"${EXP}"`],
    ]);
  });

  it('its base64url decoder agrees with Node for every length and byte, and refuses non-base64url', () => {
    for (let n = 0; n < 64; n++) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 97 + n * 31) % 256));
      const binary = context.base64UrlToBinary(bytes.toString('base64url'));
      assert.equal(binary, bytes.toString('latin1'), `${n} bytes`);
    }
    for (const bad of ['a', 'abcde', 'ab+c', 'ab/c', 'a b=', 'ab%c', 'ab=c']) {
      assert.equal(context.base64UrlToBinary(bad), null, bad);
    }
  });

  it('opaque token (personal account): token, expiry "0" (unknown)', () => {
    const stored = run(context, { accessToken: OPAQUE, refreshToken: REFRESH_TOKEN });
    assert.deepEqual(stored, [
      [ACCESS, `"${OPAQUE}"`],
      [EXPIRES, '"0"'],
    ]);
    assert.equal(workerReads(stored[0][1]), OPAQUE);
  });

  it('no refresh token (undefined on older ZITADEL, or ""): only the access token (and expiry)', () => {
    const access = jwt({ exp: EXP });
    for (const refreshToken of [undefined, '', null]) {
      const fields = refreshToken === undefined ? { accessToken: OPAQUE } : { accessToken: OPAQUE, refreshToken };
      assert.deepEqual(run(context, fields), [[ACCESS, `"${OPAQUE}"`], [EXPIRES, '"0"']], `refreshToken ${refreshToken}`);
      assert.deepEqual(run(context, { ...fields, accessToken: access }), [
        [ACCESS, `"${access}"`],
        [EXPIRES, `"${EXP}"`],
      ]);
    }
  });

  it('no access token: nothing stored, even with a refresh token', () => {
    for (const accessToken of ['', undefined, null]) {
      assert.deepEqual(run(context, { accessToken, refreshToken: REFRESH_TOKEN }), [], `accessToken ${accessToken}`);
    }
  });

  it('failed external login: nothing stored', () => {
    const stored = run(context, {
      accessToken: jwt({ exp: EXP }),
      refreshToken: REFRESH_TOKEN,
      v1: { authError: 'ID-1a2b3: the external login failed' },
    });
    assert.deepEqual(stored, []);
  });

  it('MICROSOFT_IDP_ID set: other identity providers are skipped, Microsoft is stored', () => {
    vm.runInContext('MICROSOFT_IDP_ID = "x"', context);
    const fields = { accessToken: OPAQUE, refreshToken: REFRESH_TOKEN };
    assert.deepEqual(run(context, { ...fields, v1: { externalUser: { externalIdpId: 'google', externalId: '1' } } }), []);
    assert.deepEqual(run(context, { ...fields, v1: { externalUser: undefined } }), []);
    assert.deepEqual(run(context, { ...fields, v1: { externalUser: { externalIdpId: 'x', externalId: '1' } } }), [
      [ACCESS, `"${OPAQUE}"`],
      [EXPIRES, '"0"'],
    ]);
  });

  it('MICROSOFT_IDP_ID empty (the default): every provider is stored', () => {
    const stored = run(context, { accessToken: OPAQUE, v1: { externalUser: { externalIdpId: 'google' } } });
    assert.deepEqual(stored, [[ACCESS, `"${OPAQUE}"`], [EXPIRES, '"0"']]);
  });

  it('garbage that looks like a JWT: token stored, expiry "0", no exception', () => {
    const garbage = [
      'a.%%%.b',
      'a.b.c',
      'a..c',
      '..',
      'a.eyJleHAiOjF9',
      'a.eyJleHAiOjF9.b.c',
      `a.${b64url('not json')}.b`,
      `a.${b64url('null')}.b`,
      `a.${b64url('[1]')}.b`,
      `a.${b64url('"exp"')}.b`,
      `a.${b64url('{"exp":"1767225600"}')}.b`,
      `a.${b64url('{"exp":1e400}')}.b`,
      `a.${b64url('{"exp":-5}')}.b`,
      `a.${b64url('{"exp":null}')}.b`,
      `a.${b64url('{"nbf":1}')}.b`,
      `a.${Buffer.from('{"exp":1}').toString('base64').replace(/=+$/, '')}+/.b`,
    ];
    for (const token of garbage) {
      assert.deepEqual(run(context, { accessToken: token }), [[ACCESS, goJsonMarshal(token)], [EXPIRES, '"0"']], token);
    }
  });

  it('tokens with characters json.Marshal escapes still round-trip', () => {
    const odd = 'tok<en>&more\u2028';
    const stored = run(context, { accessToken: odd });
    assert.deepEqual(stored, [[ACCESS, '"tok\\u003cen\\u003e\\u0026more\\u2028"'], [EXPIRES, '"0"']]);
    assert.equal(workerReads(stored[0][1]), odd);
  });
});
