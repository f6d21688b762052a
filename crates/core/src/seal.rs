//! Sealed values: what the worker's token vault stores (user metadata it writes, the browser flow's
//! state cookie) encrypted and bound to where it belongs, under the secret `TOKEN_SEALING_KEY`.
//!
//! A sealed value is one line of ASCII:
//!
//! ```text
//! sealed:v1:<key id>:<iv>:<ciphertext and tag>
//! ```
//!
//! AES-256-GCM with a fresh random 96-bit IV per value (from the [`Random`] port) and a 128-bit
//! tag; the IV and the ciphertext with its tag in unpadded base64url, which has no `:`. Why so:
//! - **The key id** names the key that sealed the value, so keys rotate without a flag day:
//!   `TOKEN_SEALING_KEY` lists `<key id>:<base64 of 32 bytes>` items, the first seals and all open.
//!   Put a new key first and keep the old one until nothing sealed by it is left.
//! - **The associated data** ([`Aad`]) is authenticated but not stored: the ZITADEL user id and the
//!   metadata key the value is stored under, or the flow of a state cookie. A value copied to
//!   another user, another metadata key or into a cookie does not open (the tag does not verify),
//!   so whoever can write metadata cannot move one user's token to another.
//! - **The prefix** tells a sealed value from a cleartext one ([`is_sealed`],
//!   [`OpenError::NotSealed`]) and names the format's version.
//!
//! Opening checks the shape first ([`OpenError::Malformed`]), then the key id
//! ([`OpenError::UnknownKey`]), then the tag ([`OpenError::Refused`]). Nothing here prints a key or
//! a plaintext: [`SealingKeys`] shows its key ids only, [`OpenError`] its kind.

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};

use crate::port::{Crypto, Random};

/// What every sealed value starts with: the format and its version.
pub const PREFIX: &str = "sealed:v1:";
/// AES-256.
pub const KEY_BYTES: usize = 32;
/// GCM's 96-bit IV, the size it is made for (other sizes are hashed into one).
pub const IV_BYTES: usize = 12;
/// GCM's full 128-bit tag.
pub const TAG_BYTES: usize = 16;
/// The longest key id.
pub const MAX_KEY_ID_CHARS: usize = 64;
/// The first part of every associated data: no other use of the same key and bytes can collide.
const AAD_DOMAIN: &str = "zitadel-claims-worker/sealed/v1";

/// One key of `TOKEN_SEALING_KEY`. Crate-private: it leaves [`SealingKeys`] only as bytes handed
/// to the [`Crypto`] port.
#[derive(Clone, PartialEq, Eq)]
struct SealingKey {
    id: String,
    key: [u8; KEY_BYTES],
}

/// The keys of `TOKEN_SEALING_KEY`, in their order: the first seals, all open. Never empty.
/// `Debug` shows the key ids only.
#[derive(Clone, PartialEq, Eq)]
pub struct SealingKeys(Vec<SealingKey>);

impl SealingKeys {
    /// `<key id>:<base64 of 32 bytes>`, comma-separated, the sealing key first. A key id is 1 to 64
    /// letters, digits, `_` or `-`, and no two keys share one; a key is standard or url-safe
    /// base64, padded or not. Blanks around items are dropped, and so are empty items (a trailing
    /// comma). The error names the item by its position and never repeats any of the value.
    pub fn parse(value: &str) -> Result<SealingKeys, String> {
        let mut keys: Vec<SealingKey> = Vec::new();
        for (at, item) in value.split(',').map(str::trim).filter(|item| !item.is_empty()).enumerate() {
            let nth = ordinal(at + 1);
            let Some((id, key)) = item.split_once(':') else {
                return Err(format!("the {nth} key is not `<key id>:<base64 of 32 bytes>`"));
            };
            let (id, key) = (id.trim(), key.trim());
            if !is_key_id(id) {
                return Err(format!("the {nth} key's id is not 1 to {MAX_KEY_ID_CHARS} letters, digits, `_` or `-`"));
            }
            let Some(key) = decode_key(key) else {
                return Err(format!(
                    "the {nth} key is not 32 bytes of base64 (make one with `openssl rand -base64 32`)"
                ));
            };
            if let Some(first) = keys.iter().position(|k| k.id == id) {
                return Err(format!("the {nth} key has the id of the {}: each key needs its own", ordinal(first + 1)));
            }
            keys.push(SealingKey { id: id.to_string(), key });
        }
        if keys.is_empty() {
            return Err(
                "holds no key: `<key id>:<base64 of 32 bytes>`, several separated by commas, the sealing key first"
                    .into(),
            );
        }
        Ok(SealingKeys(keys))
    }

    /// The id of the key that seals (the first).
    pub fn sealing_key_id(&self) -> &str {
        &self.0[0].id
    }

    /// Every key's id, the sealing key's first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|k| k.id.as_str())
    }

    fn sealing(&self) -> &SealingKey {
        &self.0[0]
    }

    fn find(&self, id: &str) -> Option<&SealingKey> {
        self.0.iter().find(|k| k.id == id)
    }
}

impl fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKeys").field("ids", &self.ids().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

/// 1 to 64 of `[A-Za-z0-9_-]`: a key id fits between the colons of a sealed value and in a log.
fn is_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_CHARS).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// 32 bytes in standard or url-safe base64, padded or not.
fn decode_key(text: &str) -> Option<[u8; KEY_BYTES]> {
    let lenient = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&alphabet::STANDARD, lenient);
    let url_safe = GeneralPurpose::new(&alphabet::URL_SAFE, lenient);
    let bytes = standard.decode(text).or_else(|_| url_safe.decode(text)).ok()?;
    bytes.try_into().ok()
}

/// `1st`, `2nd`, `3rd`, `4th`, …, `11th`, …, `21st`.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The associated data of a sealed value: where it belongs, authenticated with it but not stored
/// in it. The bytes are a sequence of length-prefixed parts (each its length as 4 bytes big-endian,
/// then its UTF-8): `zitadel-claims-worker/sealed/v1`, the purpose, then the purpose's own parts. Such a sequence reads
/// back one way only, so two different places never have the same associated data: user `ab` with
/// key `c` is not user `a` with key `bc`, and no metadata value is a state cookie. `Debug` shows the
/// purpose only.
#[derive(Clone, PartialEq, Eq)]
pub struct Aad {
    purpose: &'static str,
    bytes: Vec<u8>,
}

impl Aad {
    /// A value stored in the metadata `metadata_key` of the ZITADEL user `user_id`.
    pub fn metadata(user_id: &str, metadata_key: &str) -> Aad {
        Aad::new("metadata", &[user_id, metadata_key])
    }

    /// The state cookie of the browser flow `flow`.
    pub fn connect_state(flow: &str) -> Aad {
        Aad::new("connect-state", &[flow])
    }

    fn new(purpose: &'static str, parts: &[&str]) -> Aad {
        let mut bytes = Vec::with_capacity(64 + parts.iter().map(|p| 4 + p.len()).sum::<usize>());
        for part in [AAD_DOMAIN, purpose].iter().chain(parts) {
            // A part longer than 4 GiB cannot be in a request the worker reads.
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(part.as_bytes());
        }
        Aad { purpose, bytes }
    }

    /// What the AES-GCM tag authenticates besides the ciphertext.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Aad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aad").field("purpose", &self.purpose).finish_non_exhaustive()
    }
}

/// Whether `value` is sealed (has the prefix); whether it opens is [`open`]'s question.
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// `plaintext` sealed for `aad` under the sealing key (the first of `keys`), with a fresh random
/// IV; `None` if the runtime's cryptography refuses.
pub async fn seal<R: Crypto + Random>(runtime: &R, keys: &SealingKeys, aad: &Aad, plaintext: &[u8]) -> Option<String> {
    let (id, iv, sealed) = encrypt(runtime, keys, aad, plaintext).await?;
    Some(format!("{PREFIX}{id}:{}:{}", URL_SAFE_NO_PAD.encode(iv), URL_SAFE_NO_PAD.encode(sealed)))
}

/// `plaintext` encrypted for `aad` under the sealing key with a fresh random IV: the key's id, the
/// IV, and the ciphertext with its tag; what both forms are made of.
async fn encrypt<'k, R: Crypto + Random>(
    runtime: &R,
    keys: &'k SealingKeys,
    aad: &Aad,
    plaintext: &[u8],
) -> Option<(&'k str, [u8; IV_BYTES], Vec<u8>)> {
    let key = keys.sealing();
    let mut iv = [0u8; IV_BYTES];
    runtime.fill_random(&mut iv);
    let sealed = runtime.aes_gcm_encrypt(&key.key, &iv, aad.as_bytes(), plaintext).await?;
    // Ciphertext as long as the plaintext, then the tag: anything else is not what opens.
    (sealed.len() == plaintext.len() + TAG_BYTES).then_some((key.id.as_str(), iv, sealed))
}

/// The binary form of a sealed value, for user metadata (ZITADEL stores bytes, and sends them as
/// base64): the text form's prefix and key id, then the IV and the ciphertext with its tag as raw
/// bytes, `sealed:v1:<key id>:<12 bytes of IV><ciphertext and tag>`. The text form would be base64
/// again inside the metadata's base64: a third larger, and decoded twice on every call.
pub async fn seal_bytes<R: Crypto + Random>(
    runtime: &R,
    keys: &SealingKeys,
    aad: &Aad,
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    let (id, iv, sealed) = encrypt(runtime, keys, aad, plaintext).await?;
    let mut out = Vec::with_capacity(PREFIX.len() + id.len() + 1 + IV_BYTES + sealed.len());
    out.extend_from_slice(PREFIX.as_bytes());
    out.extend_from_slice(id.as_bytes());
    out.push(b':');
    out.extend_from_slice(&iv);
    out.extend_from_slice(&sealed);
    Some(out)
}

/// Whether `value` is a sealed value in the binary form (or begins as one).
pub fn is_sealed_bytes(value: &[u8]) -> bool {
    value.starts_with(PREFIX.as_bytes())
}

/// Opens a value of the binary form ([`seal_bytes`]); the checks and errors of [`open`].
pub async fn open_bytes<R: Crypto>(
    runtime: &R,
    keys: &SealingKeys,
    aad: &Aad,
    value: &[u8],
) -> Result<Vec<u8>, OpenError> {
    let rest = value.strip_prefix(PREFIX.as_bytes()).ok_or(OpenError::NotSealed)?;
    // A key id has no `:`, so the first one ends it; it is looked for where an id can end only.
    let colon = rest.iter().take(MAX_KEY_ID_CHARS + 1).position(|&b| b == b':').ok_or(OpenError::Malformed)?;
    let id = std::str::from_utf8(&rest[..colon]).ok().filter(|id| is_key_id(id)).ok_or(OpenError::Malformed)?;
    let body = &rest[colon + 1..];
    if body.len() < IV_BYTES + TAG_BYTES {
        return Err(OpenError::Malformed);
    }
    let (iv, sealed) = body.split_at(IV_BYTES);
    let key = keys.find(id).ok_or(OpenError::UnknownKey)?;
    runtime.aes_gcm_decrypt(&key.key, iv, aad.as_bytes(), sealed).await.ok_or(OpenError::Refused)
}

/// Why a value did not open. `Debug` and `Display` say which, nothing of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// No `sealed:v1:` prefix: a cleartext value (or another format).
    NotSealed,
    /// The prefix, but not `<key id>:<iv>:<ciphertext and tag>` in unpadded base64url, a 96-bit IV
    /// and at least a tag.
    Malformed,
    /// None of the keys has the value's key id (it was removed from `TOKEN_SEALING_KEY`).
    UnknownKey,
    /// The tag does not verify: a changed byte, another place ([`Aad`]) or another key of the same id.
    Refused,
}

impl OpenError {
    /// The error's code, for log lines.
    pub fn code(self) -> &'static str {
        match self {
            OpenError::NotSealed => "not_sealed",
            OpenError::Malformed => "malformed",
            OpenError::UnknownKey => "unknown_key",
            OpenError::Refused => "refused",
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenError::NotSealed => "the value is not sealed",
            OpenError::Malformed => "the sealed value is malformed",
            OpenError::UnknownKey => "the sealed value's key is not among the sealing keys",
            OpenError::Refused => "the sealed value does not open here with its key",
        })
    }
}

impl std::error::Error for OpenError {}

/// The plaintext of `value`, sealed for `aad` under one of `keys`.
pub async fn open<R: Crypto>(runtime: &R, keys: &SealingKeys, aad: &Aad, value: &str) -> Result<Vec<u8>, OpenError> {
    let rest = value.strip_prefix(PREFIX).ok_or(OpenError::NotSealed)?;
    let mut parts = rest.split(':');
    let (Some(id), Some(iv), Some(sealed), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(OpenError::Malformed);
    };
    if !is_key_id(id) {
        return Err(OpenError::Malformed);
    }
    // The strict decoder: no padding, no stray bits in the last character, so that one sealed
    // value has one spelling and a changed character is a changed byte.
    let iv = URL_SAFE_NO_PAD.decode(iv).ok().filter(|iv| iv.len() == IV_BYTES).ok_or(OpenError::Malformed)?;
    let sealed = URL_SAFE_NO_PAD.decode(sealed).ok().filter(|s| s.len() >= TAG_BYTES).ok_or(OpenError::Malformed)?;
    let key = keys.find(id).ok_or(OpenError::UnknownKey)?;
    runtime.aes_gcm_decrypt(&key.key, &iv, aad.as_bytes(), &sealed).await.ok_or(OpenError::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{b64, FakeRuntime};
    use futures::executor::block_on;

    const KEY_1: [u8; 32] = [1; 32];
    const KEY_2: [u8; 32] = [2; 32];

    fn keys(value: &str) -> SealingKeys {
        SealingKeys::parse(value).expect("valid keys")
    }

    fn one_key() -> SealingKeys {
        keys(&format!("k1:{}", b64(KEY_1)))
    }

    fn runtime() -> FakeRuntime {
        FakeRuntime::new(Vec::new())
    }

    fn sealed(keys: &SealingKeys, aad: &Aad, plaintext: &[u8]) -> String {
        block_on(seal(&runtime(), keys, aad, plaintext)).expect("sealed")
    }

    fn opened(keys: &SealingKeys, aad: &Aad, value: &str) -> Result<Vec<u8>, OpenError> {
        block_on(open(&runtime(), keys, aad, value))
    }

    #[test]
    fn keys_parse_in_order_with_the_first_sealing() {
        let parsed = keys(&format!(" new-2_B : {} ,old1:{}, ", b64(KEY_2), b64(KEY_1)));
        assert_eq!(parsed.sealing_key_id(), "new-2_B");
        assert_eq!(parsed.ids().collect::<Vec<_>>(), ["new-2_B", "old1"]);
        assert_eq!(parsed.sealing().key, KEY_2);
        assert_eq!(parsed.find("old1").map(|k| k.key), Some(KEY_1));
    }

    #[test]
    fn keys_are_standard_or_url_safe_base64_padded_or_not() {
        // 0xfb 0xff … is `+/` in standard base64 and `-_` in url-safe.
        let key = [0xfb; 32];
        let standard = b64(key);
        assert!(standard.contains('+') && standard.ends_with('='));
        let url_safe = crate::testing::b64url(key);
        assert!(url_safe.contains('-') && !url_safe.ends_with('='));
        for text in
            [standard.clone(), standard.trim_end_matches('=').to_string(), url_safe.clone(), format!("{url_safe}=")]
        {
            assert_eq!(keys(&format!("k:{text}")).sealing().key, key, "{text}");
        }
    }

    #[test]
    fn key_errors_name_the_item_by_position_and_repeat_nothing_of_the_value() {
        let good = b64(KEY_1);
        let short = b64([7u8; 31]);
        let long = b64([7u8; 33]);
        let cases = [
            (String::new(), "holds no key"),
            (" , ,".to_string(), "holds no key"),
            (format!("k1:{good},{good}"), "the 2nd key is not `<key id>:<base64 of 32 bytes>`"),
            (format!("k1:{good},k2:{short}"), "the 2nd key is not 32 bytes of base64"),
            (format!("k1:{long}"), "the 1st key is not 32 bytes of base64"),
            (format!("k1:{good},k2:{good}x"), "the 2nd key is not 32 bytes of base64"),
            (format!("k1:{good},k2:{},k3:{good}", &good[..20]), "the 2nd key is not 32 bytes of base64"),
            (format!(":{good}"), "the 1st key's id is not 1 to 64"),
            (format!("{}:{good}", "k".repeat(65)), "the 1st key's id is not 1 to 64"),
            (format!("k.1:{good}"), "the 1st key's id is not"),
            (format!("k 1:{good}"), "the 1st key's id is not"),
            (format!("a:{good},b:{good},c:{good},a:{}", b64(KEY_2)), "the 4th key has the id of the 1st"),
        ];
        for (value, expected) in cases {
            let error = SealingKeys::parse(&value).expect_err(&value);
            assert!(error.contains(expected), "{value:?}: {error}");
            for secret in [&good, &short, &long, &good[..20].to_string(), &b64(KEY_2)] {
                assert!(!error.contains(secret.trim_end_matches('=')), "{error}");
            }
        }
        assert!(SealingKeys::parse(&format!("{}:{good}", "k".repeat(64))).is_ok());
    }

    #[test]
    fn ordinals_read_as_english() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111].into_iter().map(ordinal).collect();
        assert_eq!(got, ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th"]);
    }

    #[test]
    fn keys_print_their_ids_only() {
        let parsed = keys(&format!("k2:{},k1:{}", b64(KEY_2), b64(KEY_1)));
        assert_eq!(format!("{parsed:?}"), r#"SealingKeys { ids: ["k2", "k1"], .. }"#);
    }

    #[test]
    fn a_sealed_value_has_the_documented_shape() {
        let value = sealed(&one_key(), &Aad::metadata("u1", "microsoft_access_token"), b"token");
        assert!(is_sealed(&value));
        let parts: Vec<&str> = value.split(':').collect();
        assert_eq!(parts[..3], ["sealed", "v1", "k1"]);
        assert_eq!(parts.len(), 5);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[3]).unwrap().len(), IV_BYTES);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[4]).unwrap().len(), b"token".len() + TAG_BYTES);
        assert!(value.is_ascii() && !value.contains('=') && !value.contains(' '));
    }

    #[test]
    fn a_value_opens_where_it_was_sealed() {
        let aad = Aad::metadata("u1", "microsoft_access_token");
        for plaintext in [&b""[..], b"x", b"a refresh token \xff\x00 with any bytes"] {
            let value = sealed(&one_key(), &aad, plaintext);
            assert_eq!(opened(&one_key(), &aad, &value).as_deref(), Ok(plaintext));
        }
    }

    #[test]
    fn each_seal_draws_a_fresh_iv() {
        let (runtime, keys, aad) = (runtime(), one_key(), Aad::connect_state("flow-1"));
        let first = block_on(seal(&runtime, &keys, &aad, b"same")).unwrap();
        let second = block_on(seal(&runtime, &keys, &aad, b"same")).unwrap();
        assert_ne!(first.split(':').nth(3), second.split(':').nth(3));
        assert_ne!(first, second);
    }

    #[test]
    fn a_value_does_not_open_in_another_place() {
        let keys = one_key();
        let value = sealed(&keys, &Aad::metadata("ab", "c"), b"token");
        for other in [
            Aad::metadata("a", "bc"),
            Aad::metadata("ab", "d"),
            Aad::metadata("other", "c"),
            Aad::connect_state("ab"),
            Aad::connect_state("c"),
        ] {
            assert_eq!(opened(&keys, &other, &value), Err(OpenError::Refused), "{other:?}");
        }
        let cookie = sealed(&keys, &Aad::connect_state("flow"), b"state");
        assert_eq!(opened(&keys, &Aad::metadata("flow", ""), &cookie), Err(OpenError::Refused));
        assert_eq!(opened(&keys, &Aad::connect_state("flow2"), &cookie), Err(OpenError::Refused));
    }

    #[test]
    fn associated_data_is_length_prefixed_after_the_domain_and_purpose() {
        let framed = |parts: &[&str]| {
            let mut bytes = Vec::new();
            for part in parts {
                bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
                bytes.extend_from_slice(part.as_bytes());
            }
            bytes
        };
        assert_eq!(
            Aad::metadata("u1", "k").as_bytes(),
            framed(&["zitadel-claims-worker/sealed/v1", "metadata", "u1", "k"])
        );
        assert_eq!(
            Aad::connect_state("f").as_bytes(),
            framed(&["zitadel-claims-worker/sealed/v1", "connect-state", "f"])
        );
        assert_ne!(Aad::metadata("ab", "c"), Aad::metadata("a", "bc"));
        assert_ne!(Aad::metadata("", ""), Aad::connect_state(""));
        assert_eq!(format!("{:?}", Aad::metadata("u1", "k")), r#"Aad { purpose: "metadata", .. }"#);
    }

    #[test]
    fn a_value_sealed_by_an_old_key_opens_after_rotation() {
        let old = keys(&format!("old:{}", b64(KEY_1)));
        let rotated = keys(&format!("new:{},old:{}", b64(KEY_2), b64(KEY_1)));
        let aad = Aad::metadata("u1", "k");
        let before = sealed(&old, &aad, b"token");
        assert_eq!(opened(&rotated, &aad, &before).as_deref(), Ok(&b"token"[..]));
        let after = sealed(&rotated, &aad, b"token");
        assert!(after.starts_with("sealed:v1:new:"), "{after}");
        assert_eq!(opened(&rotated, &aad, &after).as_deref(), Ok(&b"token"[..]));
        // Once the old key is gone, its values are unknown; the new key's never opened under the old.
        let retired = keys(&format!("new:{}", b64(KEY_2)));
        assert_eq!(opened(&retired, &aad, &before), Err(OpenError::UnknownKey));
        assert_eq!(opened(&old, &aad, &after), Err(OpenError::UnknownKey));
    }

    #[test]
    fn a_value_under_another_key_of_the_same_id_is_refused() {
        let aad = Aad::metadata("u1", "k");
        let value = sealed(&keys(&format!("k1:{}", b64(KEY_1))), &aad, b"token");
        assert_eq!(opened(&keys(&format!("k1:{}", b64(KEY_2))), &aad, &value), Err(OpenError::Refused));
    }

    #[test]
    fn what_is_not_a_sealed_value_says_why() {
        let (keys, aad) = (one_key(), Aad::metadata("u1", "k"));
        let value = sealed(&keys, &aad, b"token");
        let (iv, data) = (value.split(':').nth(3).unwrap(), value.split(':').nth(4).unwrap());
        let cases = [
            ("a cleartext token".to_string(), OpenError::NotSealed),
            (String::new(), OpenError::NotSealed),
            ("sealed:v2:k1:AAAA:AAAA".to_string(), OpenError::NotSealed),
            ("sealed:v1:".to_string(), OpenError::Malformed),
            (format!("sealed:v1:k1:{iv}"), OpenError::Malformed),
            (format!("sealed:v1:k1:{iv}:{data}:"), OpenError::Malformed),
            (format!("sealed:v1::{iv}:{data}"), OpenError::Malformed),
            (format!("sealed:v1:k.1:{iv}:{data}"), OpenError::Malformed),
            (format!("sealed:v1:k1:{iv}=:{data}"), OpenError::Malformed),
            (format!("sealed:v1:k1:{}:{data}", &iv[1..]), OpenError::Malformed),
            (format!("sealed:v1:k1:{iv}:{}", &data[..20]), OpenError::Malformed),
            (format!("sealed:v1:k1:{iv}:+{}", &data[1..]), OpenError::Malformed),
            (format!("sealed:v1:k1:{iv}:{}", &data[..24]), OpenError::Refused),
            (format!("sealed:v1:k9:{iv}:{data}"), OpenError::UnknownKey),
        ];
        for (value, expected) in cases {
            assert_eq!(opened(&keys, &aad, &value), Err(expected), "{value}");
        }
        assert!(!is_sealed("a cleartext token") && !is_sealed("sealed:v1") && is_sealed("sealed:v1:"));
    }

    #[test]
    fn open_errors_have_codes_and_print_nothing_of_the_value() {
        let errors = [OpenError::NotSealed, OpenError::Malformed, OpenError::UnknownKey, OpenError::Refused];
        let codes: Vec<&str> = errors.iter().map(|e| e.code()).collect();
        assert_eq!(codes, ["not_sealed", "malformed", "unknown_key", "refused"]);
        let printed: Vec<String> = errors.iter().map(|e| format!("{e:?}")).collect();
        assert_eq!(printed, ["NotSealed", "Malformed", "UnknownKey", "Refused"]);
        assert_eq!(OpenError::Refused.to_string(), "the sealed value does not open here with its key");
    }

    #[test]
    fn the_binary_form_opens_where_it_was_sealed_and_nowhere_else() {
        let (keys, rt) = (one_key(), runtime());
        let here = Aad::metadata("u1", "microsoft_access_token");
        let value = block_on(seal_bytes(&rt, &keys, &here, b"token")).unwrap();
        assert!(value.starts_with(b"sealed:v1:k1:") && is_sealed_bytes(&value));
        assert_eq!(value.len(), "sealed:v1:k1:".len() + IV_BYTES + 5 + TAG_BYTES);
        assert_eq!(block_on(open_bytes(&rt, &keys, &here, &value)), Ok(b"token".to_vec()));
        let elsewhere = Aad::metadata("u2", "microsoft_access_token");
        assert_eq!(block_on(open_bytes(&rt, &keys, &elsewhere, &value)), Err(OpenError::Refused));
        for at in 13..value.len() {
            let mut changed = value.clone();
            changed[at] ^= 1;
            assert_eq!(block_on(open_bytes(&rt, &keys, &here, &changed)), Err(OpenError::Refused), "byte {at}");
        }
        let mut other_id = value.clone();
        other_id[10] = b'x';
        assert_eq!(block_on(open_bytes(&rt, &keys, &here, &other_id)), Err(OpenError::UnknownKey));
        assert_eq!(block_on(open_bytes(&rt, &keys, &here, b"token")), Err(OpenError::NotSealed));
        assert_eq!(block_on(open_bytes(&rt, &keys, &here, b"sealed:v1:k1:short")), Err(OpenError::Malformed));
        assert_eq!(block_on(open_bytes(&rt, &keys, &here, b"sealed:v1:no colon")), Err(OpenError::Malformed));
    }
}
