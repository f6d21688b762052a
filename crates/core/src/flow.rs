//! The connect flow's routes: the worker's own authorization-code grants, first with ZITADEL (who
//! the user is), then with Microsoft (`offline_access`: a refresh token of the worker's own), whose
//! tokens it stores sealed in the user's metadata.
//!
//! - `GET /connect/{provider}?return_to=<url>`: checks `return_to` against `CONNECT_RETURN_URLS`,
//!   then sends the browser to ZITADEL's authorize endpoint (PKCE S256, `state`, `nonce`).
//! - `GET /connect/zitadel/callback`: exchanges the code as the public client `CONNECT_CLIENT_ID`,
//!   verifies the ID token (signature with the instance's key set; `iss`, `aud`, `azp`, `exp`,
//!   `nonce`), reads the user's link to the provider's identity provider, then sends the browser to
//!   the provider's authorize endpoint (PKCE, `state`, a `login_hint` when linked).
//! - `GET /connect/{provider}/callback`: exchanges the code with the app's secret, checks that the
//!   account is the linked one, writes the tokens sealed, and sends the browser back to
//!   `return_to` with `connected=<provider>`.
//!
//! The state between the redirects lives in one cookie only: sealed with associated data of its
//! own (so it never opens as a token, and no token opens as it), `__Host-` prefixed, HttpOnly,
//! Secure, SameSite=Lax, valid 10 minutes, replaced at each step and cleared at the end. A callback
//! without it, or whose cookie expired, expects another step, or whose `state` differs, is refused:
//! so is a reused callback URL, since its cookie was replaced. Failures go back to `return_to` with
//! `error=<code>`; before a `return_to` is trusted (none, refused, or lost with the state), the
//! answer is a small page. Nothing here logs or shows a token, a code, a state or a cookie.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::claims::microsoft::{seal_entries, token_metadata};
use crate::config::{Config, ConnectConfig, MsTokenConfig};
use crate::connect::id_token::{self, Expected};
use crate::connect::page::{Refusal, PAGE_HEADERS};
use crate::connect::return_to::add_query;
use crate::connect::{account, pkce};
use crate::envelope::{self, EnvelopeError};
use crate::error::Error;
use crate::port::Runtime;
use crate::runtime::deadline::timeout_at;
use crate::seal::{self, Aad, SealingKeys};
use crate::target::Target;
use crate::trace::Trace;
use crate::upstream::connect::CodeError;
use crate::upstream::jwks::JwksCache;
use crate::upstream::microsoft::{MicrosoftClient, RefreshError};
use crate::upstream::zitadel::ZitadelClient;
use crate::upstream::UpstreamError;
use crate::web::{Incoming, Response};

/// The cookie that carries the flow's state between the redirects.
pub const COOKIE: &str = "__Host-zitadel-claims-connect";
/// How long each step of a flow may take: every step seals a new state that expires this long after
/// (and sets the cookie's `Max-Age` to it), so a whole flow may take up to twice as long.
const STATE_TTL_S: u64 = 600;
/// The clock difference tolerated on the ID token's `exp` and `iat`.
const LEEWAY_S: u64 = 120;
/// ZITADEL's callback: the step every provider shares.
pub const ZITADEL_CALLBACK: &str = "/connect/zitadel/callback";

/// Which of the flow's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `GET /connect/{provider}`.
    Start,
    /// `GET /connect/zitadel/callback`.
    ZitadelCallback,
    /// `GET /connect/{provider}/callback`.
    ProviderCallback,
}

/// The flow's state, sealed into the cookie.
#[derive(Serialize, Deserialize)]
struct FlowState {
    /// The provider being connected (`microsoft`).
    provider: String,
    /// The callback expected next: `zitadel`, or the provider's name.
    next: String,
    /// Unix seconds after which the flow is over.
    exp: u64,
    state: String,
    /// The nonce sent to ZITADEL (unused after its callback).
    nonce: String,
    /// The PKCE verifier of the current step.
    verifier: String,
    /// Checked against `CONNECT_RETURN_URLS` when the flow started.
    return_to: String,
    /// The ZITADEL user, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    /// The user's id at the provider as ZITADEL links it, when linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    linked: Option<String>,
}

/// What the flow needs of the isolate: the settings and the clients, all present when the feature
/// is on.
struct Flow<'a> {
    connect: &'a ConnectConfig,
    ms: &'a MsTokenConfig,
    keys: &'a SealingKeys,
    zitadel: &'a ZitadelClient,
    jwks: &'a JwksCache,
    microsoft: &'a MicrosoftClient,
    timeout_ms: u64,
}

impl<'a> Flow<'a> {
    fn of(target: &'a Target) -> Option<Flow<'a>> {
        let config: &Config = target.config();
        Some(Flow {
            connect: config.connect.as_ref()?,
            ms: config.ms_token.as_ref()?,
            keys: config.sealing.as_ref()?,
            zitadel: target.zitadel()?,
            jwks: target.jwks()?,
            microsoft: target.microsoft()?,
            timeout_ms: config.upstream_timeout_ms,
        })
    }
}

/// Answers one of the flow's routes for `provider`, at the request URL `url`.
pub async fn serve<R: Runtime>(
    target: &Target,
    runtime: &R,
    step: Step,
    provider: &str,
    url: &str,
    request: &impl Incoming,
) -> (Result<Response, Error>, Trace) {
    let config = target.config();
    let Some(flow) = Flow::of(target) else {
        let needs = config.connect_needs();
        return (Err(Error::FeatureOff { feature: "microsoft_connect", needs }), Trace::default());
    };
    // The provider the path names must be the one configured (ZITADEL's callback names none).
    let provider = if step == Step::ZitadelCallback { flow.connect.provider.name } else { provider };
    if provider != flow.connect.provider.name {
        return (Err(Error::NotFound), Trace::default());
    }
    let query = Query::of(url);
    let origin = flow.connect.public_url.clone().unwrap_or_else(|| origin_of(url).to_string());
    let mut trace = Trace::default();
    let response = match step {
        Step::Start => flow.start(runtime, &query, &origin).await,
        Step::ZitadelCallback | Step::ProviderCallback => {
            let expected = if step == Step::ZitadelCallback { "zitadel" } else { provider };
            match flow.read_state(runtime, request, expected).await {
                None => Err(Ended::Page(Refusal::InvalidRequest)),
                Some(state) => {
                    trace.user_id = state.user.clone();
                    let result = match step {
                        Step::ZitadelCallback => {
                            flow.zitadel_callback(runtime, &query, &origin, state, &mut trace).await
                        }
                        _ => flow.provider_callback(runtime, &query, &origin, state, &mut trace).await,
                    };
                    result
                }
            }
        }
    };
    let response = match response {
        Ok(response) => response,
        Err(Ended::Page(refusal)) => {
            trace.outcome = refusal.code();
            page(refusal)
        }
        Err(Ended::Back(refusal, return_to)) => {
            trace.outcome = refusal.code();
            redirect(&add_query(&return_to, &[("error", refusal.code())]), Some(clear_cookie()))
        }
    };
    (Ok(response), trace)
}

/// How a step ended when it did not go on: a page (no trusted `return_to`), or back to
/// `return_to` with the code.
enum Ended {
    Page(Refusal),
    Back(Refusal, String),
}

impl Flow<'_> {
    async fn start<R: Runtime>(&self, runtime: &R, query: &Query, origin: &str) -> Result<Response, Ended> {
        let return_to = query.get("return_to").ok_or(Ended::Page(Refusal::InvalidRequest))?;
        let return_to = self.connect.return_urls.check(return_to).map_err(|_| Ended::Page(Refusal::InvalidRequest))?;
        let state = FlowState {
            provider: self.connect.provider.name.to_string(),
            next: "zitadel".into(),
            exp: now_s(runtime) + STATE_TTL_S,
            state: random_text(runtime),
            nonce: random_text(runtime),
            verifier: pkce::verifier_from(&random_32(runtime)),
            return_to,
            user: None,
            linked: None,
        };
        let location = authorize_url(
            &format!("{}/oauth/v2/authorize", self.zitadel.base_url()),
            &[
                ("client_id", self.connect.client_id.as_str()),
                ("redirect_uri", &format!("{origin}{ZITADEL_CALLBACK}")),
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", &state.state),
                ("nonce", &state.nonce),
                ("code_challenge", &pkce::challenge_s256(&state.verifier)),
                ("code_challenge_method", "S256"),
            ],
        );
        let cookie = self.seal_state(runtime, &state).await.ok_or(Ended::Page(Refusal::UpstreamUnavailable))?;
        Ok(redirect(&location, Some(cookie)))
    }

    async fn zitadel_callback<R: Runtime>(
        &self,
        runtime: &R,
        query: &Query,
        origin: &str,
        state: FlowState,
        trace: &mut Trace,
    ) -> Result<Response, Ended> {
        let code = callback_code(query, &state)?;
        let return_to = state.return_to.clone();
        let back = |refusal| Ended::Back(refusal, return_to.clone());
        let deadline_ms = runtime.now_ms() + self.timeout_ms;
        let redirect_uri = format!("{origin}{ZITADEL_CALLBACK}");
        let exchange =
            self.zitadel.exchange_code(runtime, &self.connect.client_id, code, &redirect_uri, &state.verifier);
        let id_token = match timeout_at(runtime, deadline_ms, exchange).await {
            Some(Ok(id_token)) => id_token,
            Some(Err(CodeError::Refused(code))) => {
                trace.upstream_error = Some(code);
                return Err(back(Refusal::InvalidRequest));
            }
            Some(Err(CodeError::Upstream(e))) => {
                trace.upstream_error = Some(e.code());
                return Err(back(Refusal::UpstreamUnavailable));
            }
            None => {
                trace.upstream_error = Some(UpstreamError::Timeout.code());
                return Err(back(Refusal::UpstreamUnavailable));
            }
        };
        let payload = match envelope::verify_jws(self.jwks, runtime, &id_token, deadline_ms).await {
            Ok(payload) => payload,
            Err(EnvelopeError::KeysUnavailable(e)) => {
                trace.upstream_error = Some(e.code());
                return Err(back(Refusal::UpstreamUnavailable));
            }
            Err(_) => return Err(back(Refusal::InvalidRequest)),
        };
        let expected = Expected {
            issuers: &self.connect.issuers,
            client_id: &self.connect.client_id,
            nonce: &state.nonce,
            leeway_s: LEEWAY_S,
        };
        let user =
            id_token::check_claims(&payload, &expected, now_s(runtime)).map_err(|_| back(Refusal::InvalidRequest))?;
        // From here on the step acts for this user: its log line says who, whatever comes next.
        trace.user_id = Some(user.clone());
        let provider = &self.connect.provider;
        let link = match &provider.idp_id {
            None => None,
            Some(idp_id) => match timeout_at(runtime, deadline_ms, self.zitadel.idp_links(runtime, &user)).await {
                Some(Ok(links)) => links.into_iter().find(|l| &l.idp_id == idp_id && !l.user_id.is_empty()),
                Some(Err(e)) => {
                    trace.upstream_error = Some(e.code());
                    return Err(back(Refusal::UpstreamUnavailable));
                }
                None => {
                    trace.upstream_error = Some(UpstreamError::Timeout.code());
                    return Err(back(Refusal::UpstreamUnavailable));
                }
            },
        };
        let next = FlowState {
            next: provider.name.to_string(),
            exp: now_s(runtime) + STATE_TTL_S,
            state: random_text(runtime),
            verifier: pkce::verifier_from(&random_32(runtime)),
            user: Some(user),
            linked: link.as_ref().map(|l| l.user_id.clone()),
            ..state
        };
        let redirect_uri = format!("{origin}/connect/{}/callback", provider.name);
        let challenge = pkce::challenge_s256(&next.verifier);
        let mut params = vec![
            ("client_id", self.microsoft.config().client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri.as_str()),
            ("response_mode", "query"),
            ("scope", provider.scopes.as_str()),
            ("state", next.state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(hint) = link.as_ref().map(|l| l.user_name.as_str()).filter(|h| !h.is_empty()) {
            params.push(("login_hint", hint));
        }
        let location = authorize_url(&provider.authorize_url, &params);
        let cookie = self.seal_state(runtime, &next).await.ok_or_else(|| back(Refusal::UpstreamUnavailable))?;
        Ok(redirect(&location, Some(cookie)))
    }

    async fn provider_callback<R: Runtime>(
        &self,
        runtime: &R,
        query: &Query,
        origin: &str,
        state: FlowState,
        trace: &mut Trace,
    ) -> Result<Response, Ended> {
        let code = callback_code(query, &state)?;
        let back = |refusal| Ended::Back(refusal, state.return_to.clone());
        let user = state.user.as_deref().ok_or_else(|| back(Refusal::InvalidRequest))?;
        let deadline_ms = runtime.now_ms() + self.timeout_ms;
        let redirect_uri = format!("{origin}/connect/{}/callback", self.connect.provider.name);
        let now = now_s(runtime) as i64;
        let exchange = self.microsoft.exchange_code(runtime, code, &redirect_uri, &state.verifier, now);
        let exchanged = timeout_at(runtime, deadline_ms, exchange).await;
        let (tokens, id_token) = match exchanged.unwrap_or(Err(RefreshError::Transient(UpstreamError::Timeout))) {
            Ok(answer) => answer,
            Err(error) => {
                trace.upstream_error = Some(error.code());
                trace.metadata_written = Some(false);
                let refusal = match error {
                    RefreshError::Transient(_) => Refusal::UpstreamUnavailable,
                    RefreshError::SignInAgain(_) | RefreshError::Refused(_) => Refusal::InvalidRequest,
                };
                return Err(back(refusal));
            }
        };
        if let Some(linked) = &state.linked {
            let claims = id_token.as_deref().and_then(id_token::unverified_claims);
            let (oid, sub) = claims.as_ref().map_or((None, None), |c| (c.oid.as_deref(), c.sub.as_deref()));
            if !account::account_matches(linked, oid, sub) {
                trace.metadata_written = Some(false);
                return Err(back(Refusal::AccountMismatch));
            }
        }
        let entries = token_metadata(self.ms, &tokens.access_token, tokens.refresh_token.as_deref(), tokens.expires_at);
        let entries =
            seal_entries(runtime, self.keys, user, entries).await.ok_or_else(|| back(Refusal::UpstreamUnavailable))?;
        let write = self.zitadel.set_user_metadata(runtime, user, &entries);
        let written = timeout_at(runtime, deadline_ms, write).await.unwrap_or(Err(UpstreamError::Timeout));
        trace.metadata_written = Some(written.is_ok());
        if let Err(e) = written {
            trace.upstream_error = Some(e.code());
            return Err(back(Refusal::UpstreamUnavailable));
        }
        trace.outcome = "connected";
        let location = add_query(&state.return_to, &[("connected", self.connect.provider.name)]);
        Ok(redirect(&location, Some(clear_cookie())))
    }

    /// The state in the request's cookie, if it opens, is of this flow, expects `next` and has not
    /// expired.
    async fn read_state<R: Runtime>(&self, runtime: &R, request: &impl Incoming, next: &str) -> Option<FlowState> {
        let header = request.header("cookie")?;
        let sealed = cookie_value(&header, COOKIE)?;
        let aad = Aad::connect_state(self.connect.provider.name);
        let bytes = seal::open(runtime, self.keys, &aad, sealed).await.ok()?;
        let state: FlowState = serde_json::from_slice(&bytes).ok()?;
        let fresh = state.exp > now_s(runtime);
        (fresh && state.next == next && state.provider == self.connect.provider.name).then_some(state)
    }

    /// The `Set-Cookie` value that carries `state`.
    async fn seal_state<R: Runtime>(&self, runtime: &R, state: &FlowState) -> Option<String> {
        let json = serde_json::to_vec(state).ok()?;
        let aad = Aad::connect_state(self.connect.provider.name);
        let sealed = seal::seal(runtime, self.keys, &aad, &json).await?;
        Some(format!("{COOKIE}={sealed}; Path=/; Max-Age={STATE_TTL_S}; HttpOnly; Secure; SameSite=Lax"))
    }
}

/// The code of a callback whose `state` is the flow's, or how the flow ends: the authorization
/// server's `error` (`access_denied` as such, any other as `invalid_request`), a `state` that
/// differs, or no code.
fn callback_code<'q>(query: &'q Query, state: &FlowState) -> Result<&'q str, Ended> {
    let back = |refusal| Ended::Back(refusal, state.return_to.clone());
    if !query.get("state").is_some_and(|s| constant_time_eq(s.as_bytes(), state.state.as_bytes())) {
        return Err(back(Refusal::InvalidRequest));
    }
    match query.get("error") {
        Some("access_denied") => return Err(back(Refusal::AccessDenied)),
        Some(_) => return Err(back(Refusal::InvalidRequest)),
        None => {}
    }
    query.get("code").filter(|c| !c.is_empty()).ok_or_else(|| back(Refusal::InvalidRequest))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A redirect (302) that no cache keeps and whose URL no `Referer` carries on, setting `cookie`.
fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut headers: Vec<(&'static str, Cow<'static, str>)> = vec![
        ("location", location.to_string().into()),
        ("cache-control", "no-store".into()),
        ("referrer-policy", "no-referrer".into()),
    ];
    if let Some(cookie) = cookie {
        headers.push(("set-cookie", cookie.into()));
    }
    Response { status: 302, headers, body: String::new() }
}

/// The page for `refusal`, clearing the flow's cookie.
fn page(refusal: Refusal) -> Response {
    let mut headers: Vec<(&'static str, Cow<'static, str>)> =
        PAGE_HEADERS.iter().map(|(name, value)| (*name, Cow::Borrowed(*value))).collect();
    headers.push(("set-cookie", clear_cookie().into()));
    Response { status: refusal.status(), headers, body: refusal.page() }
}

fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

/// `base` with the query `params`, form-encoded.
fn authorize_url(base: &str, params: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter().copied()).finish();
    let joiner = if base.contains('?') { '&' } else { '?' };
    format!("{base}{joiner}{query}")
}

/// The value of the cookie `name` in a `Cookie` header.
fn cookie_value<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// The origin of an absolute URL: `scheme://host[:port]`.
pub(crate) fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

pub(crate) fn now_s<R: Runtime>(runtime: &R) -> u64 {
    runtime.now_ms() / 1000
}

fn random_32<R: Runtime>(runtime: &R) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    runtime.fill_random(&mut bytes);
    bytes
}

/// 128 random bits as base64url: a `state` or a `nonce`.
fn random_text<R: Runtime>(runtime: &R) -> String {
    let mut bytes = [0u8; 16];
    runtime.fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The query of a request URL, decoded; of a repeated name, the first counts.
struct Query(Vec<(String, String)>);

impl Query {
    fn of(url: &str) -> Query {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let query = query.split('#').next().unwrap_or("");
        Query(form_urlencoded::parse(query.as_bytes()).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests;
