//! The provisioning itself: target, signing-key secret, executions, in that order.
//!
//! The secret is stored before the target is bound, so ZITADEL never calls a worker that cannot
//! check its signature yet; when wrangler fails, nothing calls the worker at all.

use std::io::Write;

use crate::api::{merge_targets, Condition, TargetSpec, Zitadel};
use crate::cli::{KeyAction, Options};
use crate::error::Error;
use crate::secret::Secret;
use crate::wrangler::SecretStore;

/// The worker's secret holding the key(s).
pub const SECRET_NAME: &str = "ZITADEL_SIGNING_KEY";
/// The API method whose response carries the identity provider's tokens after an external login.
pub const IDP_INTENT_METHOD: &str = "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent";

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

pub fn run(
    options: &Options,
    api: &mut Zitadel,
    secrets: &mut dyn SecretStore,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let name = &options.name;
    let existing = api.find_target(name)?;

    let spec = options.worker_url.as_ref().map(|endpoint| TargetSpec {
        name: name.clone(),
        endpoint: endpoint.clone(),
        timeout: options.timeout.clone(),
        interrupt_on_error: options.interrupt_on_error,
    });
    let settings = |spec: &TargetSpec| {
        format!("endpoint {}, timeout {}, interruptOnError {}", spec.endpoint, spec.timeout, spec.interrupt_on_error)
    };
    let (id, created_key) = match (&spec, existing) {
        (Some(spec), Some(id)) => {
            api.update_target(&id, spec)?;
            say!(out, "Updated target {name:?} (id {id}): {}; its signing key is unchanged", settings(spec));
            (id, None)
        }
        (Some(spec), None) => {
            let (id, key) = api.create_target(spec)?;
            say!(out, "Created target {name:?} (id {id}): {}", settings(spec));
            (id, Some(key))
        }
        (None, Some(id)) => {
            say!(out, "Found target {name:?} (id {id})");
            (id, None)
        }
        (None, None) => return Err(Error::NoTarget { name: name.clone() }),
    };

    let current = match created_key {
        Some(key) => key,
        None => {
            let target = api.get_target(&id)?;
            if let Some(payload_type) =
                target.payload_type.filter(|t| t != "PAYLOAD_TYPE_JSON" && t != "PAYLOAD_TYPE_UNSPECIFIED")
            {
                say!(
                    out,
                    "Warning: the target's payloadType is {payload_type}; the worker checks only PAYLOAD_TYPE_JSON calls (set it in the Console)"
                );
            }
            target.signing_key
        }
    };
    store_key(options.key_action, api, &id, current, secrets, out)?;

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
        KeyAction::Store => {
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
    use crate::api::{Answer, Call, Request, Transport};
    use crate::cli::{parse, Command};
    use serde_json::{json, Value};

    /// A tiny in-memory ZITADEL: one target at most, executions keyed by condition.
    #[derive(Default)]
    struct Fake {
        target: Option<(String, String)>, // id, key
        executions: Vec<(Value, Vec<String>)>,
        log: Vec<Request>,
        rotations: u32,
    }

    impl Transport for Fake {
        fn send(&mut self, request: &Request) -> Result<Answer, Error> {
            self.log.push(request.clone());
            let ok = |body: Value| Ok(Answer { status: 200, body: body.to_string(), location: None });
            let body = request.body.clone().unwrap_or(Value::Null);
            match request.call {
                Call::SearchTargets => ok(
                    json!({ "targets": self.target.iter().map(|(id, key)| json!({"id": id, "name": "zitadel-claims", "signingKey": key})).collect::<Vec<_>>() }),
                ),
                Call::CreateTarget => {
                    self.target = Some(("100".into(), "key-1".into()));
                    ok(json!({"id": "100", "signingKey": "key-1"}))
                }
                Call::UpdateTarget => ok(json!({})),
                Call::GetTarget => ok(json!({"target": {"id": "100", "signingKey": self.target.as_ref().unwrap().1}})),
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
            }
        }
    }

    #[derive(Default)]
    struct Stored(Vec<String>);

    impl SecretStore for Stored {
        fn put(&mut self, _name: &str, value: &Secret, _what: &str) -> Result<(), Error> {
            self.0.push(value.expose().to_string());
            Ok(())
        }
        fn command_line(&self, name: &str) -> String {
            format!("fake secret put {name}")
        }
    }

    fn options(args: &str) -> Options {
        match parse(args.split_whitespace().map(str::to_string)).unwrap() {
            Command::Run(o) => o,
            Command::Help => unreachable!(),
        }
    }

    fn run_with(fake: &mut Fake, stored: &mut Stored, args: &str) -> Result<String, Error> {
        let mut out = Vec::new();
        run(&options(args), &mut Zitadel::new("https://z", fake)?, stored, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    const BASE: &str = "--domain z --worker-url https://w.dev/";

    #[test]
    fn first_run_creates_stores_then_binds_and_second_run_changes_nothing_but_the_secret() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let out = run_with(&mut fake, &mut stored, BASE).unwrap();
        assert_eq!(stored.0, ["key-1"]);
        assert_eq!(fake.executions, vec![(json!({"function":{"name":"preaccesstoken"}}), vec!["100".to_string()])]);
        let order: Vec<Call> = fake.log.iter().map(|r| r.call).collect();
        assert_eq!(order, [Call::SearchTargets, Call::CreateTarget, Call::SearchExecutions, Call::SetExecution]);
        assert!(!out.contains("key-1"), "{out}");

        fake.log.clear();
        let out = run_with(&mut fake, &mut stored, BASE).unwrap();
        assert_eq!(stored.0, ["key-1", "key-1"]);
        assert_eq!(fake.executions.len(), 1);
        assert_eq!(fake.executions[0].1, ["100"]);
        let order: Vec<Call> = fake.log.iter().map(|r| r.call).collect();
        assert_eq!(order, [Call::SearchTargets, Call::UpdateTarget, Call::GetTarget, Call::SearchExecutions]);
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
        assert_eq!(stored.0.last().unwrap(), "key-2,key-1");
        assert!(!out.contains("key-"), "{out}");
        assert_eq!(fake.log.last().unwrap().body, Some(json!({"expirationSigningKey": "0s"})));
        run_with(&mut fake, &mut stored, "--domain z --finish-rotation").unwrap();
        assert_eq!(stored.0.last().unwrap(), "key-2");
    }

    #[test]
    fn rotating_without_a_target_is_an_error() {
        let err = run_with(&mut Fake::default(), &mut Stored::default(), "--domain z --rotate").unwrap_err();
        assert_eq!(err, Error::NoTarget { name: "zitadel-claims".into() });
    }
}
