//! `--dry-run`: the same provisioning code runs against a transport that prints each request
//! and answers with placeholders, so what is printed is exactly what a real run would send.

use std::io::Write;

use serde_json::{json, Value};

use crate::api::{Answer, Call, Request, Transport};
use crate::error::Error;
use crate::secret::Secret;
use crate::wrangler::SecretStore;

/// Placeholder id of the target in a dry run.
pub const TARGET_ID: &str = "TARGET_ID";

pub struct DryRunApi<W: Write> {
    out: W,
    /// Whether to answer the search as if the target existed (it must, for a key-only run).
    assume_target: bool,
    name: String,
}

impl<W: Write> DryRunApi<W> {
    pub fn new(out: W, name: &str, assume_target: bool) -> Self {
        DryRunApi { out, assume_target, name: name.to_string() }
    }
}

impl<W: Write> Transport for DryRunApi<W> {
    fn send(&mut self, request: &Request) -> Result<Answer, Error> {
        let _ = writeln!(self.out, "{} {}", request.method.as_str(), request.url);
        if let Some(body) = &request.body {
            let _ = writeln!(self.out, "    {body}");
        }
        let note = match request.call {
            Call::SearchTargets if self.assume_target => {
                format!("(assuming a target named {:?} exists, with id {TARGET_ID})", self.name)
            }
            Call::SearchTargets => format!(
                "(assuming no target named {:?} exists, so it is created; when one exists it is updated instead \
                 with POST .../v2/actions/targets/{TARGET_ID} and the same body, then its key is read with \
                 GET .../v2/actions/targets/{TARGET_ID})",
                self.name
            ),
            Call::SearchExecutions => {
                "(assuming no target is bound there yet; a real run keeps the ones that are)".into()
            }
            _ => String::new(),
        };
        if !note.is_empty() {
            let _ = writeln!(self.out, "    {note}");
        }
        let body = match request.call {
            Call::SearchTargets if self.assume_target => json!({ "targets": [{ "id": TARGET_ID, "name": self.name }] }),
            Call::SearchTargets => json!({ "targets": [] }),
            Call::CreateTarget => json!({ "id": TARGET_ID, "signingKey": "<signing key>" }),
            Call::GetTarget => json!({ "target": { "id": TARGET_ID, "signingKey": "<current signing key>" } }),
            Call::RotateSigningKey => json!({ "signingKey": "<new signing key>" }),
            Call::SearchExecutions => json!({ "executions": [] }),
            Call::UpdateTarget | Call::SetExecution => Value::Object(Default::default()),
        };
        Ok(Answer { status: 200, body: body.to_string(), location: None })
    }
}

pub struct DryRunSecrets<W: Write> {
    out: W,
    command: String,
}

impl<W: Write> DryRunSecrets<W> {
    pub fn new(out: W, command: String) -> Self {
        DryRunSecrets { out, command }
    }
}

impl<W: Write> SecretStore for DryRunSecrets<W> {
    fn put(&mut self, _name: &str, _value: &Secret, what: &str) -> Result<(), Error> {
        let _ = writeln!(self.out, "{}", self.command);
        let _ = writeln!(self.out, "    (with {what} on its standard input)");
        Ok(())
    }

    fn command_line(&self, _name: &str) -> String {
        self.command.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Zitadel;
    use crate::cli::{parse, Command};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// One buffer shared by the printing API and the printing secret store, as stdout is.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn dry_run(args: &str) -> String {
        let Command::Run(options) = parse(args.split_whitespace().map(str::to_string)).unwrap() else { unreachable!() };
        let shared = Shared::default();
        let mut api = DryRunApi::new(shared.clone(), &options.name, options.worker_url.is_none());
        let mut secrets = DryRunSecrets::new(shared.clone(), "npx wrangler secret put ZITADEL_SIGNING_KEY".into());
        crate::setup::run(
            &options,
            &mut Zitadel::new(&options.base_url, &mut api).unwrap(),
            &mut secrets,
            &mut std::io::sink(),
        )
        .unwrap();
        let text = String::from_utf8(shared.0.borrow().clone()).unwrap();
        text
    }

    #[test]
    fn prints_every_call_in_order_with_its_body() {
        let text = dry_run("--domain z.example --worker-url https://w.dev/ --userinfo");
        let calls: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
        assert_eq!(
            calls,
            [
                "POST https://z.example/v2/actions/targets/search",
                "POST https://z.example/v2/actions/targets",
                "npx wrangler secret put ZITADEL_SIGNING_KEY",
                "POST https://z.example/v2/actions/executions/search",
                "PUT https://z.example/v2/actions/executions",
                "POST https://z.example/v2/actions/executions/search",
                "PUT https://z.example/v2/actions/executions",
            ]
        );
        assert!(text.contains(r#"{"endpoint":"https://w.dev/","name":"zitadel-claims","restCall":{"interruptOnError":false},"timeout":"10s"}"#), "{text}");
        assert!(
            text.contains(r#"{"condition":{"function":{"name":"preuserinfo"}},"targets":["TARGET_ID"]}"#),
            "{text}"
        );
        assert!(text.contains("assuming no target named \"zitadel-claims\" exists"), "{text}");
        assert!(!text.contains("<signing key>"), "{text}");
    }

    #[test]
    fn a_rotation_assumes_the_target_exists() {
        let text = dry_run("--domain z.example --rotate");
        assert!(text.contains("assuming a target named \"zitadel-claims\" exists"), "{text}");
        assert!(text.contains("GET https://z.example/v2/actions/targets/TARGET_ID"), "{text}");
        assert!(text.contains(r#"{"expirationSigningKey":"0s"}"#), "{text}");
        assert!(text.contains("(with the new key, a comma and the old key on its standard input)"), "{text}");
    }
}
