//! Test doubles for the core: a [`Platform`] that answers from a script and records what was sent.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

use crate::runtime::{HttpRequest, HttpResponse, Platform, TransportError};

#[derive(Clone)]
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

/// A request as the platform received it.
#[derive(Clone)]
pub struct Sent {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Sent {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub struct FakePlatform {
    replies: RefCell<VecDeque<Reply>>,
    repeat: Option<Reply>,
    sent: RefCell<Vec<Sent>>,
    now_ms: Cell<u64>,
    kv: Option<RefCell<HashMap<String, (String, u64)>>>,
}

impl FakePlatform {
    /// Answers the given replies in order, then fails with a network error.
    pub fn new(replies: Vec<Reply>) -> Self {
        FakePlatform {
            replies: RefCell::new(replies.into()),
            repeat: None,
            sent: RefCell::default(),
            now_ms: Cell::new(1_700_000_000_000),
            kv: None,
        }
    }

    /// Answers every request with `reply`.
    pub fn repeating(reply: Reply) -> Self {
        FakePlatform { repeat: Some(reply), ..FakePlatform::new(Vec::new()) }
    }

    /// Adds a shared cache (KV).
    pub fn with_kv(mut self) -> Self {
        self.kv = Some(RefCell::default());
        self
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.borrow().clone()
    }

    pub fn advance_ms(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }

    /// What the shared cache holds under `key`, with its TTL.
    pub fn kv_entry(&self, key: &str) -> Option<(String, u64)> {
        self.kv.as_ref()?.borrow().get(key).cloned()
    }

    pub fn kv_insert(&self, key: &str, value: String) {
        self.kv.as_ref().expect("with_kv()").borrow_mut().insert(key.to_string(), (value, 60));
    }
}

impl Platform for FakePlatform {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.sent.borrow_mut().push(Sent { url: request.url, headers: request.headers, body: request.body });
        let reply = self.replies.borrow_mut().pop_front().or_else(|| self.repeat.clone());
        match reply {
            Some(Reply::Answer { status, body, retry_after }) => Ok(HttpResponse { status, body, retry_after }),
            Some(Reply::Fail(e)) => Err(e),
            Some(Reply::Hang) => std::future::pending().await,
            None => Err(TransportError::Network),
        }
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    /// Time does not pass by itself in tests: every deadline is already over, so only work that
    /// never finishes (`Reply::Hang`) runs into it.
    async fn sleep(&self, _ms: u64) {}

    async fn cache_get(&self, key: &str) -> Option<String> {
        self.kv_entry(key).map(|(v, _)| v)
    }

    async fn cache_put(&self, key: &str, value: String, ttl_seconds: u64) {
        if let Some(kv) = &self.kv {
            kv.borrow_mut().insert(key.to_string(), (value, ttl_seconds));
        }
    }
}
