//! The ports: what the core needs from the outside world, each a small trait, so that every part
//! asks only for what it uses. The worker crate implements all of them over the Workers runtime
//! (`fetch`, `Date.now()`, `setTimeout`, KV, WebCrypto and `crypto.getRandomValues`); `testing::FakeRuntime` implements them
//! for the host, with canned answers and a clock the test moves.

use std::future::Future;

use crate::contract::jose::{Epk, Jwk, JwsAlg};

/// An outbound request. `Debug` is deliberately absent: headers carry credentials.
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After` in seconds, when the answer has one in that form.
    pub retry_after: Option<u64>,
}

/// The delta-seconds form of `Retry-After` (the HTTP-date form is ignored).
#[must_use]
pub fn parse_retry_after(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

/// How an exchange failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    /// No answer within the deadline.
    Timeout,
    /// Connection refused, reset or dropped.
    Network,
    /// The answer was larger than the worker reads.
    TooLarge,
}

/// Outbound HTTP.
pub trait Http {
    /// Sends one request. Implementations bound the response size.
    fn send(&self, request: HttpRequest) -> impl Future<Output = Result<HttpResponse, TransportError>>;
}

/// The wall clock.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// Timers: what deadlines, single flight and backoff wait with.
pub trait Timer {
    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
}

/// The cache shared by the isolates of a deployment (KV), optional: without a binding, reads find
/// nothing and writes do nothing.
pub trait SharedCache {
    /// Reads the shared cache, if one is bound.
    fn cache_get(&self, key: &str) -> impl Future<Output = Option<String>>;

    /// Writes the shared cache, if one is bound; failures are ignored by design.
    fn cache_put(&self, key: &str, value: String, ttl_seconds: u64) -> impl Future<Output = ()>;
}

/// HMAC-SHA256 of concatenated parts, the MAC the signature is checked with. The runtime port
/// provides it (in workerd through WebCrypto, native code);
/// [`RustMac`](crate::contract::signature::RustMac) computes it in Rust.
pub trait Mac {
    fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> impl Future<Output = [u8; 32]>;
}

/// The cryptography the payload checks and the sealed values (`seal.rs`) need, from the
/// runtime (in workerd: WebCrypto). Each answers `None` when the runtime refuses: a key it cannot
/// import, or a check that fails.
pub trait Crypto {
    /// Whether `signature` is `alg`'s signature of `data` under the public key `key`.
    fn verify_signature(
        &self,
        alg: JwsAlg,
        key: &Jwk,
        data: &[u8],
        signature: &[u8],
    ) -> impl Future<Output = Option<bool>>;

    /// RSA-OAEP with SHA-256 (and an empty label) under the PKCS#8 private key `pkcs8`.
    fn rsa_oaep_256_decrypt(&self, pkcs8: &[u8], ciphertext: &[u8]) -> impl Future<Output = Option<Vec<u8>>>;

    /// The ECDH shared secret of the PKCS#8 private key `pkcs8` (on `peer`'s curve) and `peer`.
    fn ecdh_shared_secret(&self, pkcs8: &[u8], peer: &Epk) -> impl Future<Output = Option<Vec<u8>>>;

    /// AES key unwrap (RFC 3394) of `wrapped` with `kek`.
    fn aes_kw_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> impl Future<Output = Option<Vec<u8>>>;

    /// AES-GCM decryption (128-bit tag) of `ciphertext_and_tag` with `key`, `iv` and `aad`.
    fn aes_gcm_decrypt(
        &self,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> impl Future<Output = Option<Vec<u8>>>;

    /// AES-GCM encryption of `plaintext` with `key`, `iv` and `aad`: the ciphertext followed by the
    /// 128-bit tag, as [`aes_gcm_decrypt`](Crypto::aes_gcm_decrypt) takes them.
    fn aes_gcm_encrypt(
        &self,
        key: &[u8],
        iv: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> impl Future<Output = Option<Vec<u8>>>;
}

/// Random bytes from the runtime's cryptographically secure generator (in workerd
/// `crypto.getRandomValues`, which is synchronous): the IVs of sealed values. It reports no
/// failure: an implementation that cannot get random bytes must stop (panic) rather than fill
/// `buf` with predictable ones: an IV used twice under one key breaks AES-GCM (it reveals the XOR
/// of the two plaintexts and lets tags be forged).
pub trait Random {
    fn fill_random(&self, buf: &mut [u8]);
}

/// All the ports, for the parts that use them all (a route's handler).
pub trait Runtime: Http + Clock + Timer + SharedCache + Mac + Crypto + Random {}

impl<T: Http + Clock + Timer + SharedCache + Mac + Crypto + Random> Runtime for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_only() {
        assert_eq!(parse_retry_after(" 120 "), Some(120));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
