//! Every way the tool can fail, each with the sentence the user sees and the exit code.
//!
//! No message ever holds the PAT, a signing key or a private key: the variants carry ids, names,
//! paths, statuses and ZITADEL's own `message` field (which names the problem, never a credential).

use std::fmt;

use crate::types::Call;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A wrong command line (exit 2).
    Usage(String),
    /// `ZITADEL_PAT` is not set (exit 2).
    MissingPat,
    /// No connection: refused, DNS, TLS, timeout.
    Unreachable { url: String, reason: String },
    /// 401: the token is wrong, expired or revoked.
    Unauthorized,
    /// 403: the token lacks the permission the call needs.
    Forbidden { call: Call, message: Option<String> },
    /// Any other answer that is not 2xx.
    Status { call: Call, status: u16, message: Option<String>, location: Option<String> },
    /// A 2xx answer without what the call returns (e.g. no `id` after creating the target).
    BadAnswer { call: Call, detail: String },
    /// The name filter found more than one target (names are unique in ZITADEL, so this is odd).
    AmbiguousTarget { name: String, count: usize },
    /// `--rotate`/`--finish-rotation` without a target to rotate.
    NoTarget { name: String },
    /// An execution lists something other than target ids; rewriting it could drop a binding.
    UnreadableExecution { condition: String },
    /// `wrangler secret put` could not run or failed.
    Wrangler { command: String, detail: String, hint: String },
    /// The key file of the payload encryption cannot be read, written or trusted.
    KeyFile { path: String, detail: String },
    /// The operating system's random number generator failed (or the key could not be encoded).
    KeyGeneration { key_type: String, detail: String },
    /// The target's active encryption key has no private key in the key file.
    KeyNotInFile { key_id: String, path: String },
    /// `--connect`: more than one project has the name the tool looks for.
    AmbiguousProject { name: String, count: usize },
    /// `--connect`: more than one app of the project has the app's name.
    AmbiguousApp { name: String, project: String, count: usize },
    /// `--connect`: the app of that name is not an OIDC app (an API or SAML app).
    NotOidcApp { name: String, project: String },
    /// `--introspection`: the app of that name is not an API app (an OIDC or SAML app).
    NotApiApp { name: String, project: String },
    /// `--introspection`: the API app of that name authenticates otherwise than with HTTP Basic.
    ApiAppNotBasic { name: String, project: String, auth_method: String },
    /// The operating system's random number generator failed when making the token sealing key.
    SealingKey { detail: String },
    /// The operating system's random number generator failed when making a back end's secret.
    ClientSecret { detail: String },
    /// The worker's URL does not answer at all (refused, DNS, TLS, timeout).
    WorkerUnreachable { url: String, reason: String },
    /// Something answers at the worker's URL, but not this project's worker.
    NotTheWorker { url: String, detail: String },
    /// The worker's `/healthz` names problems with settings the tool does not store.
    WorkerMisconfigured { url: String, problems: Vec<(String, String)> },
    /// The worker still names what was stored after the wait.
    WorkerNotReady { url: String, seconds: u64, settings: Vec<String> },
    /// The worker still refuses calls signed with the target's key after the wait.
    WorkerRefusesKey { url: String, seconds: u64 },
    /// A rotation stopped halfway (a target named `<name>-retiring` is there) and this run is not
    /// `--rotate`.
    RotationUnfinished { name: String },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::MissingPat => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) => f.write_str(message),
            Error::MissingPat => f.write_str(
                "ZITADEL_PAT is not set: export a personal access token that has action.target.read, \
                 action.target.write, action.execution.read and action.execution.write, for --rotate \
                 action.target.delete, and for --connect project.read, project.create, project.app.read and \
                 project.app.write \
                 (e.g. of a service user with the IAM_OWNER role)",
            ),
            Error::Unreachable { url, reason } => write!(f, "cannot reach {url}: {reason}"),
            Error::Unauthorized => f.write_str("ZITADEL refused the token (401): check ZITADEL_PAT"),
            Error::Forbidden { call, message } => {
                write!(
                    f,
                    "ZITADEL denied {} (403): ZITADEL_PAT lacks the permission {}",
                    call.what(),
                    call.permission()
                )?;
                if let Some(message) = message {
                    write!(f, " (ZITADEL: {message})")?;
                }
                Ok(())
            }
            Error::Status { call, status, message, location } => {
                write!(f, "{} failed: ZITADEL answered {status}", capitalized(call.what()))?;
                match message {
                    Some(message) => write!(f, ": {message}")?,
                    None => f.write_str(" without an error message")?,
                }
                if let Some(location) = location {
                    write!(f, " (a redirect to {location}: give that address as --domain)")?;
                } else if *status == 404 && *call == Call::SearchTargets {
                    f.write_str(
                        " (the Actions V2 API /v2/actions exists from ZITADEL v4 on; is --domain your instance?)",
                    )?;
                }
                Ok(())
            }
            Error::BadAnswer { call, detail } => {
                write!(f, "unexpected answer from ZITADEL when {}: {detail}", call.what())
            }
            Error::AmbiguousTarget { name, count } => {
                write!(f, "{count} targets are named {name:?}; delete the extra ones or choose another --name")
            }
            Error::NoTarget { name } => write!(
                f,
                "there is no target named {name:?} to rotate; run the setup with --worker-url first (or check --name)"
            ),
            Error::UnreadableExecution { condition } => write!(
                f,
                "the execution of {condition} lists entries that are not target ids; not rewriting it \
                 (bind the target in the Console instead)"
            ),
            Error::Wrangler { command, detail, hint } => write!(f, "`{command}` {detail}{hint}"),
            Error::KeyFile { path, detail } => write!(f, "the key file {path} {detail}"),
            Error::KeyGeneration { key_type, detail } => write!(f, "making an {key_type} key pair failed: {detail}"),
            Error::KeyNotInFile { key_id, path } => write!(
                f,
                "the target's active encryption key {key_id} is not in the key file {path}, so its private key \
                 is not on this machine and cannot be stored for the worker: give the key file that holds it \
                 with --key-file, or make a new key pair with --rotate-encryption-key"
            ),
            Error::AmbiguousProject { name, count } => write!(
                f,
                "{count} projects are named {name:?}; give the one for the connect app with --connect-project <id>"
            ),
            Error::AmbiguousApp { name, project, count } => write!(
                f,
                "{count} apps of project {project} are named {name:?}; delete the extra ones or choose another --name"
            ),
            Error::NotOidcApp { name, project } => write!(
                f,
                "the app {name:?} of project {project} is not an OIDC app; delete or rename it, or choose another --name"
            ),
            Error::NotApiApp { name, project } => write!(
                f,
                "the app {name:?} of project {project} is not an API app; delete or rename it, or choose another --name"
            ),
            Error::ApiAppNotBasic { name, project, auth_method } => write!(
                f,
                "the API app {name:?} of project {project} authenticates with {auth_method}, not with HTTP Basic \
                 (API_AUTH_METHOD_TYPE_BASIC), which the worker's introspection uses; the tool does not change \
                 it: set it to Basic in the Console, delete it, or choose another --name"
            ),
            Error::SealingKey { detail } => write!(f, "making the token sealing key failed: {detail}"),
            Error::ClientSecret { detail } => write!(f, "making a back end's secret failed: {detail}"),
            Error::WorkerUnreachable { url, reason } => write!(
                f,
                "cannot reach the worker at {url}: {reason} (deploy it with `npm run deploy`, and check --worker-url)"
            ),
            Error::NotTheWorker { url, detail } => write!(f, "{url} {detail}; nothing was changed in ZITADEL"),
            Error::WorkerMisconfigured { url, problems } => {
                write!(f, "the worker at {url} is misconfigured, and not in a way this tool fixes:")?;
                for (setting, problem) in problems {
                    write!(f, " {setting} {problem};")?;
                }
                f.write_str(
                    " set those (docs/reference.md#settings), deploy, and run this again; nothing was changed in ZITADEL",
                )
            }
            Error::WorkerNotReady { url, seconds, settings } => write!(
                f,
                "the worker at {url} still names {} after {seconds} s: is --worker-url the worker that `wrangler secret put` stores into (the name in wrangler.toml, --env)? The target is not bound yet: run this again once /healthz answers 200",
                settings.join(", ")
            ),
            Error::RotationUnfinished { name } => write!(
                f,
                "a rotation of the target {name:?} stopped halfway (the target \"{name}-retiring\" is still there, and \
                 ZITADEL may still call it with the old key): run this again with --rotate to finish it first"
            ),
            Error::WorkerRefusesKey { url, seconds } => write!(
                f,
                "the worker at {url} still refuses calls signed with the target's key after {seconds} s (401 invalid_signature): is --worker-url the worker that `wrangler secret put` stores into (the name in wrangler.toml, --env)?"
            ),
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_says_to_check_the_pat() {
        assert_eq!(Error::Unauthorized.to_string(), "ZITADEL refused the token (401): check ZITADEL_PAT");
    }

    #[test]
    fn forbidden_names_the_permission_of_the_call() {
        let cases = [
            (Call::SearchTargets, "action.target.read"),
            (Call::GetTarget, "action.target.read"),
            (Call::CreateTarget, "action.target.write"),
            (Call::UpdateTarget, "action.target.write"),
            (Call::RenameTarget, "action.target.write"),
            (Call::DeleteTarget, "action.target.delete"),
            (Call::SearchExecutions, "action.execution.read"),
            (Call::SetExecution, "action.execution.write"),
            (Call::ListPublicKeys, "action.target.read"),
            (Call::AddPublicKey, "action.target.write"),
            (Call::ActivatePublicKey, "action.target.write"),
            (Call::RemovePublicKey, "action.target.write"),
            (Call::SearchProjects, "project.read"),
            (Call::CreateProject, "project.create"),
            (Call::SearchApps, "project.app.read"),
            (Call::CreateOidcApp, "project.app.write"),
            (Call::UpdateOidcConfig, "project.app.write"),
            (Call::CreateApiApp, "project.app.write"),
            (Call::RegenerateApiSecret, "project.app.write"),
        ];
        for (call, permission) in cases {
            let message = Error::Forbidden { call, message: None }.to_string();
            assert!(message.contains("(403)"), "{message}");
            assert!(message.ends_with(&format!("lacks the permission {permission}")), "{message}");
        }
        let with_detail =
            Error::Forbidden { call: Call::SetExecution, message: Some("No matching permissions found".into()) };
        assert_eq!(
            with_detail.to_string(),
            "ZITADEL denied binding the target to an execution (403): ZITADEL_PAT lacks the permission \
             action.execution.write (ZITADEL: No matching permissions found)"
        );
    }

    #[test]
    fn other_statuses_carry_zitadels_message() {
        let e = Error::Status {
            call: Call::CreateTarget,
            status: 409,
            message: Some("Errors.Target.AlreadyExists".into()),
            location: None,
        };
        assert_eq!(e.to_string(), "Creating the target failed: ZITADEL answered 409: Errors.Target.AlreadyExists");
        let bare = Error::Status { call: Call::GetTarget, status: 502, message: None, location: None };
        assert_eq!(
            bare.to_string(),
            "Reading the target (its settings and signing key) failed: ZITADEL answered 502 without an error message"
        );
        let moved = Error::Status {
            call: Call::GetTarget,
            status: 301,
            message: None,
            location: Some("https://new.example".into()),
        };
        assert!(moved.to_string().ends_with("(a redirect to https://new.example: give that address as --domain)"));
        let old =
            Error::Status { call: Call::SearchTargets, status: 404, message: Some("Not Found".into()), location: None };
        assert!(old.to_string().contains("ZITADEL v4"));
    }

    #[test]
    fn unreachable_names_url_and_reason() {
        let e = Error::Unreachable {
            url: "http://127.0.0.1:9/v2/actions/targets/search".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(e.to_string(), "cannot reach http://127.0.0.1:9/v2/actions/targets/search: connection refused");
    }

    #[test]
    fn usage_and_missing_pat_exit_2_everything_else_1() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::MissingPat.exit_code(), 2);
        assert_eq!(Error::Unauthorized.exit_code(), 1);
        assert_eq!(Error::NoTarget { name: "n".into() }.exit_code(), 1);
        assert_eq!(Error::KeyNotInFile { key_id: "1".into(), path: "f".into() }.exit_code(), 1);
    }

    #[test]
    fn an_active_key_missing_from_the_key_file_suggests_a_rotation() {
        let e = Error::KeyNotInFile { key_id: "3141".into(), path: ".payload-decryption-keys".into() };
        let message = e.to_string();
        assert!(message
            .starts_with("the target's active encryption key 3141 is not in the key file .payload-decryption-keys"));
        assert!(message.contains("--key-file") && message.ends_with("--rotate-encryption-key"), "{message}");
        assert_eq!(
            Error::KeyFile { path: "k".into(), detail: "cannot be read: denied".into() }.to_string(),
            "the key file k cannot be read: denied"
        );
    }
}
