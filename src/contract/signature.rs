//! The `ZITADEL-Signature` header: parsing and HMAC-SHA256 verification.
//!
//! ZITADEL signs every call to a target with `t=<unix seconds>,v1=<hex HMAC-SHA256>`, the MAC
//! taken over `"<t>." + raw body` with the UTF-8 bytes of the target's signing key
//! (pkg/actions/signing.go). This module follows ZITADEL's own receiver helper, with three
//! deliberate differences, all stricter or purely cosmetic:
//! - whitespace around parts, names and values and empty parts (`t=1,,v1=..`) are tolerated;
//! - a header with two `t` entries, or a `t` that is not a canonical decimal, is rejected instead of
//!   letting the last one win;
//! - a timestamp more than [`MAX_FUTURE_SECONDS`] ahead of our clock is rejected too.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::runtime::Platform;

/// The header ZITADEL sends (header names are case-insensitive on the wire).
pub const HEADER: &str = "ZITADEL-Signature";

/// How far a timestamp may lie in the future: ZITADEL stamps `t` right before sending, so
/// anything beyond ordinary clock skew is a forgery or a broken clock.
pub const MAX_FUTURE_SECONDS: i64 = 60;

type HmacSha256 = Hmac<Sha256>;

/// One signing key of a target. `Debug` prints nothing of the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(String);

impl SigningKey {
    pub fn new(key: impl Into<String>) -> Self {
        SigningKey(key.into())
    }

    /// The key's bytes, for a platform's own HMAC ([`Platform::hmac_sha256`]).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key`, computed in Rust. The default of
/// [`Platform::hmac_sha256`]; the Workers glue uses the runtime's native WebCrypto instead.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// Why a header is unreadable. Each variant names a shape, never the header's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// A part is not `name=value` with exactly one `=`.
    NotNameValue,
    /// There is no `t` entry.
    MissingTimestamp,
    /// There is more than one `t` entry.
    RepeatedTimestamp,
    /// `t` is not a canonical decimal integer.
    BadTimestamp,
    /// There is no `v1` entry that is 64 hex digits.
    NoSignature,
}

impl Malformed {
    fn describe(self) -> &'static str {
        match self {
            Malformed::NotNameValue => "a part of it is not of the form name=value",
            Malformed::MissingTimestamp => "it has no t= timestamp",
            Malformed::RepeatedTimestamp => "it has more than one t= timestamp",
            Malformed::BadTimestamp => "its t= timestamp is not a whole number of seconds",
            Malformed::NoSignature => "it has no v1= entry of 64 hex digits",
        }
    }
}

/// Why a call's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// No header, or an empty one.
    Missing,
    /// The header cannot be read.
    Malformed(Malformed),
    /// No `v1` matches the body under any configured key.
    Invalid,
    /// A genuine signature, older than the tolerance.
    Stale { age_seconds: i64, tolerance_seconds: u64 },
    /// A genuine signature, stamped too far in the future.
    Future { ahead_seconds: i64 },
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "missing_signature",
            SignatureError::Malformed(_) => "malformed_signature",
            SignatureError::Invalid => "invalid_signature",
            SignatureError::Stale { .. } => "stale_signature",
            SignatureError::Future { .. } => "future_signature",
        }
    }

    pub fn message(&self) -> String {
        match self {
            SignatureError::Missing => format!(
                "The request has no {HEADER} header. ZITADEL signs every call to a target; \
                 calls from anywhere else are refused."
            ),
            SignatureError::Malformed(why) => format!(
                "The {HEADER} header cannot be read: {}. ZITADEL sends t=<unix seconds>,v1=<hex>.",
                why.describe()
            ),
            SignatureError::Invalid => format!(
                "The {HEADER} header does not match the body under any configured signing key. \
                 Check that ZITADEL_SIGNING_KEY holds this target's current signing key."
            ),
            SignatureError::Stale { age_seconds, tolerance_seconds } => format!(
                "The signature is {age_seconds} s old, more than the tolerance of \
                 {tolerance_seconds} s (SIGNATURE_TOLERANCE_SECONDS). Check the clock of the \
                 ZITADEL host, or this is a replayed call."
            ),
            SignatureError::Future { ahead_seconds } => format!(
                "The signature is stamped {ahead_seconds} s in the future, more than the \
                 {MAX_FUTURE_SECONDS} s allowed. Check the clock of the ZITADEL host."
            ),
        }
    }
}

/// A parsed header: the timestamp exactly as sent, and every well-formed `v1` digest.
#[derive(Debug, PartialEq, Eq)]
pub struct SignedHeader<'a> {
    pub timestamp: &'a str,
    pub signatures: Vec<[u8; 32]>,
}

/// Reads a `ZITADEL-Signature` header value.
pub fn parse(header: &str) -> Result<SignedHeader<'_>, SignatureError> {
    if header.trim().is_empty() {
        return Err(SignatureError::Missing);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut pieces = part.split('=');
        let (Some(name), Some(value), None) = (pieces.next(), pieces.next(), pieces.next()) else {
            return Err(SignatureError::Malformed(Malformed::NotNameValue));
        };
        match name.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed(Malformed::RepeatedTimestamp));
                }
                timestamp = Some(value.trim());
            }
            "v1" => {
                let mut digest = [0u8; 32];
                // ZITADEL's helper skips v1 values that are not hex; so do we.
                if hex::decode_to_slice(value.trim(), &mut digest).is_ok() {
                    signatures.push(digest);
                }
            }
            _ => {} // unknown schemes (v0, future versions) are ignored, as ZITADEL does
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed(Malformed::MissingTimestamp))?;
    if !is_canonical_integer(timestamp) {
        return Err(SignatureError::Malformed(Malformed::BadTimestamp));
    }
    if signatures.is_empty() {
        return Err(SignatureError::Malformed(Malformed::NoSignature));
    }
    Ok(SignedHeader { timestamp, signatures })
}

/// Checks a call: header (if any), raw body, the configured keys, our clock and the tolerance for
/// old timestamps. The MAC is checked before the clock, so a stale or future error always means a
/// genuine signature (a clock or replay problem), and `invalid_signature` always means a wrong key.
/// The MAC is computed in Rust; [`verify_on`] is the same check with the platform's HMAC.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    keys: &[SigningKey],
    now: i64,
    tolerance_seconds: u64,
) -> Result<(), SignatureError> {
    let signed = parse(header.ok_or(SignatureError::Missing)?)?;
    let genuine =
        keys.iter().any(|key| signed.matches(&hmac_sha256(key.as_bytes(), &signed_content(signed.timestamp, body))));
    signed.judge(genuine, now, tolerance_seconds)
}

/// [`verify`], with each MAC from [`Platform::hmac_sha256`] (in workerd: WebCrypto, native code).
pub async fn verify_on<P: Platform>(
    platform: &P,
    header: Option<&str>,
    body: &[u8],
    keys: &[SigningKey],
    now: i64,
    tolerance_seconds: u64,
) -> Result<(), SignatureError> {
    let signed = parse(header.ok_or(SignatureError::Missing)?)?;
    let mut genuine = false;
    for key in keys {
        if signed.matches(&platform.hmac_sha256(key.as_bytes(), &signed_content(signed.timestamp, body)).await) {
            genuine = true;
            break;
        }
    }
    signed.judge(genuine, now, tolerance_seconds)
}

/// What the MAC is taken over: the timestamp as sent, `.`, the raw body; in parts.
fn signed_content<'a>(timestamp: &'a str, body: &'a [u8]) -> [&'a [u8]; 3] {
    [timestamp.as_bytes(), b".", body]
}

impl SignedHeader<'_> {
    /// True if `expected` is one of the header's digests. Each comparison is constant-time
    /// (CtOutput's PartialEq); `any` only stops on a match.
    fn matches(&self, expected: &[u8; 32]) -> bool {
        let expected = hmac::digest::CtOutput::<HmacSha256>::new((*expected).into());
        self.signatures.iter().any(|sig| expected == hmac::digest::CtOutput::new((*sig).into()))
    }

    /// The verdict once the MAC is known: invalid, or genuine but outside the time window, or good.
    fn judge(&self, genuine: bool, now: i64, tolerance_seconds: u64) -> Result<(), SignatureError> {
        if !genuine {
            return Err(SignatureError::Invalid);
        }
        // parse() checked the form (canonical, at most 19 digits); the value may still overflow i64.
        let t: i64 = self.timestamp.parse().map_err(|_| SignatureError::Malformed(Malformed::BadTimestamp))?;
        let age = now.saturating_sub(t);
        if age > i64::try_from(tolerance_seconds).unwrap_or(i64::MAX) {
            return Err(SignatureError::Stale { age_seconds: age, tolerance_seconds });
        }
        if age < -MAX_FUTURE_SECONDS {
            return Err(SignatureError::Future { ahead_seconds: age.saturating_neg() });
        }
        Ok(())
    }
}

/// The header ZITADEL would send: `t=<t>,v1=<hex>` with one `v1` per key (ComputeSignatureHeader).
/// Used by tests and the benchmark; the worker itself never signs.
pub fn header_for(timestamp: i64, body: &[u8], keys: &[SigningKey]) -> String {
    let t = timestamp.to_string();
    let mut header = format!("t={t}");
    for key in keys {
        header.push_str(",v1=");
        header.push_str(&hex::encode(hmac_sha256(key.as_bytes(), &signed_content(&t, body))));
    }
    header
}

/// `0`, or an optional `-` then digits without a leading zero: the only form ZITADEL produces, and
/// the only one for which the MAC input (the timestamp as sent) is unambiguous.
fn is_canonical_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.len() <= 19
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && s != "-0"
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"function":"function/preaccesstoken"}"#;
    const T: i64 = 1_700_000_000;
    const VECTOR_1: &str = "t=1700000000,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";

    fn key(k: &str) -> Vec<SigningKey> {
        vec![SigningKey::new(k)]
    }

    fn check(header: &str, body: &[u8], keys: &[SigningKey], now: i64) -> Result<(), SignatureError> {
        verify(Some(header), body, keys, now, 300)
    }

    // Published vectors (shared notes §2), asserted literally.

    #[test]
    fn vector_test_signing_key_matches_zitadel() {
        assert_eq!(header_for(T, BODY, &key("test-signing-key")), VECTOR_1);
        assert_eq!(check(VECTOR_1, BODY, &key("test-signing-key"), T), Ok(()));
    }

    #[test]
    fn vector_empty_body_at_time_zero() {
        let header = "t=0,v1=6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7";
        assert_eq!(header_for(0, b"", &key("k")), header);
        assert_eq!(check(header, b"", &key("k"), 0), Ok(()));
    }

    #[test]
    fn vector_two_keys_gives_two_v1_entries_each_accepted() {
        let header = "t=1700000000,v1=3d7d9144ece290e9576d8cab02a7d8ea3bb1ea2cfbdd18c8b0ccc9e04ab8bd75,v1=c6fe7bea6c417dd2118ff4d9b4994515dcc8a602e09e730ccda35be00b911b3e";
        let both = [SigningKey::new("old-key"), SigningKey::new("new-key")];
        assert_eq!(header_for(T, BODY, &both), header);
        assert_eq!(check(header, BODY, &key("old-key"), T), Ok(()));
        assert_eq!(check(header, BODY, &key("new-key"), T), Ok(()));
        assert_eq!(check(header, BODY, &key("other-key"), T), Err(SignatureError::Invalid));
    }

    #[test]
    fn any_configured_key_is_accepted_during_rotation() {
        let configured = [SigningKey::new("new-key"), SigningKey::new("test-signing-key")];
        assert_eq!(check(VECTOR_1, BODY, &configured, T), Ok(()));
    }

    /// A platform whose HMAC keys every MAC with `key_used`, whatever key it is asked for.
    struct MacUnder {
        key_used: &'static [u8],
    }

    impl Platform for MacUnder {
        async fn send(
            &self,
            _: crate::runtime::HttpRequest,
        ) -> Result<crate::runtime::HttpResponse, crate::runtime::TransportError> {
            Err(crate::runtime::TransportError::Network)
        }
        fn now_ms(&self) -> u64 {
            0
        }
        async fn sleep(&self, _: u64) {}
        async fn cache_get(&self, _: &str) -> Option<String> {
            None
        }
        async fn cache_put(&self, _: &str, _: String, _: u64) {}
        async fn hmac_sha256(&self, _: &[u8], parts: &[&[u8]]) -> [u8; 32] {
            hmac_sha256(self.key_used, parts)
        }
    }

    #[test]
    fn verify_on_takes_each_mac_from_the_platform() {
        let on = |platform: &MacUnder, header: &str, keys: &[SigningKey]| {
            futures::executor::block_on(verify_on(platform, Some(header), BODY, keys, T, 300))
        };
        let honest = MacUnder { key_used: b"test-signing-key" };
        assert_eq!(on(&honest, VECTOR_1, &key("test-signing-key")), Ok(()));
        assert_eq!(on(&honest, VECTOR_1, &key("test-signing-key")), check(VECTOR_1, BODY, &key("test-signing-key"), T));
        // The platform's MAC decides, not the key list: a header made with its key passes, the
        // published vector does not.
        let other = MacUnder { key_used: b"platform-key" };
        let made_with_other = header_for(T, BODY, &key("platform-key"));
        assert_eq!(on(&other, &made_with_other, &key("test-signing-key")), Ok(()));
        assert_eq!(on(&other, VECTOR_1, &key("test-signing-key")), Err(SignatureError::Invalid));
        // The clock is judged after the MAC, as in verify().
        assert_eq!(
            futures::executor::block_on(verify_on(&honest, Some(VECTOR_1), BODY, &key("k"), T + 301, 300)),
            Err(SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 })
        );
    }

    // Must NOT validate.

    #[test]
    fn hmac_of_body_alone_is_refused() {
        // hex(HMAC(key, body)): what a receiver following the docs instead of the code computes.
        let mut mac = HmacSha256::new_from_slice(b"test-signing-key").unwrap();
        mac.update(BODY);
        let body_only = hex::encode(mac.finalize().into_bytes());
        assert!(body_only.starts_with("90af6cd7") && body_only.ends_with("be3"));
        assert_eq!(
            check(&format!("t={T},v1={body_only}"), BODY, &key("test-signing-key"), T),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            check(&body_only, BODY, &key("test-signing-key"), T),
            Err(SignatureError::Malformed(Malformed::NotNameValue))
        );
    }

    #[test]
    fn timestamp_older_than_tolerance_is_stale() {
        let k = key("test-signing-key");
        assert_eq!(check(VECTOR_1, BODY, &k, T + 300), Ok(()));
        assert_eq!(
            check(VECTOR_1, BODY, &k, T + 301),
            Err(SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 })
        );
        assert_eq!(verify(Some(VECTOR_1), BODY, &k, T + 301, 301), Ok(()));
    }

    #[test]
    fn timestamp_from_the_future_is_bounded() {
        let k = key("test-signing-key");
        assert_eq!(check(VECTOR_1, BODY, &k, T - 60), Ok(()));
        assert_eq!(check(VECTOR_1, BODY, &k, T - 61), Err(SignatureError::Future { ahead_seconds: 61 }));
    }

    #[test]
    fn a_body_changed_by_one_byte_is_refused() {
        let mut body = BODY.to_vec();
        body[5] ^= 1;
        assert_eq!(check(VECTOR_1, &body, &key("test-signing-key"), T), Err(SignatureError::Invalid));
        let mut longer = BODY.to_vec();
        longer.push(b' ');
        assert_eq!(check(VECTOR_1, &longer, &key("test-signing-key"), T), Err(SignatureError::Invalid));
    }

    #[test]
    fn wrong_mac_is_checked_before_the_clock() {
        // A forged signature with an old timestamp is `invalid`, not `stale`: stale means genuine.
        let forged = "t=1,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
        assert_eq!(check(forged, BODY, &key("test-signing-key"), T), Err(SignatureError::Invalid));
    }

    #[test]
    fn header_without_timestamp_is_malformed() {
        let header = "v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
        assert_eq!(
            check(header, BODY, &key("test-signing-key"), T),
            Err(SignatureError::Malformed(Malformed::MissingTimestamp))
        );
    }

    #[test]
    fn non_numeric_timestamp_is_malformed() {
        for t in ["abc", "", "+1700000000", "01700000000", "1.5", "-0", "17000000000000000000000"] {
            let header = format!("t={t},v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677");
            assert_eq!(
                check(&header, BODY, &key("test-signing-key"), T),
                Err(SignatureError::Malformed(Malformed::BadTimestamp)),
                "t={t}"
            );
        }
    }

    #[test]
    fn non_hex_v1_only_is_malformed() {
        for header in ["t=1700000000,v1=zz", "t=1700000000,v1=", "t=1700000000,v1=5bd3"] {
            assert_eq!(
                check(header, BODY, &key("test-signing-key"), T),
                Err(SignatureError::Malformed(Malformed::NoSignature)),
                "{header}"
            );
        }
    }

    #[test]
    fn empty_or_absent_header_is_missing() {
        let k = key("test-signing-key");
        assert_eq!(check("", BODY, &k, T), Err(SignatureError::Missing));
        assert_eq!(check("  ", BODY, &k, T), Err(SignatureError::Missing));
        assert_eq!(verify(None, BODY, &k, T, 300), Err(SignatureError::Missing));
    }

    // Header parsing edge cases.

    #[test]
    fn spaces_around_parts_names_and_values_are_tolerated() {
        let spaced = " t = 1700000000 ,  v1 = 5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677 ";
        assert_eq!(check(spaced, BODY, &key("test-signing-key"), T), Ok(()));
    }

    #[test]
    fn empty_parts_are_ignored() {
        let header = ",t=1700000000,,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677,";
        assert_eq!(check(header, BODY, &key("test-signing-key"), T), Ok(()));
    }

    #[test]
    fn upper_case_hex_digest_is_accepted() {
        let upper = VECTOR_1.replace(
            "5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677",
            "5BD3682C5CC49698CACEE157693304C40E4A986C7873A817E2A5D7E1F69E4677",
        );
        assert_eq!(check(&upper, BODY, &key("test-signing-key"), T), Ok(()));
    }

    #[test]
    fn part_names_are_case_sensitive_as_in_zitadel() {
        // `T` and `V1` are unknown names to ZITADEL's helper and ignored; what remains has no t.
        let upper = "T=1700000000,V1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
        assert_eq!(
            check(upper, BODY, &key("test-signing-key"), T),
            Err(SignatureError::Malformed(Malformed::MissingTimestamp))
        );
        let upper_v1 = "t=1700000000,V1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
        assert_eq!(
            check(upper_v1, BODY, &key("test-signing-key"), T),
            Err(SignatureError::Malformed(Malformed::NoSignature))
        );
    }

    #[test]
    fn repeated_timestamp_is_malformed() {
        let header = "t=1700000000,t=1700000000,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
        assert_eq!(
            check(header, BODY, &key("test-signing-key"), T),
            Err(SignatureError::Malformed(Malformed::RepeatedTimestamp))
        );
    }

    #[test]
    fn part_with_two_equals_signs_or_none_is_malformed() {
        for header in [
            "t=1700000000,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677=",
            "t=1700000000,v1",
            "t==1700000000,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677",
        ] {
            assert_eq!(
                check(header, BODY, &key("test-signing-key"), T),
                Err(SignatureError::Malformed(Malformed::NotNameValue)),
                "{header}"
            );
        }
    }

    #[test]
    fn unknown_schemes_are_ignored() {
        let header = "t=1700000000,v0=abc,v2=def,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
        assert_eq!(check(header, BODY, &key("test-signing-key"), T), Ok(()));
    }

    #[test]
    fn a_hundred_v1_entries_with_the_right_one_last_is_accepted() {
        let mut header = String::from("t=1700000000");
        for i in 0..99 {
            header.push_str(&format!(",v1={:064x}", i));
        }
        header.push_str(",v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677");
        assert_eq!(parse(&header).unwrap().signatures.len(), 100);
        assert_eq!(check(&header, BODY, &key("test-signing-key"), T), Ok(()));
        let wrong_only = header.rsplit_once(',').unwrap().0;
        assert_eq!(check(wrong_only, BODY, &key("test-signing-key"), T), Err(SignatureError::Invalid));
    }

    #[test]
    fn non_hex_entries_are_skipped_when_a_good_one_follows() {
        let header = "t=1700000000,v1=zz,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
        assert_eq!(check(header, BODY, &key("test-signing-key"), T), Ok(()));
    }

    #[test]
    fn key_bytes_are_the_utf8_string_not_base64_decoded() {
        // "dGVzdA==" is base64 of "test"; ZITADEL uses the string's own bytes as the key. Both
        // digests computed independently:
        // printf '%s' '1700000000.{"function":"function/preaccesstoken"}' | openssl dgst -sha256 -hmac 'dGVzdA=='
        let literal = "t=1700000000,v1=7de270d7383c285254ae69658c8dcf0c87f26aec4c2c5c42dae8afdd45abd889";
        // ... and the same with -hmac 'test' (what a base64-decoding receiver would key with).
        let decoded = "t=1700000000,v1=adb216334f11a9ea4d5ea09c1cded3e78de857a35dc4d3be5d395252c16bd962";
        assert_eq!(header_for(T, BODY, &key("dGVzdA==")), literal);
        assert_eq!(SigningKey::new("dGVzdA==").as_bytes(), b"dGVzdA==");
        assert_eq!(check(literal, BODY, &key("dGVzdA=="), T), Ok(()));
        assert_eq!(check(decoded, BODY, &key("dGVzdA=="), T), Err(SignatureError::Invalid));
        assert_eq!(check(literal, BODY, &key("test"), T), Err(SignatureError::Invalid));
    }

    #[test]
    fn messages_never_contain_the_header_or_key() {
        let errors = [
            SignatureError::Missing,
            SignatureError::Malformed(Malformed::NoSignature),
            SignatureError::Invalid,
            SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 },
            SignatureError::Future { ahead_seconds: 61 },
        ];
        for e in errors {
            let m = e.message();
            assert!(!m.contains("5bd3682c") && !m.contains("test-signing-key"), "{m}");
        }
        assert!(SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 }.message().contains("301 s old"));
        assert!(SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 }.message().contains("300 s"));
        assert_eq!(format!("{:?}", SigningKey::new("test-signing-key")), "SigningKey(..)");
    }
}
