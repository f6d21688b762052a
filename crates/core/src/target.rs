//! The target ZITADEL calls (`POST /`, `POST /zitadel/complement-token`): how a signed call
//! becomes an answer. The signature first (over the raw bytes), then, for a signed or encrypted
//! payload, its JWS and JWE, then the payload, then the claims, or, for an API (request/response)
//! execution, the token capture. The [`Target`] is what the worker keeps per isolate for it: the
//! settings and the clients and caches built from them.

use std::borrow::Cow;

use crate::claims::{Call, ClaimsCache};
use crate::config::Config;
use crate::contract::chain;
use crate::contract::jose::PayloadKind;
use crate::contract::payload::{self, ContextInfo, Function};
use crate::contract::response::ContextInfoResponse;
use crate::contract::signature;
use crate::envelope;
use crate::error::Error;
use crate::idp_intent;
use crate::port::Runtime;
use crate::runtime::deadline::flight_lifetime_ms;
use crate::trace::Trace;
use crate::upstream::jwks::JwksCache;
use crate::upstream::zitadel::ZitadelClient;
use crate::upstream::UpstreamError;
use crate::vault::Vault;

/// The target, as an isolate keeps it: the settings, the ZITADEL API client (with the API
/// settings), the instance's key set (with `ZITADEL_DOMAIN`) and the claims' caches.
pub struct Target {
    config: Config,
    zitadel: Option<ZitadelClient>,
    jwks: Option<JwksCache>,
    claims: ClaimsCache,
    vault: Vault,
}

/// What a call is answered with.
#[cfg_attr(test, derive(Debug))]
#[derive(PartialEq)]
pub enum Answer {
    /// The claims or attributes of a function execution (`preaccesstoken`, `preuserinfo`,
    /// `presamlresponse`).
    Claims(ContextInfoResponse),
    /// The message of a request or response execution, passed back as received.
    Message(String),
}

impl Answer {
    pub fn to_json(&self) -> String {
        match self {
            Answer::Claims(response) => response.to_json(),
            Answer::Message(raw) => raw.clone(),
        }
    }
}

impl Target {
    /// The target of an isolate running with `config`: every request's upstream work ends within
    /// `UPSTREAM_TIMEOUT_MS` plus a margin, so a single flight running longer was abandoned.
    pub fn new(config: Config) -> Self {
        let live_for_ms = flight_lifetime_ms(config.upstream_timeout_ms);
        Target {
            zitadel: config.zitadel.clone().map(|api| ZitadelClient::new(api, live_for_ms)),
            jwks: config.payload.jwks_url.clone().map(|url| JwksCache::new(url, live_for_ms)),
            claims: ClaimsCache::new(&config, live_for_ms),
            vault: Vault::new(live_for_ms),
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The ZITADEL API client, with the API settings.
    pub fn zitadel(&self) -> Option<&ZitadelClient> {
        self.zitadel.as_ref()
    }

    /// The instance's key set, with `ZITADEL_DOMAIN`.
    pub fn jwks(&self) -> Option<&JwksCache> {
        self.jwks.as_ref()
    }

    /// Microsoft's token endpoint, with `MS_CLIENT_ID` and `MS_CLIENT_SECRET`.
    pub fn microsoft(&self) -> Option<&crate::upstream::microsoft::MicrosoftClient> {
        self.claims.refresher.as_ref().map(|r| r.microsoft())
    }

    /// The Microsoft token refresher (its single flight and memory), with `MS_CLIENT_ID` and
    /// `MS_CLIENT_SECRET`.
    pub fn refresher(&self) -> Option<&crate::claims::microsoft::Refresher> {
        self.claims.refresher.as_ref()
    }

    /// What the token exchange keeps per isolate.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Answers one call with its `ZITADEL-Signature` header and raw body; the trace says as much
    /// of what happened as the call got through.
    pub async fn handle<R: Runtime>(
        &self,
        runtime: &R,
        signature_header: Option<&str>,
        body: &[u8],
    ) -> (Result<Answer, Error>, Trace) {
        let mut trace = Trace::default();
        let result = self.answer(runtime, signature_header, body, &mut trace).await;
        (result, trace)
    }

    async fn answer<R: Runtime>(
        &self,
        runtime: &R,
        signature_header: Option<&str>,
        body: &[u8],
        trace: &mut Trace,
    ) -> Result<Answer, Error> {
        let config = &self.config;
        let now_ms = runtime.now_ms();
        signature::verify(
            runtime,
            signature_header,
            body,
            &config.signing_keys,
            (now_ms / 1000) as i64,
            config.signature_tolerance_seconds,
        )
        .await?;
        let kind = PayloadKind::of(body);
        trace.payload = Some(kind.name());
        let opened = match kind {
            PayloadKind::Json if config.payload.json => Cow::Borrowed(body),
            // Boxed: opening a JWT or JWE awaits the runtime's crypto and perhaps the key set, and
            // the plain JSON path should not carry that future.
            _ => {
                let deadline_ms = now_ms + config.upstream_timeout_ms;
                Box::pin(envelope::open(&config.payload, self.jwks.as_ref(), runtime, kind, body, deadline_ms)).await?
            }
        };
        let info = payload::decode(&opened)?;
        if let Some(method) = info.full_method.as_deref() {
            let deadline_ms = now_ms + config.upstream_timeout_ms;
            // Boxed: the token capture's future is large, and the claims' path should not carry it.
            let (result, api_trace) = Box::pin(self.api_execution(runtime, method, &info, deadline_ms)).await;
            trace.absorb(api_trace);
            return result;
        }
        trace.user_id = info.user_id().map(str::to_string);
        trace.org_id = info.org_id().map(str::to_string);
        let function = match info.function.as_deref() {
            None => return Err(Error::UnsupportedFunction { received: None }),
            Some(name) => Function::from_name(name)
                .ok_or_else(|| Error::UnsupportedFunction { received: Some(name.to_string()) })?,
        };
        trace.function = Some(function.name());
        let earlier = chain::earlier(function, info.response)?;
        let (result, claims_trace) = self.claims(runtime, Call { function, info: &info, earlier }).await;
        trace.absorb(claims_trace);
        result.map(Answer::Claims).map_err(Error::UpstreamUnavailable)
    }

    /// The claims of a verified, decoded call.
    pub async fn claims<R: Runtime>(
        &self,
        runtime: &R,
        call: Call<'_>,
    ) -> (Result<ContextInfoResponse, UpstreamError>, Trace) {
        self.claims.build(&self.config, self.zitadel.as_ref(), runtime, call).await
    }

    /// A request or response execution: the response of RetrieveIdentityProviderIntent has its
    /// tokens captured (for a first sign-in, into the user the message creates); every other
    /// message goes back unchanged, so binding the target to more methods than that one changes
    /// nothing.
    async fn api_execution<R: Runtime>(
        &self,
        runtime: &R,
        method: &str,
        info: &ContextInfo<'_>,
        deadline_ms: u64,
    ) -> (Result<Answer, Error>, Trace) {
        let mut trace = Trace { api_method: Some(method.chars().take(200).collect()), ..Trace::default() };
        let message = match (info.response, info.request) {
            (Some(response), _) => response,
            (None, Some(request)) => return (Ok(Answer::Message(request.get().to_string())), trace),
            (None, None) => {
                let problem = "is missing, and so is `request`: an API execution carries one of them";
                return (Err(Error::InvalidPayload { path: "response".into(), problem: problem.into() }), trace);
            }
        };
        if method == idp_intent::METHOD {
            let zitadel = self.zitadel.as_ref();
            let (capture, changed) =
                idp_intent::capture(&self.config, zitadel, runtime, message.get(), deadline_ms).await;
            trace.ms_token = Some(capture.describe());
            if let idp_intent::Capture::Failed(e) = capture {
                trace.upstream_error = Some(e.code());
                if e == UpstreamError::Unauthorized(403) {
                    trace.notes.push("storing the tokens needs user.write (e.g. the ORG_USER_MANAGER role)".into());
                }
            }
            if let Some(changed) = changed {
                return (Ok(Answer::Message(changed)), trace);
            }
        }
        (Ok(Answer::Message(message.get().to_string())), trace)
    }
}

#[cfg(test)]
mod tests;
