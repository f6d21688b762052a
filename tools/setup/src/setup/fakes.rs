//! Test doubles for the tests of the provisioning: an in-memory ZITADEL, a secret store that
//! remembers every value, key pairs and a key file in memory, and `run` over them.

use serde_json::{json, Value};

use std::collections::VecDeque;
use std::time::Duration;

use super::{run, Checks};
use crate::api::{Answer, Request, Transport, Zitadel};
use crate::cli::{parse, Command};
use crate::error::Error;
use crate::keys::{client_secret, sealing_key, Entry, KeyPair, Keys, SealingKey};
use crate::secret::Secret;
use crate::types::{Call, KeyType, Options};
use crate::worker::{signature, Probe};
use crate::wrangler::SecretStore;

/// A tiny in-memory ZITADEL: targets (a new one gets the id `100`, `101`, ... and the key `key-1`,
/// `key-2`, ...), executions keyed by condition, the public keys (id, active, PEM) in the order
/// they were added, whichever target they were added to.
#[derive(Default)]
pub(crate) struct Fake {
    /// The targets: id, name, key.
    pub(crate) targets: Vec<(String, String, String)>,
    /// How many targets were made.
    pub(crate) made: u32,
    pub(crate) payload_type: Option<String>,
    /// The target's `endpoint`, `timeout` and `restCall`, as the last create or update set them.
    pub(crate) settings: serde_json::Map<String, Value>,
    pub(crate) public_keys: Vec<(String, bool, String)>,
    pub(crate) executions: Vec<(Value, Vec<String>)>,
    pub(crate) log: Vec<Request>,
    /// A call answered with 500.
    pub(crate) failing: Option<Call>,
    /// The projects (id, name); a new one gets the id `500`, `501`, ...
    pub(crate) projects: Vec<(String, String)>,
    /// The apps (project id, app id, name, `oidcConfig`, `null` for an API app); a new one gets
    /// the id `601`, ... and the client id `600@<project name>`, ...
    pub(crate) apps: Vec<(String, String, String, Value)>,
    /// The API apps; a new one gets the id `701`, ... and the client id `700@<project name>`, ...
    pub(crate) api_apps: Vec<FakeApiApp>,
    /// How many client secrets were made: the n-th is `api-secret-<n>`.
    pub(crate) api_secrets: u32,
}

/// An API app of the fake ZITADEL, its current client secret included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FakeApiApp {
    pub(crate) project: String,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) client_id: String,
    /// `apiConfig.authMethodType`, `None` when ZITADEL leaves it out (BASIC, the zero value).
    pub(crate) auth_method: Option<String>,
    pub(crate) secret: String,
}

impl Fake {
    pub(crate) fn active(&self) -> Option<&str> {
        self.public_keys.iter().find(|k| k.1).map(|k| k.0.as_str())
    }
    pub(crate) fn key_ids(&self) -> Vec<&str> {
        self.public_keys.iter().map(|k| k.0.as_str()).collect()
    }
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.log.iter().map(|r| r.call).collect()
    }
    fn keep_settings(&mut self, body: &Value) {
        for field in ["endpoint", "timeout", "restCall"] {
            if let Some(value) = body.get(field) {
                self.settings.insert(field.into(), value.clone());
            }
        }
    }
    fn new_api_secret(&mut self) -> String {
        self.api_secrets += 1;
        format!("api-secret-{}", self.api_secrets)
    }
}

/// The project id in a management API URL.
fn project_in_url(request: &Request) -> String {
    request.url.split("/projects/").nth(1).unwrap().split('/').next().unwrap().to_string()
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
            Call::SearchTargets => {
                let name = body.pointer("/filters/0/targetNameFilter/targetName").and_then(Value::as_str).unwrap();
                let prefix = body.pointer("/filters/0/targetNameFilter/method")
                    == Some(&json!("TEXT_FILTER_METHOD_STARTS_WITH"));
                let found: Vec<Value> = self
                    .targets
                    .iter()
                    .filter(|(_, n, _)| n == name || (prefix && n.starts_with(name)))
                    .map(|(id, name, key)| json!({"id": id, "name": name, "signingKey": key}))
                    .collect();
                ok(json!({ "targets": found }))
            }
            Call::CreateTarget => {
                let (id, key) = (format!("{}", 100 + self.made), format!("key-{}", self.made + 1));
                self.made += 1;
                self.targets.push((id.clone(), body["name"].as_str().unwrap().to_string(), key.clone()));
                self.payload_type = body["payloadType"].as_str().map(str::to_string);
                self.keep_settings(&body);
                ok(json!({"id": id, "signingKey": key}))
            }
            Call::RenameTarget => {
                let id = request.url.rsplit('/').next().unwrap();
                let target = self.targets.iter_mut().find(|t| t.0 == id).unwrap();
                target.1 = body["name"].as_str().unwrap().to_string();
                ok(json!({}))
            }
            Call::DeleteTarget => {
                let id = request.url.rsplit('/').next().unwrap().to_string();
                self.targets.retain(|t| t.0 != id);
                for (_, targets) in self.executions.iter_mut() {
                    targets.retain(|t| *t != id);
                }
                ok(json!({}))
            }
            Call::UpdateTarget => {
                if let Some(t) = body["payloadType"].as_str() {
                    self.payload_type = Some(t.to_string());
                }
                self.keep_settings(&body);
                ok(json!({}))
            }
            Call::GetTarget => {
                let id = request.url.rsplit('/').next().unwrap();
                let key = &self.targets.iter().find(|t| t.0 == id).unwrap().2;
                let mut target = self.settings.clone();
                target.insert("id".into(), json!(id));
                target.insert("signingKey".into(), json!(key));
                target.insert("payloadType".into(), json!(self.payload_type));
                ok(json!({ "target": target }))
            }
            Call::SearchExecutions => {
                let wanted = &body["filters"][0]["inConditionsFilter"]["conditions"][0];
                let by_target = body.pointer("/filters/0/targetFilter/targetId").and_then(Value::as_str);
                let found: Vec<Value> = self
                    .executions
                    .iter()
                    .filter(|(c, t)| match by_target {
                        Some(id) => t.iter().any(|t| t == id),
                        None => c == wanted,
                    })
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
            Call::SearchProjects => {
                let wanted = &body["queries"][0]["nameQuery"];
                assert_eq!(wanted["method"], "TEXT_QUERY_METHOD_EQUALS");
                let found: Vec<Value> = self
                    .projects
                    .iter()
                    .filter(|(_, name)| *name == wanted["name"])
                    .map(|(id, name)| json!({"id": id, "name": name, "state": "PROJECT_STATE_ACTIVE"}))
                    .collect();
                ok(json!({ "details": {"totalResult": found.len().to_string()}, "result": found }))
            }
            Call::CreateProject => {
                let id = format!("{}", 500 + self.projects.len());
                self.projects.push((id.clone(), body["name"].as_str().unwrap().to_string()));
                ok(json!({"id": id}))
            }
            Call::SearchApps => {
                let project = request.url.split("/projects/").nth(1).unwrap().split('/').next().unwrap();
                let wanted = &body["queries"][0]["nameQuery"];
                assert_eq!(wanted["method"], "TEXT_QUERY_METHOD_EQUALS");
                let mut found: Vec<Value> = self
                    .apps
                    .iter()
                    .filter(|(p, _, name, _)| p == project && *name == wanted["name"])
                    .map(|(_, id, name, config)| match config {
                        Value::Null => json!({"id": id, "name": name, "apiConfig": {"clientId": "api"}}),
                        config => json!({"id": id, "name": name, "oidcConfig": config}),
                    })
                    .collect();
                // ZITADEL never shows an API app's secret; protojson leaves out BASIC.
                found.extend(self.api_apps.iter().filter(|a| a.project == project && a.name == wanted["name"]).map(
                    |a| {
                        let mut config = json!({"clientId": a.client_id});
                        if let Some(method) = &a.auth_method {
                            config["authMethodType"] = json!(method);
                        }
                        json!({"id": a.id, "name": a.name, "apiConfig": config})
                    },
                ));
                // protojson leaves out an empty list
                ok(if found.is_empty() { json!({"details": {}}) } else { json!({ "result": found }) })
            }
            Call::CreateOidcApp => {
                let project = request.url.split("/projects/").nth(1).unwrap().split('/').next().unwrap().to_string();
                let project_name = self.projects.iter().find(|(id, _)| *id == project).map(|p| p.1.clone());
                let id = format!("{}", 601 + self.apps.len());
                let client_id = format!("{}@{}", 600 + self.apps.len(), project_name.unwrap_or_default());
                let mut config = body.clone();
                config.as_object_mut().unwrap().remove("name");
                config["clientId"] = json!(client_id);
                self.apps.push((project, id.clone(), body["name"].as_str().unwrap().to_string(), config));
                ok(json!({"appId": id, "clientId": client_id, "noneCompliant": false}))
            }
            Call::UpdateOidcConfig => {
                let app = request.url.rsplit("/apps/").next().unwrap().trim_end_matches("/oidc_config");
                let entry = self.apps.iter_mut().find(|a| a.1 == app).expect("updating an unknown app");
                let client_id = entry.3["clientId"].clone();
                entry.3 = body.clone();
                entry.3["clientId"] = client_id;
                ok(json!({}))
            }
            Call::CreateApiApp => {
                assert_eq!(body["authMethodType"], "API_AUTH_METHOD_TYPE_BASIC");
                let project = project_in_url(request);
                let project_name = self.projects.iter().find(|(id, _)| *id == project).map(|p| p.1.clone());
                let n = self.api_apps.len();
                let secret = self.new_api_secret();
                let app = FakeApiApp {
                    project,
                    id: format!("{}", 701 + n),
                    name: body["name"].as_str().unwrap().to_string(),
                    client_id: format!("{}@{}", 700 + n, project_name.unwrap_or_default()),
                    auth_method: None,
                    secret: secret.clone(),
                };
                let answer = json!({"appId": app.id, "clientId": app.client_id, "clientSecret": secret});
                self.api_apps.push(app);
                ok(answer)
            }
            Call::RegenerateApiSecret => {
                assert_eq!(body, json!({}));
                let (project, rest) = request.url.split_once("/projects/").unwrap().1.split_once("/apps/").unwrap();
                let app = rest.trim_end_matches("/api_config/_generate_client_secret").to_string();
                let secret = self.new_api_secret();
                let entry = self
                    .api_apps
                    .iter_mut()
                    .find(|a| a.project == project && a.id == app)
                    .expect("a new secret for an unknown API app");
                entry.secret = secret.clone();
                ok(json!({"clientSecret": secret, "details": {"sequence": "2"}}))
            }
        }
    }
}

/// Every secret stored, as (name, value).
#[derive(Default)]
pub(crate) struct Stored(pub(crate) Vec<(String, String)>);

impl Stored {
    pub(crate) fn values(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }
    pub(crate) fn last(&self, name: &str) -> &str {
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
    fn names(&mut self) -> Result<Vec<String>, Error> {
        Ok(self.0.iter().map(|(n, _)| n.clone()).collect())
    }
}

/// Key pairs `PEM-<n>` / `PRIV<n>` (base64 of a DER-like `0x30 n`), the key file in memory.
#[derive(Default)]
pub(crate) struct MemoryKeys {
    pub(crate) made: Vec<KeyType>,
    pub(crate) file: Vec<Entry>,
    pub(crate) saves: u32,
}

impl MemoryKeys {
    pub(crate) fn private(n: usize) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([0x30, n as u8])
    }
    pub(crate) fn ids(&self) -> Vec<&str> {
        self.file.iter().map(|e| e.key_id.as_str()).collect()
    }
}

impl Keys for MemoryKeys {
    /// The real generator: the tests check its output where it goes.
    fn sealing_key(&mut self) -> Result<SealingKey, Error> {
        sealing_key(std::time::SystemTime::now())
    }
    /// The real generator too.
    fn client_secret(&mut self, _client_id: &str) -> Result<Secret, Error> {
        client_secret()
    }
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
    fn public_pem(&mut self, entry: &Entry) -> Result<String, Error> {
        Ok(format!("PEM-of-{}", entry.private.expose()))
    }
}

pub(crate) fn options(args: &str) -> Options {
    match parse(args.split_whitespace().map(str::to_string)).unwrap() {
        Command::Run(o) => *o,
        other => unreachable!("{other:?}"),
    }
}

/// The worker: `/healthz` answers `health` in order, then `health_after`; the sample call
/// `sample_answers` in order, then `sample_after`.
pub(crate) struct FakeWorker {
    pub(crate) health: VecDeque<(u16, String)>,
    pub(crate) health_after: (u16, String),
    pub(crate) sample_answers: VecDeque<(u16, String)>,
    pub(crate) sample_after: (u16, String),
    /// How many calls, from the `n`-th get on, find nothing listening: `(n, count)`.
    pub(crate) down: (usize, usize),
    /// How many times `/healthz` was read.
    pub(crate) gets: usize,
    /// The key each sample was signed with (`key-1`, `key-2`, ... are tried), or `?`.
    pub(crate) samples: Vec<String>,
}

impl Default for FakeWorker {
    fn default() -> Self {
        FakeWorker {
            health: VecDeque::new(),
            health_after: (200, r#"{"status":"ok","version":"0.1.0"}"#.into()),
            sample_answers: VecDeque::new(),
            sample_after: (200, r#"{"append_claims":[{"key":"permissions","value":["read"]}]}"#.into()),
            down: (0, 0),
            gets: 0,
            samples: Vec::new(),
        }
    }
}

impl Probe for FakeWorker {
    fn get(&mut self, url: &str) -> Result<Answer, Error> {
        assert!(url.ends_with("/healthz"), "{url}");
        self.gets += 1;
        if self.gets >= self.down.0 && self.down.1 > 0 && self.down.0 > 0 {
            self.down.1 -= 1;
            return Err(Error::WorkerUnreachable { url: url.into(), reason: "connection refused".into() });
        }
        let (status, body) = self.health.pop_front().unwrap_or_else(|| self.health_after.clone());
        Ok(Answer { status, body, location: None })
    }

    fn post(&mut self, _url: &str, header: &str, body: &str) -> Result<Answer, Error> {
        let t: u64 = header.strip_prefix("t=").and_then(|r| r.split(',').next()).unwrap().parse().unwrap();
        let key = (1..10)
            .map(|n| format!("key-{n}"))
            .find(|k| signature(&Secret::new(k.as_str()), t, body) == header)
            .unwrap_or_else(|| "?".into());
        self.samples.push(key);
        let (status, body) = self.sample_answers.pop_front().unwrap_or_else(|| self.sample_after.clone());
        Ok(Answer { status, body, location: None })
    }
}

/// The checks of the tests: a short wait, no pause.
pub(crate) const CHECKS: Checks = Checks { wait: Duration::from_millis(30), interval: Duration::ZERO, dry_run: false };

pub(crate) fn run_keys(
    fake: &mut Fake,
    stored: &mut Stored,
    keys: &mut MemoryKeys,
    args: &str,
) -> Result<String, Error> {
    run_all(fake, stored, keys, &mut FakeWorker::default(), args)
}

/// A run against `worker`.
pub(crate) fn run_checked(
    fake: &mut Fake,
    stored: &mut Stored,
    worker: &mut FakeWorker,
    args: &str,
) -> Result<String, Error> {
    run_all(fake, stored, &mut MemoryKeys::default(), worker, args)
}

fn run_all(
    fake: &mut Fake,
    stored: &mut Stored,
    keys: &mut MemoryKeys,
    worker: &mut FakeWorker,
    args: &str,
) -> Result<String, Error> {
    fake.log.clear();
    let mut out = Vec::new();
    run(&options(args), &mut Zitadel::new("https://z", fake)?, stored, keys, worker, &CHECKS, &mut out)?;
    let out = String::from_utf8(out).unwrap();
    // The back ends' secrets of TOKEN_EXCHANGE_CLIENTS are printed once, on purpose.
    for (_, value) in stored.0.iter().filter(|(name, _)| name != "TOKEN_EXCHANGE_CLIENTS") {
        for part in value.split(',') {
            let private = part.rsplit(':').next().unwrap();
            assert!(!out.contains(private), "a secret was printed: {out}");
        }
    }
    Ok(out)
}

pub(crate) fn run_with(fake: &mut Fake, stored: &mut Stored, args: &str) -> Result<String, Error> {
    run_keys(fake, stored, &mut MemoryKeys::default(), args)
}

pub(crate) const BASE: &str = "--domain z --worker-url https://w.dev/";
