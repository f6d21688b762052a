//! The real transports: HTTPS (rustls) with ureq; to ZITADEL with the PAT as a bearer token, to
//! the worker without it.

use std::time::Duration;

use ureq::Agent;

use crate::api::{Answer, Method, Request, Transport};
use crate::error::Error;
use crate::secret::Secret;
use crate::worker::{Probe, SIGNATURE_HEADER};

pub struct Http {
    agent: Agent,
    pat: Secret,
}

/// An agent that reports statuses instead of failing on them, follows no redirect (a redirect
/// means a wrong URL; following it would turn a POST into a GET) and gives up after 30 s.
fn agent() -> Agent {
    let config = Agent::config_builder()
        // Statuses are ours to explain (401, 403 with the permission, ZITADEL's message).
        .http_status_as_error(false)
        // A redirect means a wrong --domain; following it would turn a POST into a GET.
        .max_redirects(0)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(Duration::from_secs(30)))
        .user_agent(concat!("zitadel-claims-setup/", env!("CARGO_PKG_VERSION")))
        .build();
    Agent::new_with_config(config)
}

impl Http {
    pub fn new(pat: Secret) -> Self {
        Http { agent: agent(), pat }
    }
}

/// The worker, over HTTP(S): no credential of ZITADEL ever goes there.
pub struct WorkerHttp {
    agent: Agent,
}

impl WorkerHttp {
    pub fn new() -> Self {
        WorkerHttp { agent: agent() }
    }
}

impl Probe for WorkerHttp {
    fn get(&mut self, url: &str) -> Result<Answer, Error> {
        let unreachable = |e: ureq::Error| Error::WorkerUnreachable { url: url.to_string(), reason: reason(&e) };
        let response = self.agent.get(url).header("Accept", "application/json").call().map_err(unreachable)?;
        read(response).map_err(unreachable)
    }

    fn post(&mut self, url: &str, signature: &str, body: &str) -> Result<Answer, Error> {
        let unreachable = |e: ureq::Error| Error::WorkerUnreachable { url: url.to_string(), reason: reason(&e) };
        let response = self
            .agent
            .post(url)
            .header(SIGNATURE_HEADER, signature)
            .content_type("application/json")
            .send(body)
            .map_err(unreachable)?;
        read(response).map_err(unreachable)
    }
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> Result<Answer, ureq::Error> {
    let status = response.status().as_u16();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.body_mut().read_to_string()?;
    Ok(Answer { status, body, location })
}

impl Transport for Http {
    fn send(&mut self, request: &Request) -> Result<Answer, Error> {
        let authorization = format!("Bearer {}", self.pat.expose());
        let unreachable = |e: ureq::Error| Error::Unreachable { url: request.url.clone(), reason: reason(&e) };
        let body = request.body.as_ref().map(|b| b.to_string()).unwrap_or_else(|| "{}".to_string());
        let result = match request.method {
            Method::Get => self
                .agent
                .get(&request.url)
                .header("Authorization", &authorization)
                .header("Accept", "application/json")
                .call(),
            Method::Delete => self
                .agent
                .delete(&request.url)
                .header("Authorization", &authorization)
                .header("Accept", "application/json")
                .call(),
            Method::Post | Method::Put => {
                let builder = if request.method == Method::Post {
                    self.agent.post(&request.url)
                } else {
                    self.agent.put(&request.url)
                };
                builder
                    .header("Authorization", &authorization)
                    .header("Accept", "application/json")
                    .content_type("application/json")
                    .send(body.as_str())
            }
        };
        read(result.map_err(unreachable)?).map_err(unreachable)
    }
}

/// Why no answer came, in words (the errors of ureq name no credential).
fn reason(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) => e.to_string(),
        ureq::Error::HostNotFound => "host not found (DNS)".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        other => other.to_string(),
    }
}
