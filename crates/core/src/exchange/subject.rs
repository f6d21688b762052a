//! The subject token of an exchange (and the Bearer token of `/connections`): a ZITADEL access
//! token, whose claims say who the user is and which client it was issued to. A JWT's claims are
//! read here once its signature has verified; an opaque token's come from introspection.

use serde::Deserialize;

use crate::connect::id_token::{read_object, same_in_constant_time, seconds};
use crate::upstream::exchange::Introspection;

/// Who a subject token speaks for, once accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The ZITADEL user (`sub`).
    pub user_id: String,
    /// The client the token was issued to (`client_id`).
    pub client_id: String,
}

/// Why a subject token was refused. Neither the code nor the message holds a claim value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectError {
    /// Not a JSON object of the expected types, or not a JWT where one was announced.
    Malformed,
    /// The signature does not verify under the instance's keys.
    Signature,
    /// `iss` is none of the accepted issuers.
    Issuer,
    /// `exp` has passed (or is absent).
    Expired,
    /// `nbf` or `iat` lies in the future.
    NotYetValid,
    /// Introspection says the token is not active (revoked, expired, unknown).
    Inactive,
    /// `sub` is absent or empty.
    NoSubject,
    /// `client_id` is absent, or names a client other than the one allowed.
    OtherClient,
    /// `act` is present: the token was issued to someone impersonating the user.
    Impersonated,
    /// An ID token (`at_hash` or `nonce`), not an access token: ZITADEL's ID tokens carry
    /// `client_id` too, but they are the client's proof of a sign-in, not a grant to pass on.
    IdToken,
}

impl SubjectError {
    /// The code for logs.
    pub fn code(self) -> &'static str {
        match self {
            SubjectError::Malformed => "subject_token_malformed",
            SubjectError::Signature => "subject_token_signature",
            SubjectError::Issuer => "subject_token_issuer",
            SubjectError::Expired => "subject_token_expired",
            SubjectError::NotYetValid => "subject_token_not_yet_valid",
            SubjectError::Inactive => "subject_token_inactive",
            SubjectError::NoSubject => "subject_token_without_sub",
            SubjectError::OtherClient => "subject_token_other_client",
            SubjectError::Impersonated => "subject_token_impersonated",
            SubjectError::IdToken => "subject_token_is_an_id_token",
        }
    }

    /// A sentence for the client (RFC 6749 `error_description`).
    pub fn description(self) -> &'static str {
        match self {
            SubjectError::Malformed => "the subject token is not a ZITADEL access token of the announced type",
            SubjectError::Signature => "the subject token's signature does not verify under the instance's keys",
            SubjectError::Issuer => "the subject token was not issued by this ZITADEL instance",
            SubjectError::Expired => "the subject token has expired",
            SubjectError::NotYetValid => "the subject token is not valid yet",
            SubjectError::Inactive => "the subject token is not active",
            SubjectError::NoSubject => "the subject token names no user",
            SubjectError::OtherClient => "the subject token was not issued to this client",
            SubjectError::Impersonated => {
                "the subject token was issued to someone acting for the user (impersonation): it is never exchanged"
            }
            SubjectError::IdToken => "the subject token is an ID token: send the user's access token",
        }
    }
}

/// What the checks read of a token, from a JWT or from introspection.
#[derive(Debug, Default, Deserialize)]
pub struct TokenClaims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(default)]
    act: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    at_hash: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    nonce: Option<serde::de::IgnoredAny>,
}

/// The claims of a verified JWT access token: `iss` is one of `issuers` (exact strings), `exp`
/// is after `now_s` less `leeway_s`, and `nbf` and `iat`, when present, are not after `now_s`
/// plus `leeway_s`. An ID token (`at_hash` or `nonce`, which ZITADEL's access tokens never
/// carry) is refused.
pub fn jwt_claims(payload: &[u8], issuers: &[String], now_s: u64, leeway_s: u64) -> Result<TokenClaims, SubjectError> {
    let claims: TokenClaims = read_object(payload).ok_or(SubjectError::Malformed)?;
    if !claims.iss.as_ref().is_some_and(|iss| issuers.contains(iss)) {
        return Err(SubjectError::Issuer);
    }
    let exp = claims.exp.ok_or(SubjectError::Expired)?;
    if seconds(exp).saturating_add(leeway_s) <= now_s {
        return Err(SubjectError::Expired);
    }
    let future = |t: Option<f64>| t.is_some_and(|t| seconds(t) > now_s.saturating_add(leeway_s));
    if future(claims.nbf) || future(claims.iat) {
        return Err(SubjectError::NotYetValid);
    }
    if claims.at_hash.is_some() || claims.nonce.is_some() {
        return Err(SubjectError::IdToken);
    }
    Ok(claims)
}

/// The claims of an introspection answer: active, and not expired at `now_s` (ZITADEL checks
/// that itself; a past `exp` is refused all the same).
pub fn introspected_claims(answer: Introspection, now_s: u64) -> Result<TokenClaims, SubjectError> {
    if !answer.active {
        return Err(SubjectError::Inactive);
    }
    if answer.exp.is_some_and(|exp| seconds(exp) <= now_s) {
        return Err(SubjectError::Expired);
    }
    Ok(TokenClaims {
        sub: answer.sub,
        client_id: answer.client_id,
        exp: answer.exp,
        act: answer.act,
        ..TokenClaims::default()
    })
}

/// The subject of `claims`, when the token speaks for the user itself (no `act`) and was issued
/// to a client `allowed` accepts. `aud` is no proof of that: ZITADEL lists every application of
/// the project in it.
pub fn subject(claims: TokenClaims, allowed: impl Fn(&str) -> bool) -> Result<Subject, SubjectError> {
    if claims.act.is_some() {
        return Err(SubjectError::Impersonated);
    }
    let client_id = claims.client_id.filter(|c| allowed(c)).ok_or(SubjectError::OtherClient)?;
    let user_id = claims.sub.filter(|s| !s.is_empty()).ok_or(SubjectError::NoSubject)?;
    Ok(Subject { user_id, client_id })
}

/// True when `client_id` is `expected`, compared in constant time.
pub fn is_client(client_id: &str, expected: &str) -> bool {
    same_in_constant_time(client_id, expected)
}

/// True when `token` has the shape of a compact JWS: three non-empty base64url parts.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let is_part = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    };
    is_part(parts.next()) && is_part(parts.next()) && is_part(parts.next()) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn issuers() -> Vec<String> {
        vec!["https://z.example".into(), "https://login.example.com".into()]
    }

    fn claims(value: serde_json::Value) -> Result<TokenClaims, SubjectError> {
        jwt_claims(value.to_string().as_bytes(), &issuers(), NOW, 60)
    }

    fn token(extra: serde_json::Value) -> serde_json::Value {
        let mut base = json!({"iss": "https://z.example", "sub": "u1", "client_id": "app@p",
            "aud": ["app@p", "other@p", "project"], "exp": NOW + 600, "iat": NOW - 10, "nbf": NOW - 10});
        base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        base
    }

    #[test]
    fn an_access_token_of_the_instance_for_the_client_is_accepted() {
        let subject = subject(claims(token(json!({}))).unwrap(), |c| c == "app@p").unwrap();
        assert_eq!(subject, Subject { user_id: "u1".into(), client_id: "app@p".into() });
        let custom_domain = claims(token(json!({"iss": "https://login.example.com"})));
        assert!(custom_domain.is_ok(), "every issuer of ZITADEL_ISSUERS counts");
    }

    #[test]
    fn the_issuer_and_the_times_are_checked() {
        assert_eq!(claims(token(json!({"iss": "https://evil.example"}))).err(), Some(SubjectError::Issuer));
        assert_eq!(claims(token(json!({"iss": null}))).err(), Some(SubjectError::Issuer));
        assert_eq!(claims(token(json!({"exp": NOW - 61}))).err(), Some(SubjectError::Expired));
        assert!(claims(token(json!({"exp": NOW - 59}))).is_ok(), "within the leeway");
        assert_eq!(claims(token(json!({"exp": null}))).err(), Some(SubjectError::Expired));
        assert_eq!(claims(token(json!({"nbf": NOW + 120}))).err(), Some(SubjectError::NotYetValid));
        assert_eq!(claims(token(json!({"iat": NOW + 120}))).err(), Some(SubjectError::NotYetValid));
        assert_eq!(claims(json!([1, 2])).err(), Some(SubjectError::Malformed));
        assert_eq!(claims(token(json!({"sub": 7}))).err(), Some(SubjectError::Malformed));
    }

    #[test]
    fn an_id_token_is_no_access_token_though_it_names_the_client() {
        // ZITADEL's ID tokens carry azp, client_id, auth_time, at_hash and the nonce asked for.
        let id_token = token(json!({"azp": "app@p", "auth_time": NOW - 10, "at_hash": "x1", "amr": ["pwd"]}));
        assert_eq!(claims(id_token).err(), Some(SubjectError::IdToken));
        assert_eq!(claims(token(json!({"nonce": "n"}))).err(), Some(SubjectError::IdToken));
    }

    #[test]
    fn the_audience_is_no_proof_only_client_id_is() {
        let other = claims(token(json!({"client_id": "other@p"}))).unwrap();
        assert_eq!(subject(other, |c| c == "app@p").err(), Some(SubjectError::OtherClient));
        let none = claims(token(json!({"client_id": null}))).unwrap();
        assert_eq!(subject(none, |c| c == "app@p").err(), Some(SubjectError::OtherClient));
    }

    #[test]
    fn an_impersonation_token_is_refused_whoever_it_was_issued_to() {
        let acted = claims(token(json!({"act": {"sub": "admin-user"}}))).unwrap();
        assert_eq!(subject(acted, |_| true).err(), Some(SubjectError::Impersonated));
    }

    #[test]
    fn a_token_without_a_user_is_refused() {
        let empty = claims(token(json!({"sub": ""}))).unwrap();
        assert_eq!(subject(empty, |_| true).err(), Some(SubjectError::NoSubject));
    }

    #[test]
    fn introspection_must_say_active_and_is_checked_like_a_jwt() {
        let answer = |v: serde_json::Value| serde_json::from_value::<Introspection>(v).unwrap();
        let active = answer(json!({"active": true, "sub": "u1", "client_id": "app@p", "exp": NOW + 60}));
        let subject_of = |a| introspected_claims(a, NOW).and_then(|c| subject(c, |c| c == "app@p"));
        assert_eq!(subject_of(active).unwrap().user_id, "u1");
        assert_eq!(subject_of(answer(json!({"active": false}))).err(), Some(SubjectError::Inactive));
        let expired = answer(json!({"active": true, "sub": "u1", "client_id": "app@p", "exp": NOW - 1}));
        assert_eq!(subject_of(expired).err(), Some(SubjectError::Expired));
        let acted = answer(json!({"active": true, "sub": "u1", "client_id": "app@p", "act": {"sub": "a"}}));
        assert_eq!(subject_of(acted).err(), Some(SubjectError::Impersonated));
        let other = answer(json!({"active": true, "sub": "u1", "client_id": "x"}));
        assert_eq!(subject_of(other).err(), Some(SubjectError::OtherClient));
    }

    #[test]
    fn a_jwt_is_told_from_an_opaque_token_by_its_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        for opaque in ["", "abc", "a.b", "a..c", "a.b.c.d", "a.b.c=", "YWJj+/=="] {
            assert!(!looks_like_jwt(opaque), "{opaque}");
        }
    }
}
