//! Test doubles for the tests of the provisioning: an in-memory ZITADEL, a secret store that
//! remembers every value, key pairs and a key file in memory, and `run` over them.

use serde_json::{json, Value};

use super::run;
use crate::api::{Answer, Request, Transport, Zitadel};
use crate::cli::{parse, Command};
use crate::error::Error;
use crate::keys::{Entry, KeyPair, Keys};
use crate::secret::Secret;
use crate::types::{Call, KeyType, Options};
use crate::wrangler::SecretStore;

/// A tiny in-memory ZITADEL: one target at most, executions keyed by condition, the target's
/// public keys (id, active, PEM) in the order they were added.
#[derive(Default)]
pub(super) struct Fake {
    pub(super) target: Option<(String, String)>, // id, key
    pub(super) payload_type: Option<String>,
    pub(super) public_keys: Vec<(String, bool, String)>,
    pub(super) executions: Vec<(Value, Vec<String>)>,
    pub(super) log: Vec<Request>,
    pub(super) rotations: u32,
    /// A call answered with 500.
    pub(super) failing: Option<Call>,
}

impl Fake {
    pub(super) fn active(&self) -> Option<&str> {
        self.public_keys.iter().find(|k| k.1).map(|k| k.0.as_str())
    }
    pub(super) fn key_ids(&self) -> Vec<&str> {
        self.public_keys.iter().map(|k| k.0.as_str()).collect()
    }
    pub(super) fn calls(&self) -> Vec<Call> {
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
pub(super) struct Stored(pub(super) Vec<(String, String)>);

impl Stored {
    pub(super) fn values(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
    pub(super) fn last(&self, name: &str) -> &str {
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
pub(super) struct MemoryKeys {
    pub(super) made: Vec<KeyType>,
    pub(super) file: Vec<Entry>,
    pub(super) saves: u32,
}

impl MemoryKeys {
    pub(super) fn private(n: usize) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([0x30, n as u8])
    }
    pub(super) fn ids(&self) -> Vec<&str> {
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

pub(super) fn options(args: &str) -> Options {
    match parse(args.split_whitespace().map(str::to_string)).unwrap() {
        Command::Run(o) => o,
        Command::Help => unreachable!(),
    }
}

pub(super) fn run_keys(
    fake: &mut Fake,
    stored: &mut Stored,
    keys: &mut MemoryKeys,
    args: &str,
) -> Result<String, Error> {
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

pub(super) fn run_with(fake: &mut Fake, stored: &mut Stored, args: &str) -> Result<String, Error> {
    run_keys(fake, stored, &mut MemoryKeys::default(), args)
}

pub(super) const BASE: &str = "--domain z --worker-url https://w.dev/";
