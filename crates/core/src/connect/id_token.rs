//! The two ID tokens of the flow. ZITADEL's (who the user is) is checked in full: its signature
//! elsewhere (the `Crypto` port and the instance's key set), its claims here, as OpenID Connect Core
//! §3.1.3.7 lists them. Microsoft's (which Microsoft account signed in) is only read: it comes
//! straight from Microsoft's token endpoint over TLS, in answer to a request the worker
//! authenticated, and §3.1.3.7 (6) lets TLS stand in for its signature there.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::digest::CtOutput;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What ZITADEL's ID token must say, from the settings and from the flow's own state.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The issuers to accept, compared as exact strings (ZITADEL's `iss` is the instance URL it
    /// was reached at: list each one the worker may be sent through).
    pub issuers: &'a [String],
    /// The worker's OIDC application's client ID.
    pub client_id: &'a str,
    /// The nonce the worker sent in its authorization request.
    pub nonce: &'a str,
    /// The clock difference tolerated on `exp` and `iat`, in seconds.
    pub leeway_s: u64,
}

/// Why an ID token's claims were refused. Neither the code nor the message carries a claim value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenError {
    /// Not a JSON object, or a claim of the wrong type.
    Malformed,
    /// A claim the check needs is absent: `iss`, `aud`, `exp`, `nonce` or `sub`.
    MissingClaim(&'static str),
    /// `iss` is none of the expected issuers.
    Issuer,
    /// `aud` does not contain the client ID.
    Audience,
    /// `azp` is not the client ID, or is absent while `aud` has several values.
    AuthorizedParty,
    /// `exp` has passed, beyond the leeway.
    Expired,
    /// `iat` is in the future, beyond the leeway.
    IssuedInFuture,
    /// `nonce` is not the one the worker sent.
    Nonce,
    /// `sub` is empty.
    Subject,
}

impl IdTokenError {
    /// The code for logs.
    pub fn code(self) -> &'static str {
        match self {
            IdTokenError::Malformed => "id_token_malformed",
            IdTokenError::MissingClaim(_) => "id_token_missing_claim",
            IdTokenError::Issuer => "id_token_issuer",
            IdTokenError::Audience => "id_token_audience",
            IdTokenError::AuthorizedParty => "id_token_azp",
            IdTokenError::Expired => "id_token_expired",
            IdTokenError::IssuedInFuture => "id_token_issued_in_future",
            IdTokenError::Nonce => "id_token_nonce",
            IdTokenError::Subject => "id_token_subject",
        }
    }
}

impl std::fmt::Display for IdTokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdTokenError::Malformed => f.write_str("the ID token's payload is not a JSON object of the expected types"),
            IdTokenError::MissingClaim(claim) => write!(f, "the ID token has no `{claim}`"),
            IdTokenError::Issuer => f.write_str("the ID token's `iss` is not an expected issuer"),
            IdTokenError::Audience => f.write_str("the ID token's `aud` does not contain the client ID"),
            IdTokenError::AuthorizedParty => f.write_str("the ID token's `azp` is not the client ID"),
            IdTokenError::Expired => f.write_str("the ID token has expired"),
            IdTokenError::IssuedInFuture => f.write_str("the ID token's `iat` is in the future"),
            IdTokenError::Nonce => f.write_str("the ID token's `nonce` is not the one sent"),
            IdTokenError::Subject => f.write_str("the ID token's `sub` is empty"),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Audience>,
    azp: Option<String>,
    exp: Option<f64>,
    iat: Option<f64>,
    nonce: Option<String>,
    sub: Option<String>,
}

/// The `sub` of ZITADEL's ID token (the ZITADEL user ID), once its claims pass OIDC Core §3.1.3.7:
/// `iss` is one of `expected.issuers` exactly (2); `aud`, a string or an array, contains the
/// client ID (3); `azp`, if present, is the client ID, and must be present when `aud` has several
/// values (4, 5: ZITADEL's `aud` also lists the project and its other apps, and it always sets
/// `azp`); `exp` is after `now_s` less the leeway (9); `iat`, if present, is not after `now_s`
/// plus the leeway (10); `nonce` is the one sent, compared in constant time (11); and `sub` is
/// not empty. The signature must have been verified before: this reads the payload as trusted.
pub fn check_claims(payload_json: &[u8], expected: &Expected, now_s: u64) -> Result<String, IdTokenError> {
    let claims: Claims = read_object(payload_json).ok_or(IdTokenError::Malformed)?;
    let iss = claims.iss.ok_or(IdTokenError::MissingClaim("iss"))?;
    if !expected.issuers.contains(&iss) {
        return Err(IdTokenError::Issuer);
    }
    let audiences = match claims.aud.ok_or(IdTokenError::MissingClaim("aud"))? {
        Audience::One(aud) => vec![aud],
        Audience::Many(auds) => auds,
    };
    if !audiences.iter().any(|a| a == expected.client_id) {
        return Err(IdTokenError::Audience);
    }
    match claims.azp {
        Some(azp) if azp != expected.client_id => return Err(IdTokenError::AuthorizedParty),
        None if audiences.len() > 1 => return Err(IdTokenError::AuthorizedParty),
        _ => {}
    }
    let exp = seconds(claims.exp.ok_or(IdTokenError::MissingClaim("exp"))?);
    if exp.saturating_add(expected.leeway_s) <= now_s {
        return Err(IdTokenError::Expired);
    }
    if claims.iat.is_some_and(|iat| seconds(iat) > now_s.saturating_add(expected.leeway_s)) {
        return Err(IdTokenError::IssuedInFuture);
    }
    let nonce = claims.nonce.ok_or(IdTokenError::MissingClaim("nonce"))?;
    if expected.nonce.is_empty() || !same_in_constant_time(&nonce, expected.nonce) {
        return Err(IdTokenError::Nonce);
    }
    let sub = claims.sub.ok_or(IdTokenError::MissingClaim("sub"))?;
    if sub.is_empty() {
        return Err(IdTokenError::Subject);
    }
    Ok(sub)
}

/// A NumericDate as whole seconds: the fraction dropped, a time before 1970 as 0, one beyond
/// `u64` as its maximum.
pub(crate) fn seconds(numeric_date: f64) -> u64 {
    numeric_date as u64 // `as` saturates and maps NaN to 0
}

/// Equal strings, compared through their SHA-256 digests in constant time, so neither the
/// position of the first difference nor the length shows in the time taken.
pub(crate) fn same_in_constant_time(a: &str, b: &str) -> bool {
    CtOutput::<Sha256>::new(Sha256::digest(a)) == CtOutput::new(Sha256::digest(b))
}

/// The claims of a JSON object. serde's derived structs also accept an array (fields by position),
/// which no JWT payload is.
pub(crate) fn read_object<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// What the worker reads of Microsoft's ID token, each claim as Microsoft sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MicrosoftIdClaims {
    /// The account's object ID: Graph's `/me` `id` for a work or school account (see `account.rs`).
    pub oid: Option<String>,
    /// The pairwise subject, one per application.
    pub sub: Option<String>,
    /// The tenant; `9188040d-6c67-4c5b-b112-36a304b66dad` for personal accounts.
    pub tid: Option<String>,
    /// The account's sign-in name, for people (it can change, and is not unique across tenants).
    pub preferred_username: Option<String>,
    /// An opaque hint for a later sign-in (`login_hint` of an authorization request).
    pub login_hint: Option<String>,
}

/// The claims of Microsoft's ID token (a JWS in compact form), read without checking its
/// signature. Only for the token received straight from Microsoft's token endpoint over TLS
/// (OpenID Connect Core §3.1.3.7 (6)); never for a token that came through the browser. `None` if
/// it is not three base64url parts with a JSON object in the middle, or a known claim has the
/// wrong type.
pub fn unverified_claims(jwt: &str) -> Option<MicrosoftIdClaims> {
    let mut parts = jwt.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    read_object(&URL_SAFE_NO_PAD.decode(payload).ok()?)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    const NOW: u64 = 1_760_000_000;
    const CLIENT: &str = "312345678901234567@worker";

    fn issuers() -> Vec<String> {
        vec!["https://id.example.com".into(), "https://auth.example.org".into()]
    }

    /// ZITADEL's claims as `createIDToken` sets them: the project and the client in `aud`, `azp`.
    fn zitadel() -> Value {
        json!({
            "iss": "https://id.example.com", "sub": "287654321098765432",
            "aud": ["312345678901234567@worker", "312345678901234500"], "azp": CLIENT, "client_id": CLIENT,
            "exp": NOW + 3600, "iat": NOW - 5, "auth_time": NOW - 60, "nonce": "n-0S6_WzA2Mj", "amr": ["pwd"],
            "sid": "V1_301234",
        })
    }

    fn check(claims: &Value) -> Result<String, IdTokenError> {
        check_at(claims, NOW)
    }

    fn check_at(claims: &Value, now: u64) -> Result<String, IdTokenError> {
        let issuers = issuers();
        let expected = Expected { issuers: &issuers, client_id: CLIENT, nonce: "n-0S6_WzA2Mj", leeway_s: 60 };
        check_claims(serde_json::to_string(claims).unwrap().as_bytes(), &expected, now)
    }

    fn with(changes: Value) -> Value {
        let mut claims = zitadel();
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    #[test]
    fn zitadels_id_token_gives_its_sub() {
        assert_eq!(check(&zitadel()).as_deref(), Ok("287654321098765432"));
        assert!(check(&with(json!({"iss": "https://auth.example.org"}))).is_ok());
        assert!(check(&with(json!({"aud": CLIENT, "azp": null}))).is_ok());
        assert!(check(&with(json!({"iat": null}))).is_ok());
    }

    #[test]
    fn iss_must_be_one_of_the_issuers_exactly() {
        for iss in ["https://id.example.com/", "https://ID.example.com", "https://evil.example", ""] {
            assert_eq!(check(&with(json!({ "iss": iss }))), Err(IdTokenError::Issuer), "{iss}");
        }
        assert_eq!(check(&with(json!({"iss": null}))), Err(IdTokenError::MissingClaim("iss")));
    }

    #[test]
    fn aud_must_contain_the_client_id() {
        assert_eq!(check(&with(json!({"aud": ["312345678901234500"]}))), Err(IdTokenError::Audience));
        assert_eq!(check(&with(json!({"aud": "312345678901234500"}))), Err(IdTokenError::Audience));
        assert_eq!(check(&with(json!({"aud": []}))), Err(IdTokenError::Audience));
        assert_eq!(check(&with(json!({"aud": ["312345678901234567@WORKER"]}))), Err(IdTokenError::Audience));
        assert_eq!(check(&with(json!({"aud": null}))), Err(IdTokenError::MissingClaim("aud")));
        assert_eq!(check(&with(json!({"aud": [CLIENT, 7]}))), Err(IdTokenError::Malformed));
    }

    #[test]
    fn azp_must_be_the_client_id_and_present_with_several_audiences() {
        assert_eq!(check(&with(json!({"azp": "312345678901234500"}))), Err(IdTokenError::AuthorizedParty));
        assert_eq!(check(&with(json!({"azp": null}))), Err(IdTokenError::AuthorizedParty));
        assert_eq!(check(&with(json!({"aud": [CLIENT], "azp": null}))).as_deref(), Ok("287654321098765432"));
    }

    #[test]
    fn exp_must_be_after_now_less_the_leeway() {
        let exp = NOW + 3600;
        assert!(check_at(&zitadel(), exp + 59).is_ok());
        assert_eq!(check_at(&zitadel(), exp + 60), Err(IdTokenError::Expired));
        assert!(check_at(&with(json!({"exp": (NOW - 59) as f64 + 0.5})), NOW).is_ok());
        assert_eq!(check(&with(json!({"exp": NOW - 60}))), Err(IdTokenError::Expired));
        assert_eq!(check(&with(json!({"exp": -1}))), Err(IdTokenError::Expired));
        assert_eq!(check(&with(json!({"exp": null}))), Err(IdTokenError::MissingClaim("exp")));
        assert_eq!(check(&with(json!({"exp": "tomorrow"}))), Err(IdTokenError::Malformed));
        assert!(check_at(&with(json!({"exp": 1e300})), NOW * 1000).is_ok());
        assert_eq!(check_at(&with(json!({"exp": 1e300})), u64::MAX), Err(IdTokenError::Expired));
    }

    #[test]
    fn iat_must_not_be_in_the_future_beyond_the_leeway() {
        assert!(check(&with(json!({"iat": NOW + 60}))).is_ok());
        assert_eq!(check(&with(json!({"iat": NOW + 61}))), Err(IdTokenError::IssuedInFuture));
        assert!(check_at(&with(json!({"iat": 0})), u64::MAX - 1).is_err_and(|e| e == IdTokenError::Expired));
    }

    #[test]
    fn nonce_must_be_the_one_sent() {
        for nonce in ["n-0S6_WzA2Mk", "n-0S6_WzA2M", "n-0S6_WzA2Mj ", "N-0S6_WZA2MJ", ""] {
            assert_eq!(check(&with(json!({ "nonce": nonce }))), Err(IdTokenError::Nonce), "{nonce}");
        }
        assert_eq!(check(&with(json!({"nonce": null}))), Err(IdTokenError::MissingClaim("nonce")));
        let issuers = issuers();
        let none_sent = Expected { issuers: &issuers, client_id: CLIENT, nonce: "", leeway_s: 60 };
        let payload = serde_json::to_vec(&with(json!({"nonce": ""}))).unwrap();
        assert_eq!(check_claims(&payload, &none_sent, NOW), Err(IdTokenError::Nonce));
    }

    #[test]
    fn sub_must_not_be_empty() {
        assert_eq!(check(&with(json!({"sub": ""}))), Err(IdTokenError::Subject));
        assert_eq!(check(&with(json!({"sub": null}))), Err(IdTokenError::MissingClaim("sub")));
    }

    #[test]
    fn a_payload_that_is_not_a_json_object_is_malformed() {
        let issuers = issuers();
        let expected = Expected { issuers: &issuers, client_id: CLIENT, nonce: "n-0S6_WzA2Mj", leeway_s: 60 };
        let positional =
            format!(r#"["https://id.example.com",["{CLIENT}"],"{CLIENT}",{},null,"n-0S6_WzA2Mj","u"]"#, NOW + 60);
        for payload in ["", "null", "[]", "\"x\"", "{", positional.as_str()] {
            assert_eq!(check_claims(payload.as_bytes(), &expected, NOW), Err(IdTokenError::Malformed), "{payload}");
        }
        let twice = r#"{"sub":"a","sub":"b"}"#;
        assert_eq!(check_claims(twice.as_bytes(), &expected, NOW), Err(IdTokenError::Malformed));
    }

    #[test]
    fn each_refusal_has_its_own_code_and_a_missing_claim_is_named_not_valued() {
        let errors = [
            IdTokenError::Malformed,
            IdTokenError::MissingClaim("exp"),
            IdTokenError::Issuer,
            IdTokenError::Audience,
            IdTokenError::AuthorizedParty,
            IdTokenError::Expired,
            IdTokenError::IssuedInFuture,
            IdTokenError::Nonce,
            IdTokenError::Subject,
        ];
        let codes: std::collections::BTreeSet<_> = errors.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), errors.len());
        assert_eq!(IdTokenError::MissingClaim("exp").to_string(), "the ID token has no `exp`");
    }

    fn jwt(payload: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        format!("{}.{}.c2lnbmF0dXJl", part(&json!({"typ": "JWT", "alg": "RS256", "kid": "k"})), part(payload))
    }

    #[test]
    fn microsofts_id_token_is_read_without_its_signature() {
        let token = jwt(&json!({
            "aud": "6731de76-14a6-49ae-97bc-6eba6914391e",
            "iss": "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            "oid": "00000000-0000-0000-fde9-26f844473904", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "tid": "9188040d-6c67-4c5b-b112-36a304b66dad", "preferred_username": "user@outlook.com",
            "login_hint": "O.CiQ…", "name": "A User", "ver": "2.0",
        }));
        let claims = unverified_claims(&token).unwrap();
        assert_eq!(claims.oid.as_deref(), Some("00000000-0000-0000-fde9-26f844473904"));
        assert_eq!(claims.sub.as_deref(), Some("AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"));
        assert_eq!(claims.tid.as_deref(), Some("9188040d-6c67-4c5b-b112-36a304b66dad"));
        assert_eq!(claims.preferred_username.as_deref(), Some("user@outlook.com"));
        assert_eq!(claims.login_hint.as_deref(), Some("O.CiQ…"));
        assert_eq!(unverified_claims(&jwt(&json!({}))), Some(MicrosoftIdClaims::default()));
    }

    #[test]
    fn what_is_not_a_compact_jws_with_a_json_object_payload_reads_as_none() {
        let good = jwt(&json!({"oid": "x"}));
        let payload = good.split('.').nth(1).unwrap();
        for token in [
            String::new(),
            "a.b".into(),
            format!("h.{payload}"),
            format!("h.{payload}.s.x.y"),
            format!("h.{payload}=.s"),
            format!("h.{}.s", URL_SAFE_NO_PAD.encode("[\"x\"]")),
            format!("h.{}.s", URL_SAFE_NO_PAD.encode("not json")),
            jwt(&json!({"oid": 7})),
        ] {
            assert_eq!(unverified_claims(&token), None, "{token}");
        }
    }
}
