//! Test doubles of the ports, and the helpers every test shares (base64, settings, the JOSE
//! vectors), for the crate's unit tests, the property tests and the host benchmark (cargo feature
//! `testing`; never part of the worker's wasm).
//!
//! [`FakeRuntime`] answers outbound requests from a script and records them, keeps a clock that
//! moves only when told to, an optional shared cache (KV), timers in one of three modes, and random
//! bytes that are the same on every run (so a failing test fails again).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::task::{Poll, Waker};

pub mod crypto;

use base64::Engine;

use crate::config::{Config, Problem};
use crate::contract::jose::{Epk, Jwk, JwsAlg};
use crate::contract::signature::RustMac;
use crate::port::{Clock, Crypto, Http, HttpRequest, HttpResponse, Mac, Random, SharedCache, Timer, TransportError};
use crate::runtime::deadline::{flight_lifetime_ms, MAX_UPSTREAM_TIMEOUT_MS};

/// The fake clock's start: 2023-11-14T22:13:20Z.
pub const START_MS: u64 = 1_700_000_000_000;

/// A scripted answer to one outbound request.
#[derive(Debug, Clone)]
pub enum Reply {
    Answer {
        status: u16,
        body: Vec<u8>,
        retry_after: Option<u64>,
    },
    Fail(TransportError),
    /// Never answers: the caller's deadline must end the wait.
    Hang,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::Answer { status, body: body.to_string().into_bytes(), retry_after: None }
    }

    /// 429 Too Many Requests with `Retry-After: seconds`.
    pub fn rate_limited(seconds: u64) -> Reply {
        Reply::Answer { status: 429, body: b"{}".to_vec(), retry_after: Some(seconds) }
    }

    pub fn raw(status: u16, body: &[u8]) -> Reply {
        Reply::Answer { status, body: body.to_vec(), retry_after: None }
    }
}

/// A request as the runtime received it.
#[derive(Clone)]
pub struct Sent {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Sent {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// `bytes` in standard padded base64 (metadata values, PKCS#8 keys).
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `bytes` in unpadded base64url (JOSE's parts).
pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The settings `pairs` (a later pair wins over an earlier one of the same name), read as the
/// worker reads its environment.
pub fn settings(pairs: &[(&str, &str)]) -> Result<Config, Vec<Problem>> {
    let map: HashMap<&str, &str> = pairs.iter().copied().collect();
    Config::from_lookup(|name| map.get(name).map(|v| v.to_string()))
}

/// The JWS and JWE vectors of `tests/fixtures/jose/vectors.json`, made with the `jose` npm package
/// as ZITADEL makes them (`make.mjs` beside them).
pub fn jose_vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("../../../../tests/fixtures/jose/vectors.json")).expect("the vectors are JSON")
}

/// The DER of a PEM (PKCS#8 or SPKI).
pub fn der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).expect("a PEM")
}

/// The ZITADEL API client an isolate builds from `config` (present with the API settings).
pub fn zitadel_client(config: &Config) -> Option<crate::upstream::zitadel::ZitadelClient> {
    config.zitadel.clone().map(|api| crate::upstream::zitadel::ZitadelClient::new(api, live_for_ms()))
}

/// How long the flights of a test's clients and caches may live: as long as the longest deadline
/// the settings allow.
pub fn live_for_ms() -> u64 {
    flight_lifetime_ms(MAX_UPSTREAM_TIMEOUT_MS)
}

/// What `sleep` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timers {
    /// Every timer is already over: only work that never finishes ([`Reply::Hang`]) meets a
    /// deadline. The default.
    Elapsed,
    /// A timer ends once [`FakeRuntime::advance_ms`] has moved the clock past it.
    Manual,
    /// No timer ever ends (for work that must finish on its own, as in the benchmark).
    Never,
}

/// The first state of the fake's random generator (any but zero).
const RANDOM_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// More outbound requests than this in one test is a worker that keeps calling upstream.
const MAX_SENDS: usize = 1_000;

pub struct FakeRuntime {
    replies: RefCell<VecDeque<Reply>>,
    repeat: Option<Reply>,
    sent: RefCell<Vec<Sent>>,
    sends: Cell<usize>,
    record: bool,
    now_ms: Cell<u64>,
    timers: Timers,
    sleepers: RefCell<Vec<Waker>>,
    kv: Option<RefCell<HashMap<String, (String, u64)>>>,
    kv_default: Option<String>,
    random: Cell<u64>,
}

impl FakeRuntime {
    /// Answers the given replies in order, then fails with a network error.
    pub fn new(replies: Vec<Reply>) -> Self {
        FakeRuntime {
            replies: RefCell::new(replies.into()),
            repeat: None,
            sent: RefCell::default(),
            sends: Cell::new(0),
            record: true,
            now_ms: Cell::new(START_MS),
            timers: Timers::Elapsed,
            sleepers: RefCell::default(),
            kv: None,
            kv_default: None,
            random: Cell::new(RANDOM_SEED),
        }
    }

    /// Adds a reply after those still to come (a test that scripts its upstream step by step).
    pub fn push(&self, reply: Reply) {
        self.replies.borrow_mut().push_back(reply);
    }

    /// Answers every request with `reply`.
    pub fn repeating(reply: Reply) -> Self {
        FakeRuntime { repeat: Some(reply), ..FakeRuntime::new(Vec::new()) }
    }

    /// Adds a shared cache (KV).
    pub fn with_kv(mut self) -> Self {
        self.kv = Some(RefCell::default());
        self
    }

    /// Adds a shared cache that answers `value` for every key it was not given.
    pub fn with_kv_default(mut self, value: Option<String>) -> Self {
        self.kv = Some(RefCell::default());
        self.kv_default = value;
        self
    }

    pub fn with_timers(mut self, timers: Timers) -> Self {
        self.timers = timers;
        self
    }

    /// Random bytes from another fixed seed (a property test's own, so its cases do not all draw
    /// the same IV). Zero, which xorshift never leaves, is taken as the default seed.
    pub fn with_random_seed(mut self, seed: u64) -> Self {
        self.random = Cell::new(if seed == 0 { RANDOM_SEED } else { seed });
        self
    }

    /// Counts requests without keeping them (the benchmark's hot path).
    pub fn without_recording(mut self) -> Self {
        self.record = false;
        self
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.borrow().clone()
    }

    /// How many requests were sent.
    pub fn sends(&self) -> usize {
        self.sends.get()
    }

    /// Moves the clock; with [`Timers::Manual`], wakes the timers it passes.
    pub fn advance_ms(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
        for waker in self.sleepers.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// What the shared cache holds under `key`, with its TTL.
    pub fn kv_entry(&self, key: &str) -> Option<(String, u64)> {
        self.kv.as_ref()?.borrow().get(key).cloned()
    }

    pub fn kv_insert(&self, key: &str, value: String) {
        self.kv.as_ref().expect("with_kv()").borrow_mut().insert(key.to_string(), (value, 60));
    }
}

impl Mac for FakeRuntime {
    async fn hmac_sha256(&self, key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        RustMac.hmac_sha256(key, parts).await
    }
}

impl Crypto for FakeRuntime {
    async fn verify_signature(&self, alg: JwsAlg, key: &Jwk, data: &[u8], signature: &[u8]) -> Option<bool> {
        crypto::verify_signature(alg, key, data, signature)
    }

    async fn rsa_oaep_256_decrypt(&self, pkcs8: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        crypto::rsa_oaep_256_decrypt(pkcs8, ciphertext)
    }

    async fn ecdh_shared_secret(&self, pkcs8: &[u8], peer: &Epk) -> Option<Vec<u8>> {
        crypto::ecdh_shared_secret(pkcs8, peer)
    }

    async fn aes_kw_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
        crypto::aes_kw_unwrap(kek, wrapped)
    }

    async fn aes_gcm_decrypt(&self, key: &[u8], iv: &[u8], aad: &[u8], ciphertext_and_tag: &[u8]) -> Option<Vec<u8>> {
        crypto::aes_gcm_decrypt(key, iv, aad, ciphertext_and_tag)
    }

    async fn aes_gcm_encrypt(&self, key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
        crypto::aes_gcm_encrypt(key, iv, aad, plaintext)
    }
}

/// xorshift64 from a fixed seed: repeatable, and no two draws of a test alike (its period is
/// 2^64 - 1), which is all the IVs of a test need. Not for anything outside tests.
impl Random for FakeRuntime {
    fn fill_random(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.random.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.random.set(x);
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
    }
}

impl Http for FakeRuntime {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.sends.set(self.sends.get() + 1);
        assert!(self.sends.get() <= MAX_SENDS, "the worker keeps calling upstream");
        if self.record {
            self.sent.borrow_mut().push(Sent {
                method: request.method,
                url: request.url,
                headers: request.headers,
                body: request.body,
            });
        }
        let reply = self.replies.borrow_mut().pop_front().or_else(|| self.repeat.clone());
        match reply {
            Some(Reply::Answer { status, body, retry_after }) => Ok(HttpResponse { status, body, retry_after }),
            Some(Reply::Fail(e)) => Err(e),
            Some(Reply::Hang) => std::future::pending().await,
            None => Err(TransportError::Network),
        }
    }
}

impl Clock for FakeRuntime {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }
}

impl Timer for FakeRuntime {
    async fn sleep(&self, ms: u64) {
        match self.timers {
            Timers::Elapsed => {}
            Timers::Never => std::future::pending().await,
            Timers::Manual => {
                let until = self.now_ms.get().saturating_add(ms);
                std::future::poll_fn(|cx| {
                    if self.now_ms.get() >= until {
                        return Poll::Ready(());
                    }
                    self.sleepers.borrow_mut().push(cx.waker().clone());
                    Poll::Pending
                })
                .await
            }
        }
    }
}

impl SharedCache for FakeRuntime {
    async fn cache_get(&self, key: &str) -> Option<String> {
        self.kv_entry(key).map(|(v, _)| v).or_else(|| self.kv.as_ref().and(self.kv_default.clone()))
    }

    async fn cache_put(&self, key: &str, value: String, ttl_seconds: u64) {
        if let Some(kv) = &self.kv {
            kv.borrow_mut().insert(key.to_string(), (value, ttl_seconds));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_repeat_from_run_to_run_and_never_within_one() {
        let draw = |runtime: &FakeRuntime| {
            let mut iv = [0u8; 12];
            runtime.fill_random(&mut iv);
            iv
        };
        let (one, two) = (FakeRuntime::new(Vec::new()), FakeRuntime::new(Vec::new()));
        let first: Vec<[u8; 12]> = (0..100).map(|_| draw(&one)).collect();
        let again: Vec<[u8; 12]> = (0..100).map(|_| draw(&two)).collect();
        assert_eq!(first, again);
        let distinct: std::collections::HashSet<_> = first.iter().collect();
        assert_eq!(distinct.len(), first.len());
        assert!(first.iter().all(|iv| iv != &[0u8; 12]));
    }
}
