//! The one error type of the endpoint: each variant knows its HTTP status, its snake_case code and
//! a sentence for people. Messages name settings, fields and sizes, never a value that came in.

use serde::Serialize;

use crate::config::{Problem, PAYLOAD_DECRYPTION_KEY, PAYLOAD_TYPES};
use crate::contract::jose::{JoseError, PayloadKind};
use crate::contract::payload::DecodeError;
use crate::contract::signature::SignatureError;
use crate::envelope::EnvelopeError;
use crate::upstream::UpstreamError;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// No such path.
    NotFound,
    /// The path exists, the method does not; `allow` goes into the `Allow` header.
    MethodNotAllowed { allow: &'static str },
    /// The body is larger than `limit` bytes.
    PayloadTooLarge { limit: usize },
    /// The body could not be read from the connection.
    UnreadableBody,
    /// Settings are missing or invalid.
    Misconfigured(Vec<Problem>),
    /// The signature check failed.
    Signature(SignatureError),
    /// The body is not JSON.
    InvalidJson { reason: String, line: usize, column: usize },
    /// A field the worker reads has the wrong type.
    InvalidPayload { path: String, problem: String },
    /// `function` is absent or names a function this target does not serve.
    UnsupportedFunction { received: Option<String> },
    /// The ZITADEL API failed and `ON_UPSTREAM_ERROR=fail`.
    UpstreamUnavailable(UpstreamError),
    /// A signed or encrypted payload could not be opened.
    Envelope(EnvelopeError),
    /// The route belongs to a feature whose settings are incomplete: these are missing.
    FeatureOff { feature: &'static str, needs: Vec<&'static str> },
}

/// The JSON body of every non-2xx answer.
#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound | Error::FeatureOff { .. } => 404,
            Error::MethodNotAllowed { .. } => 405,
            Error::PayloadTooLarge { .. } => 413,
            Error::UnreadableBody | Error::InvalidJson { .. } | Error::InvalidPayload { .. } => 400,
            Error::UnsupportedFunction { .. } => 400,
            Error::Misconfigured(_) => 500,
            Error::Signature(_) => 401,
            Error::UpstreamUnavailable(_) => 502,
            Error::Envelope(e) => match e {
                EnvelopeError::Refused(_) | EnvelopeError::NeedsSetting(..) => 400,
                EnvelopeError::Jose(JoseError::Signature(_)) => 401,
                EnvelopeError::Jose(JoseError::Undecryptable(_)) => 400,
                EnvelopeError::KeysUnavailable(_) => 502,
            },
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound => "not_found",
            Error::FeatureOff { .. } => "feature_off",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::UnreadableBody => "unreadable_body",
            Error::Misconfigured(_) => "misconfigured",
            Error::Signature(e) => e.code(),
            Error::InvalidJson { .. } => "invalid_json",
            Error::InvalidPayload { .. } => "invalid_payload",
            Error::UnsupportedFunction { .. } => "unsupported_function",
            Error::UpstreamUnavailable(_) => "upstream_unavailable",
            Error::Envelope(e) => match e {
                EnvelopeError::Refused(_) | EnvelopeError::NeedsSetting(..) => "unsupported_payload_type",
                EnvelopeError::Jose(JoseError::Signature(_)) => "invalid_payload_signature",
                EnvelopeError::Jose(JoseError::Undecryptable(_)) => "undecryptable_payload",
                EnvelopeError::KeysUnavailable(_) => "upstream_unavailable",
            },
        }
    }

    pub fn message(&self) -> String {
        match self {
            Error::NotFound => {
                "There is nothing at this path. ZITADEL calls POST / or POST /zitadel/complement-token; \
                 GET /healthz reports the configuration."
                    .to_string()
            }
            Error::MethodNotAllowed { allow } => format!("This path only answers {allow}."),
            Error::PayloadTooLarge { limit } => {
                format!("The body is larger than {} KiB, more than any ZITADEL call.", limit / 1024)
            }
            Error::UnreadableBody => "The request body could not be read.".to_string(),
            Error::Misconfigured(problems) => {
                let list: Vec<String> = problems.iter().map(|p| format!("{} {}", p.setting, p.problem)).collect();
                format!("The worker is not configured: {}.", list.join("; "))
            }
            Error::Signature(e) => e.message(),
            Error::InvalidJson { reason, line, column } => {
                format!("The body is not valid JSON: {reason} at line {line}, column {column}.")
            }
            Error::InvalidPayload { path, problem } if path == "." => format!("The body {problem}."),
            Error::InvalidPayload { path, problem } => format!("The field `{path}` {problem}."),
            Error::UnsupportedFunction { received: None } => {
                format!(
                    "The payload names no `function`; this target serves {}.",
                    crate::contract::payload::Function::SUPPORTED
                )
            }
            Error::UnsupportedFunction { received: Some(name) } => format!(
                "The function `{}` is not served here; this target serves {}. Bind it only to those \
                 functions in the ZITADEL execution.",
                printable(name),
                crate::contract::payload::Function::SUPPORTED
            ),
            Error::UpstreamUnavailable(e) => format!(
                "The permissions could not be read from the ZITADEL API: {e}{}. ON_UPSTREAM_ERROR=fail \
                 refuses the call rather than let a token be issued without them.",
                if *e == UpstreamError::Unauthorized(403) {
                    " (the service user needs org.read, e.g. the ORG_OWNER_VIEWER role)"
                } else {
                    ""
                }
            ),
            Error::Envelope(e) => envelope_message(e),
            Error::FeatureOff { feature, needs } => format!(
                "This route is off: the feature {feature} needs {} (GET /healthz lists every feature).",
                needs.join(", ")
            ),
        }
    }

    /// `{"error": code, "message": message}`.
    pub fn to_json(&self) -> String {
        let message = self.message();
        serde_json::to_string(&Body { error: self.code(), message: &message })
            .unwrap_or_else(|_| format!(r#"{{"error":"{}"}}"#, self.code()))
    }
}

/// A payload of `kind`, in words.
fn kind_name(kind: &PayloadKind) -> &'static str {
    match kind {
        PayloadKind::Json => "plain JSON",
        PayloadKind::Jwt => "a JWT (signed)",
        PayloadKind::Jwe => "a JWE (encrypted)",
    }
}

fn envelope_message(e: &EnvelopeError) -> String {
    match e {
        EnvelopeError::Refused(kind) => format!(
            "The payload is {}, which {PAYLOAD_TYPES} does not accept. Set the target's payloadType to one it \
             accepts, or add this one to {PAYLOAD_TYPES}.",
            kind_name(kind)
        ),
        EnvelopeError::NeedsSetting(kind, setting) => {
            format!("The payload is {}, and opening it needs {setting}, which is not set.", kind_name(kind))
        }
        EnvelopeError::Jose(JoseError::Signature(why)) => {
            format!("The payload's signature is refused: {why}. It must be signed with a web key of the instance.")
        }
        EnvelopeError::Jose(JoseError::Undecryptable(why)) => format!(
            "The payload cannot be decrypted: {why}. {PAYLOAD_DECRYPTION_KEY} must hold the private key of the \
             target's active public key."
        ),
        EnvelopeError::KeysUnavailable(e) => format!(
            "The instance's signing keys (/oauth/v2/keys) could not be read: {e}. A payload that cannot be checked \
             is not trusted."
        ),
    }
}

impl From<EnvelopeError> for Error {
    fn from(e: EnvelopeError) -> Self {
        Error::Envelope(e)
    }
}

impl From<SignatureError> for Error {
    fn from(e: SignatureError) -> Self {
        Error::Signature(e)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Json { reason, line, column } => Error::InvalidJson { reason, line, column },
            DecodeError::Field { path, problem } => Error::InvalidPayload { path, problem },
        }
    }
}

/// A function name is not a secret, but it is caller input: echo at most 64 printable characters.
fn printable(name: &str) -> String {
    let mut out: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if name.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::signature::Malformed;

    fn body(e: &Error) -> serde_json::Value {
        serde_json::from_str(&e.to_json()).unwrap()
    }

    #[test]
    fn every_error_has_status_code_and_message() {
        let cases = [
            (Error::NotFound, 404, "not_found"),
            (Error::FeatureOff { feature: "microsoft_connect", needs: vec!["TOKEN_SEALING_KEY"] }, 404, "feature_off"),
            (Error::MethodNotAllowed { allow: "POST" }, 405, "method_not_allowed"),
            (Error::PayloadTooLarge { limit: 1 << 20 }, 413, "payload_too_large"),
            (Error::UnreadableBody, 400, "unreadable_body"),
            (Error::Misconfigured(vec![]), 500, "misconfigured"),
            (Error::Signature(SignatureError::Missing), 401, "missing_signature"),
            (Error::Signature(SignatureError::Malformed(Malformed::BadTimestamp)), 401, "malformed_signature"),
            (Error::Signature(SignatureError::Invalid), 401, "invalid_signature"),
            (
                Error::Signature(SignatureError::Stale { age_seconds: 400, tolerance_seconds: 300 }),
                401,
                "stale_signature",
            ),
            (Error::Signature(SignatureError::Future { ahead_seconds: 90 }), 401, "future_signature"),
            (Error::InvalidJson { reason: "expected value".into(), line: 1, column: 2 }, 400, "invalid_json"),
            (
                Error::InvalidPayload {
                    path: "user".into(),
                    problem: "is a string where an object is expected".into(),
                },
                400,
                "invalid_payload",
            ),
            (Error::UnsupportedFunction { received: None }, 400, "unsupported_function"),
            (Error::UpstreamUnavailable(UpstreamError::Timeout), 502, "upstream_unavailable"),
            (Error::Envelope(EnvelopeError::Refused(PayloadKind::Jwt)), 400, "unsupported_payload_type"),
            (
                Error::Envelope(EnvelopeError::NeedsSetting(PayloadKind::Jwe, PAYLOAD_DECRYPTION_KEY)),
                400,
                "unsupported_payload_type",
            ),
            (Error::Envelope(EnvelopeError::Jose(JoseError::Signature("x"))), 401, "invalid_payload_signature"),
            (Error::Envelope(EnvelopeError::Jose(JoseError::Undecryptable("x"))), 400, "undecryptable_payload"),
            (Error::Envelope(EnvelopeError::KeysUnavailable(UpstreamError::Timeout)), 502, "upstream_unavailable"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status(), status, "{e:?}");
            let b = body(&e);
            assert_eq!(b["error"], code);
            assert!(b["message"].as_str().unwrap().len() > 10, "{e:?}");
        }
    }

    #[test]
    fn invalid_json_message_gives_line_and_column() {
        let e = Error::InvalidJson { reason: "expected value".into(), line: 3, column: 7 };
        assert_eq!(e.message(), "The body is not valid JSON: expected value at line 3, column 7.");
    }

    #[test]
    fn invalid_payload_message_names_the_field() {
        let e = Error::InvalidPayload {
            path: "user_grants[0].roles".into(),
            problem: "is a string where an array is expected".into(),
        };
        assert_eq!(e.message(), "The field `user_grants[0].roles` is a string where an array is expected.");
        let root =
            Error::InvalidPayload { path: ".".into(), problem: "is an array where an object is expected".into() };
        assert_eq!(root.message(), "The body is an array where an object is expected.");
    }

    #[test]
    fn misconfigured_names_every_setting() {
        let e = Error::Misconfigured(vec![
            Problem { setting: "ZITADEL_SIGNING_KEY", problem: "is not set".into() },
            Problem { setting: "SIGNATURE_TOLERANCE_SECONDS", problem: "must be a whole number from 1 to 3600".into() },
        ]);
        let m = e.message();
        assert!(
            m.contains("ZITADEL_SIGNING_KEY is not set") && m.contains("SIGNATURE_TOLERANCE_SECONDS must be"),
            "{m}"
        );
    }

    #[test]
    fn unsupported_function_names_received_and_supported() {
        let m = Error::UnsupportedFunction { received: Some("function/preotpsmscode".into()) }.message();
        assert!(
            m.contains("`function/preotpsmscode`")
                && m.contains("function/preaccesstoken, function/preuserinfo, function/presamlresponse"),
            "{m}"
        );
    }

    #[test]
    fn echoed_function_name_is_bounded_and_printable() {
        let long = format!("{}\n\u{7}", "x".repeat(500));
        let m = Error::UnsupportedFunction { received: Some(long) }.message();
        assert!(m.contains(&format!("`{}…`", "x".repeat(64))) && !m.contains('\n'), "{m}");
    }

    #[test]
    fn payload_errors_name_the_setting_and_the_type() {
        let m = Error::Envelope(EnvelopeError::NeedsSetting(PayloadKind::Jwe, PAYLOAD_DECRYPTION_KEY)).message();
        assert!(m.contains("a JWE") && m.contains("PAYLOAD_DECRYPTION_KEY"), "{m}");
        let m = Error::Envelope(EnvelopeError::Refused(PayloadKind::Json)).message();
        assert!(m.contains("plain JSON") && m.contains("PAYLOAD_TYPES"), "{m}");
        let m = Error::Envelope(EnvelopeError::KeysUnavailable(UpstreamError::Timeout)).message();
        assert!(m.contains("/oauth/v2/keys") && m.contains("UPSTREAM_TIMEOUT_MS"), "{m}");
    }

    #[test]
    fn a_missing_permission_is_named() {
        let m = Error::UpstreamUnavailable(UpstreamError::Unauthorized(403)).message();
        assert!(m.contains("HTTP 403") && m.contains("needs org.read"), "{m}");
        let m = Error::UpstreamUnavailable(UpstreamError::Unauthorized(401)).message();
        assert!(m.contains("refused (HTTP 401)") && !m.contains("org.read"), "{m}");
    }

    #[test]
    fn stale_message_says_how_old_and_the_tolerance() {
        let m = Error::Signature(SignatureError::Stale { age_seconds: 412, tolerance_seconds: 300 }).message();
        assert!(m.contains("412 s old") && m.contains("300 s"), "{m}");
    }
}
