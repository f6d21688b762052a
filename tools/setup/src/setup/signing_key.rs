//! The target's signing key as the worker's secret `ZITADEL_SIGNING_KEY`: stored as it is, rotated
//! (`--rotate`: ZITADEL signs with a new key, the secret holds `new,old`), and stored alone again
//! (`--finish-rotation`).

use std::io::Write;

use crate::api::Zitadel;
use crate::error::Error;
use crate::secret::Secret;
use crate::types::KeyAction;
use crate::wrangler::{with_hint, SecretStore};

/// The worker's secret holding the key(s).
pub(super) const SECRET_NAME: &str = "ZITADEL_SIGNING_KEY";

/// Stores the target's signing key `current` as the worker's secret, as `action` asks: as it is;
/// rotated first, then `new,old`; or alone, ending a rotation. The key ZITADEL signs with after it.
pub(super) fn store(
    action: KeyAction,
    api: &mut Zitadel,
    id: &str,
    current: Secret,
    secrets: &mut dyn SecretStore,
    out: &mut dyn Write,
) -> Result<Secret, Error> {
    let command = secrets.command_line(SECRET_NAME);
    match action {
        KeyAction::Store | KeyAction::RotateEncryptionKey => {
            secrets.put(SECRET_NAME, &current, "the target's signing key").map_err(|e| {
                with_hint(
                    e,
                    "; the target exists in ZITADEL but is not bound yet: run this command again once wrangler works",
                )
            })?;
            say!(out, "Stored the target's signing key as the worker's secret {SECRET_NAME} ({command})");
            Ok(current)
        }
        KeyAction::Rotate => {
            let new = api.rotate_signing_key(id)?;
            say!(out, "Rotated the signing key of target {id}: ZITADEL signs with the new key from now on");
            let both = Secret::joined(&new, &current);
            secrets.put(SECRET_NAME, &both, "the new key, a comma and the old key").map_err(|e| {
                with_hint(
                    e,
                    "; ZITADEL already signs with the new key: run this again with --finish-rotation to store it",
                )
            })?;
            say!(
                out,
                "Stored \"<new key>,<old key>\" as the worker's secret {SECRET_NAME} ({command}): calls signed with either pass"
            );
            say!(
                out,
                "Once calls signed with the old key are over (the worker refuses signatures older than SIGNATURE_TOLERANCE_SECONDS, 300 s by default), run this again with --finish-rotation"
            );
            Ok(new)
        }
        KeyAction::FinishRotation => {
            secrets.put(SECRET_NAME, &current, "the target's current signing key")?;
            say!(
                out,
                "Stored the target's current signing key alone as the worker's secret {SECRET_NAME} ({command}): the old key is no longer accepted"
            );
            Ok(current)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::encryption_keys::DECRYPTION_SECRET_NAME;
    use crate::setup::fakes::{run_with, Fake, Stored, BASE};
    use crate::types::Call;
    use serde_json::json;

    #[test]
    fn rotation_stores_new_then_old_and_finishing_stores_new_alone() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_with(&mut fake, &mut stored, BASE).unwrap();
        let out = run_with(&mut fake, &mut stored, "--domain z --rotate").unwrap();
        assert_eq!(stored.last(SECRET_NAME), "key-2,key-1");
        assert!(!out.contains("key-"), "{out}");
        assert_eq!(fake.log.last().unwrap().body, Some(json!({"expirationSigningKey": "0s"})));
        run_with(&mut fake, &mut stored, "--domain z --finish-rotation").unwrap();
        assert_eq!(stored.last(SECRET_NAME), "key-2");
        assert_eq!(stored.values(DECRYPTION_SECRET_NAME), Vec::<&str>::new(), "a JSON target has no keys");
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::GetTarget, Call::ListPublicKeys]);
    }
}
