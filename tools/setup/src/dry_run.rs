//! `--dry-run`: the same provisioning code runs against a transport that prints each request, so
//! what is printed is exactly what a real run would send. With `ZITADEL_PAT` set, the reads
//! (searches and gets: [`Call::is_read`]) go to ZITADEL, the key file is read and `wrangler secret
//! list` is run, so the plan follows the instance as it is: what would be created, changed or left
//! alone (the run's own progress lines say the last). Writes are never sent: they are printed and
//! answered with placeholders (ids of what would be made, keys), which later reads never send.
//! Without `ZITADEL_PAT` nothing is read either, and placeholders stand for every answer, with a
//! note on what the plan assumes. No key pair is made and the key file is never written.

use std::io::Write;

use serde_json::{json, Value};

use crate::api::{Answer, Request, Transport};
use crate::error::Error;
use crate::keys::{Entry, KeyPair, Keys, LocalKeys, SealingKey};
use crate::secret::Secret;
use crate::setup::ConnectProvisioned;
use crate::types::{Call, KeyAction, KeyType, Options};
use crate::wrangler::{SecretStore, Wrangler};

/// Placeholder id of the target in a dry run.
pub const TARGET_ID: &str = "TARGET_ID";
/// Placeholder id of the target a rotation makes to replace it.
pub const NEW_TARGET_ID: &str = "NEW_TARGET_ID";
/// Placeholder ids of the target's encryption keys: a new one, the active one and an earlier one.
pub const NEW_KEY_ID: &str = "NEW_KEY_ID";
pub const ACTIVE_KEY_ID: &str = "ACTIVE_KEY_ID";
pub const EARLIER_KEY_ID: &str = "EARLIER_KEY_ID";
/// How the public key is shown in a request body.
pub const PUBLIC_KEY_PLACEHOLDER: &str = "<public key PEM>";
/// Placeholder ids of `--connect`'s project and app, and the app's client id.
pub const PROJECT_ID: &str = "PROJECT_ID";
pub const APP_ID: &str = "APP_ID";
pub const CLIENT_ID: &str = "CLIENT_ID";
/// Placeholder ids of `--introspection`'s API app and its client id.
pub const API_APP_ID: &str = "API_APP_ID";
pub const API_CLIENT_ID: &str = "API_CLIENT_ID";

/// How a back end's new secret is shown in a dry run.
fn client_secret_placeholder(client_id: &str) -> String {
    format!("<new secret of {client_id}>")
}

/// The encryption keys a dry run assumes the target has: the active one, and when finishing a
/// rotation an earlier one too. Only key-only runs read them (a dry run otherwise creates the target).
fn assumed_keys(options: &Options) -> Vec<(&'static str, bool)> {
    match options.key_action {
        KeyAction::FinishRotation => vec![(ACTIVE_KEY_ID, true), (EARLIER_KEY_ID, false)],
        _ => vec![(ACTIVE_KEY_ID, true)],
    }
}

pub struct DryRunApi<'r, W: Write> {
    out: W,
    /// Where reads go; `None`: answered with placeholders.
    reader: Option<&'r mut dyn Transport>,
    /// Whether to answer the search as if the target existed (it must, for a key-only run).
    assume_target: bool,
    name: String,
    keys: Vec<(&'static str, bool)>,
}

impl<'r, W: Write> DryRunApi<'r, W> {
    pub fn new(out: W, options: &Options, reader: Option<&'r mut dyn Transport>) -> Self {
        DryRunApi {
            out,
            reader,
            // A key-only run needs a target, and so does a rotation.
            assume_target: options.worker_url.is_none() || options.key_action == KeyAction::Rotate,
            name: options.name.clone(),
            keys: assumed_keys(options),
        }
    }
}

/// The ids and values a dry run makes up for what it does not make: a read naming one is not sent.
const PLACEHOLDERS: [&str; 8] =
    [TARGET_ID, NEW_TARGET_ID, NEW_KEY_ID, ACTIVE_KEY_ID, EARLIER_KEY_ID, PROJECT_ID, APP_ID, API_APP_ID];

impl<W: Write> Transport for DryRunApi<'_, W> {
    fn send(&mut self, request: &Request) -> Result<Answer, Error> {
        let made_up = PLACEHOLDERS.iter().any(|p| request.url.contains(p));
        if let Some(reader) = self.reader.as_mut() {
            if request.call.is_read() {
                if !made_up {
                    let _ = writeln!(self.out, "read: {} {}", request.method.as_str(), request.url);
                    return reader.send(request);
                }
                // Something this run would make: it has nothing yet.
                let _ = writeln!(
                    self.out,
                    "read (of what this run would make): {} {}",
                    request.method.as_str(),
                    request.url
                );
                let empty = match request.call {
                    Call::SearchExecutions => json!({ "executions": [] }),
                    Call::ListPublicKeys => json!({ "publicKeys": [] }),
                    Call::SearchProjects | Call::SearchApps => json!({ "result": [] }),
                    _ => json!({ "targets": [] }),
                };
                return Ok(Answer { status: 200, body: empty.to_string(), location: None });
            }
            let _ = writeln!(self.out, "would send: {} {}", request.method.as_str(), request.url);
            if let Some(body) = &request.body {
                let _ = writeln!(self.out, "    {}", shown_body(request.call, body));
            }
            return Ok(placeholder(request, &self.name, self.assume_target, &self.keys));
        }
        let _ = writeln!(self.out, "{} {}", request.method.as_str(), request.url);
        if let Some(body) = &request.body {
            let _ = writeln!(self.out, "    {}", shown_body(request.call, body));
        }
        let note = match request.call {
            Call::SearchTargets if self.assume_target => {
                format!("(assuming a target named {:?} exists, with id {TARGET_ID}, and no rotation stopped halfway)", self.name)
            }
            Call::SearchTargets => format!(
                "(assuming no target named {:?} exists, so it is created; when one exists it is updated instead \
                 with POST .../v2/actions/targets/{TARGET_ID} and the same body, then its key and payloadType are \
                 read with GET .../v2/actions/targets/{TARGET_ID} (for PAYLOAD_TYPE_JWT or PAYLOAD_TYPE_JWE the \
                 PAYLOAD_TYPES line to set is printed at the end); with --payload-type jwe its public keys are \
                 listed and a key is added before the update)",
                self.name
            ),
            Call::GetTarget => "(a real run reads the target's signing key and payloadType here; for PAYLOAD_TYPE_JWT \
                                or PAYLOAD_TYPE_JWE it prints the PAYLOAD_TYPES line to set at its end)"
                .into(),
            Call::SearchExecutions if by_target(request) => "(assuming the target is bound to preaccesstoken alone)".into(),
            Call::SearchExecutions => {
                "(assuming no target is bound there yet; a real run keeps the ones that are)".into()
            }
            Call::ListPublicKeys => {
                let keys: Vec<String> = self
                    .keys
                    .iter()
                    .map(|(id, active)| format!("{id} ({})", if *active { "active" } else { "inactive" }))
                    .collect();
                match keys.as_slice() {
                    [one] => format!("(assuming the target has one key, {one}, whose private key is in the key file)"),
                    many => format!(
                        "(assuming the target has the keys {}, whose private keys are in the key file)",
                        many.join(" and ")
                    ),
                }
            }
            Call::AddPublicKey => "(publicKey is the base64 of the new public key's PEM text)".into(),
            Call::SearchProjects => format!(
                "(assuming no project named {:?} exists, so it is created; when one exists its id is used)",
                self.name
            ),
            Call::SearchApps if searched_name(request) == Some(format!("{}-introspection", self.name).as_str()) => {
                format!(
                    "(assuming no app named \"{}-introspection\" exists in the project, so it is created; when one \
                     exists (an API app with HTTP Basic) its client id is used and a new client secret generated with \
                     POST .../apps/{API_APP_ID}/api_config/_generate_client_secret and the body {{}})",
                    self.name
                )
            }
            Call::SearchApps => format!(
                "(assuming no app named \"{}-connect\" exists in the project, so it is created; when one exists \
                 its client id is used, and its configuration set with PUT .../apps/{APP_ID}/oidc_config where it differs)",
                self.name
            ),
            _ => String::new(),
        };
        if !note.is_empty() {
            let _ = writeln!(self.out, "    {note}");
        }
        Ok(placeholder(request, &self.name, self.assume_target, &self.keys))
    }
}

/// A request body as printed: the public key's PEM stands as a placeholder.
fn shown_body(call: Call, body: &Value) -> Value {
    let mut body = body.clone();
    if call == Call::AddPublicKey {
        body["publicKey"] = json!(PUBLIC_KEY_PLACEHOLDER);
    }
    body
}

/// The answer of `call` in a dry run: placeholders. `assume_target`: a target named `name` exists
/// (a key-only run needs one); `keys`: the encryption keys it is assumed to have.
fn placeholder(request: &Request, name: &str, assume_target: bool, keys: &[(&'static str, bool)]) -> Answer {
    let body = match request.call {
        Call::SearchTargets if assume_target => json!({ "targets": [{ "id": TARGET_ID, "name": name }] }),
        Call::SearchTargets => json!({ "targets": [] }),
        // A key-only run that creates a target is a rotation: the new one has its own id.
        Call::CreateTarget if assume_target => json!({ "id": NEW_TARGET_ID, "signingKey": "<new signing key>" }),
        Call::CreateTarget => json!({ "id": TARGET_ID, "signingKey": "<signing key>" }),
        Call::SearchExecutions if by_target(request) => json!({ "executions": [
            { "condition": { "function": { "name": "preaccesstoken" } }, "targets": [TARGET_ID] }
        ] }),
        Call::GetTarget => json!({ "target": {
            "id": TARGET_ID, "signingKey": "<current signing key>", "endpoint": "<the target's endpoint>"
        } }),
        Call::SearchExecutions => json!({ "executions": [] }),
        Call::ListPublicKeys => json!({
            "publicKeys": keys.iter().map(|(id, active)| json!({ "keyId": id, "active": active })).collect::<Vec<_>>()
        }),
        Call::AddPublicKey => json!({ "keyId": NEW_KEY_ID }),
        Call::SearchProjects | Call::SearchApps => json!({ "result": [] }),
        Call::CreateProject => json!({ "id": PROJECT_ID }),
        Call::CreateOidcApp => json!({ "appId": APP_ID, "clientId": CLIENT_ID }),
        Call::CreateApiApp => {
            json!({ "appId": API_APP_ID, "clientId": API_CLIENT_ID, "clientSecret": "<client secret>" })
        }
        Call::RegenerateApiSecret => json!({ "clientSecret": "<new client secret>" }),
        Call::UpdateTarget
        | Call::RenameTarget
        | Call::DeleteTarget
        | Call::SetExecution
        | Call::ActivatePublicKey
        | Call::RemovePublicKey
        | Call::UpdateOidcConfig => Value::Object(Default::default()),
    };
    Answer { status: 200, body: body.to_string(), location: None }
}

/// Whether a `ListExecutions` request asks for the executions of one target.
fn by_target(request: &Request) -> bool {
    request.body.as_ref().is_some_and(|b| b.pointer("/filters/0/targetFilter").is_some())
}

/// The app name a `ListApps` request searches for.
fn searched_name(request: &Request) -> Option<&str> {
    request.body.as_ref()?.pointer("/queries/0/nameQuery/name")?.as_str()
}

pub struct DryRunSecrets<W: Write> {
    out: W,
    wrangler: Wrangler,
    /// Whether `wrangler secret list` is run (it only reads); else no secret is assumed set.
    list: bool,
}

impl<W: Write> DryRunSecrets<W> {
    pub fn new(out: W, wrangler: Wrangler, list: bool) -> Self {
        DryRunSecrets { out, wrangler, list }
    }
}

impl<W: Write> SecretStore for DryRunSecrets<W> {
    fn put(&mut self, name: &str, _value: &Secret, what: &str) -> Result<(), Error> {
        let prefix = if self.list { "would run: " } else { "" };
        let _ = writeln!(self.out, "{prefix}{}", self.wrangler.command_line(name));
        let _ = writeln!(self.out, "    (with {what} on its standard input)");
        Ok(())
    }

    fn command_line(&self, name: &str) -> String {
        self.wrangler.command_line(name)
    }

    fn names(&mut self) -> Result<Vec<String>, Error> {
        if self.list {
            let _ = writeln!(self.out, "read: {}", self.wrangler.list_command_line());
            return match self.wrangler.names() {
                Ok(names) => Ok(names),
                Err(error) => {
                    let _ = writeln!(self.out, "    ({error}; the plan assumes the worker has no secret yet)");
                    Ok(Vec::new())
                }
            };
        }
        let _ = writeln!(self.out, "{}", self.wrangler.list_command_line());
        let _ = writeln!(
            self.out,
            "    (assuming the worker has no secret TOKEN_SEALING_KEY yet, so one is made and stored; a real run keeps one that is set)"
        );
        Ok(Vec::new())
    }
}

/// What a real run would print at its end: for `--connect` the client ids and the back ends'
/// secrets as placeholders, and for `--payload-type jwt` or `jwe` the line of `PAYLOAD_TYPES`. (A
/// real run also prints that line for a target it reads whose type is JWT or JWE: the dry run
/// cannot know it, and says so where it reads the target.)
pub fn next_steps(out: &mut dyn Write, options: &Options) {
    let done = options.connect.as_ref().map(|connect| {
        let done = ConnectProvisioned {
            client_id: CLIENT_ID.to_string(),
            introspection_client_id: connect.introspection.then(|| API_CLIENT_ID.to_string()),
            exchange_secrets: connect
                .exchange_clients
                .iter()
                .map(|id| (id.clone(), Secret::new(client_secret_placeholder(id))))
                .collect(),
        };
        (connect, done)
    });
    let connect = done.as_ref().map(|(connect, done)| (*connect, done));
    let _ = write!(out, "{}", crate::setup::next_steps(connect, options.payload_type));
}

/// Placeholder key pairs, and a key file that holds the assumed keys' private keys, or with
/// `file` the real key file, read (never written).
pub struct DryRunKeys<W: Write> {
    out: W,
    path: String,
    loaded: Vec<String>,
    file: Option<LocalKeys>,
}

impl<W: Write> DryRunKeys<W> {
    pub fn new(out: W, options: &Options, file: Option<LocalKeys>) -> Self {
        let loaded = if options.worker_url.is_none() && file.is_none() {
            assumed_keys(options).into_iter().map(|(id, _)| id.to_string()).collect()
        } else {
            Vec::new()
        };
        DryRunKeys { out, path: options.key_file.clone(), loaded, file }
    }
}

impl<W: Write> Keys for DryRunKeys<W> {
    fn sealing_key(&mut self) -> Result<SealingKey, Error> {
        let _ = writeln!(
            self.out,
            "(make a token sealing key on this machine: \"k<today as yyyymmdd>:<base64 of 32 random bytes>\")"
        );
        Ok(SealingKey { key_id: "KEY_ID".into(), value: Secret::new("<token sealing key>") })
    }

    fn client_secret(&mut self, client_id: &str) -> Result<Secret, Error> {
        let _ = writeln!(
            self.out,
            "(make a secret for the back end {client_id} on this machine: base64url of 32 random bytes)"
        );
        Ok(Secret::new(client_secret_placeholder(client_id)))
    }

    fn generate(&mut self, key_type: KeyType) -> Result<KeyPair, Error> {
        let _ = writeln!(self.out, "(generate an {key_type} key pair on this machine)");
        Ok(KeyPair { public_pem: PUBLIC_KEY_PLACEHOLDER.to_string(), private: Secret::new("<private key>") })
    }

    fn load(&mut self) -> Result<Vec<Entry>, Error> {
        if let Some(file) = self.file.as_mut() {
            let entries = file.load()?;
            self.loaded = entries.iter().map(|e| e.key_id.clone()).collect();
            return Ok(entries);
        }
        let private = Secret::new("<private key>");
        Ok(self.loaded.iter().map(|id| Entry { key_id: id.clone(), private: private.clone() }).collect())
    }

    fn save(&mut self, entries: &[Entry]) -> Result<(), Error> {
        let ids: Vec<&str> = entries.iter().map(|e| e.key_id.as_str()).collect();
        let added: Vec<&str> = ids.iter().copied().filter(|id| !self.loaded.iter().any(|l| l == id)).collect();
        let dropped: Vec<&str> = self.loaded.iter().map(String::as_str).filter(|id| !ids.contains(id)).collect();
        let mut changes = Vec::new();
        if !added.is_empty() {
            changes.push(format!("adding the private key of {}", added.join(", ")));
        }
        if !dropped.is_empty() {
            changes.push(format!("dropping the private key of {}", dropped.join(", ")));
        }
        let prefix = if self.file.is_some() { "would write: " } else { "write " };
        let _ = writeln!(self.out, "{prefix}{} (mode 0600), {}", self.path, changes.join(" and "));
        self.loaded = ids.iter().map(|id| id.to_string()).collect();
        Ok(())
    }

    fn file(&self) -> String {
        self.path.clone()
    }

    fn public_pem(&mut self, entry: &Entry) -> Result<String, Error> {
        let _ = writeln!(self.out, "(read the public key of {} from its private key in {})", entry.key_id, self.path);
        Ok(PUBLIC_KEY_PLACEHOLDER.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Zitadel;
    use crate::worker::Probe;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

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

    /// A worker whose `/healthz` answers 200; a dry run sends it nothing else.
    struct Healthy;

    impl Probe for Healthy {
        fn get(&mut self, _url: &str) -> Result<Answer, Error> {
            Ok(Answer { status: 200, body: r#"{"status":"ok"}"#.into(), location: None })
        }
        fn post(&mut self, _url: &str, _signature: &str, _body: &str) -> Result<Answer, Error> {
            unreachable!("a dry run sends no sample")
        }
    }

    /// A dry run of `args`. With `reader` (as with ZITADEL_PAT) the reads go to it and the run's
    /// own lines are printed; without, placeholders answer, the run's lines are left out and what
    /// is left by hand is printed, as `main` does.
    fn planned(args: &str, reader: Option<&mut crate::setup::fakes::Fake>) -> String {
        let options = crate::setup::fakes::options(args);
        let shared = Shared::default();
        let reading = reader.is_some();
        let mut api = DryRunApi::new(shared.clone(), &options, reader.map(|r| r as &mut dyn Transport));
        let mut secrets = DryRunSecrets::new(shared.clone(), Wrangler::new(None, options.env.clone()), false);
        let mut keys = DryRunKeys::new(shared.clone(), &options, None);
        let checks = crate::setup::Checks { wait: Duration::ZERO, interval: Duration::ZERO, dry_run: true };
        let mut progress: Box<dyn Write> = if reading { Box::new(shared.clone()) } else { Box::new(std::io::sink()) };
        crate::setup::run(
            &options,
            &mut Zitadel::new(&options.base_url, &mut api).unwrap(),
            &mut secrets,
            &mut keys,
            &mut Healthy,
            &checks,
            &mut progress,
        )
        .unwrap();
        if !reading {
            next_steps(&mut shared.clone(), &options);
        }
        let text = String::from_utf8(shared.0.borrow().clone()).unwrap();
        assert!(!text.contains("BEGIN"), "no key material: {text}");
        text
    }

    fn dry_run(args: &str) -> String {
        planned(args, None)
    }

    /// A dry run that reads from `fake` (as with ZITADEL_PAT): its output, progress lines included.
    fn reading_dry_run(fake: &mut crate::setup::fakes::Fake, args: &str) -> String {
        planned(&format!("{args} --dry-run"), Some(fake))
    }

    #[test]
    fn with_reads_the_plan_follows_the_instance_and_nothing_is_written() {
        use crate::setup::fakes::{run_with, Fake, Stored, BASE};
        let mut fake = Fake::default();
        let plan = reading_dry_run(&mut fake, BASE);
        assert!(fake.calls().iter().all(|c| c.is_read()), "{:?}", fake.calls());
        assert!(fake.targets.is_empty() && fake.executions.is_empty());
        for line in [
            "read: POST https://z/v2/actions/targets/search\n",
            "would send: POST https://z/v2/actions/targets\n",
            "Created target \"zitadel-claims\" (id TARGET_ID)",
            "npx wrangler secret put ZITADEL_SIGNING_KEY\n",
            "(a real run waits here until GET https://w.dev/healthz names none of ZITADEL_SIGNING_KEY)",
            "read: POST https://z/v2/actions/executions/search\n",
            "would send: PUT https://z/v2/actions/executions\n",
            "(a real run sends a signed sample call to https://w.dev/ here and prints the claims)",
        ] {
            assert!(plan.contains(line), "{line}\n{plan}");
        }

        // Once provisioned: the plan leaves the target and its binding alone.
        run_with(&mut fake, &mut Stored::default(), BASE).unwrap();
        fake.log.clear();
        let plan = reading_dry_run(&mut fake, BASE);
        assert_eq!(fake.calls(), [Call::SearchTargets, Call::GetTarget, Call::SearchExecutions]);
        assert!(!plan.contains("would send"), "{plan}");
        assert!(
            plan.contains(
                "is already as asked (endpoint https://w.dev/, timeout 10s, interruptOnError false): left as is"
            ),
            "{plan}"
        );
        assert!(plan.contains("The function preaccesstoken already calls the target; left as is"), "{plan}");
        assert!(!plan.contains("key-1"), "the key read is never printed: {plan}");
        // A change is planned as the update it would send.
        let plan = reading_dry_run(&mut fake, &format!("{BASE} --timeout 20s"));
        assert!(plan.contains("would send: POST https://z/v2/actions/targets/100\n    {"), "{plan}");
        assert!(plan.contains("\"timeout\":\"20s\""), "{plan}");
        assert_eq!(fake.settings["timeout"], "10s", "not sent");
    }

    fn calls(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with(' ')).collect()
    }

    #[test]
    fn prints_every_call_in_order_with_its_body() {
        let text = dry_run("--domain z.example --worker-url https://w.dev/ --userinfo");
        assert_eq!(
            calls(&text),
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
        assert!(text.contains("then its key and payloadType are read with GET .../v2/actions/targets/TARGET_ID (for PAYLOAD_TYPE_JWT or PAYLOAD_TYPE_JWE the PAYLOAD_TYPES line to set is printed at the end)"), "{text}");
        assert!(!text.contains("PAYLOAD_TYPES =") && !text.contains("Left to do"), "{text}");
        assert!(!text.contains("<signing key>"), "{text}");
    }

    #[test]
    fn connect_prints_the_project_app_and_sealing_key_steps_and_what_is_left() {
        let text = dry_run("--domain z.example --worker-url https://w.dev/claims --connect");
        let calls = calls(&text);
        assert_eq!(
            calls[5..],
            [
                "POST https://z.example/management/v1/projects/_search",
                "POST https://z.example/management/v1/projects",
                "POST https://z.example/management/v1/projects/PROJECT_ID/apps/_search",
                "POST https://z.example/management/v1/projects/PROJECT_ID/apps/oidc",
                "npx wrangler secret list --format json",
                "(make a token sealing key on this machine: \"k<today as yyyymmdd>:<base64 of 32 random bytes>\")",
                "npx wrangler secret put TOKEN_SEALING_KEY",
                "For the connect flow, left to do by hand:",
            ]
        );
        assert!(text.contains(r#"{"name":"zitadel-claims"}"#), "{text}");
        assert!(text.contains(r#""redirectUris":["https://w.dev/connect/zitadel/callback"]"#), "{text}");
        assert!(text.contains(r#""authMethodType":"OIDC_AUTH_METHOD_TYPE_NONE""#), "{text}");
        assert!(text.contains("assuming no app named \"zitadel-claims-connect\" exists"), "{text}");
        assert!(text.contains("CONNECT_CLIENT_ID = \"CLIENT_ID\""), "{text}");
        assert!(text.contains("       https://w.dev/connect/microsoft/callback\n"), "{text}");
        assert!(!text.contains("<token sealing key>"), "{text}");

        let named = dry_run("--domain z.example --worker-url https://w.dev/ --connect --connect-project 42");
        assert!(!named.contains("/management/v1/projects/_search"), "{named}");
        assert!(named.contains("POST https://z.example/management/v1/projects/42/apps/oidc"), "{named}");
    }

    #[test]
    fn introspection_and_exchange_clients_print_their_calls_commands_and_placeholders() {
        let text = dry_run(
            "--domain z.example --worker-url https://w.dev/claims --connect --introspection \
             --exchange-client 312909075212468632@project --exchange-client b",
        );
        let calls = calls(&text);
        assert_eq!(
            calls[11..],
            [
                "npx wrangler secret put TOKEN_SEALING_KEY",
                "POST https://z.example/management/v1/projects/PROJECT_ID/apps/_search",
                "POST https://z.example/management/v1/projects/PROJECT_ID/apps/api",
                "npx wrangler secret put INTROSPECTION_CLIENT_SECRET",
                "(make a secret for the back end 312909075212468632@project on this machine: base64url of 32 random bytes)",
                "(make a secret for the back end b on this machine: base64url of 32 random bytes)",
                "npx wrangler secret put TOKEN_EXCHANGE_CLIENTS",
                "For the connect flow, left to do by hand:",
            ]
        );
        assert!(
            text.contains(
                r#"    {"authMethodType":"API_AUTH_METHOD_TYPE_BASIC","name":"zitadel-claims-introspection"}"#
            ),
            "{text}"
        );
        assert!(
            text.contains("assuming no app named \"zitadel-claims-introspection\" exists in the project, so it is created; when one exists (an API app with HTTP Basic) its client id is used and a new client secret generated with POST .../apps/API_APP_ID/api_config/_generate_client_secret"),
            "{text}"
        );
        assert!(text.contains("assuming no app named \"zitadel-claims-connect\" exists"), "{text}");
        assert!(
            text.contains("(with the client secret ZITADEL made for the API app \"zitadel-claims-introspection\" on its standard input)"),
            "{text}"
        );
        assert!(
            text.contains("(with \"312909075212468632@project:<new secret>,b:<new secret>\", new secrets that replace the whole secret (every back end must be named each run), on its standard input)"),
            "{text}"
        );
        assert!(text.contains("       INTROSPECTION_CLIENT_ID = \"API_CLIENT_ID\"\n"), "{text}");
        assert!(text.contains("POST https://w.dev/token with HTTP Basic"), "{text}");
        assert!(text.contains("       312909075212468632@project: <new secret of 312909075212468632@project>\n       b: <new secret of b>\n"), "{text}");
        assert!(!text.contains("<client secret>"), "{text}");
    }

    #[test]
    fn a_rotation_with_worker_url_assumes_the_target_exists_too() {
        let text = dry_run("--domain z.example --worker-url https://w.dev/ --rotate");
        assert!(text.contains("assuming a target named \"zitadel-claims\" exists"), "{text}");
        assert!(
            text.contains(r#"{"condition":{"function":{"name":"preaccesstoken"}},"targets":["NEW_TARGET_ID"]}"#),
            "{text}"
        );
        assert!(text.contains("DELETE https://z.example/v2/actions/targets/TARGET_ID"), "{text}");
    }

    #[test]
    fn a_rotation_assumes_the_target_exists() {
        let text = dry_run("--domain z.example --rotate");
        assert!(text.contains("assuming a target named \"zitadel-claims\" exists"), "{text}");
        assert!(text.contains("GET https://z.example/v2/actions/targets/TARGET_ID"), "{text}");
        // The rotation through a second target, step by step.
        assert_eq!(
            calls(&text),
            [
                "POST https://z.example/v2/actions/targets/search",
                "GET https://z.example/v2/actions/targets/TARGET_ID",
                "POST https://z.example/v2/actions/targets/TARGET_ID",
                "POST https://z.example/v2/actions/targets",
                "npx wrangler secret put ZITADEL_SIGNING_KEY",
                "POST https://z.example/v2/actions/executions/search",
                "PUT https://z.example/v2/actions/executions",
                "DELETE https://z.example/v2/actions/targets/TARGET_ID",
            ]
        );
        assert!(text.contains(r#"    {"name":"zitadel-claims-retiring"}"#), "{text}");
        assert!(text.contains(r#""endpoint":"<the target's endpoint>""#), "{text}");
        assert!(
            text.contains(r#"{"condition":{"function":{"name":"preaccesstoken"}},"targets":["NEW_TARGET_ID"]}"#),
            "{text}"
        );
        assert!(text.contains("(with the new key, a comma and the old key on its standard input)"), "{text}");
        // The target's type is unknown here: the dry run says what a real run does with it.
        assert!(
            text.contains("GET https://z.example/v2/actions/targets/TARGET_ID\n    (a real run reads the target's signing key and payloadType here; for PAYLOAD_TYPE_JWT or PAYLOAD_TYPE_JWE it prints the PAYLOAD_TYPES line to set at its end)\n"),
            "{text}"
        );
        assert!(!text.contains("PAYLOAD_TYPES ="), "{text}");
    }

    #[test]
    fn jwe_prints_the_key_calls_with_a_placeholder_for_the_public_key() {
        let text = dry_run("--domain z.example --worker-url https://w.dev/ --payload-type jwe --key-type p256");
        assert_eq!(
            calls(&text)[..7],
            [
                "POST https://z.example/v2/actions/targets/search",
                "POST https://z.example/v2/actions/targets",
                "(generate an EC P-256 key pair on this machine)",
                "POST https://z.example/v2/actions/targets/TARGET_ID/publickeys",
                "write .payload-decryption-keys (mode 0600), adding the private key of NEW_KEY_ID",
                "npx wrangler secret put PAYLOAD_DECRYPTION_KEY",
                "POST https://z.example/v2/actions/targets/TARGET_ID/publickeys/NEW_KEY_ID/activate",
            ]
        );
        assert!(text.contains(r#""payloadType":"PAYLOAD_TYPE_JWE""#), "{text}");
        assert!(text.contains(r#"    {"publicKey":"<public key PEM>"}"#), "{text}");
        assert!(
            text.contains(
                r#"(with the private key of NEW_KEY_ID, as "<key id>:<base64 PKCS#8 DER>" on its standard input)"#
            ),
            "{text}"
        );
        assert!(text.contains("npx wrangler secret put ZITADEL_SIGNING_KEY"), "{text}");
        assert!(!text.contains("<private key>"), "{text}");
        assert!(
            text.ends_with("PUT https://z.example/v2/actions/executions\n    {\"condition\":{\"function\":{\"name\":\"preaccesstoken\"}},\"targets\":[\"TARGET_ID\"]}\nLeft to do by hand:\n  1. Set the worker's variable PAYLOAD_TYPES to the target's payload type alone, in wrangler.toml:\n       [vars]\n       PAYLOAD_TYPES = \"jwe\"\n     Without it the worker also accepts plain JSON payloads, whose only proof is the HMAC of the target's signing key (anyone with action.target.read can read it), and JWTs that are not encrypted.\n"),
            "the line a real run prints, at the end: {text}"
        );
        let jwt = dry_run("--domain z.example --worker-url https://w.dev/ --payload-type jwt --connect");
        assert!(jwt.contains("       CONNECT_CLIENT_ID = \"CLIENT_ID\"\n       PAYLOAD_TYPES = \"jwt\"\n"), "{jwt}");
        let json = dry_run("--domain z.example --worker-url https://w.dev/ --payload-type json");
        assert!(!json.contains("PAYLOAD_TYPES =") && !json.contains("Left to do"), "{json}");
    }

    #[test]
    fn an_encryption_key_rotation_and_its_finish() {
        let text = dry_run("--domain z.example --rotate-encryption-key --key-file /k");
        assert_eq!(
            calls(&text),
            [
                "POST https://z.example/v2/actions/targets/search",
                "GET https://z.example/v2/actions/targets/TARGET_ID",
                "POST https://z.example/v2/actions/targets/TARGET_ID/publickeys/search",
                "(generate an RSA 2048 key pair on this machine)",
                "POST https://z.example/v2/actions/targets/TARGET_ID/publickeys",
                "write /k (mode 0600), adding the private key of NEW_KEY_ID",
                "npx wrangler secret put PAYLOAD_DECRYPTION_KEY",
                "POST https://z.example/v2/actions/targets/TARGET_ID/publickeys/NEW_KEY_ID/activate",
            ]
        );
        assert!(text.contains("the private keys of NEW_KEY_ID, ACTIVE_KEY_ID, each as"), "{text}");

        let text = dry_run("--domain z.example --finish-rotation");
        assert_eq!(
            calls(&text),
            [
                "POST https://z.example/v2/actions/targets/search",
                "GET https://z.example/v2/actions/targets/TARGET_ID",
                "POST https://z.example/v2/actions/targets/TARGET_ID/publickeys/search",
                "npx wrangler secret put PAYLOAD_DECRYPTION_KEY",
                "DELETE https://z.example/v2/actions/targets/TARGET_ID/publickeys/EARLIER_KEY_ID",
                "write .payload-decryption-keys (mode 0600), dropping the private key of EARLIER_KEY_ID",
                "npx wrangler secret put ZITADEL_SIGNING_KEY",
            ]
        );
        assert!(text.contains("(with the private key of ACTIVE_KEY_ID, as"), "{text}");
    }
}
