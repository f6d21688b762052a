/*
 * storeMicrosoftTokens: a ZITADEL V1 action (Login V1 only).
 *
 * What it does
 *   After a user signed in through ZITADEL's Microsoft (Entra ID) identity provider, it stores the
 *   access token Microsoft returned as user metadata, for the claims worker to pass on:
 *     microsoft_access_token             the access token
 *     microsoft_access_token_expires_at  the access token's expiry in Unix seconds when the token
 *                                        is a JWT with an "exp" (work and school accounts); "0" for
 *                                        the opaque tokens of personal accounts (unknown), so that no
 *                                        expiry left from an earlier sign-in outlives the new token
 *   The keys must match the worker's settings MS_TOKEN_METADATA_KEY and
 *   MS_TOKEN_EXPIRES_AT_METADATA_KEY (defaults below).
 *
 *   No refresh token: ZITADEL never hands the identity provider's refresh token to an action
 *   (actions get ctx.accessToken, ctx.idToken, ctx.getClaim and ctx.claimsJSON; there is no
 *   ctx.refreshToken). So the token stored here lives as long as Microsoft's access token, about
 *   an hour after the sign-in. For tokens that last, users connect their Microsoft account at the
 *   worker (GET /connect/microsoft, see docs/microsoft-graph.md), which obtains a refresh token of
 *   its own. With TOKEN_SEALING_KEY set, the worker passes on a token stored in clear by this
 *   action only with MS_ACCEPT_UNSEALED=true.
 *   It stores nothing when the external login failed or the provider returned no access token, and
 *   it never logs a token.
 *
 * Where to attach it (ZITADEL Console, organization of the users, or instance-wide)
 *   1. Actions -> New: name "storeMicrosoftTokens" (ZITADEL calls the function with the action's
 *      name), paste this file as the script, turn "Allowed to fail" on (recommended: a problem
 *      storing the tokens then never blocks a login).
 *   2. Flows -> "External Authentication" -> trigger "Post Authentication" -> add the action.
 *   3. Microsoft identity provider: scopes "openid profile email User.Read" (or the Graph scopes
 *      your application needs).
 *
 * MICROSOFT_IDP_ID (optional, recommended when other identity providers exist)
 *   The ID of the Microsoft identity provider in ZITADEL (Console -> Settings -> Identity
 *   Providers -> the provider: the ID is shown on its page and in its URL). When set, tokens of any
 *   other provider (Google, GitHub, ...) are never stored under the Microsoft keys. Empty: the
 *   tokens of every external login are stored.
 *
 * Login V2: instances on the new login (Login V2) do not run V1 actions. There the worker captures
 * the tokens itself, as an Actions V2 response target of RetrieveIdentityProviderIntent (see the
 * README).
 *
 * ECMAScript 5.1 only (ZITADEL runs V1 actions in goja): no let/const, arrow functions, template
 * literals, and no browser or Node.js globals (hence the small base64url decoder below).
 */

var MICROSOFT_IDP_ID = "";

var ACCESS_TOKEN_KEY = "microsoft_access_token";
var EXPIRES_AT_KEY = "microsoft_access_token_expires_at";

var BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url (no padding; trailing "=" tolerated) -> binary string, or null when not base64url. */
function base64UrlToBinary(text) {
  var end = text.length;
  while (end > 0 && text.charAt(end - 1) === "=") {
    end--;
  }
  if (end % 4 === 1) {
    return null;
  }
  var out = "";
  var acc = 0;
  var bits = 0;
  for (var i = 0; i < end; i++) {
    var value = BASE64URL_ALPHABET.indexOf(text.charAt(i));
    if (value < 0) {
      return null;
    }
    acc = (acc << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((acc >> bits) & 0xff);
      acc &= (1 << bits) - 1;
    }
  }
  return out;
}

/* The "exp" of a JWT as a string of digits (Unix seconds), or null when it cannot be known. The
 * signature is not checked: this is only a hint for when to refresh. */
function jwtExpiry(token) {
  var parts = token.split(".");
  if (parts.length !== 3) {
    return null;
  }
  var payload = base64UrlToBinary(parts[1]);
  if (payload === null) {
    return null;
  }
  var claims;
  try {
    claims = JSON.parse(payload);
  } catch (e) {
    return null;
  }
  if (claims === null || typeof claims !== "object") {
    return null;
  }
  var exp = claims.exp;
  if (typeof exp !== "number" || !isFinite(exp) || exp <= 0 || exp >= 1e15) {
    return null;
  }
  return String(Math.floor(exp));
}

function isFilledString(value) {
  return typeof value === "string" && value !== "";
}

function storeMicrosoftTokens(ctx, api) {
  var v1 = ctx && ctx.v1;
  if (v1 && v1.authError !== undefined && v1.authError !== null && v1.authError !== "" && v1.authError !== "none") {
    return;
  }
  if (MICROSOFT_IDP_ID !== "") {
    var externalUser = v1 && v1.externalUser;
    if (!externalUser || externalUser.externalIdpId !== MICROSOFT_IDP_ID) {
      return;
    }
  }
  var accessToken = ctx && ctx.accessToken;
  if (!isFilledString(accessToken)) {
    return;
  }

  api.v1.user.appendMetadata(ACCESS_TOKEN_KEY, accessToken);
  var expiresAt = null;
  try {
    expiresAt = jwtExpiry(accessToken);
  } catch (e) {
    expiresAt = null;
  }
  api.v1.user.appendMetadata(EXPIRES_AT_KEY, expiresAt === null ? "0" : expiresAt);
}
