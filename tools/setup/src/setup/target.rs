//! The Actions V2 target: what it is set to (endpoint, timeout, `interruptOnError`, payload type)
//! and its creation or update. Its signing key is `signing_key.rs`'s, its public keys
//! `encryption_keys.rs`'s.

use std::io::Write;

use crate::api::{TargetSpec, Zitadel};
use crate::error::Error;
use crate::secret::Secret;
use crate::types::Options;

/// What the target is set to; `None` for a run that handles a key only (no `--worker-url`).
pub(super) fn spec(options: &Options) -> Option<TargetSpec> {
    options.worker_url.as_ref().map(|endpoint| TargetSpec {
        name: options.name.clone(),
        endpoint: endpoint.clone(),
        timeout: options.timeout.clone(),
        interrupt_on_error: options.interrupt_on_error,
        payload_type: options.payload_type,
    })
}

/// Creates the target: its id and signing key.
pub(super) fn create(api: &mut Zitadel, spec: &TargetSpec, out: &mut dyn Write) -> Result<(String, Secret), Error> {
    let (id, key) = api.create_target(spec)?;
    say!(out, "Created target {:?} (id {id}): {}", spec.name, settings(spec));
    Ok((id, key))
}

/// Updates the target `id` to `spec`; its signing key stays as it is.
pub(super) fn update(api: &mut Zitadel, id: &str, spec: &TargetSpec, out: &mut dyn Write) -> Result<(), Error> {
    api.update_target(id, spec)?;
    say!(out, "Updated target {:?} (id {id}): {}; its signing key is unchanged", spec.name, settings(spec));
    Ok(())
}

/// The target's settings, for the progress line.
fn settings(spec: &TargetSpec) -> String {
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
        // An update without the flag keeps the type: no payloadType in the body.
        run_keys(&mut fake, &mut stored, &mut keys, BASE).unwrap();
        assert_eq!(fake.log[1].body.as_ref().unwrap().get("payloadType"), None);
        assert_eq!(fake.payload_type.as_deref(), Some("PAYLOAD_TYPE_JWT"));
    }

    #[test]
    fn payload_type_json_is_sent_on_update() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_with(&mut fake, &mut stored, &format!("{BASE} --payload-type jwt")).unwrap();
        run_with(&mut fake, &mut stored, &format!("{BASE} --payload-type json")).unwrap();
        assert_eq!(fake.log[1].call, Call::UpdateTarget);
        assert_eq!(fake.log[1].body.as_ref().unwrap()["payloadType"], "PAYLOAD_TYPE_JSON");
        assert_eq!(fake.payload_type.as_deref(), Some("PAYLOAD_TYPE_JSON"));
    }
}
