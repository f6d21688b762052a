//! The key pairs of the target's payload encryption (`--payload-type jwe`) and the worker's secret
//! `PAYLOAD_DECRYPTION_KEY`: the active key kept (or made, added and activated), a new one on
//! `--rotate-encryption-key` (the secret holds `new,old`), the inactive ones removed on
//! `--finish-rotation`. The key pairs themselves and the key file are `keys.rs`'s.

use std::io::Write;

use crate::api::{PublicKeyInfo, Zitadel};
use crate::error::Error;
use crate::keys::{Entry, Keys};
use crate::secret::Secret;
use crate::types::{KeyAction, KeyType, Options, PayloadType};
use crate::wrangler::{with_hint, SecretStore};

/// The worker's secret holding the private key(s) of the payload encryption.
pub(super) const DECRYPTION_SECRET_NAME: &str = "PAYLOAD_DECRYPTION_KEY";
const JWE: &str = "PAYLOAD_TYPE_JWE";

/// What happens to the target's encryption key pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encryption {
    /// Nothing (no `--payload-type jwe`, no encryption-key rotation).
    None,
    /// Keep the active key whose private key is in the key file, else make one; store the keys.
    Ensure,
    /// Make and activate a new key; store it and the earlier ones.
    Rotate,
    /// Store the active key alone; remove the others from ZITADEL and the key file. With `ensure`
    /// (`--payload-type jwe`), make a key first when there is no active one.
    Finish { ensure: bool },
}

fn encryption(options: &Options) -> Encryption {
    let jwe = options.payload_type == Some(PayloadType::Jwe);
    match options.key_action {
        KeyAction::RotateEncryptionKey => Encryption::Rotate,
        KeyAction::FinishRotation => Encryption::Finish { ensure: jwe },
        KeyAction::Store | KeyAction::Rotate if jwe => Encryption::Ensure,
        KeyAction::Store | KeyAction::Rotate => Encryption::None,
    }
}

/// Whether a run of `options` stores `PAYLOAD_DECRYPTION_KEY` (when the target has, or gets, a key).
pub(super) fn stores_key(options: &Options) -> bool {
    encryption(options) != Encryption::None
}

/// What the payload type of a target that exists means for a run that did not set it.
pub(super) fn payload_type_note(options: &Options, payload_type: Option<&str>, out: &mut dyn Write) {
    let jwe = payload_type == Some(JWE);
    match encryption(options) {
        Encryption::None if jwe && options.payload_type.is_none() => {
            say!(
                out,
                "The target's payloadType is {JWE}: its encryption key and the worker's secret {DECRYPTION_SECRET_NAME} are left as they are (give --payload-type jwe to store the key again)"
            );
        }
        Encryption::Rotate if !jwe => {
            say!(
                out,
                "Note: the target's payloadType is {}: ZITADEL encrypts to the key only once it is {JWE} (give --payload-type jwe)",
                payload_type.unwrap_or("PAYLOAD_TYPE_UNSPECIFIED (JSON)")
            );
        }
        _ => {}
    }
}

/// The target's encryption key pairs and the worker's `PAYLOAD_DECRYPTION_KEY`, as `options` asks.
///
/// The secret holds the private key of the active public key first, then those of the target's
/// other public keys that the key file holds, in its order (newest first); after
/// `--finish-rotation` the active one alone. `new_target`: the target was just created (no keys).
pub(super) fn provision(
    options: &Options,
    id: &str,
    new_target: bool,
    api: &mut Zitadel,
    secrets: &mut dyn SecretStore,
    keys: &mut dyn Keys,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let (rotate, finish, ensure) = match encryption(options) {
        Encryption::None => return Ok(()),
        Encryption::Ensure => (false, false, true),
        Encryption::Rotate => (true, false, true),
        Encryption::Finish { ensure } => (false, true, ensure),
    };
    let listed: Vec<PublicKeyInfo> = if new_target { Vec::new() } else { api.list_public_keys(id)? };
    let file = keys.file();
    let mut entries = keys.load()?;
    let in_file = |entries: &[Entry], key_id: &str| entries.iter().any(|e| e.key_id == key_id);
    let previous = listed.iter().find(|k| k.active).map(|k| k.key_id.clone());
    let mut made = false;
    let active = match previous.clone() {
        Some(current) if !rotate => {
            if !in_file(&entries, &current) {
                return Err(Error::KeyNotInFile { key_id: current, path: file });
            }
            say!(out, "The target's active encryption key {current} has its private key in {file}: kept");
            current
        }
        None if !ensure => {
            if !listed.is_empty() {
                say!(
                    out,
                    "The target has no active encryption key; its {} inactive public key(s) are left as they are",
                    listed.len()
                );
            }
            return Ok(());
        }
        _ => {
            made = true;
            new_key(options.key_type, id, api, keys, &mut entries, out)?
        }
    };

    let listed_earlier = |e: &&Entry| e.key_id != active && listed.iter().any(|k| k.key_id == e.key_id);
    let chosen: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.key_id == active)
        .chain(entries.iter().filter(listed_earlier).filter(|_| !finish))
        .collect();
    let ids: Vec<&str> = chosen.iter().map(|e| e.key_id.as_str()).collect();
    let what = match ids.as_slice() {
        [one] => format!("the private key of {one}, as \"<key id>:<base64 PKCS#8 DER>\""),
        many => format!(
            "the private keys of {}, each as \"<key id>:<base64 PKCS#8 DER>\", separated by commas,",
            many.join(", ")
        ),
    };
    let parts: Vec<Secret> = chosen.iter().map(|e| e.to_secret()).collect();
    let value = Secret::list(&parts);
    let command = secrets.command_line(DECRYPTION_SECRET_NAME);
    let hint = if made {
        format!(
            "; the target's new public key {active} stays inactive (nothing encrypts to it; its private key is in {file}): run this command again once wrangler works, and --finish-rotation removes it later"
        )
    } else {
        format!(
            "; the target's key {active} is active in ZITADEL and its private key is in {file}: run this command again once wrangler works"
        )
    };
    secrets.put(DECRYPTION_SECRET_NAME, &value, &what).map_err(|e| with_hint(e, &hint))?;
    if made {
        // Activated only now: from the first payload encrypted to it, the worker's secret holds
        // its private key (a secret takes effect with the next deployment, in seconds).
        api.activate_public_key(id, &active)?;
        say!(out, "Activated the key {active}: ZITADEL encrypts the target's payloads to it from now on");
    }

    if !finish {
        say!(
            out,
            "Stored the private key{} of {}{} as the worker's secret {DECRYPTION_SECRET_NAME} ({command})",
            if ids.len() == 1 { "" } else { "s" },
            ids.join(", "),
            if ids.len() == 1 { "" } else { " (the active one first)" }
        );
        if rotate {
            if let Some(previous) = previous.filter(|p| !in_file(&entries, p)) {
                say!(
                    out,
                    "Warning: the previous key {previous} is not in {file}: payloads encrypted to it just before the switch cannot be opened"
                );
            }
            say!(
                out,
                "Once calls encrypted to the old key are over (a call takes at most the target's timeout), run this again with --finish-rotation"
            );
        }
        return Ok(());
    }
    say!(
        out,
        "Stored the private key of the active key {active} alone as the worker's secret {DECRYPTION_SECRET_NAME} ({command}): payloads encrypted to earlier keys no longer open"
    );
    let stale: Vec<String> = listed.iter().filter(|k| k.key_id != active).map(|k| k.key_id.clone()).collect();
    for key_id in &stale {
        api.remove_public_key(id, key_id)?;
        say!(out, "Removed the inactive public key {key_id} from the target");
    }
    let dropped: Vec<String> = entries.iter().filter(|e| stale.contains(&e.key_id)).map(|e| e.key_id.clone()).collect();
    if !dropped.is_empty() {
        entries.retain(|e| !dropped.contains(&e.key_id));
        keys.save(&entries)?;
        say!(out, "Dropped the private key(s) of {} from {file}", dropped.join(", "));
    }
    Ok(())
}

/// A rotation through a second target (`rotation.rs`): gives the new target `new` the active
/// encryption key of the old target `old` (the same key pair, under the id ZITADEL gives it there;
/// the key file keeps the private key under both ids) and stores it first in
/// `PAYLOAD_DECRYPTION_KEY`, before the old target's keys, then activates it. ZITADEL encrypts to
/// each target's own active key, so both targets' payloads open while both are called. A run that
/// stopped halfway finds the key on the new target and goes on.
pub(super) fn carry(
    old: &str,
    new: &str,
    api: &mut Zitadel,
    secrets: &mut dyn SecretStore,
    keys: &mut dyn Keys,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let old_keys = api.list_public_keys(old)?;
    let Some(active) = old_keys.iter().find(|k| k.active).map(|k| k.key_id.clone()) else {
        say!(out, "The old target has no active encryption key: the new one gets none");
        return Ok(());
    };
    let file = keys.file();
    let mut entries = keys.load()?;
    let entry = entries
        .iter()
        .find(|e| e.key_id == active)
        .cloned()
        .ok_or_else(|| Error::KeyNotInFile { key_id: active.clone(), path: file.clone() })?;
    let new_keys = api.list_public_keys(new)?;
    let carried = new_keys.iter().find(|k| entries.iter().any(|e| e.key_id == k.key_id && e.private == entry.private));
    let (key_id, is_active) = match carried {
        Some(key) => (key.key_id.clone(), key.active),
        None => {
            let pem = keys.public_pem(&entry)?;
            let key_id = api.add_public_key(new, &pem)?;
            entries.insert(0, Entry { key_id: key_id.clone(), private: entry.private.clone() });
            keys.save(&entries)?;
            say!(out, "Gave the new target the public key of {active} (its id there: {key_id}); the key file holds its private key under both ids");
            (key_id, false)
        }
    };
    let listed_old = |e: &&Entry| e.key_id != key_id && old_keys.iter().any(|k| k.key_id == e.key_id);
    let chosen: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.key_id == key_id)
        .chain(entries.iter().filter(|e| e.key_id == active && e.key_id != key_id))
        .chain(entries.iter().filter(listed_old).filter(|e| e.key_id != active))
        .collect();
    let ids: Vec<&str> = chosen.iter().map(|e| e.key_id.as_str()).collect();
    let what = format!(
        "the private keys of {}, each as \"<key id>:<base64 PKCS#8 DER>\", separated by commas,",
        ids.join(", ")
    );
    let value = Secret::list(&chosen.iter().map(|e| e.to_secret()).collect::<Vec<_>>());
    let hint = format!("; the new target's key {key_id} is not active yet: run this command again to go on");
    secrets.put(DECRYPTION_SECRET_NAME, &value, &what).map_err(|e| with_hint(e, &hint))?;
    say!(
        out,
        "Stored the private keys of {} as the worker's secret {DECRYPTION_SECRET_NAME} (the new target's first)",
        ids.join(", ")
    );
    if !is_active {
        api.activate_public_key(new, &key_id)?;
        say!(out, "Activated the key {key_id} of the new target: ZITADEL encrypts its payloads to it");
    }
    Ok(())
}

/// Makes a key pair, adds its public key to the target (inactive) and keeps its private key in
/// the key file; the new key's id. It is activated once the worker's secret holds it.
fn new_key(
    key_type: KeyType,
    id: &str,
    api: &mut Zitadel,
    keys: &mut dyn Keys,
    entries: &mut Vec<Entry>,
    out: &mut dyn Write,
) -> Result<String, Error> {
    let pair = keys.generate(key_type)?;
    let key_id = api.add_public_key(id, &pair.public_pem)?;
    entries.insert(0, Entry { key_id: key_id.clone(), private: pair.private });
    // Saved before anything else: a key ZITADEL may encrypt to never lives in this process alone.
    keys.save(entries).map_err(|e| match e {
        Error::KeyFile { path, detail } => Error::KeyFile {
            path,
            detail: format!("{detail} (the target's new public key {key_id} stays inactive: nothing encrypts to it)"),
        },
        other => other,
    })?;
    say!(
        out,
        "Made a new {key_type} key pair on this machine: its public key is the target's key {key_id}, its private key is in {}",
        keys.file()
    );
    Ok(key_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::fakes::{options, run_keys, Fake, MemoryKeys, Stored, BASE};
    use crate::setup::run;
    use crate::setup::signing_key::SECRET_NAME;
    use crate::types::Call;

    #[test]
    fn jwe_on_a_new_target_adds_keeps_and_activates_a_key_then_stores_it() {
        let (mut fake, mut stored, mut keys) = (Fake::default(), Stored::default(), MemoryKeys::default());
        let out = run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwe")).unwrap();
        assert_eq!(fake.log[1].body.as_ref().unwrap()["payloadType"], "PAYLOAD_TYPE_JWE");
        assert_eq!(
            fake.calls(),
            [
                Call::SearchTargets,
                Call::CreateTarget,
                Call::AddPublicKey,
                Call::ActivatePublicKey,
                Call::SearchExecutions,
                Call::SetExecution
            ]
        );
        assert_eq!(keys.made, [KeyType::Rsa]);
        use base64::Engine;
        let sent = base64::engine::general_purpose::STANDARD.decode(&fake.public_keys[0].2).unwrap();
        assert_eq!(sent, b"PEM-1", "the PEM text, base64 in the JSON body");
        assert_eq!(fake.active(), Some("901"));
        assert_eq!(keys.ids(), ["901"]);
        let entry = format!("901:{}", MemoryKeys::private(1));
        assert_eq!(stored.0[0], (DECRYPTION_SECRET_NAME.to_string(), entry.clone()), "before the signing key");
        assert_eq!(stored.values(SECRET_NAME), ["key-1"]);
        assert!(out.contains("Activated the key 901"), "{out}");
        let step = "  1. Set the worker's variable PAYLOAD_TYPES to the target's payload type alone, in wrangler.toml:
       [vars]
       PAYLOAD_TYPES = \"jwe\"
     Without it the worker also accepts plain JSON payloads, whose only proof is the HMAC of the target's signing key (anyone with action.target.read can read it), and JWTs that are not encrypted.
";
        assert!(out.ends_with(&format!("Done.\nLeft to do by hand:\n{step}{}", crate::setup::THEN)), "{out}");

        // Again: the active key is in the key file, so it is kept and stored again.
        let out = run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwe")).unwrap();
        assert_eq!(
            fake.calls(),
            [Call::SearchTargets, Call::GetTarget, Call::ListPublicKeys, Call::SearchExecutions],
            "nothing to update: the target is as asked"
        );
        assert_eq!(keys.made.len(), 1, "no new key");
        assert_eq!(fake.key_ids(), ["901"]);
        assert_eq!(stored.values(DECRYPTION_SECRET_NAME), [entry.as_str(), entry.as_str()]);
        assert!(out.contains("901 has its private key in keys.txt: kept"), "{out}");

        // Without the flag the type stays and the keys are left alone.
        let out = run_keys(&mut fake, &mut stored, &mut keys, BASE).unwrap();
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::GetTarget, Call::SearchExecutions]);
        assert_eq!(stored.values(DECRYPTION_SECRET_NAME).len(), 2);
        assert!(out.contains("PAYLOAD_DECRYPTION_KEY are left as they are"), "{out}");
        assert!(out.ends_with(&format!("{step}{}", crate::setup::THEN)), "the type read back: {out}");
    }

    #[test]
    fn a_target_switched_to_jwe_gets_its_key_before_the_update() {
        let (mut fake, mut stored, mut keys) = (Fake::default(), Stored::default(), MemoryKeys::default());
        run_keys(&mut fake, &mut stored, &mut keys, BASE).unwrap();
        run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwe --key-type p256")).unwrap();
        assert_eq!(
            fake.calls()[..6],
            [
                Call::SearchTargets,
                Call::GetTarget,
                Call::ListPublicKeys,
                Call::AddPublicKey,
                Call::ActivatePublicKey,
                Call::UpdateTarget
            ]
        );
        assert_eq!(keys.made, [KeyType::P256]);
        let names: Vec<&str> = stored.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [SECRET_NAME, DECRYPTION_SECRET_NAME, SECRET_NAME]);
        assert_eq!(fake.payload_type.as_deref(), Some(JWE));
    }

    #[test]
    fn an_active_key_missing_from_the_key_file_fails_before_anything_changes() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_keys(&mut fake, &mut stored, &mut MemoryKeys::default(), &format!("{BASE} --payload-type jwe")).unwrap();
        let before = stored.0.len();
        let mut elsewhere = MemoryKeys::default();
        let err = run_keys(&mut fake, &mut stored, &mut elsewhere, &format!("{BASE} --payload-type jwe")).unwrap_err();
        assert_eq!(err, Error::KeyNotInFile { key_id: "901".into(), path: "keys.txt".into() });
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::GetTarget, Call::ListPublicKeys]);
        assert_eq!(stored.0.len(), before);
        assert!(elsewhere.made.is_empty());
        let err = run_keys(&mut fake, &mut stored, &mut elsewhere, "--domain z --finish-rotation").unwrap_err();
        assert!(matches!(err, Error::KeyNotInFile { .. }), "{err}");
        assert_eq!(stored.0.len(), before);

        // The way out: a new key pair, stored alone (the old private key is not here).
        let out = run_keys(&mut fake, &mut stored, &mut elsewhere, "--domain z --rotate-encryption-key").unwrap();
        assert_eq!(stored.last(DECRYPTION_SECRET_NAME), format!("902:{}", MemoryKeys::private(1)));
        assert!(out.contains("Warning: the previous key 901 is not in keys.txt"), "{out}");
    }

    #[test]
    fn rotating_the_encryption_key_stores_new_then_old_and_finishing_keeps_the_new_alone() {
        let (mut fake, mut stored, mut keys) = (Fake::default(), Stored::default(), MemoryKeys::default());
        run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwe")).unwrap();
        let signing_puts = stored.values(SECRET_NAME).len();

        let out =
            run_keys(&mut fake, &mut stored, &mut keys, "--domain z --rotate-encryption-key --key-type p256").unwrap();
        assert_eq!(
            fake.calls(),
            [Call::SearchTargets, Call::GetTarget, Call::ListPublicKeys, Call::AddPublicKey, Call::ActivatePublicKey]
        );
        assert_eq!(keys.made, [KeyType::Rsa, KeyType::P256]);
        assert_eq!(fake.active(), Some("902"));
        assert_eq!(keys.ids(), ["902", "901"], "newest first");
        let (new, old) = (format!("902:{}", MemoryKeys::private(2)), format!("901:{}", MemoryKeys::private(1)));
        assert_eq!(stored.last(DECRYPTION_SECRET_NAME), format!("{new},{old}"));
        assert_eq!(stored.values(SECRET_NAME).len(), signing_puts, "the signing key is not touched");
        assert!(out.contains("--finish-rotation"), "{out}");

        // A rerun in between keeps both: the secret follows the target's keys.
        run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwe")).unwrap();
        assert_eq!(stored.last(DECRYPTION_SECRET_NAME), format!("{new},{old}"));

        let out = run_keys(&mut fake, &mut stored, &mut keys, "--domain z --finish-rotation").unwrap();
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::GetTarget, Call::ListPublicKeys, Call::RemovePublicKey]);
        assert!(fake.log[3].url.ends_with("/publickeys/901"), "{}", fake.log[3].url);
        assert_eq!(stored.last(DECRYPTION_SECRET_NAME), new);
        assert_eq!(stored.last(SECRET_NAME), "key-1");
        assert_eq!(fake.key_ids(), ["902"]);
        assert_eq!(keys.ids(), ["902"]);
        assert!(
            out.contains("Removed the inactive public key 901") && out.contains("Dropped the private key(s) of 901")
        );

        // Finishing again changes nothing.
        let saves = keys.saves;
        run_keys(&mut fake, &mut stored, &mut keys, "--domain z --finish-rotation").unwrap();
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::GetTarget, Call::ListPublicKeys]);
        assert_eq!((keys.saves, stored.last(DECRYPTION_SECRET_NAME)), (saves, new.as_str()));
    }

    #[test]
    fn keys_of_other_targets_in_the_key_file_are_neither_stored_nor_dropped() {
        let (mut fake, mut stored, mut keys) = (Fake::default(), Stored::default(), MemoryKeys::default());
        keys.file.push(Entry { key_id: "777".into(), private: Secret::new(MemoryKeys::private(7)) });
        run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwe")).unwrap();
        run_keys(&mut fake, &mut stored, &mut keys, "--domain z --rotate-encryption-key").unwrap();
        assert_eq!(keys.ids(), ["902", "901", "777"]);
        assert!(!stored.last(DECRYPTION_SECRET_NAME).contains("777:"));
        run_keys(&mut fake, &mut stored, &mut keys, "--domain z --finish-rotation").unwrap();
        assert_eq!(keys.ids(), ["902", "777"]);
    }

    #[test]
    fn the_private_key_is_in_the_key_file_and_the_secret_before_zitadel_encrypts_to_it() {
        let (mut fake, mut stored, mut keys) = (Fake::default(), Stored::default(), MemoryKeys::default());
        fake.failing = Some(Call::ActivatePublicKey);
        let err = run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwe")).unwrap_err();
        assert!(matches!(err, Error::Status { call: Call::ActivatePublicKey, status: 500, .. }), "{err}");
        assert_eq!(keys.ids(), ["901"], "kept before the activation");
        let entry = format!("901:{}", MemoryKeys::private(1));
        assert_eq!(stored.values(DECRYPTION_SECRET_NAME), [entry.as_str()], "stored before the activation");
        assert!(stored.values(SECRET_NAME).is_empty() && fake.executions.is_empty());

        // The next run finds no active key: a new pair; the earlier one, inactive, goes with it
        // until --finish-rotation removes it.
        fake.failing = None;
        run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwe")).unwrap();
        assert_eq!(fake.active(), Some("902"));
        let (new, old) = (format!("902:{}", MemoryKeys::private(2)), format!("901:{}", MemoryKeys::private(1)));
        assert_eq!(stored.last(DECRYPTION_SECRET_NAME), format!("{new},{old}"));
        run_keys(&mut fake, &mut stored, &mut keys, "--domain z --finish-rotation").unwrap();
        assert_eq!((fake.key_ids(), keys.ids()), (vec!["902"], vec!["902"]));
    }

    #[test]
    fn a_failing_wrangler_says_where_the_new_key_is() {
        struct Failing;
        impl SecretStore for Failing {
            fn put(&mut self, name: &str, _: &Secret, _: &str) -> Result<(), Error> {
                Err(Error::Wrangler { command: self.command_line(name), detail: "failed".into(), hint: String::new() })
            }
            fn command_line(&self, name: &str) -> String {
                format!("w {name}")
            }
            fn names(&mut self) -> Result<Vec<String>, Error> {
                unreachable!("no --connect")
            }
        }
        let (mut fake, mut keys) = (Fake::default(), MemoryKeys::default());
        let err = run(
            &options(&format!("{BASE} --payload-type jwe")),
            &mut Zitadel::new("https://z", &mut fake).unwrap(),
            &mut Failing,
            &mut keys,
            &mut crate::setup::fakes::FakeWorker::default(),
            &crate::setup::fakes::CHECKS,
            &mut Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("`w PAYLOAD_DECRYPTION_KEY` failed"), "{err}");
        assert!(err.contains("new public key 901 stays inactive"), "{err}");
        assert_eq!(fake.active(), None, "activated only once the worker holds the key");
        assert!(fake.executions.is_empty(), "not bound");
        assert_eq!(keys.ids(), ["901"]);
    }
}
