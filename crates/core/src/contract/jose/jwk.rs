//! The instance's key set (JWKS, RFC 7517 §5) and its public keys, as the checks read them, and the
//! NIST curves that ECDSA and ECDH-ES keys are on.

use serde_json::value::RawValue;

use super::{members, strings};
use crate::contract::json;

/// An elliptic curve of the NIST family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    pub fn from_name(name: &str) -> Option<Curve> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// The size of a coordinate (and of an ECDH shared secret), in bytes.
    pub fn field_bytes(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// A public key of the instance's key set: what the checks read of it, and the key as the JWKS
/// gives it (its JSON), which the runtime imports.
#[derive(Clone, PartialEq)]
pub struct Jwk {
    pub kty: String,
    pub kid: Option<String>,
    pub alg: Option<String>,
    pub usage: Option<String>,
    pub crv: Option<String>,
    /// The key's JSON object, as received.
    pub json: Box<str>,
}

// Public keys, but a JWKS is the instance's: print only what identifies a key.
impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk").field("kty", &self.kty).field("kid", &self.kid).field("alg", &self.alg).finish()
    }
}

impl Jwk {
    /// The key `raw`: its members `kty`, `kid`, `alg`, `use` and `crv`, matched exactly (of a
    /// repeated one the last counts), `null` as absent. `None` if it is no object, has no `kty`, or
    /// one of those members is not a string.
    fn read(raw: &RawValue) -> Option<Jwk> {
        let [kty, kid, alg, usage, crv] = strings(members(raw, ["kty", "kid", "alg", "use", "crv"])?).ok()?;
        Some(Jwk { kty: kty?, kid, alg, usage, crv, json: raw.get().into() })
    }
}

/// The instance's key set (`/oauth/v2/keys`).
#[derive(Default, Debug, Clone, PartialEq)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The most keys a key set may hold (an instance has a handful).
pub const MAX_JWKS_KEYS: usize = 100;

impl Jwks {
    /// The key set in `body`, if it is one of at most [`MAX_JWKS_KEYS`] keys. Keys that are not
    /// objects with a `kty` are left out.
    pub fn parse(body: &[u8]) -> Option<Jwks> {
        let raw: &RawValue = serde_json::from_slice(body).ok()?;
        let keys = json::exact_members(raw, &["keys"])?[0]?;
        let keys: Vec<&RawValue> = serde_json::from_str(keys.get()).ok()?;
        if keys.len() > MAX_JWKS_KEYS {
            return None;
        }
        Some(Jwks { keys: keys.into_iter().filter_map(Jwk::read).collect() })
    }

    /// The key named `kid`, if the set has it.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_set_is_bounded_and_found_by_kid() {
        let jwks = Jwks::parse(br#"{"keys":[{"use":"sig","kty":"RSA","kid":"1","alg":"RS256","n":"AQ","e":"AQAB"},{"kty":"EC","kid":"2","crv":"P-256","x":"eA","y":"eQ","extra":1},{"kid":"no kty"},7]}"#).unwrap();
        assert_eq!(jwks.find("2").map(|k| (k.kty.as_str(), k.crv.as_deref())), Some(("EC", Some("P-256"))));
        assert_eq!(
            jwks.find("1").map(|k| &*k.json),
            Some(r#"{"use":"sig","kty":"RSA","kid":"1","alg":"RS256","n":"AQ","e":"AQAB"}"#)
        );
        assert_eq!(jwks.keys.len(), 2, "keys without kty are left out");
        assert!(jwks.find("3").is_none());
        let many = format!(r#"{{"keys":[{}]}}"#, vec![r#"{"kty":"RSA"}"#; MAX_JWKS_KEYS + 1].join(","));
        assert!(Jwks::parse(many.as_bytes()).is_none());
        assert!(Jwks::parse(b"<html>").is_none());
        assert!(!format!("{:?}", jwks.keys[0]).contains("AQAB"), "Debug shows kid and alg, not the key");
    }

    #[test]
    fn key_members_are_matched_exactly_and_the_last_of_a_repeated_one_counts() {
        let jwks = Jwks::parse(
            br#"{"keys":[{"kty":"EC","kty":"RSA","kid":"1","alg":null,"ALG":"RS256","use":"enc","use":"sig"},{"KTY":"RSA","kid":"2"},{"kty":"RSA","kid":3}]}"#,
        )
        .unwrap();
        let key = jwks.find("1").unwrap();
        assert_eq!((key.kty.as_str(), key.alg.as_deref(), key.usage.as_deref()), ("RSA", None, Some("sig")));
        assert_eq!(jwks.keys.len(), 1, "a key without an exact kty, or with a kid that is no string, is left out");
    }
}
