//! `--rotate`: a new signing key without a moment in which calls fail.
//!
//! ZITADEL cannot keep a target's old signing key valid beside a new one: `expirationSigningKey`
//! only expires it at once, and from then on ZITADEL signs with a key the worker does not have
//! yet. So the tool rotates through a second target, which has a key of its own from the start:
//!
//! 1. the target steps aside, renamed `<name>-retiring` (it stays bound: ZITADEL goes on calling
//!    it, signing with the old key);
//! 2. a new target named `<name>` is made with the same settings, and with them a new key (for a
//!    `PAYLOAD_TYPE_JWE` target, the active public key is given to it too: see
//!    `encryption_keys::carry`);
//! 3. the worker's secret becomes `<new key>,<old key>`;
//! 4. a call signed with the new key is sent until the worker takes it (it may need a few seconds
//!    to pick the secret up);
//! 5. every execution that calls the old target calls the new one instead, in its place;
//! 6. the old target is deleted.
//!
//! Calls signed with the old key pass throughout; `--finish-rotation` later stores the new key
//! alone. A run that stops halfway is resumed by running `--rotate` again: it finds
//! `<name>-retiring` (and `<name>` when step 2 was done) and goes on from there.

use std::io::Write;

use crate::api::{TargetInfo, TargetSpec, Zitadel};
use crate::error::Error;
use crate::keys::Keys;
use crate::secret::Secret;
use crate::types::{Options, PayloadType};
use crate::worker::Worker;
use crate::wrangler::{with_hint, SecretStore};

use super::checks::{self, Checks};
use super::encryption_keys;
use super::signing_key::SECRET_NAME;

/// What the target being replaced has after its name while its successor carries its name.
pub(super) const RETIRING: &str = "-retiring";

/// The name of the target being replaced while its successor carries its name.
pub(super) fn retiring_name(name: &str) -> String {
    format!("{name}{RETIRING}")
}

/// The target list of an execution with `new` in the place of `old` (and `old` dropped if `new`
/// is there already); `None` when `old` is not in it.
pub(super) fn swapped(targets: &[String], old: &str, new: &str) -> Option<Vec<String>> {
    if !targets.iter().any(|t| t == old) {
        return None;
    }
    let has_new = targets.iter().any(|t| t == new);
    Some(
        targets
            .iter()
            .filter_map(|t| match t == old {
                true if has_new => None,
                true => Some(new.to_string()),
                false => Some(t.clone()),
            })
            .collect(),
    )
}

/// The successor's settings: the old target's, where the command line leaves them open.
fn successor(options: &Options, old: &TargetInfo) -> Result<TargetSpec, Error> {
    let endpoint = options.worker_url.clone().or_else(|| old.endpoint.clone()).ok_or_else(|| Error::BadAnswer {
        call: crate::types::Call::GetTarget,
        detail: "the target has no endpoint".into(),
    })?;
    let mut spec = super::target::at(options, Some(old), endpoint);
    // A rotation keeps the payload type (the command line cannot give one with --rotate).
    spec.payload_type = spec.payload_type.or(old.payload_type.as_deref().and_then(PayloadType::from_proto_name));
    Ok(spec)
}

/// Where a rotation starts: the target named `--name` as read, and the one named
/// `<name>-retiring` a rotation that stopped halfway left.
pub(super) struct Found {
    pub named: Option<(String, TargetInfo)>,
    pub retiring: Option<(String, TargetInfo)>,
}

/// Rotates (steps 1 to 6 above): the new target's id.
#[allow(clippy::too_many_arguments)]
pub(super) fn rotate(
    options: &Options,
    found: Found,
    api: &mut Zitadel,
    secrets: &mut dyn SecretStore,
    keys: &mut dyn Keys,
    worker: Option<&mut Worker>,
    checks: &Checks,
    out: &mut dyn Write,
) -> Result<String, Error> {
    let name = &options.name;
    let retiring = retiring_name(name);
    // 1. The old target steps aside, or did in a run that stopped.
    let (old_id, old, new) = match (found.retiring, found.named) {
        (Some((old_id, old)), named) => {
            say!(out, "Resuming a rotation: target {retiring:?} (id {old_id}) is being replaced");
            (old_id, old, named)
        }
        (None, Some((old_id, old))) => {
            api.rename_target(&old_id, &retiring)?;
            say!(
                out,
                "Renamed target {name:?} (id {old_id}) to {retiring:?}: it stays bound, and ZITADEL goes on calling it"
            );
            (old_id, old, None)
        }
        (None, None) => return Err(Error::NoTarget { name: name.clone() }),
    };
    let old_key = old.signing_key.clone();

    // 2. Its successor, with its own key.
    let spec = successor(options, &old)?;
    let (new_id, new_key) = match new {
        Some((id, target)) => {
            say!(out, "Found its successor {name:?} (id {id})");
            (id, target.signing_key)
        }
        None => {
            let (id, key) = api.create_target(&spec)?;
            say!(
                out,
                "Created target {name:?} (id {id}) with a new signing key, not bound yet: {}",
                super::target::settings(&spec)
            );
            (id, key)
        }
    };
    if spec.payload_type == Some(PayloadType::Jwe) {
        encryption_keys::carry(&old_id, &new_id, api, secrets, keys, out)?;
    }

    // 3. Both keys in the worker.
    let command = secrets.command_line(SECRET_NAME);
    let resume =
        format!("; ZITADEL still calls the old target {retiring:?} with the old key: run this command again to go on");
    secrets
        .put(SECRET_NAME, &Secret::joined(&new_key, &old_key), "the new key, a comma and the old key")
        .map_err(|e| with_hint(e, &resume))?;
    say!(out, "Stored \"<new key>,<old key>\" as the worker's secret {SECRET_NAME} ({command}): calls signed with either pass");

    // 4. The worker takes the new key before ZITADEL signs with it.
    if let Some(worker) = worker {
        checks::sample(worker, checks, &new_key, out)?;
    }

    // 5. Every execution calls the new target where it called the old one.
    for (condition, targets) in api.executions_of(&old_id)? {
        if let Some(swapped) = swapped(&targets, &old_id, &new_id) {
            api.set_execution_of(&condition, &swapped)?;
            say!(out, "The execution {condition} calls target {new_id} instead of {old_id}");
        }
    }

    // 6. The old target goes.
    api.delete_target(&old_id)?;
    say!(out, "Deleted the old target {old_id}: ZITADEL signs new calls with the new key alone");
    say!(
        out,
        "Once the calls signed with the old key are over (at most the target's timeout; the worker refuses signatures older than SIGNATURE_TOLERANCE_SECONDS, 300 s by default), run this again with --finish-rotation"
    );
    Ok(new_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_new_target_takes_the_old_ones_place() {
        assert_eq!(swapped(&ids(&["7", "1", "9"]), "1", "2"), Some(ids(&["7", "2", "9"])));
        assert_eq!(swapped(&ids(&["1"]), "1", "2"), Some(ids(&["2"])));
        assert_eq!(swapped(&ids(&["2", "1"]), "1", "2"), Some(ids(&["2"])), "already there: the old one goes");
        assert_eq!(swapped(&ids(&["7"]), "1", "2"), None);
    }

    use crate::setup::fakes::{run_checked, run_with, Fake, FakeWorker, Stored, BASE};
    use crate::types::Call;
    use serde_json::json;

    const PREACCESSTOKEN: &str = r#"{"function":{"name":"preaccesstoken"}}"#;

    fn bound(fake: &Fake) -> Vec<(String, Vec<String>)> {
        fake.executions.iter().map(|(c, t)| (c.to_string(), t.clone())).collect()
    }

    #[test]
    fn a_rotation_replaces_the_target_by_one_with_a_new_key_without_a_gap() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        fake.executions.push((json!({"function":{"name":"preuserinfo"}}), vec!["7".into()]));
        run_with(&mut fake, &mut stored, &format!("{BASE} --userinfo --timeout 30s --interrupt-on-error")).unwrap();
        let mut executions = bound(&fake);
        executions.sort();
        assert_eq!(executions[1].1, ["7", "100"]);

        let mut worker = FakeWorker::default();
        let out = run_checked(&mut fake, &mut stored, &mut worker, "--domain z --rotate").unwrap();
        assert_eq!(
            fake.calls(),
            [
                Call::SearchTargets,
                Call::GetTarget,
                Call::RenameTarget,
                Call::CreateTarget,
                Call::SearchExecutions,
                Call::SetExecution,
                Call::SetExecution,
                Call::DeleteTarget
            ]
        );
        assert_eq!(fake.log[2].body, Some(json!({"name": "zitadel-claims-retiring"})));
        // The successor has the old target's settings and name.
        assert_eq!(
            fake.log[3].body,
            Some(
                json!({"name": "zitadel-claims", "endpoint": "https://w.dev/", "timeout": "30s", "restCall": {"interruptOnError": true}})
            )
        );
        assert_eq!(fake.targets, [("101".to_string(), "zitadel-claims".to_string(), "key-2".to_string())]);
        // Both keys pass while the switch is under way; the worker took the new one before it.
        assert_eq!(stored.last(SECRET_NAME), "key-2,key-1");
        assert_eq!(worker.samples, ["key-2"]);
        // Every execution calls the new target in the old one's place, the others as they were.
        let mut executions = bound(&fake);
        executions.sort();
        assert_eq!(
            executions,
            [
                (r#"{"function":{"name":"preaccesstoken"}}"#.to_string(), vec!["101".to_string()]),
                (r#"{"function":{"name":"preuserinfo"}}"#.to_string(), vec!["7".to_string(), "101".to_string()])
            ]
        );
        assert!(out.contains("--finish-rotation"), "{out}");
        assert!(!out.contains("key-"), "{out}");
        let (rename, create, swap, delete) = (
            out.find("Renamed target").unwrap(),
            out.find("Created target").unwrap(),
            out.find("calls target 101 instead of 100").unwrap(),
            out.find("Deleted the old target 100").unwrap(),
        );
        let (stored_at, sampled) =
            (out.find("Stored \"<new key>,<old key>\"").unwrap(), out.find("Sample call").unwrap());
        assert!(
            rename < create && create < stored_at && stored_at < sampled && sampled < swap && swap < delete,
            "{out}"
        );
    }

    #[test]
    fn a_rotation_that_stopped_halfway_goes_on_where_it_stopped() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_with(&mut fake, &mut stored, BASE).unwrap();
        fake.failing = Some(Call::SetExecution);
        run_with(&mut fake, &mut stored, "--domain z --rotate").unwrap_err();
        assert_eq!(fake.targets.len(), 2, "the old one renamed, the new one made");
        assert_eq!(fake.executions[0].1, ["100"], "ZITADEL still calls the old target");

        fake.failing = None;
        let out = run_with(&mut fake, &mut stored, "--domain z --rotate").unwrap();
        assert!(out.contains("Resuming a rotation: target \"zitadel-claims-retiring\" (id 100)"), "{out}");
        assert!(!fake.calls().contains(&Call::CreateTarget) && !fake.calls().contains(&Call::RenameTarget));
        assert_eq!(fake.targets, [("101".to_string(), "zitadel-claims".to_string(), "key-2".to_string())]);
        assert_eq!(bound(&fake), [(PREACCESSTOKEN.to_string(), vec!["101".to_string()])]);
        assert_eq!(stored.last(SECRET_NAME), "key-2,key-1");
    }

    #[test]
    fn other_runs_refuse_while_a_rotation_is_unfinished() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_with(&mut fake, &mut stored, BASE).unwrap();
        fake.failing = Some(Call::DeleteTarget);
        run_with(&mut fake, &mut stored, "--domain z --rotate").unwrap_err();
        fake.failing = None;
        let puts = stored.0.len();
        for args in [BASE, "--domain z --finish-rotation"] {
            let err = run_with(&mut fake, &mut stored, args).unwrap_err();
            assert_eq!(err, Error::RotationUnfinished { name: "zitadel-claims".into() }, "{args}");
            assert!(err.to_string().contains("\"zitadel-claims-retiring\" is still there"), "{err}");
            assert_eq!(fake.calls(), [Call::SearchTargets], "{args}: nothing but the search");
        }
        assert_eq!(stored.0.len(), puts, "nothing stored");
        run_with(&mut fake, &mut stored, "--domain z --rotate").unwrap();
        run_with(&mut fake, &mut stored, "--domain z --finish-rotation").unwrap();
        assert_eq!(stored.last(SECRET_NAME), "key-2");
    }

    #[test]
    fn a_worker_that_does_not_take_the_new_key_stops_the_rotation_before_the_switch() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_with(&mut fake, &mut stored, BASE).unwrap();
        let mut worker =
            FakeWorker { sample_after: (401, r#"{"error":"invalid_signature"}"#.to_string()), ..FakeWorker::default() };
        let err = run_checked(&mut fake, &mut stored, &mut worker, "--domain z --rotate").unwrap_err();
        assert!(matches!(err, Error::WorkerRefusesKey { .. }), "{err}");
        assert_eq!(
            bound(&fake),
            [(PREACCESSTOKEN.to_string(), vec!["100".to_string()])],
            "the old target is still called"
        );
        assert!(!fake.calls().contains(&Call::DeleteTarget));
    }
}
