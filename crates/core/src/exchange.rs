//! The token vault's doors for back ends and users: the token exchange (RFC 8693) at
//! `POST /token`, and the user's view of the connection at `GET` and `DELETE
//! /connections/{provider}`.
//!
//! - `POST /token`: a back end of `TOKEN_EXCHANGE_CLIENTS` (HTTP Basic) presents the user's
//!   ZITADEL access token as `subject_token` and gets the user's Microsoft access token for Graph.
//!   The subject token must have been issued to that back end (`client_id`) and not to someone
//!   impersonating the user (`act`). The worker reads the user's sealed tokens from ZITADEL,
//!   refreshes a stale one (once for concurrent calls of a user), writes the rotated tokens back
//!   sealed, and keeps the fresh token in memory for a few minutes ([`crate::vault`]). Errors are RFC 6749
//!   §5.2 JSON; a user who never connected, or whose grant Microsoft refused, gets `invalid_grant`
//!   with `connect_uri`.
//! - `GET /connections/{provider}` says whether the user is connected; `DELETE` removes the stored
//!   tokens and this isolate's memory of them. The user's own access token is the Bearer.
//!
//! Nothing here logs or answers a token, a secret or a metadata value.

pub mod client;
pub mod subject;

use std::borrow::Cow;
use std::rc::Rc;

use serde::Serialize;

use crate::claims::microsoft::{jwt_expiry, read_stored, seal_entries, token_metadata, ListedMetadata, Refresher};
use crate::config::{ConnectConfig, ExchangeClient, ExchangeConfig, MsTokenConfig};
use crate::contract::response::Metadata;
use crate::envelope::{self, EnvelopeError};
use crate::error::Error;
use crate::flow::{now_s, origin_of};
use crate::port::Runtime;
use crate::runtime::deadline::timeout_at;
use crate::seal::SealingKeys;
use crate::target::Target;
use crate::trace::Trace;
use crate::upstream::jwks::JwksCache;
use crate::upstream::microsoft::RefreshError;
use crate::upstream::zitadel::ZitadelClient;
use crate::upstream::UpstreamError;
use crate::vault::{normalize_scope, Failure, Fetched, Issued, Vault};
use crate::web::{Incoming, Response};
use subject::{Subject, SubjectError};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// The audience (or resource) the exchange issues tokens for.
pub const GRAPH: &str = "https://graph.microsoft.com";
/// The largest form `POST /token` reads: a subject token is a few KB.
const MAX_FORM_BYTES: usize = 64 * 1024;
/// The clock difference tolerated on a subject token's `exp`, `nbf` and `iat`.
const LEEWAY_S: u64 = 60;
/// Scopes of OpenID Connect that no Graph token carries: left out of the scope answered.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Why a subject or Bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refused {
    Token(SubjectError),
    /// An opaque token, and no introspection configured.
    OpaqueUnsupported,
    /// The keys or introspection could not be had.
    Upstream(UpstreamError),
}

/// What the routes need of the isolate, all present when the connect flow is on.
struct Vaulted<'a> {
    connect: &'a ConnectConfig,
    ms: &'a MsTokenConfig,
    keys: &'a SealingKeys,
    zitadel: &'a ZitadelClient,
    jwks: &'a JwksCache,
    refresher: &'a Refresher,
    vault: &'a Vault,
    exchange: Option<&'a ExchangeConfig>,
    timeout_ms: u64,
}

impl<'a> Vaulted<'a> {
    fn of(target: &'a Target) -> Option<Vaulted<'a>> {
        let config = target.config();
        Some(Vaulted {
            connect: config.connect.as_ref()?,
            ms: config.ms_token.as_ref()?,
            keys: config.sealing.as_ref()?,
            zitadel: target.zitadel()?,
            jwks: target.jwks()?,
            refresher: target.refresher()?,
            vault: target.vault(),
            exchange: config.exchange.as_ref(),
            timeout_ms: config.upstream_timeout_ms,
        })
    }
}

/// Answers `POST /token` at the request URL `url`.
pub async fn token<R: Runtime>(
    target: &Target,
    runtime: &R,
    url: &str,
    request: &impl Incoming,
) -> (Result<Response, Error>, Trace) {
    let config = target.config();
    let vaulted = Vaulted::of(target);
    let (Some(vaulted), Some(exchange)) = (vaulted, config.exchange.as_ref()) else {
        let needs = config.exchange_needs();
        return (Err(Error::FeatureOff { feature: "token_exchange", needs }), Trace::default());
    };
    let mut trace = Trace::default();
    let response = match vaulted.token(runtime, exchange, url, request, &mut trace).await {
        Ok(response) => response,
        Err(e) => {
            trace.outcome = e.error;
            e.response()
        }
    };
    (Ok(response), trace)
}

/// Answers `GET` or `DELETE /connections/{provider}`.
pub async fn connection<R: Runtime>(
    target: &Target,
    runtime: &R,
    method: &str,
    provider: &str,
    request: &impl Incoming,
) -> (Result<Response, Error>, Trace) {
    let config = target.config();
    let Some(vaulted) = Vaulted::of(target) else {
        let needs = config.connect_needs();
        return (Err(Error::FeatureOff { feature: "microsoft_connect", needs }), Trace::default());
    };
    if provider != vaulted.connect.provider.name {
        return (Err(Error::NotFound), Trace::default());
    }
    let mut trace = Trace::default();
    let delete = method.eq_ignore_ascii_case("DELETE");
    let response = match vaulted.connection(runtime, delete, request, &mut trace).await {
        Ok(response) => response,
        Err(e) => {
            trace.outcome = e.error;
            e.response()
        }
    };
    (Ok(response), trace)
}

impl Vaulted<'_> {
    async fn token<R: Runtime>(
        &self,
        runtime: &R,
        exchange: &ExchangeConfig,
        url: &str,
        request: &impl Incoming,
        trace: &mut Trace,
    ) -> Result<Response, OAuthError> {
        let authorization = request.header("authorization");
        let client =
            client::authenticate(&exchange.clients, authorization.as_deref()).ok_or_else(OAuthError::invalid_client)?;
        trace.client_id = Some(client.id.clone());
        let is_form = request.header("content-type").is_some_and(|t| {
            t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        });
        if !is_form {
            return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
        }
        let body = request
            .body(MAX_FORM_BYTES)
            .await
            .map_err(|_| OAuthError::invalid_request("the body could not be read, or is larger than 64 KiB"))?;
        let form = Form::parse(&body)?;
        match form.get("grant_type") {
            None => return Err(OAuthError::invalid_request("grant_type is missing")),
            Some(GRANT_TYPE) => {}
            Some(_) => return Err(OAuthError::new(400, "unsupported_grant_type", "only token exchange is supported")),
        }
        let subject_token = form.required("subject_token")?;
        let jwt_only = match form.required("subject_token_type")? {
            ACCESS_TOKEN_TYPE => false,
            JWT_TYPE => true,
            _ => return Err(OAuthError::invalid_request("subject_token_type must be an access token or a JWT")),
        };
        if form.get("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
            return Err(OAuthError::invalid_request("requested_token_type may only be an access token"));
        }
        if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
            return Err(OAuthError::invalid_request("actor_token is not supported: the back end acts as itself"));
        }
        for name in ["audience", "resource"] {
            if form.get(name).is_some_and(|a| a.trim_end_matches('/') != GRAPH) {
                return Err(OAuthError::new(
                    400,
                    "invalid_target",
                    "tokens are issued for https://graph.microsoft.com only",
                ));
            }
        }
        let scope = form.get("scope").map(normalize_scope).filter(|s| !s.is_empty());
        let consented = &self.refresher.microsoft().config().scopes;
        if let Some(scope) = &scope {
            if !scope.split(' ').all(|s| consented.split_whitespace().any(|c| c == s)) {
                return Err(OAuthError::new(
                    400,
                    "invalid_scope",
                    "scope may only name scopes of MS_SCOPES (what users consent to)",
                ));
            }
        }
        let deadline_ms = runtime.now_ms() + self.timeout_ms;
        let allowed = |c: &str| subject::is_client(c, &client.id);
        let verified = Box::pin(self.verify(runtime, subject_token, jwt_only, &allowed, deadline_ms, trace)).await;
        let subject = verified.map_err(|refused| refused.answer(OAuthError::invalid_request, trace))?;
        trace.user_id = Some(subject.user_id.clone());
        let scope_key = scope.clone().unwrap_or_default();
        let now = now_s(runtime);
        if let Some(issued) = self.vault.get(&subject.user_id, &scope_key, now as i64) {
            trace.ms_token = Some("cached");
            return Ok(exchanged(&issued, now));
        }
        let flight = format!("{} {scope_key}", subject.user_id);
        let fetch = || self.fetch(runtime, &subject.user_id, scope.as_deref(), deadline_ms);
        let fetched = Box::pin(self.vault.flights.run(runtime, &flight, fetch)).await;
        match fetched {
            Ok(fetched) => {
                trace.ms_token = Some(fetched.source);
                trace.metadata_written = fetched.written;
                trace.upstream_error = fetched.write_error.or(trace.upstream_error);
                let now = now_s(runtime);
                self.vault.keep(&subject.user_id, &scope_key, fetched.issued.clone(), now as i64);
                Ok(exchanged(&fetched.issued, now))
            }
            Err(failure) => Err(self.failure(failure, url, trace)),
        }
    }

    async fn connection<R: Runtime>(
        &self,
        runtime: &R,
        delete: bool,
        request: &impl Incoming,
        trace: &mut Trace,
    ) -> Result<Response, OAuthError> {
        let header = request.header("authorization");
        let bearer = header
            .as_deref()
            .and_then(bearer_token)
            .ok_or_else(|| OAuthError::invalid_token("a Bearer token is required"))?;
        let clients = self.exchange.map_or(&[][..], |e| e.clients.as_slice());
        let allowed = |c: &str| {
            subject::is_client(c, &self.connect.client_id) || clients.iter().any(|k| subject::is_client(c, &k.id))
        };
        let deadline_ms = runtime.now_ms() + self.timeout_ms;
        let verified = Box::pin(self.verify(runtime, bearer, false, &allowed, deadline_ms, trace)).await;
        let subject = verified.map_err(|refused| refused.answer(OAuthError::invalid_token, trace))?;
        trace.user_id = Some(subject.user_id.clone());
        trace.client_id = Some(subject.client_id.clone());
        let listed =
            Box::pin(self.read(runtime, &subject.user_id, deadline_ms)).await.map_err(|e| zitadel_failure(e, trace))?;
        if !delete {
            let (stored, _) = read_stored(runtime, Some(self.keys), self.ms, &listed).await;
            let connected = stored.refresh.is_some();
            return Ok(Response::json(200, connection_json(connected, stored.expires_at)));
        }
        let keys: Vec<&str> = listed.entries.iter().map(|(k, _)| k.as_str()).collect();
        if !keys.is_empty() {
            let removal = self.zitadel.delete_user_metadata(runtime, &subject.user_id, &keys);
            let removed = timeout_at(runtime, deadline_ms, removal).await.unwrap_or(Err(UpstreamError::Timeout));
            trace.metadata_written = Some(removed.is_ok());
            removed.map_err(|e| zitadel_failure(e, trace))?;
        }
        self.vault.forget(&subject.user_id);
        trace.outcome = "disconnected";
        Ok(Response::json(200, connection_json(false, None)))
    }

    /// The subject of `token`: a JWT verified against the instance's keys, or an opaque token
    /// introspected (unless `jwt_only`); issued to a client `allowed` accepts, to the user itself.
    /// (Its callers box its future and pass `allowed` as `dyn`, so that the wasm holds its state
    /// machine once, not inlined into each route's.)
    async fn verify<R: Runtime>(
        &self,
        runtime: &R,
        token: &str,
        jwt_only: bool,
        allowed: &dyn Fn(&str) -> bool,
        deadline_ms: u64,
        trace: &mut Trace,
    ) -> Result<Subject, Refused> {
        let now = now_s(runtime);
        let claims = if subject::looks_like_jwt(token) {
            let payload = match envelope::verify_jws(self.jwks, runtime, token, deadline_ms).await {
                Ok(payload) => payload,
                Err(EnvelopeError::KeysUnavailable(e)) => return Err(Refused::Upstream(e)),
                Err(_) => return Err(Refused::Token(SubjectError::Signature)),
            };
            subject::jwt_claims(&payload, &self.connect.issuers, now, LEEWAY_S).map_err(Refused::Token)?
        } else if jwt_only {
            return Err(Refused::Token(SubjectError::Malformed));
        } else {
            let api_app: &ExchangeClient =
                self.exchange.and_then(|e| e.introspection.as_ref()).ok_or(Refused::OpaqueUnsupported)?;
            trace.notes.push("introspected".into());
            let asked = timeout_at(runtime, deadline_ms, self.zitadel.introspect(runtime, api_app, token)).await;
            let answer = asked.unwrap_or(Err(UpstreamError::Timeout)).map_err(Refused::Upstream)?;
            subject::introspected_claims(answer, now).map_err(Refused::Token)?
        };
        subject::subject(claims, allowed).map_err(Refused::Token)
    }

    /// The user's token metadata, as the ZITADEL API lists it.
    async fn read<R: Runtime>(
        &self,
        runtime: &R,
        user: &str,
        deadline_ms: u64,
    ) -> Result<ListedMetadata, UpstreamError> {
        let ms = self.ms;
        let keys = [ms.metadata_key.as_str(), &ms.refresh_token_metadata_key, &ms.expires_at_metadata_key];
        let listing = self.zitadel.user_metadata(runtime, user, &keys);
        let entries = timeout_at(runtime, deadline_ms, listing).await.unwrap_or(Err(UpstreamError::Timeout))?;
        Ok(ListedMetadata { user_id: user.to_string(), entries })
    }

    /// A token for `user`: the stored one while fresh (when no `scope` was asked), else a refresh
    /// for `scope` (or `MS_SCOPES`), whose rotated tokens are written back sealed.
    async fn fetch<R: Runtime>(
        &self,
        runtime: &R,
        user: &str,
        scope: Option<&str>,
        deadline_ms: u64,
    ) -> Result<Rc<Fetched>, Failure> {
        let listed = Box::pin(self.read(runtime, user, deadline_ms)).await.map_err(Failure::Zitadel)?;
        let (stored, _) = read_stored(runtime, Some(self.keys), self.ms, &listed).await;
        let microsoft = self.refresher.microsoft().config();
        let now = now_s(runtime) as i64;
        let access = stored.access.and_then(Result::ok);
        let expiry = stored.expires_at.or_else(|| access.as_deref().and_then(jwt_expiry));
        if let (None, Some(token), Some(expiry)) = (scope, &access, expiry) {
            if expiry.saturating_sub(microsoft.skew_seconds as i64) > now {
                let issued =
                    Issued { access_token: token.clone(), expires_at: expiry, scope: graph_scope(&microsoft.scopes) };
                return Ok(Rc::new(Fetched {
                    issued: Rc::new(issued),
                    source: "stored",
                    written: None,
                    write_error: None,
                }));
            }
        }
        let refresh_token = stored.refresh.ok_or(Failure::NotConnected)?;
        // A narrower token still asks for `offline_access`, so that Microsoft rotates the refresh
        // token as it does for the full one.
        let asked = scope.map(|s| match microsoft.scopes.split_whitespace().any(|c| c == "offline_access") {
            true => format!("{s} offline_access"),
            false => s.to_string(),
        });
        let refresh = self.refresher.refresh(runtime, &refresh_token, asked.as_deref(), now);
        let refreshed = Box::pin(timeout_at(runtime, deadline_ms, refresh))
            .await
            .unwrap_or(Err(RefreshError::Transient(UpstreamError::Timeout)))
            .map_err(Failure::Microsoft)?;
        // The full set replaces the stored tokens; a narrower token leaves them, but its rotated
        // refresh token is the one to keep.
        let entries = match scope {
            None => token_metadata(
                self.ms,
                &refreshed.access_token,
                refreshed.refresh_token.as_deref(),
                refreshed.expires_at,
            ),
            Some(_) => refreshed
                .refresh_token
                .iter()
                .map(|t| Metadata::new(&self.ms.refresh_token_metadata_key, t.as_bytes()))
                .collect(),
        };
        let (written, write_error) = match entries.is_empty() {
            true => (None, None),
            false => match self.write(runtime, user, entries, deadline_ms).await {
                Ok(()) => (Some(true), None),
                Err(e) => (Some(false), Some(e.code())),
            },
        };
        let answered = refreshed.scope.as_deref().map(graph_scope);
        let scope = answered.or_else(|| scope.map(str::to_string)).unwrap_or_else(|| graph_scope(&microsoft.scopes));
        let issued = Issued { access_token: refreshed.access_token.clone(), expires_at: refreshed.expires_at, scope };
        Ok(Rc::new(Fetched { issued: Rc::new(issued), source: "refreshed", written, write_error }))
    }

    /// Writes `entries` to the user's metadata, sealed.
    async fn write<R: Runtime>(
        &self,
        runtime: &R,
        user: &str,
        entries: Vec<Metadata>,
        deadline_ms: u64,
    ) -> Result<(), UpstreamError> {
        // A runtime that cannot seal writes nothing in clear instead.
        let sealed = seal_entries(runtime, self.keys, user, entries).await.ok_or(UpstreamError::Malformed)?;
        let write = self.zitadel.set_user_metadata(runtime, user, &sealed);
        timeout_at(runtime, deadline_ms, write).await.unwrap_or(Err(UpstreamError::Timeout))
    }

    /// The answer to a fetch that failed, at the request URL `url`.
    fn failure(&self, failure: Failure, url: &str, trace: &mut Trace) -> OAuthError {
        let connect_uri = || {
            let origin = self.connect.public_url.clone().unwrap_or_else(|| origin_of(url).to_string());
            format!("{origin}/connect/{}", self.connect.provider.name)
        };
        match failure {
            Failure::NotConnected => {
                trace.ms_token = Some("not_connected");
                OAuthError::invalid_grant("the user has not connected a Microsoft account", connect_uri())
            }
            Failure::Microsoft(RefreshError::SignInAgain(code)) => {
                trace.upstream_error = Some(code);
                OAuthError::invalid_grant(
                    "Microsoft no longer accepts the user's grant: the user must connect again",
                    connect_uri(),
                )
            }
            Failure::Microsoft(RefreshError::Refused("invalid_scope")) => {
                trace.upstream_error = Some("invalid_scope");
                OAuthError::new(400, "invalid_scope", "Microsoft refused the scope asked for")
            }
            Failure::Microsoft(RefreshError::Refused(code)) => {
                trace.upstream_error = Some(code);
                OAuthError::new(
                    502,
                    "server_error",
                    "Microsoft refused the worker's application: check MS_CLIENT_ID and MS_CLIENT_SECRET",
                )
            }
            Failure::Microsoft(RefreshError::Transient(e)) => {
                trace.upstream_error = Some(e.code());
                OAuthError::unavailable("Microsoft's token endpoint is unavailable")
            }
            Failure::Zitadel(e) => zitadel_failure(e, trace),
        }
    }
}

impl Refused {
    /// The answer to a refused token: `refuse` (`invalid_request` for a subject token,
    /// `invalid_token` for a Bearer) with why, the check that failed noted in `trace`; or, when the
    /// keys or introspection could not be had, ZITADEL's failure.
    fn answer(self, refuse: fn(&'static str) -> OAuthError, trace: &mut Trace) -> OAuthError {
        match self {
            Refused::Token(e) => {
                trace.notes.push(e.code().into());
                refuse(e.description())
            }
            Refused::OpaqueUnsupported => refuse(OPAQUE_UNSUPPORTED),
            Refused::Upstream(e) => zitadel_failure(e, trace),
        }
    }
}

const OPAQUE_UNSUPPORTED: &str =
    "opaque access tokens need introspection, which is not configured (INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET): send a JWT access token";

/// The answer when ZITADEL failed: its credentials refused (a setting to fix), or down.
fn zitadel_failure(e: UpstreamError, trace: &mut Trace) -> OAuthError {
    trace.upstream_error = Some(e.code());
    match e {
        UpstreamError::Unauthorized(_) => OAuthError::new(
            502,
            "server_error",
            "ZITADEL refused the worker's credentials: check the API credentials (they must read and write user metadata) and the introspection application's",
        ),
        _ => OAuthError::unavailable("ZITADEL is unavailable"),
    }
}

/// The exchange's answer (RFC 8693 §2.2.1).
fn exchanged(issued: &Issued, now: u64) -> Response {
    #[derive(Serialize)]
    struct Answer<'a> {
        access_token: &'a str,
        issued_token_type: &'static str,
        token_type: &'static str,
        expires_in: i64,
        scope: &'a str,
    }
    let answer = Answer {
        access_token: &issued.access_token,
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: "Bearer",
        expires_in: issued.expires_at.saturating_sub(now as i64).max(0),
        scope: &issued.scope,
    };
    let mut response = Response::json(200, serde_json::to_string(&answer).unwrap_or_default());
    response.headers.push(("pragma", "no-cache".into()));
    response
}

/// `{"connected":…,"expires_at":…}`.
fn connection_json(connected: bool, expires_at: Option<i64>) -> String {
    #[derive(Serialize)]
    struct Connection {
        connected: bool,
        expires_at: Option<i64>,
    }
    serde_json::to_string(&Connection { connected, expires_at }).unwrap_or_default()
}

/// The scopes a Graph token carries, of `scopes`: without those of OpenID Connect.
fn graph_scope(scopes: &str) -> String {
    scopes.split_whitespace().filter(|s| !OIDC_SCOPES.contains(s)).collect::<Vec<_>>().join(" ")
}

/// The token of an `Authorization: Bearer` value.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An error answer of RFC 6749 §5.2 (or RFC 6750 §3.1 for a Bearer token), with `connect_uri`
/// when the user must connect (again).
#[derive(Debug)]
struct OAuthError {
    status: u16,
    error: &'static str,
    description: Cow<'static, str>,
    connect_uri: Option<String>,
}

impl OAuthError {
    fn new(status: u16, error: &'static str, description: &'static str) -> Self {
        OAuthError { status, error, description: description.into(), connect_uri: None }
    }

    fn invalid_request(description: &'static str) -> Self {
        OAuthError::new(400, "invalid_request", description)
    }

    fn invalid_client() -> Self {
        OAuthError::new(
            401,
            "invalid_client",
            "client authentication failed: send HTTP Basic with a pair of TOKEN_EXCHANGE_CLIENTS",
        )
    }

    fn invalid_token(description: &'static str) -> Self {
        OAuthError::new(401, "invalid_token", description)
    }

    fn invalid_grant(description: &'static str, connect_uri: String) -> Self {
        OAuthError { connect_uri: Some(connect_uri), ..OAuthError::new(400, "invalid_grant", description) }
    }

    fn unavailable(description: &'static str) -> Self {
        OAuthError::new(503, "temporarily_unavailable", description)
    }

    fn response(&self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            error_description: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            connect_uri: Option<&'a str>,
        }
        let body =
            Body { error: self.error, error_description: &self.description, connect_uri: self.connect_uri.as_deref() };
        let mut response = Response::json(self.status, serde_json::to_string(&body).unwrap_or_default());
        response.headers.push(("pragma", "no-cache".into()));
        match self.error {
            "invalid_client" => response.headers.push(("www-authenticate", "Basic realm=\"zitadel-claims\"".into())),
            "invalid_token" => response.headers.push(("www-authenticate", "Bearer error=\"invalid_token\"".into())),
            _ => {}
        }
        response
    }
}

/// A form body whose parameters each appear once (RFC 6749 §3.2).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Result<Form, OAuthError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(OAuthError::invalid_request("a parameter appears more than once"));
            }
        }
        Ok(Form(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError {
            description: format!("{name} is missing").into(),
            ..OAuthError::invalid_request("")
        })
    }
}

#[cfg(test)]
mod tests;
