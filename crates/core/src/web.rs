//! A request and a response as the routes see them: what the glue hands a handler (its headers
//! and, on demand, its body) and what a handler answers (status, headers, body).

use std::borrow::Cow;
use std::future::Future;

use crate::error::Error;

/// A request as the runtime holds it: its headers, and its body, read only by the handlers that
/// need it, within a limit.
pub trait Incoming {
    /// The value of the header `name` (case-insensitive), if the request has it.
    fn header(&self, name: &str) -> Option<String>;

    /// The body, refused when it is larger than `limit` bytes.
    fn body(&self, limit: usize) -> impl Future<Output = Result<Vec<u8>, Error>>;
}

/// An answer: status, headers and body. Header values are mostly fixed texts; a route that needs
/// one made per request (a redirect's location, a cookie) gives an owned one.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    pub body: String,
}

impl Response {
    /// A JSON answer that no cache keeps.
    pub fn json(status: u16, body: String) -> Self {
        let headers = vec![("content-type", "application/json".into()), ("cache-control", "no-store".into())];
        Response { status, headers, body }
    }

    /// The answer to `error`, with `Allow` for a method the path does not take.
    pub fn error(error: &Error) -> Self {
        let mut response = Response::json(error.status(), error.to_json());
        if let Error::MethodNotAllowed { allow } = error {
            response.headers.push(("allow", Cow::Borrowed(*allow)));
        }
        response
    }
}
