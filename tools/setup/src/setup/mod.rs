//! The provisioning itself, in order: the encryption key, the target, the signing-key secret, the
//! executions, and with `--connect` the connect flow's app and sealing key (and on request the
//! introspection app and the token exchange clients). This file orders the
//! steps; each thing provisioned has its own file:
//!
//! - `target.rs`: the Actions V2 target (its endpoint, timeout, failure policy, payload type) and
//!   the worker's variable `PAYLOAD_TYPES` that its payload type calls for;
//! - `encryption_keys.rs`: the key pairs of the payload encryption and `PAYLOAD_DECRYPTION_KEY`,
//!   with their rotation;
//! - `signing_key.rs`: the target's signing key as `ZITADEL_SIGNING_KEY`, with its rotation;
//! - `executions.rs`: the executions that call the target;
//! - `connect.rs`: the OIDC app of the worker's connect flow and `TOKEN_SEALING_KEY`; the API app
//!   of `INTROSPECTION_CLIENT_SECRET` and the back ends of `TOKEN_EXCHANGE_CLIENTS`;
//! - `rotation.rs`: `--rotate`, a new signing key through a second target, without a gap;
//! - `checks.rs`: the worker checked before any write, after the secrets are stored, and with a
//!   signed sample call after binding.
//!
//! The secrets are stored before the target is bound, so ZITADEL never calls a worker that cannot
//! check its signature (or open its payload) yet; when wrangler fails, nothing calls the worker at
//! all. For a target that exists, the encryption key is handled before the target is updated, so
//! a target switched to `PAYLOAD_TYPE_JWE` finds its key active and the worker able to decrypt.
//! The connect flow comes last: it does not touch the target, and `wrangler secret list` finds the
//! worker once `wrangler secret put` of the signing key has made it.
//!
//! What is left by hand is printed after `Done.` ([`next_steps`]): the worker's plain variables
//! (`[vars]` in `wrangler.toml`, which the tool never edits: it is the user's file, and a variable
//! takes effect with their next deploy) and, with `--connect`, the Entra app's settings.

use std::io::Write;

use crate::api::{TargetInfo, Zitadel};
use crate::error::Error;
use crate::keys::Keys;
use crate::types::{Connect, KeyAction, Options, PayloadType};
use crate::worker::{Probe, Worker};
use crate::wrangler::SecretStore;

macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        // Losing a progress line (closed stdout) must not stop a half-done setup.
        let _ = writeln!($out, $($arg)*);
    };
}

mod checks;
mod connect;
mod encryption_keys;
mod executions;
mod rotation;
mod signing_key;
mod target;

#[cfg(test)]
pub(crate) mod fakes;

pub use checks::Checks;
pub use connect::Provisioned as ConnectProvisioned;

/// A plain variable of the worker that a run calls for besides the connect flow's: the tool prints
/// its line for `[vars]` in `wrangler.toml` (it does not edit that file) and why it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Var {
    name: &'static str,
    /// The value, unquoted.
    value: String,
    /// What it is set to, after "to": "the target's payload type alone".
    what: &'static str,
    /// What happens without it, the sentence after "Without it ": "the worker also accepts …".
    without: String,
}

impl Var {
    /// Its line under `[vars]`, indented as the steps print it.
    fn line(&self) -> String {
        format!("       {} = {}\n", self.name, serde_json::Value::String(self.value.clone()))
    }
}

/// What a run that binds the target prints last: what ZITADEL needs besides the target, and how
/// to see the claims of a real sign-in.
pub const THEN: &str = "\
Then (README.md, Quick start, steps 5 and 6):
  - in ZITADEL, your application's access tokens must be JWTs (Token Settings) and its project must
    assert roles on authentication; each role's permissions are a metadata entry of the organization
  - sign in, and watch the worker's log line with: npx wrangler tail
";

/// What is left to do by hand after a run, or `""`: `connect`, what `--connect` made; `payload_type`,
/// the target's payload type as the run set or read it (`None`: unknown, or ZITADEL's default).
pub fn next_steps(connect: Option<(&Connect, &ConnectProvisioned)>, payload_type: Option<PayloadType>) -> String {
    let payload_types = target::payload_types_var(payload_type);
    match (connect, payload_types) {
        (Some((connect, done)), var) => connect::next_steps(connect, done, var.as_ref()),
        (None, Some(var)) => format!(
            "Left to do by hand:\n  1. Set the worker's variable {} to {}, in wrangler.toml:\n       [vars]\n{}     Without it {}\n",
            var.name,
            var.what,
            var.line(),
            var.without
        ),
        (None, None) => String::new(),
    }
}

/// The check a run makes of the worker at `--worker-url` before it writes anything, alone: what a
/// dry run without `ZITADEL_PAT` (whose other lines are left out) shows of the worker.
pub fn check_worker(options: &Options, probe: &mut dyn Probe, out: &mut dyn Write) -> Result<(), Error> {
    match options.worker_url.as_deref().map(|url| Worker::new(url, probe)) {
        Some(Ok(mut worker)) => checks::before(&mut worker, &checks::stored_by(options), true, out),
        Some(Err(error)) => Err(error),
        None => Ok(()),
    }
}

/// Provisions what `options` asks for, in order (see the module docs), checking the worker over
/// `probe` as `checks` say; progress lines go to `out`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    options: &Options,
    api: &mut Zitadel,
    secrets: &mut dyn SecretStore,
    keys: &mut dyn Keys,
    probe: &mut dyn Probe,
    checks: &Checks,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let name = &options.name;
    let rotating = options.key_action == KeyAction::Rotate;
    // A target that exists is read first: what the command line leaves open is kept as it is. The
    // same search finds the target a rotation that stopped halfway left under another name.
    let (existing, retiring) = api.find_targets(name, rotation::RETIRING)?;
    if retiring.is_some() && !rotating {
        // Storing one key now would fail the calls ZITADEL still makes to the other target.
        return Err(Error::RotationUnfinished { name: name.clone() });
    }
    let mut read = |id: Option<String>| -> Result<Option<(String, TargetInfo)>, Error> {
        id.map(|id| api.get_target(&id).map(|target| (id, target))).transpose()
    };
    let existing = read(existing)?;
    let retiring = read(retiring)?;
    if options.worker_url.is_none() && existing.is_none() && retiring.is_none() {
        return Err(Error::NoTarget { name: name.clone() });
    }

    // The target's payload type: as this run sets it, else as the target has it.
    let payload_type = options.payload_type.or_else(|| {
        let read = existing.as_ref().or(retiring.as_ref()).and_then(|(_, t)| t.payload_type.as_deref());
        read.and_then(PayloadType::from_proto_name)
    });

    // The worker, at --worker-url or where the target points, before anything is written.
    let endpoint = options
        .worker_url
        .clone()
        .or_else(|| existing.iter().chain(retiring.iter()).find_map(|(_, t)| t.endpoint.clone()));
    let mut worker = match endpoint.as_deref().map(|endpoint| Worker::new(endpoint, probe)) {
        Some(Ok(worker)) => Some(worker),
        // A dry run without ZITADEL_PAT knows no endpoint but a placeholder.
        Some(Err(_)) | None if checks.dry_run => None,
        Some(Err(error)) => return Err(error),
        None => {
            say!(out, "The target has no endpoint: the worker is not checked");
            None
        }
    };
    let stores = checks::stored_by(options);
    if let Some(worker) = worker.as_mut() {
        checks::before(worker, &stores, checks.dry_run, out)?;
    }

    let secrets = &mut checks::Recording { inner: secrets, stored: Vec::new() };
    if rotating {
        let found = rotation::Found { named: existing, retiring };
        let id = rotation::rotate(options, found, api, secrets, keys, worker.as_mut(), checks, out)?;
        if options.worker_url.is_some() {
            executions::bind(options, api, &id, out)?;
        }
        return finish(options, payload_type, api, secrets, keys, out);
    }

    let (id, current_key) = match (target::spec(options, existing.as_ref().map(|(_, t)| t)), existing) {
        (Some(spec), Some((id, target))) => {
            // The keys first: a target switched to PAYLOAD_TYPE_JWE must find its key active and
            // the worker able to decrypt; a key missing from the key file stops the run unchanged.
            encryption_keys::provision(options, &id, false, api, secrets, keys, out)?;
            target::update(api, &id, &spec, &target, out)?;
            encryption_keys::payload_type_note(options, target.payload_type.as_deref(), out);
            (id, target.signing_key)
        }
        (Some(spec), None) => {
            let (id, key) = target::create(api, &spec, out)?;
            // Nothing calls the new target before it is bound.
            encryption_keys::provision(options, &id, true, api, secrets, keys, out)?;
            (id, key)
        }
        (None, Some((id, target))) => {
            say!(out, "Found target {name:?} (id {id})");
            encryption_keys::provision(options, &id, false, api, secrets, keys, out)?;
            encryption_keys::payload_type_note(options, target.payload_type.as_deref(), out);
            (id, target.signing_key)
        }
        (None, None) => return Err(Error::NoTarget { name: name.clone() }),
    };

    // `--rotate-encryption-key` alone handles that key only.
    let key = if options.worker_url.is_some() || options.key_action != KeyAction::RotateEncryptionKey {
        signing_key::store(options.key_action, current_key, secrets, out)?
    } else {
        current_key
    };

    // The target is bound only once the worker has what was stored so far (the connect flow's
    // secrets come later and are not waited for).
    if let Some(worker) = worker.as_mut() {
        checks::ready(worker, checks, &secrets.stored, out)?;
    }
    if options.worker_url.is_some() {
        executions::bind(options, api, &id, out)?;
    }
    if let Some(worker) = worker.as_mut() {
        checks::sample(worker, checks, &key, out)?;
    }
    finish(options, payload_type, api, secrets, keys, out)
}

/// The end of a run: the connect flow when asked for, `Done.` and what is left to do.
fn finish(
    options: &Options,
    payload_type: Option<PayloadType>,
    api: &mut Zitadel,
    secrets: &mut dyn SecretStore,
    keys: &mut dyn Keys,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let provisioned = match &options.connect {
        Some(connect) => Some((connect, connect::provision(options, connect, api, secrets, keys, out)?)),
        None => None,
    };
    say!(out, "Done.");
    let connect = provisioned.as_ref().map(|(connect, provisioned)| (*connect, provisioned));
    let _ = write!(out, "{}", next_steps(connect, payload_type));
    if options.worker_url.is_some() {
        let _ = write!(out, "{THEN}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::fakes::{run_with, Fake, Stored, BASE};
    use crate::setup::signing_key::SECRET_NAME;
    use crate::types::Call;
    use serde_json::json;

    #[test]
    fn first_run_creates_stores_then_binds_and_second_run_changes_nothing_but_the_secret() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let out = run_with(&mut fake, &mut stored, BASE).unwrap();
        assert_eq!(stored.0, [(SECRET_NAME.to_string(), "key-1".to_string())]);
        assert_eq!(fake.executions, vec![(json!({"function":{"name":"preaccesstoken"}}), vec!["100".to_string()])]);
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::CreateTarget, Call::SearchExecutions, Call::SetExecution]);
        assert!(!out.contains("key-1"), "{out}");
        assert_eq!(fake.log[1].body.as_ref().unwrap().get("payloadType"), None, "ZITADEL's default");
        assert!(out.ends_with(&format!("Done.\n{THEN}")), "nothing left by hand for a JSON target: {out}");

        let out = run_with(&mut fake, &mut stored, BASE).unwrap();
        assert_eq!(stored.values(SECRET_NAME), ["key-1", "key-1"]);
        assert_eq!(fake.executions.len(), 1);
        assert_eq!(fake.executions[0].1, ["100"]);
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::GetTarget, Call::SearchExecutions]);
        assert!(
            out.contains(
                "is already as asked (endpoint https://w.dev/, timeout 10s, interruptOnError false): left as is"
            ),
            "{out}"
        );
        assert!(out.contains("already calls the target"), "{out}");
    }

    #[test]
    fn rotating_without_a_target_is_an_error() {
        for rotation in ["--rotate", "--rotate-encryption-key", "--finish-rotation"] {
            let err =
                run_with(&mut Fake::default(), &mut Stored::default(), &format!("--domain z {rotation}")).unwrap_err();
            assert_eq!(err, Error::NoTarget { name: "zitadel-claims".into() });
        }
    }
}
