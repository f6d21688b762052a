//! The Actions V2 target: what it is set to (endpoint, timeout, `interruptOnError`, payload type)
//! and its creation or update, and the worker's variable `PAYLOAD_TYPES` its payload type calls
//! for. Its signing key is `signing_key.rs`'s, its public keys `encryption_keys.rs`'s.

use std::io::Write;

use crate::api::{TargetInfo, TargetSpec, Zitadel};
use crate::error::Error;
use crate::secret::Secret;
use crate::types::{Options, PayloadType, DEFAULT_TIMEOUT};

use super::Var;

/// The worker's variable listing the payload types it accepts (`json`, `jwt`, `jwe`,
/// comma-separated); unset, it accepts all three.
pub(super) const PAYLOAD_TYPES_VAR: &str = "PAYLOAD_TYPES";

/// What the target is set to; `None` for a run that handles a key only (no `--worker-url`).
/// What the command line leaves open comes from the target as it is (`existing`), so a re-run
/// never turns a fail-closed target fail-open or shortens its timeout; for a new target, or a
/// from the defaults (10 s, no interruption). A `restWebhook` or `restAsync` target becomes a
/// `restCall` (ZITADEL uses the answer of that type alone), keeping a webhook's interruption.
pub(super) fn spec(options: &Options, existing: Option<&TargetInfo>) -> Option<TargetSpec> {
    options.worker_url.as_ref().map(|endpoint| at(options, existing, endpoint.clone()))
}

/// What a target at `endpoint` is set to: the command line's timeout and failure policy, else
/// `existing`'s, else the defaults; the payload type only as the command line gives it.
pub(super) fn at(options: &Options, existing: Option<&TargetInfo>, endpoint: String) -> TargetSpec {
    let kept_timeout = existing.and_then(|t| t.timeout.clone());
    let kept_interrupt = existing.and_then(|t| t.interrupts);
    TargetSpec {
        name: options.name.clone(),
        endpoint,
        timeout: options.timeout.clone().or(kept_timeout).unwrap_or_else(|| DEFAULT_TIMEOUT.to_string()),
        interrupt_on_error: options.interrupt_on_error.or(kept_interrupt).unwrap_or(false),
        payload_type: options.payload_type,
    }
}

/// Whether the target `existing` already is as `spec` says (a `restCall` target; no payload type
/// asked for, or the one it has).
fn unchanged(spec: &TargetSpec, existing: &TargetInfo) -> bool {
    existing.endpoint.as_deref() == Some(spec.endpoint.as_str())
        && existing.timeout.as_deref().is_some_and(|t| same_duration(t, &spec.timeout))
        && existing.rest_call
        && existing.interrupts == Some(spec.interrupt_on_error)
        && spec.payload_type.is_none_or(|p| existing.payload_type.as_deref() == Some(p.proto_name()))
}

/// `10s` and `10.000s` are one duration (protojson writes 0, 3, 6 or 9 decimals).
fn same_duration(a: &str, b: &str) -> bool {
    let seconds = |d: &str| d.strip_suffix('s').and_then(|n| n.parse::<f64>().ok());
    matches!((seconds(a), seconds(b)), (Some(x), Some(y)) if x == y)
}

/// Creates the target: its id and signing key.
pub(super) fn create(api: &mut Zitadel, spec: &TargetSpec, out: &mut dyn Write) -> Result<(String, Secret), Error> {
    let (id, key) = api.create_target(spec)?;
    say!(out, "Created target {:?} (id {id}): {}", spec.name, settings(spec));
    Ok((id, key))
}

/// Updates the target `id` to `spec` where it differs from `existing`; its signing key stays as
/// it is.
pub(super) fn update(
    api: &mut Zitadel,
    id: &str,
    spec: &TargetSpec,
    existing: &TargetInfo,
    out: &mut dyn Write,
) -> Result<(), Error> {
    if unchanged(spec, existing) {
        say!(out, "Target {:?} (id {id}) is already as asked ({}): left as is", spec.name, settings(spec));
        return Ok(());
    }
    api.update_target(id, spec)?;
    say!(out, "Updated target {:?} (id {id}): {}; its signing key is unchanged", spec.name, settings(spec));
    Ok(())
}

/// The `PAYLOAD_TYPES` a target of `payload_type` calls for: that type alone. Unset, the worker also
/// accepts plain JSON, which only the HMAC proves, and its key (the target's signing key) is shown
/// to anyone who may read the target; so choosing `jwt` or `jwe` protects nothing until the worker
/// refuses the rest. `None` for JSON (or an unknown type): there is nothing to narrow.
///
/// One type, never two, also around a rotation: rotating either key keeps the payload type (the
/// worker tries each key its secret lists), so no call of another type is under way. Only a
/// switch of the type has calls of the old one under way (for at most the target's timeout), and
/// the worker's default (unset) accepts them: the variable is set after the run. A worker that
/// lists the old type alone needs both while switching; docs/zitadel-by-hand.md says how.
pub(super) fn payload_types_var(payload_type: Option<PayloadType>) -> Option<Var> {
    let without = match payload_type? {
        PayloadType::Json => return None,
        PayloadType::Jwt => "the worker also accepts plain JSON payloads, whose only proof is the HMAC of the target's signing key, which anyone with action.target.read can read.",
        PayloadType::Jwe => "the worker also accepts plain JSON payloads, whose only proof is the HMAC of the target's signing key (anyone with action.target.read can read it), and JWTs that are not encrypted.",
    };
    Some(Var {
        name: PAYLOAD_TYPES_VAR,
        value: payload_type?.worker_name().to_string(),
        what: "the target's payload type alone",
        without: without.to_string(),
    })
}

/// The target's settings, for the progress line.
pub(super) fn settings(spec: &TargetSpec) -> String {
    let mut settings =
        format!("endpoint {}, timeout {}, interruptOnError {}", spec.endpoint, spec.timeout, spec.interrupt_on_error);
    if let Some(payload_type) = spec.payload_type {
        settings.push_str(&format!(", payloadType {}", payload_type.proto_name()));
    }
    settings
}

#[cfg(test)]
mod tests {
    use crate::setup::encryption_keys::DECRYPTION_SECRET_NAME;
    use crate::setup::fakes::{run_keys, run_with, Fake, MemoryKeys, Stored, BASE};
    use crate::setup::signing_key::SECRET_NAME;
    use crate::setup::THEN;
    use crate::types::Call;

    #[test]
    fn payload_type_jwt_sets_the_type_and_makes_no_keys() {
        let (mut fake, mut stored, mut keys) = (Fake::default(), Stored::default(), MemoryKeys::default());
        let out = run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwt")).unwrap();
        assert_eq!(fake.log[1].body.as_ref().unwrap()["payloadType"], "PAYLOAD_TYPE_JWT");
        assert!(out.contains("payloadType PAYLOAD_TYPE_JWT"), "{out}");
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::CreateTarget, Call::SearchExecutions, Call::SetExecution]);
        assert!(keys.made.is_empty() && keys.saves == 0);
        assert_eq!(stored.values(SECRET_NAME).len(), 1);
        assert!(stored.values(DECRYPTION_SECRET_NAME).is_empty());
        // A run without the flag keeps the type: an update sends no payloadType.
        run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --timeout 5s")).unwrap();
        assert_eq!(fake.log[2].call, Call::UpdateTarget);
        assert_eq!(fake.log[2].body.as_ref().unwrap().get("payloadType"), None);
        assert_eq!(fake.payload_type.as_deref(), Some("PAYLOAD_TYPE_JWT"));
    }

    /// What a run with a JWT target prints after `Done.`.
    const JWT_STEP: &str = "Done.
Left to do by hand:
  1. Set the worker's variable PAYLOAD_TYPES to the target's payload type alone, in wrangler.toml:
       [vars]
       PAYLOAD_TYPES = \"jwt\"
     Without it the worker also accepts plain JSON payloads, whose only proof is the HMAC of the target's signing key, which anyone with action.target.read can read.
";

    #[test]
    fn a_jwt_target_prints_the_payload_types_line_whether_set_or_read_and_json_prints_none() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let out = run_with(&mut fake, &mut stored, &format!("{BASE} --payload-type jwt")).unwrap();
        assert!(out.ends_with(&format!("{JWT_STEP}{THEN}")), "{out}");
        assert_eq!(out.matches("PAYLOAD_TYPES").count(), 2, "once in the sentence, once as the line: {out}");

        // Kept without the flag: read back from the target.
        let out = run_with(&mut fake, &mut stored, BASE).unwrap();
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::GetTarget, Call::SearchExecutions]);
        assert!(out.ends_with(&format!("{JWT_STEP}{THEN}")), "{out}");
        // A key-only run reads it too.
        let out = run_with(&mut fake, &mut stored, "--domain z --rotate").unwrap();
        assert!(out.ends_with(JWT_STEP), "{out}");

        // JSON (set, or ZITADEL's default): nothing to narrow, nothing printed after Done.
        let out = run_with(&mut fake, &mut stored, &format!("{BASE} --payload-type json")).unwrap();
        assert!(out.ends_with(&format!("Done.\n{THEN}")) && !out.contains("PAYLOAD_TYPES"), "{out}");
        let out = run_with(&mut fake, &mut stored, BASE).unwrap();
        assert!(out.ends_with(&format!("Done.\n{THEN}")) && !out.contains("PAYLOAD_TYPES"), "{out}");
        let out = run_with(&mut Fake::default(), &mut Stored::default(), BASE).unwrap();
        assert!(out.ends_with(&format!("Done.\n{THEN}")) && !out.contains("PAYLOAD_TYPES"), "a new target: {out}");
    }

    #[test]
    fn an_unspecified_or_unknown_payload_type_read_back_prints_nothing() {
        for read in ["PAYLOAD_TYPE_UNSPECIFIED", "PAYLOAD_TYPE_SOMETHING_NEW"] {
            let (mut fake, mut stored) = (Fake::default(), Stored::default());
            run_with(&mut fake, &mut stored, BASE).unwrap();
            fake.payload_type = Some(read.into());
            let out = run_with(&mut fake, &mut stored, BASE).unwrap();
            assert!(out.ends_with(&format!("Done.\n{THEN}")) && !out.contains("PAYLOAD_TYPES"), "{read}: {out}");
        }
    }

    #[test]
    fn payload_type_json_is_sent_on_update() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_with(&mut fake, &mut stored, &format!("{BASE} --payload-type jwt")).unwrap();
        run_with(&mut fake, &mut stored, &format!("{BASE} --payload-type json")).unwrap();
        assert_eq!(fake.log[2].call, Call::UpdateTarget);
        assert_eq!(fake.log[2].body.as_ref().unwrap()["payloadType"], "PAYLOAD_TYPE_JSON");
        assert_eq!(fake.payload_type.as_deref(), Some("PAYLOAD_TYPE_JSON"));
    }

    #[test]
    fn a_rerun_keeps_the_timeout_and_interrupt_on_error_unless_a_flag_changes_them() {
        use serde_json::json;
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_with(&mut fake, &mut stored, &format!("{BASE} --timeout 30s --interrupt-on-error")).unwrap();
        assert_eq!(fake.log[1].body.as_ref().unwrap()["restCall"], json!({"interruptOnError": true}));

        // Fail-closed stays fail-closed, 30 s stay 30 s: nothing to update.
        let out = run_with(&mut fake, &mut stored, BASE).unwrap();
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::GetTarget, Call::SearchExecutions]);
        assert!(out.contains("timeout 30s, interruptOnError true): left as is"), "{out}");
        // protojson may write the duration with decimals: still the same.
        fake.settings.insert("timeout".into(), json!("30.000s"));
        run_with(&mut fake, &mut stored, BASE).unwrap();
        assert!(!fake.calls().contains(&Call::UpdateTarget));

        // One flag changes its setting alone.
        run_with(&mut fake, &mut stored, &format!("{BASE} --no-interrupt-on-error")).unwrap();
        assert_eq!(fake.log[2].call, Call::UpdateTarget);
        let body = fake.log[2].body.as_ref().unwrap();
        assert_eq!((&body["timeout"], &body["restCall"]), (&json!("30.000s"), &json!({"interruptOnError": false})));
        run_with(&mut fake, &mut stored, &format!("{BASE} --timeout 5s")).unwrap();
        let body = fake.log[2].body.as_ref().unwrap();
        assert_eq!((&body["timeout"], &body["restCall"]), (&json!("5s"), &json!({"interruptOnError": false})));

        // A target of another type (its answer is not used) becomes a restCall, a webhook keeping
        // its interruption.
        fake.settings.remove("restCall");
        fake.settings.insert("restWebhook".into(), json!({"interruptOnError": true}));
        run_with(&mut fake, &mut stored, BASE).unwrap();
        assert_eq!(fake.log[2].body.as_ref().unwrap()["restCall"], json!({"interruptOnError": true}));
        fake.settings.remove("restWebhook");
        fake.settings.remove("restCall");
        fake.settings.insert("restAsync".into(), json!({}));
        run_with(&mut fake, &mut stored, BASE).unwrap();
        assert_eq!(fake.log[2].body.as_ref().unwrap()["restCall"], json!({"interruptOnError": false}));
    }
}
