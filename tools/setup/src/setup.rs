//! The provisioning itself: the encryption key, target, signing-key secret, executions.
//!
//! The secrets are stored before the target is bound, so ZITADEL never calls a worker that cannot
//! check its signature (or open its payload) yet; when wrangler fails, nothing calls the worker at
//! all. For a target that exists, the encryption key is handled before the target is updated, so
//! a target switched to `PAYLOAD_TYPE_JWE` finds its key active and the worker able to decrypt.

use std::io::Write;

use crate::api::{merge_targets, Condition, PublicKeyInfo, TargetSpec, Zitadel};
use crate::error::Error;
use crate::keys::{Entry, Keys};
use crate::secret::Secret;
use crate::types::{KeyAction, KeyType, Options, PayloadType};
use crate::wrangler::SecretStore;

/// The worker's secret holding the key(s).
pub const SECRET_NAME: &str = "ZITADEL_SIGNING_KEY";
/// The worker's secret holding the private key(s) of the payload encryption.
pub const DECRYPTION_SECRET_NAME: &str = "PAYLOAD_DECRYPTION_KEY";
/// The API method whose response carries the identity provider's tokens after an external login.
pub const IDP_INTENT_METHOD: &str = "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent";
const JWE: &str = "PAYLOAD_TYPE_JWE";

macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        // Losing a progress line (closed stdout) must not stop a half-done setup.
        let _ = writeln!($out, $($arg)*);
    };
}

/// The conditions the target is bound to.
pub fn conditions(options: &Options) -> Vec<Condition> {
    let mut conditions = vec![Condition::Function("preaccesstoken")];
    if options.userinfo {
        conditions.push(Condition::Function("preuserinfo"));
    }
    if options.saml {
        conditions.push(Condition::Function("presamlresponse"));
    }
    if options.capture_idp_tokens {
        conditions.push(Condition::Response(IDP_INTENT_METHOD));
    }
    conditions
}

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

pub fn run(
    options: &Options,
    api: &mut Zitadel,
    secrets: &mut dyn SecretStore,
    keys: &mut dyn Keys,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let name = &options.name;
    let existing = api.find_target(name)?;

    let spec = options.worker_url.as_ref().map(|endpoint| TargetSpec {
        name: name.clone(),
        endpoint: endpoint.clone(),
        timeout: options.timeout.clone(),
        interrupt_on_error: options.interrupt_on_error,
        payload_type: options.payload_type,
    });
    let settings = |spec: &TargetSpec| {
        let mut settings = format!(
            "endpoint {}, timeout {}, interruptOnError {}",
            spec.endpoint, spec.timeout, spec.interrupt_on_error
        );
        if let Some(payload_type) = spec.payload_type {
            settings.push_str(&format!(", payloadType {}", payload_type.proto_name()));
        }
        settings
    };
    let (id, created_key) = match (&spec, existing) {
        (Some(spec), Some(id)) => {
            // The keys first: a target switched to PAYLOAD_TYPE_JWE must find its key active and
            // the worker able to decrypt; a key missing from the key file stops the run unchanged.
            encryption_keys(options, &id, false, api, secrets, keys, out)?;
            api.update_target(&id, spec)?;
            say!(out, "Updated target {name:?} (id {id}): {}; its signing key is unchanged", settings(spec));
            (id, None)
        }
        (Some(spec), None) => {
            let (id, key) = api.create_target(spec)?;
            say!(out, "Created target {name:?} (id {id}): {}", settings(spec));
            // Nothing calls the new target before it is bound.
            encryption_keys(options, &id, true, api, secrets, keys, out)?;
            (id, Some(key))
        }
        (None, Some(id)) => {
            say!(out, "Found target {name:?} (id {id})");
            encryption_keys(options, &id, false, api, secrets, keys, out)?;
            (id, None)
        }
        (None, None) => return Err(Error::NoTarget { name: name.clone() }),
    };

    // `--rotate-encryption-key` alone handles that key only.
    if options.worker_url.is_some() || options.key_action != KeyAction::RotateEncryptionKey {
        let current = match created_key {
            Some(key) => key,
            None => {
                let target = api.get_target(&id)?;
                payload_type_note(options, target.payload_type.as_deref(), out);
                target.signing_key
            }
        };
        store_key(options.key_action, api, &id, current, secrets, out)?;
    }

    if options.worker_url.is_some() {
        for condition in conditions(options) {
            let bound = api.execution_targets(condition)?;
            match merge_targets(&bound, &id) {
                None => {
                    say!(out, "The {} already calls the target; left as is", condition.describe());
                }
                Some(targets) => {
                    api.set_execution(condition, &targets)?;
                    say!(
                        out,
                        "Bound the target to the {} (targets, in order: {})",
                        condition.describe(),
                        targets.join(", ")
                    );
                }
            }
        }
    }
    say!(out, "Done.");
    Ok(())
}

/// What the payload type of a target that exists means for a run that did not set it.
fn payload_type_note(options: &Options, payload_type: Option<&str>, out: &mut dyn Write) {
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
fn encryption_keys(
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

fn store_key(
    action: KeyAction,
    api: &mut Zitadel,
    id: &str,
    current: Secret,
    secrets: &mut dyn SecretStore,
    out: &mut dyn Write,
) -> Result<(), Error> {
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
        }
        KeyAction::FinishRotation => {
            secrets.put(SECRET_NAME, &current, "the target's current signing key")?;
            say!(
                out,
                "Stored the target's current signing key alone as the worker's secret {SECRET_NAME} ({command}): the old key is no longer accepted"
            );
        }
    }
    Ok(())
}

fn with_hint(error: Error, extra: &str) -> Error {
    match error {
        Error::Wrangler { command, detail, hint } => {
            Error::Wrangler { command, detail, hint: format!("{hint}{extra}") }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Answer, Request, Transport};
    use crate::cli::{parse, Command};
    use crate::keys::KeyPair;
    use crate::types::Call;
    use serde_json::{json, Value};

    /// A tiny in-memory ZITADEL: one target at most, executions keyed by condition, the target's
    /// public keys (id, active, PEM) in the order they were added.
    #[derive(Default)]
    struct Fake {
        target: Option<(String, String)>, // id, key
        payload_type: Option<String>,
        public_keys: Vec<(String, bool, String)>,
        executions: Vec<(Value, Vec<String>)>,
        log: Vec<Request>,
        rotations: u32,
        /// A call answered with 500.
        failing: Option<Call>,
    }

    impl Fake {
        fn active(&self) -> Option<&str> {
            self.public_keys.iter().find(|k| k.1).map(|k| k.0.as_str())
        }
        fn key_ids(&self) -> Vec<&str> {
            self.public_keys.iter().map(|k| k.0.as_str()).collect()
        }
        fn calls(&self) -> Vec<Call> {
            self.log.iter().map(|r| r.call).collect()
        }
    }

    impl Transport for Fake {
        fn send(&mut self, request: &Request) -> Result<Answer, Error> {
            self.log.push(request.clone());
            if self.failing == Some(request.call) {
                return Ok(Answer { status: 500, body: r#"{"code":13,"message":"injected"}"#.into(), location: None });
            }
            let ok = |body: Value| Ok(Answer { status: 200, body: body.to_string(), location: None });
            let body = request.body.clone().unwrap_or(Value::Null);
            let key_in_url =
                || request.url.rsplit("/publickeys/").next().unwrap().trim_end_matches("/activate").to_string();
            match request.call {
                Call::SearchTargets => ok(
                    json!({ "targets": self.target.iter().map(|(id, key)| json!({"id": id, "name": "zitadel-claims", "signingKey": key})).collect::<Vec<_>>() }),
                ),
                Call::CreateTarget => {
                    self.target = Some(("100".into(), "key-1".into()));
                    self.payload_type = body["payloadType"].as_str().map(str::to_string);
                    ok(json!({"id": "100", "signingKey": "key-1"}))
                }
                Call::UpdateTarget => {
                    if let Some(t) = body["payloadType"].as_str() {
                        self.payload_type = Some(t.to_string());
                    }
                    ok(json!({}))
                }
                Call::GetTarget => ok(
                    json!({"target": {"id": "100", "signingKey": self.target.as_ref().unwrap().1, "payloadType": self.payload_type}}),
                ),
                Call::RotateSigningKey => {
                    self.rotations += 1;
                    let key = format!("key-{}", self.rotations + 1);
                    self.target.as_mut().unwrap().1 = key.clone();
                    ok(json!({"signingKey": key}))
                }
                Call::SearchExecutions => {
                    let wanted = &body["filters"][0]["inConditionsFilter"]["conditions"][0];
                    let found: Vec<Value> = self
                        .executions
                        .iter()
                        .filter(|(c, _)| c == wanted)
                        .map(|(c, t)| json!({"condition": c, "targets": t}))
                        .collect();
                    ok(json!({ "executions": found }))
                }
                Call::SetExecution => {
                    let condition = body["condition"].clone();
                    let targets: Vec<String> = serde_json::from_value(body["targets"].clone()).unwrap();
                    self.executions.retain(|(c, _)| *c != condition);
                    self.executions.push((condition, targets));
                    ok(json!({}))
                }
                Call::ListPublicKeys => ok(json!({ "publicKeys": self
                    .public_keys
                    .iter()
                    .map(|(id, active, _)| json!({"keyId": id, "active": active}))
                    .collect::<Vec<_>>() })),
                Call::AddPublicKey => {
                    let id = format!("90{}", self.public_keys.len() + 1);
                    self.public_keys.push((id.clone(), false, body["publicKey"].as_str().unwrap().to_string()));
                    ok(json!({"keyId": id}))
                }
                Call::ActivatePublicKey => {
                    let id = key_in_url();
                    assert!(self.public_keys.iter().any(|k| k.0 == id), "activating an unknown key {id}");
                    for key in &mut self.public_keys {
                        key.1 = key.0 == id;
                    }
                    ok(json!({}))
                }
                Call::RemovePublicKey => {
                    let id = key_in_url();
                    if self.active() == Some(id.as_str()) {
                        return Ok(Answer {
                            status: 400,
                            body: r#"{"code":9,"message":"Errors.Target.PublicKeyActive"}"#.into(),
                            location: None,
                        });
                    }
                    self.public_keys.retain(|k| k.0 != id);
                    ok(json!({}))
                }
            }
        }
    }

    /// Every secret stored, as (name, value).
    #[derive(Default)]
    struct Stored(Vec<(String, String)>);

    impl Stored {
        fn values(&self, name: &str) -> Vec<&str> {
            self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
        }
        fn last(&self, name: &str) -> &str {
            self.values(name).last().copied().unwrap_or_else(|| panic!("nothing stored as {name}"))
        }
    }

    impl SecretStore for Stored {
        fn put(&mut self, name: &str, value: &Secret, _what: &str) -> Result<(), Error> {
            self.0.push((name.to_string(), value.expose().to_string()));
            Ok(())
        }
        fn command_line(&self, name: &str) -> String {
            format!("fake secret put {name}")
        }
    }

    /// Key pairs `PEM-<n>` / `PRIV<n>` (base64 of a DER-like `0x30 n`), the key file in memory.
    #[derive(Default)]
    struct MemoryKeys {
        made: Vec<KeyType>,
        file: Vec<Entry>,
        saves: u32,
    }

    impl MemoryKeys {
        fn private(n: usize) -> String {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode([0x30, n as u8])
        }
        fn ids(&self) -> Vec<&str> {
            self.file.iter().map(|e| e.key_id.as_str()).collect()
        }
    }

    impl Keys for MemoryKeys {
        fn generate(&mut self, key_type: KeyType) -> Result<KeyPair, Error> {
            self.made.push(key_type);
            let n = self.made.len();
            Ok(KeyPair { public_pem: format!("PEM-{n}"), private: Secret::new(Self::private(n)) })
        }
        fn load(&mut self) -> Result<Vec<Entry>, Error> {
            Ok(self.file.clone())
        }
        fn save(&mut self, entries: &[Entry]) -> Result<(), Error> {
            self.saves += 1;
            self.file = entries.to_vec();
            Ok(())
        }
        fn file(&self) -> String {
            "keys.txt".into()
        }
    }

    fn options(args: &str) -> Options {
        match parse(args.split_whitespace().map(str::to_string)).unwrap() {
            Command::Run(o) => o,
            Command::Help => unreachable!(),
        }
    }

    fn run_keys(fake: &mut Fake, stored: &mut Stored, keys: &mut MemoryKeys, args: &str) -> Result<String, Error> {
        fake.log.clear();
        let mut out = Vec::new();
        run(&options(args), &mut Zitadel::new("https://z", fake)?, stored, keys, &mut out)?;
        let out = String::from_utf8(out).unwrap();
        for (_, value) in &stored.0 {
            for part in value.split(',') {
                let private = part.rsplit(':').next().unwrap();
                assert!(!out.contains(private), "a secret was printed: {out}");
            }
        }
        Ok(out)
    }

    fn run_with(fake: &mut Fake, stored: &mut Stored, args: &str) -> Result<String, Error> {
        run_keys(fake, stored, &mut MemoryKeys::default(), args)
    }

    const BASE: &str = "--domain z --worker-url https://w.dev/";

    #[test]
    fn first_run_creates_stores_then_binds_and_second_run_changes_nothing_but_the_secret() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let out = run_with(&mut fake, &mut stored, BASE).unwrap();
        assert_eq!(stored.0, [(SECRET_NAME.to_string(), "key-1".to_string())]);
        assert_eq!(fake.executions, vec![(json!({"function":{"name":"preaccesstoken"}}), vec!["100".to_string()])]);
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::CreateTarget, Call::SearchExecutions, Call::SetExecution]);
        assert!(!out.contains("key-1"), "{out}");
        assert_eq!(fake.log[1].body.as_ref().unwrap().get("payloadType"), None, "ZITADEL's default");

        let out = run_with(&mut fake, &mut stored, BASE).unwrap();
        assert_eq!(stored.values(SECRET_NAME), ["key-1", "key-1"]);
        assert_eq!(fake.executions.len(), 1);
        assert_eq!(fake.executions[0].1, ["100"]);
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::UpdateTarget, Call::GetTarget, Call::SearchExecutions]);
        assert!(out.contains("already calls the target"), "{out}");
    }

    #[test]
    fn other_targets_stay_bound_before_ours() {
        let mut fake = Fake::default();
        fake.executions.push((json!({"function":{"name":"preaccesstoken"}}), vec!["7".into()]));
        run_with(&mut fake, &mut Stored::default(), &format!("{BASE} --userinfo --saml --capture-idp-tokens")).unwrap();
        assert_eq!(fake.executions[0].1, ["7", "100"]);
        let conditions: Vec<&Value> = fake.executions.iter().map(|(c, _)| c).collect();
        assert_eq!(
            conditions,
            [
                &json!({"function":{"name":"preaccesstoken"}}),
                &json!({"function":{"name":"preuserinfo"}}),
                &json!({"function":{"name":"presamlresponse"}}),
                &json!({"response":{"method":IDP_INTENT_METHOD}})
            ]
        );
    }

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
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::ListPublicKeys, Call::GetTarget]);
    }

    #[test]
    fn rotating_without_a_target_is_an_error() {
        for rotation in ["--rotate", "--rotate-encryption-key", "--finish-rotation"] {
            let err =
                run_with(&mut Fake::default(), &mut Stored::default(), &format!("--domain z {rotation}")).unwrap_err();
            assert_eq!(err, Error::NoTarget { name: "zitadel-claims".into() });
        }
    }

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

        // Again: the active key is in the key file, so it is kept and stored again.
        let out = run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwe")).unwrap();
        assert_eq!(
            fake.calls(),
            [Call::SearchTargets, Call::ListPublicKeys, Call::UpdateTarget, Call::GetTarget, Call::SearchExecutions]
        );
        assert_eq!(keys.made.len(), 1, "no new key");
        assert_eq!(fake.key_ids(), ["901"]);
        assert_eq!(stored.values(DECRYPTION_SECRET_NAME), [entry.as_str(), entry.as_str()]);
        assert!(out.contains("901 has its private key in keys.txt: kept"), "{out}");

        // Without the flag the type stays and the keys are left alone.
        let out = run_keys(&mut fake, &mut stored, &mut keys, BASE).unwrap();
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::UpdateTarget, Call::GetTarget, Call::SearchExecutions]);
        assert_eq!(stored.values(DECRYPTION_SECRET_NAME).len(), 2);
        assert!(out.contains("PAYLOAD_DECRYPTION_KEY are left as they are"), "{out}");
    }

    #[test]
    fn a_target_switched_to_jwe_gets_its_key_before_the_update() {
        let (mut fake, mut stored, mut keys) = (Fake::default(), Stored::default(), MemoryKeys::default());
        run_keys(&mut fake, &mut stored, &mut keys, BASE).unwrap();
        run_keys(&mut fake, &mut stored, &mut keys, &format!("{BASE} --payload-type jwe --key-type p256")).unwrap();
        assert_eq!(
            fake.calls()[..5],
            [
                Call::SearchTargets,
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
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::ListPublicKeys]);
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
            [Call::SearchTargets, Call::ListPublicKeys, Call::AddPublicKey, Call::ActivatePublicKey]
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
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::ListPublicKeys, Call::RemovePublicKey, Call::GetTarget]);
        assert!(fake.log[2].url.ends_with("/publickeys/901"), "{}", fake.log[2].url);
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
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::ListPublicKeys, Call::GetTarget]);
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
    fn payload_type_json_is_sent_on_update() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_with(&mut fake, &mut stored, &format!("{BASE} --payload-type jwt")).unwrap();
        run_with(&mut fake, &mut stored, &format!("{BASE} --payload-type json")).unwrap();
        assert_eq!(fake.log[1].call, Call::UpdateTarget);
        assert_eq!(fake.log[1].body.as_ref().unwrap()["payloadType"], "PAYLOAD_TYPE_JSON");
        assert_eq!(fake.payload_type.as_deref(), Some("PAYLOAD_TYPE_JSON"));
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
        }
        let (mut fake, mut keys) = (Fake::default(), MemoryKeys::default());
        let err = run(
            &options(&format!("{BASE} --payload-type jwe")),
            &mut Zitadel::new("https://z", &mut fake).unwrap(),
            &mut Failing,
            &mut keys,
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
