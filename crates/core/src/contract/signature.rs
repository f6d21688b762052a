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
//!
//! The header and its time window are judged before the MAC, and before the body is even read
//! ([`check_header`]): a call with no header, a malformed one or a timestamp outside the window
//! costs no body read, copy or hash. So `stale_signature` and `future_signature` say the
//! timestamp is outside the window, not that the signature is genuine.

use std::future::Future;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::port::Mac;
use crate::secret::SigningKey;

/// The header ZITADEL sends (header names are case-insensitive on the wire).
pub const HEADER: &str = "ZITADEL-Signature";

/// How far a timestamp may lie in the future: ZITADEL stamps `t` right before sending, so
/// anything beyond ordinary clock skew is a forgery or a broken clock.
pub const MAX_FUTURE_SECONDS: i64 = 60;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 computed in Rust (the `hmac` crate).
pub struct RustMac;

impl Mac for RustMac {
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> impl Future<Output = [u8; 32]> {
        std::future::ready(hmac_sha256(key, parts))
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key`, computed in Rust.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
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
    /// A timestamp older than the tolerance (judged before the MAC).
    Stale { age_seconds: i64, tolerance_seconds: u64 },
    /// A timestamp too far in the future (judged before the MAC).
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

/// Reads the header (if any) and judges its timestamp against our clock and the tolerance for old
/// timestamps: what can be refused before the body is read.
pub fn check_header(
    header: Option<&str>,
    now: i64,
    tolerance_seconds: u64,
) -> Result<SignedHeader<'_>, SignatureError> {
    let signed = parse(header.ok_or(SignatureError::Missing)?)?;
    signed.check_window(now, tolerance_seconds)?;
    Ok(signed)
}

/// Checks a call: header (if any), raw body, the configured keys, our clock and the tolerance for
/// old timestamps, each MAC computed by `mac`. The header and its window first
/// ([`check_header`]), then the MAC: `invalid_signature` always means a wrong key or a changed
/// body.
pub async fn verify<M: Mac>(
    mac: &M,
    header: Option<&str>,
    body: &[u8],
    keys: &[SigningKey],
    now: i64,
    tolerance_seconds: u64,
) -> Result<(), SignatureError> {
    let signed = check_header(header, now, tolerance_seconds)?;
    for key in keys {
        if signed.matches(&mac.hmac_sha256(key.as_bytes(), &signed_content(signed.timestamp, body)).await) {
            return Ok(());
        }
    }
    Err(SignatureError::Invalid)
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

    /// Whether the timestamp lies within the window: at most `tolerance_seconds` old, at most
    /// [`MAX_FUTURE_SECONDS`] ahead.
    fn check_window(&self, now: i64, tolerance_seconds: u64) -> Result<(), SignatureError> {
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
mod tests;
