//! The target's signing key as the worker's secret `ZITADEL_SIGNING_KEY`: stored as it is, and
//! stored alone again after a rotation (`--finish-rotation`). The rotation itself, which stores
//! `new,old`, is `rotation.rs`'s.

use std::io::Write;

use crate::error::Error;
use crate::secret::Secret;
use crate::types::KeyAction;
use crate::wrangler::{with_hint, SecretStore};

/// The worker's secret holding the key(s).
pub(super) const SECRET_NAME: &str = "ZITADEL_SIGNING_KEY";

/// Stores the target's signing key `current` as the worker's secret, as `action` asks: as it is,
/// or alone, ending a rotation. The key ZITADEL signs with.
pub(super) fn store(
    action: KeyAction,
    current: Secret,
    secrets: &mut dyn SecretStore,
    out: &mut dyn Write,
) -> Result<Secret, Error> {
    let command = secrets.command_line(SECRET_NAME);
    match action {
        // `--rotate` stores its keys itself (`rotation.rs`), and a run after it stores what the
        // target has: the same as a plain run.
        KeyAction::Store | KeyAction::RotateEncryptionKey | KeyAction::Rotate => {
            secrets.put(SECRET_NAME, &current, "the target's signing key").map_err(|e| {
                with_hint(
                    e,
                    "; the target exists in ZITADEL but is not bound yet: run this command again once wrangler works",
                )
            })?;
            say!(out, "Stored the target's signing key as the worker's secret {SECRET_NAME} ({command})");
            Ok(current)
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

    #[test]
    fn finishing_a_rotation_stores_the_current_key_alone() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_with(&mut fake, &mut stored, BASE).unwrap();
        run_with(&mut fake, &mut stored, "--domain z --rotate").unwrap();
        assert_eq!(stored.last(SECRET_NAME), "key-2,key-1");
        let out = run_with(&mut fake, &mut stored, "--domain z --finish-rotation").unwrap();
        assert_eq!(stored.last(SECRET_NAME), "key-2");
        assert!(out.contains("The worker has picked up ZITADEL_SIGNING_KEY\n"), "what was stored alone: {out}");
        assert_eq!(stored.values(DECRYPTION_SECRET_NAME), Vec::<&str>::new(), "a JSON target has no keys");
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::GetTarget, Call::ListPublicKeys]);
    }
}
