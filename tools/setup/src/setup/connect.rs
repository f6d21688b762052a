//! `--connect`: what the worker's connect flow needs. The OIDC app users sign in with before they
//! connect their Microsoft account (in the project `--connect-project`, or in the project named
//! `--name`, made when there is none), found by its name so a second run reuses it; the worker's
//! token sealing key `TOKEN_SEALING_KEY`, made only when the worker has none; and what is left to
//! do by hand: the variable `CONNECT_CLIENT_ID`, the Entra app's redirect URI, `MS_SCOPES` and
//! `CONNECT_RETURN_URLS`.
//!
//! With `--introspection`, also the API app `<name>-introspection` in the same project (HTTP Basic
//! client authentication), whose client secret goes to the worker's secret
//! `INTROSPECTION_CLIENT_SECRET`: ZITADEL shows a secret only when it makes one, so a run that
//! finds the app has ZITADEL generate a new one. With `--exchange-client`, a new random secret for
//! each back end named, all of them stored as `TOKEN_EXCHANGE_CLIENTS` (which they replace as a
//! whole) and printed once with the steps left by hand.
//!
//! The apps are made with the management API v1 (`AddOIDCApp`, `AddAPIApp`): the one every ZITADEL
//! version since v1 has, though deprecated in favour of the application service v2.

use std::io::Write;

use crate::api::{OidcAppSpec, Zitadel, API_AUTH_BASIC};
use crate::error::Error;
use crate::keys::Keys;
use crate::secret::Secret;
use crate::types::{Connect, Options};
use crate::wrangler::{with_hint, SecretStore};

use super::Var;

/// The worker's variable holding the app's client id (no secret: a public client has none).
pub(super) const CLIENT_ID_VAR: &str = "CONNECT_CLIENT_ID";
/// The worker's secret holding the key that seals the tokens it keeps.
pub(super) const SEALING_SECRET_NAME: &str = "TOKEN_SEALING_KEY";
/// Where ZITADEL sends the user back after signing in, on the worker's origin.
pub(super) const ZITADEL_CALLBACK: &str = "/connect/zitadel/callback";
/// Where Microsoft sends the user back after consenting, on the worker's origin.
pub(super) const MICROSOFT_CALLBACK: &str = "/connect/microsoft/callback";
/// The worker's variable holding the introspection app's client id.
pub(super) const INTROSPECTION_CLIENT_ID_VAR: &str = "INTROSPECTION_CLIENT_ID";
/// The worker's secret holding the introspection app's client secret.
pub(super) const INTROSPECTION_SECRET_NAME: &str = "INTROSPECTION_CLIENT_SECRET";
/// The worker's secret listing the back ends that exchange tokens: `<client id>:<secret>`, comma-separated.
pub(super) const EXCHANGE_SECRET_NAME: &str = "TOKEN_EXCHANGE_CLIENTS";
/// Where a back end exchanges its users' tokens, on the worker's origin.
pub(super) const EXCHANGE_ENDPOINT: &str = "/token";

/// The connect app's name: the tool's `--name` and `-connect`.
pub(super) fn app_name(options: &Options) -> String {
    format!("{}-connect", options.name)
}

/// The introspection app's name: the tool's `--name` and `-introspection`.
pub(super) fn introspection_app_name(options: &Options) -> String {
    format!("{}-introspection", options.name)
}

/// What the connect app is set to.
pub(super) fn spec(options: &Options, connect: &Connect) -> OidcAppSpec {
    OidcAppSpec {
        name: app_name(options),
        redirect_uri: format!("{}{ZITADEL_CALLBACK}", connect.origin),
        // ZITADEL refuses an http:// redirect URI of a user agent app outside development mode.
        dev_mode: connect.origin.starts_with("http://"),
    }
}

/// What a run of `--connect` made that is shown at its end ([`next_steps`]).
#[derive(Debug)]
pub struct Provisioned {
    /// The connect app's client id.
    pub client_id: String,
    /// With `--introspection`: the introspection app's client id.
    pub introspection_client_id: Option<String>,
    /// With `--exchange-client`: each back end's client id and new secret, in the order given.
    pub exchange_secrets: Vec<(String, Secret)>,
}

/// Provisions the connect flow; what is shown at the end.
pub(super) fn provision(
    options: &Options,
    connect: &Connect,
    api: &mut Zitadel,
    secrets: &mut dyn SecretStore,
    keys: &mut dyn Keys,
    out: &mut dyn Write,
) -> Result<Provisioned, Error> {
    let project = project(options, connect, api, out)?;
    let client_id = app(&spec(options, connect), &project, api, out)?;
    sealing_key(secrets, keys, out)?;
    let introspection_client_id = match connect.introspection {
        true => Some(introspection_app(&introspection_app_name(options), &project, api, secrets, out)?),
        false => None,
    };
    let exchange_secrets = exchange_clients(&connect.exchange_clients, secrets, keys, out)?;
    Ok(Provisioned { client_id, introspection_client_id, exchange_secrets })
}

/// The project of the connect app: `--connect-project`, or the one named `--name`, made when
/// there is none.
fn project(options: &Options, connect: &Connect, api: &mut Zitadel, out: &mut dyn Write) -> Result<String, Error> {
    if let Some(id) = &connect.project_id {
        return Ok(id.clone());
    }
    let name = &options.name;
    Ok(match api.find_project(name)? {
        Some(id) => {
            say!(out, "Found project {name:?} (id {id})");
            id
        }
        None => {
            let id = api.create_project(name)?;
            say!(out, "Created project {name:?} (id {id}) for the connect app");
            id
        }
    })
}

/// Creates the connect app, or reuses the one of that name and sets what it needs (its redirect
/// URI after a move of the worker); its client id.
fn app(spec: &OidcAppSpec, project: &str, api: &mut Zitadel, out: &mut dyn Write) -> Result<String, Error> {
    let name = &spec.name;
    let Some(app) = api.find_oidc_app(project, name)? else {
        let (id, client_id) = api.create_oidc_app(project, spec)?;
        say!(
            out,
            "Created the OIDC app {name:?} (id {id}) in project {project}: a public client (PKCE, no secret), redirect URI {}{}",
            spec.redirect_uri,
            if spec.dev_mode { ", development mode (http)" } else { "" }
        );
        return Ok(client_id);
    };
    let differences = spec.differences(&app.config);
    if differences.is_empty() {
        say!(out, "Found the OIDC app {name:?} (id {}) in project {project}: left as is", app.id);
    } else {
        api.update_oidc_config(project, &app.id, spec, &app.config)?;
        say!(
            out,
            "Updated the OIDC app {name:?} (id {}) in project {project}: set {} (redirect URI {}); its other settings are unchanged",
            app.id,
            differences.join(", "),
            spec.redirect_uri
        );
    }
    Ok(app.client_id)
}

/// Makes and stores `TOKEN_SEALING_KEY` when the worker has none. An existing one is kept: a new
/// key would leave the tokens sealed with the old one unreadable, and its value cannot be read.
fn sealing_key(secrets: &mut dyn SecretStore, keys: &mut dyn Keys, out: &mut dyn Write) -> Result<(), Error> {
    if secrets.names()?.iter().any(|name| name == SEALING_SECRET_NAME) {
        say!(
            out,
            "The worker's secret {SEALING_SECRET_NAME} is set already: kept (a new key would leave the tokens sealed with it unreadable)"
        );
        return Ok(());
    }
    let key = keys.sealing_key()?;
    let command = secrets.command_line(SEALING_SECRET_NAME);
    secrets
        .put(SEALING_SECRET_NAME, &key.value, "a new token sealing key, as \"<key id>:<base64 of 32 random bytes>\",")
        .map_err(|e| with_hint(e, "; nothing was stored: run this command again once wrangler works"))?;
    say!(
        out,
        "Made a token sealing key (key id {}) and stored it as the worker's secret {SEALING_SECRET_NAME} ({command})",
        key.key_id
    );
    Ok(())
}

/// Creates the introspection app (HTTP Basic), or has ZITADEL generate a new client secret for the
/// one of that name, and stores the secret as `INTROSPECTION_CLIENT_SECRET`; the app's client id.
/// An app of that name that authenticates otherwise is an error: the tool does not change it.
fn introspection_app(
    name: &str,
    project: &str,
    api: &mut Zitadel,
    secrets: &mut dyn SecretStore,
    out: &mut dyn Write,
) -> Result<String, Error> {
    let (client_id, secret) = match api.find_api_app(project, name)? {
        None => {
            let (id, client_id, secret) = api.create_api_app(project, name)?;
            say!(out, "Created the API app {name:?} (id {id}) in project {project}: HTTP Basic client authentication");
            (client_id, secret)
        }
        Some(app) if app.auth_method != API_AUTH_BASIC => {
            return Err(Error::ApiAppNotBasic {
                name: name.to_string(),
                project: project.to_string(),
                auth_method: app.auth_method,
            });
        }
        Some(app) => {
            let secret = api.regenerate_api_secret(project, &app.id)?;
            say!(
                out,
                "Found the API app {name:?} (id {}) in project {project}: generated a new client secret (ZITADEL shows one only when it makes it; the old one no longer works)",
                app.id
            );
            (app.client_id, secret)
        }
    };
    let command = secrets.command_line(INTROSPECTION_SECRET_NAME);
    secrets
        .put(INTROSPECTION_SECRET_NAME, &secret, &format!("the client secret ZITADEL made for the API app {name:?}"))
        .map_err(|e| {
            with_hint(
                e,
                "; the client secret ZITADEL just made was not stored: run this command again once wrangler works (it makes another)",
            )
        })?;
    say!(out, "Stored the API app's client secret as the worker's secret {INTROSPECTION_SECRET_NAME} ({command})");
    Ok(client_id)
}

/// Makes a new secret for each back end in `ids` and stores them all as `TOKEN_EXCHANGE_CLIENTS`,
/// which they replace: a Worker secret cannot be read back, so the back ends not named lose their
/// access. Each back end's id and secret, to be shown once.
fn exchange_clients(
    ids: &[String],
    secrets: &mut dyn SecretStore,
    keys: &mut dyn Keys,
    out: &mut dyn Write,
) -> Result<Vec<(String, Secret)>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let made: Vec<(String, Secret)> =
        ids.iter().map(|id| Ok((id.clone(), keys.client_secret(id)?))).collect::<Result<_, Error>>()?;
    let entries: Vec<Secret> =
        made.iter().map(|(id, secret)| Secret::new(format!("{id}:{}", secret.expose()))).collect();
    let shape: Vec<String> = ids.iter().map(|id| format!("{id}:<new secret>")).collect();
    let command = secrets.command_line(EXCHANGE_SECRET_NAME);
    secrets
        .put(
            EXCHANGE_SECRET_NAME,
            &Secret::list(&entries),
            &format!(
                "\"{}\", new secrets that replace the whole secret (every back end must be named each run),",
                shape.join(",")
            ),
        )
        .map_err(|e| with_hint(e, "; nothing was stored: run this command again once wrangler works"))?;
    say!(
        out,
        "Made a new secret for each back end ({}) and stored them as the worker's secret {EXCHANGE_SECRET_NAME} ({command}); this replaces the whole secret (it cannot be read back), so name every back end with --exchange-client on each run",
        ids.join(", ")
    );
    Ok(made)
}

/// What is left to do by hand once the apps' client ids are known, and each back end's secret,
/// shown this once. `also`: another variable to set with the client ids (`PAYLOAD_TYPES`), in the
/// same step, its reason below them; the heading then names no flow.
pub(super) fn next_steps(connect: &Connect, done: &Provisioned, also: Option<&Var>) -> String {
    let origin = &connect.origin;
    let quoted = |id: &str| serde_json::Value::String(id.to_string()).to_string();
    let mut vars = format!("       {CLIENT_ID_VAR} = {}\n", quoted(&done.client_id));
    let mut set = match &done.introspection_client_id {
        Some(id) => {
            vars.push_str(&format!("       {INTROSPECTION_CLIENT_ID_VAR} = {}\n", quoted(id)));
            format!("variables {CLIENT_ID_VAR} and {INTROSPECTION_CLIENT_ID_VAR} (no secrets) to the apps' client ids")
        }
        None => format!("variable {CLIENT_ID_VAR} (no secret) to the app's client id"),
    };
    let mut heading = "For the connect flow, left to do by hand:";
    if let Some(var) = also {
        heading = "Left to do by hand:";
        set.push_str(&format!(", and {} to {}", var.name, var.what));
        vars.push_str(&var.line());
        vars.push_str(&format!("     Without {} {}\n", var.name, var.without));
    }
    let mut text = format!(
        "\
{heading}
  1. Set the worker's {set}, in wrangler.toml:
       [vars]
{vars}  2. Register this redirect URI in the Entra app (Authentication, platform Web):
       {origin}{MICROSOFT_CALLBACK}
  3. MS_SCOPES must include offline_access (else Microsoft gives no refresh token).
  4. CONNECT_RETURN_URLS must list the application URLs users return to after connecting.
"
    );
    if !done.exchange_secrets.is_empty() {
        text.push_str(&format!(
            "  5. Give each back end its secret, shown only now; it authenticates to POST {origin}{EXCHANGE_ENDPOINT} with HTTP Basic (client id and secret form-urlencoded first, RFC 6749 §2.3.1):\n"
        ));
        for (id, secret) in &done.exchange_secrets {
            text.push_str(&format!("       {id}: {}\n", secret.expose()));
        }
        text.push_str(&format!(
            "     {EXCHANGE_SECRET_NAME} now holds these back ends alone: name every back end with --exchange-client on each run.\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::fakes::{run_keys, run_with, Fake, FakeApiApp, MemoryKeys, Stored, BASE};
    use crate::setup::signing_key::SECRET_NAME;
    use crate::types::Call;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    use serde_json::json;

    const CONNECT: &str = "--domain z --worker-url https://w.example.workers.dev/hook --connect";

    #[test]
    fn the_connect_app_is_created_with_exactly_the_fields_of_a_pkce_code_flow_client() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let out = run_with(&mut fake, &mut stored, CONNECT).unwrap();
        let create = fake.log.iter().find(|r| r.call == Call::CreateOidcApp).unwrap();
        assert_eq!(create.url, "https://z/management/v1/projects/500/apps/oidc");
        assert_eq!(
            create.body,
            Some(json!({
                "name": "zitadel-claims-connect",
                "redirectUris": ["https://w.example.workers.dev/connect/zitadel/callback"],
                "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"],
                "appType": "OIDC_APP_TYPE_USER_AGENT",
                "authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE",
                "devMode": false,
                "accessTokenType": "OIDC_TOKEN_TYPE_BEARER",
            }))
        );
        // The project named --name, made because there was none.
        assert_eq!(fake.projects, [("500".to_string(), "zitadel-claims".to_string())]);
        assert_eq!(
            fake.calls(),
            [
                Call::SearchTargets,
                Call::CreateTarget,
                Call::SearchExecutions,
                Call::SetExecution,
                Call::SearchProjects,
                Call::CreateProject,
                Call::SearchApps,
                Call::CreateOidcApp,
            ]
        );
        assert!(out.contains("CONNECT_CLIENT_ID = \"600@zitadel-claims\""), "{out}");
    }

    #[test]
    fn an_http_worker_gets_an_app_in_development_mode() {
        let mut fake = Fake::default();
        run_with(
            &mut fake,
            &mut Stored::default(),
            "--domain z --worker-url http://127.0.0.1:8787/ --allow-http --connect",
        )
        .unwrap();
        let body = fake.log.iter().find(|r| r.call == Call::CreateOidcApp).unwrap().body.clone().unwrap();
        assert_eq!(body["redirectUris"], json!(["http://127.0.0.1:8787/connect/zitadel/callback"]));
        assert_eq!(body["devMode"], json!(true));
    }

    #[test]
    fn a_second_run_reuses_the_project_and_the_app_and_changes_nothing() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        run_with(&mut fake, &mut stored, CONNECT).unwrap();
        let out = run_with(&mut fake, &mut stored, CONNECT).unwrap();
        assert_eq!(fake.projects.len(), 1);
        assert_eq!(fake.apps.len(), 1);
        let connect_calls: Vec<Call> = fake.calls().into_iter().skip_while(|c| *c != Call::SearchProjects).collect();
        assert_eq!(connect_calls, [Call::SearchProjects, Call::SearchApps], "nothing created or updated");
        assert!(out.contains("Found project \"zitadel-claims\" (id 500)"), "{out}");
        assert!(
            out.contains("Found the OIDC app \"zitadel-claims-connect\" (id 601) in project 500: left as is"),
            "{out}"
        );
        assert!(out.contains("CONNECT_CLIENT_ID = \"600@zitadel-claims\""), "the same client id: {out}");
    }

    #[test]
    fn an_existing_app_gets_the_new_redirect_uri_and_keeps_its_other_settings() {
        let mut fake = Fake::default();
        fake.projects.push(("42".into(), "mine".into()));
        fake.apps.push((
            "42".into(),
            "77".into(),
            "zitadel-claims-connect".into(),
            json!({
                "clientId": "77@mine",
                "redirectUris": ["https://old.example/connect/zitadel/callback"],
                "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"],
                "appType": "OIDC_APP_TYPE_USER_AGENT",
                "authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE",
                "version": "OIDC_VERSION_1_0",
                "postLogoutRedirectUris": ["https://old.example/bye"],
                "clockSkew": "1s",
                "idTokenUserinfoAssertion": true,
            }),
        ));
        let out = run_with(&mut fake, &mut Stored::default(), &format!("{CONNECT} --connect-project 42")).unwrap();
        let update = fake.log.iter().find(|r| r.call == Call::UpdateOidcConfig).unwrap();
        assert_eq!(update.url, "https://z/management/v1/projects/42/apps/77/oidc_config");
        assert_eq!(
            update.body,
            Some(json!({
                "redirectUris": ["https://w.example.workers.dev/connect/zitadel/callback"],
                "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
                "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"],
                "appType": "OIDC_APP_TYPE_USER_AGENT",
                "authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE",
                "devMode": false,
                "accessTokenType": "OIDC_TOKEN_TYPE_BEARER",
                "postLogoutRedirectUris": ["https://old.example/bye"],
                "clockSkew": "1s",
                "idTokenUserinfoAssertion": true,
            }))
        );
        assert!(!fake.calls().contains(&Call::SearchProjects), "--connect-project names the project");
        assert!(!fake.calls().contains(&Call::CreateOidcApp));
        assert_eq!(fake.apps.len(), 1);
        // devMode and accessTokenType were absent, that is false and BEARER: only the URI differed.
        assert!(
            out.contains("set redirectUris (redirect URI https://w.example.workers.dev/connect/zitadel/callback)"),
            "{out}"
        );
        assert!(out.contains("CONNECT_CLIENT_ID = \"77@mine\""), "{out}");
    }

    #[test]
    fn an_app_of_that_name_that_is_no_oidc_app_is_refused() {
        let mut fake = Fake::default();
        fake.apps.push(("42".into(), "77".into(), "zitadel-claims-connect".into(), serde_json::Value::Null));
        let err = run_with(&mut fake, &mut Stored::default(), &format!("{CONNECT} --connect-project 42")).unwrap_err();
        assert_eq!(err, Error::NotOidcApp { name: "zitadel-claims-connect".into(), project: "42".into() });
        assert!(!fake.calls().contains(&Call::CreateOidcApp));
    }

    #[test]
    fn the_sealing_key_is_made_stored_as_a_secret_and_never_printed() {
        let (mut fake, mut stored, mut keys) = (Fake::default(), Stored::default(), MemoryKeys::default());
        let out = run_keys(&mut fake, &mut stored, &mut keys, CONNECT).unwrap();
        let value = stored.last(SEALING_SECRET_NAME).to_string();
        let (key_id, encoded) = value.split_once(':').unwrap();
        assert!(key_id.len() == 9 && key_id.starts_with('k') && key_id[1..].chars().all(|c| c.is_ascii_digit()));
        assert_eq!(STANDARD.decode(encoded).unwrap().len(), 32);
        assert!(!out.contains(encoded), "the key was printed: {out}");
        assert!(out.contains(&format!("Made a token sealing key (key id {key_id}) and stored it as the worker's secret TOKEN_SEALING_KEY (fake secret put TOKEN_SEALING_KEY)")), "{out}");
        // After the signing key: `wrangler secret put` of that one makes the worker if it is new.
        let names: Vec<&str> = stored.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [SECRET_NAME, SEALING_SECRET_NAME]);

        // Set already: kept, not replaced.
        let out = run_keys(&mut fake, &mut stored, &mut keys, CONNECT).unwrap();
        assert_eq!(stored.values(SEALING_SECRET_NAME), [value.as_str()]);
        assert!(out.contains("TOKEN_SEALING_KEY is set already: kept"), "{out}");
    }

    #[test]
    fn the_entra_redirect_uri_and_the_settings_left_to_set_are_printed() {
        let out = run_with(&mut Fake::default(), &mut Stored::default(), CONNECT).unwrap();
        assert!(out.contains("\n       https://w.example.workers.dev/connect/microsoft/callback\n"), "{out}");
        assert!(out.contains("Register this redirect URI in the Entra app"), "{out}");
        assert!(out.contains("MS_SCOPES must include offline_access"), "{out}");
        assert!(out.contains("CONNECT_RETURN_URLS must list the application URLs users return to"), "{out}");
        assert!(out.contains("[vars]\n       CONNECT_CLIENT_ID = \"600@zitadel-claims\"\n"), "{out}");
        let without = run_with(&mut Fake::default(), &mut Stored::default(), BASE).unwrap();
        assert!(!without.contains("microsoft/callback") && !without.contains("CONNECT_CLIENT_ID"), "{without}");
    }

    /// A secret store whose `put` of `failing` fails.
    struct FailingOn(&'static str);

    impl SecretStore for FailingOn {
        fn put(&mut self, name: &str, _: &Secret, _: &str) -> Result<(), Error> {
            if name == self.0 {
                return Err(Error::Wrangler { command: "w".into(), detail: "failed".into(), hint: String::new() });
            }
            Ok(())
        }
        fn command_line(&self, name: &str) -> String {
            format!("w {name}")
        }
        fn names(&mut self) -> Result<Vec<String>, Error> {
            Ok(vec![])
        }
    }

    /// Runs `args` with a secret store whose `put` of `failing` fails: the error and the output.
    fn run_failing(fake: &mut Fake, failing: &'static str, args: &str) -> (Error, String) {
        let options = crate::setup::fakes::options(args);
        let mut out = Vec::new();
        let err = crate::setup::run(
            &options,
            &mut Zitadel::new("https://z", fake).unwrap(),
            &mut FailingOn(failing),
            &mut MemoryKeys::default(),
            &mut crate::setup::fakes::FakeWorker::default(),
            &crate::setup::fakes::CHECKS,
            &mut out,
        )
        .unwrap_err();
        (err, String::from_utf8(out).unwrap())
    }

    #[test]
    fn a_jwt_or_jwe_target_puts_payload_types_in_the_step_of_the_client_ids() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let out = run_with(&mut fake, &mut stored, &format!("{CONNECT} --payload-type jwt")).unwrap();
        let expected = "\
Done.
Left to do by hand:
  1. Set the worker's variable CONNECT_CLIENT_ID (no secret) to the app's client id, and PAYLOAD_TYPES to the target's payload type alone, in wrangler.toml:
       [vars]
       CONNECT_CLIENT_ID = \"600@zitadel-claims\"
       PAYLOAD_TYPES = \"jwt\"
     Without PAYLOAD_TYPES the worker also accepts plain JSON payloads, whose only proof is the HMAC of the target's signing key, which anyone with action.target.read can read.
  2. Register this redirect URI in the Entra app (Authentication, platform Web):
";
        assert!(out.contains(expected), "{out}");
        assert_eq!(out.matches("[vars]").count(), 1, "one block: {out}");

        let out =
            run_with(&mut Fake::default(), &mut Stored::default(), &format!("{INTROSPECTION} --payload-type jwe"))
                .unwrap();
        assert!(
            out.contains("  1. Set the worker's variables CONNECT_CLIENT_ID and INTROSPECTION_CLIENT_ID (no secrets) to the apps' client ids, and PAYLOAD_TYPES to the target's payload type alone, in wrangler.toml:\n       [vars]\n       CONNECT_CLIENT_ID = \"600@zitadel-claims\"\n       INTROSPECTION_CLIENT_ID = \"700@zitadel-claims\"\n       PAYLOAD_TYPES = \"jwe\"\n     Without PAYLOAD_TYPES the worker also accepts plain JSON payloads"),
            "{out}"
        );

        // JSON: the connect flow's steps as ever.
        let out =
            run_with(&mut Fake::default(), &mut Stored::default(), &format!("{CONNECT} --payload-type json")).unwrap();
        assert!(out.contains("Done.\nFor the connect flow, left to do by hand:\n"), "{out}");
        assert!(!out.contains("PAYLOAD_TYPES"), "{out}");
    }

    #[test]
    fn a_failing_wrangler_stops_before_anything_is_printed_as_done() {
        let (err, out) = run_failing(&mut Fake::default(), SEALING_SECRET_NAME, CONNECT);
        assert!(err.to_string().ends_with("run this command again once wrangler works"), "{err}");
        assert!(!out.contains("Done."));
    }

    const INTROSPECTION: &str = "--domain z --worker-url https://w.example.workers.dev/hook --connect --introspection";

    #[test]
    fn introspection_creates_a_basic_api_app_once_and_a_second_run_has_zitadel_make_a_new_secret() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let out = run_with(&mut fake, &mut stored, INTROSPECTION).unwrap();
        let create = fake.log.iter().find(|r| r.call == Call::CreateApiApp).unwrap();
        assert_eq!(create.url, "https://z/management/v1/projects/500/apps/api");
        assert_eq!(
            create.body,
            Some(json!({"name": "zitadel-claims-introspection", "authMethodType": "API_AUTH_METHOD_TYPE_BASIC"}))
        );
        let connect_calls: Vec<Call> = fake.calls().into_iter().skip_while(|c| *c != Call::SearchProjects).collect();
        assert_eq!(
            connect_calls,
            [
                Call::SearchProjects,
                Call::CreateProject,
                Call::SearchApps,
                Call::CreateOidcApp,
                Call::SearchApps,
                Call::CreateApiApp
            ]
        );
        let search = &fake.log[fake.log.len() - 2];
        assert_eq!(search.url, "https://z/management/v1/projects/500/apps/_search", "the connect app's project");
        assert_eq!(search.body.as_ref().unwrap()["queries"][0]["nameQuery"]["name"], "zitadel-claims-introspection");
        assert_eq!(fake.api_apps.len(), 1);
        assert_eq!(stored.last(INTROSPECTION_SECRET_NAME), "api-secret-1");
        assert_eq!(fake.api_apps[0].secret, "api-secret-1");
        let names: Vec<&str> = stored.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [SECRET_NAME, SEALING_SECRET_NAME, INTROSPECTION_SECRET_NAME]);
        assert!(
            out.contains("Created the API app \"zitadel-claims-introspection\" (id 701) in project 500: HTTP Basic client authentication"),
            "{out}"
        );
        assert!(
            out.contains("Stored the API app's client secret as the worker's secret INTROSPECTION_CLIENT_SECRET (fake secret put INTROSPECTION_CLIENT_SECRET)"),
            "{out}"
        );
        assert!(
            out.contains(
                "[vars]\n       CONNECT_CLIENT_ID = \"600@zitadel-claims\"\n       INTROSPECTION_CLIENT_ID = \"700@zitadel-claims\"\n"
            ),
            "{out}"
        );
        assert!(out.contains("variables CONNECT_CLIENT_ID and INTROSPECTION_CLIENT_ID (no secrets)"), "{out}");

        let out = run_with(&mut fake, &mut stored, INTROSPECTION).unwrap();
        let connect_calls: Vec<Call> = fake.calls().into_iter().skip_while(|c| *c != Call::SearchProjects).collect();
        assert_eq!(
            connect_calls,
            [Call::SearchProjects, Call::SearchApps, Call::SearchApps, Call::RegenerateApiSecret]
        );
        let regenerate = fake.log.last().unwrap();
        assert_eq!(regenerate.url, "https://z/management/v1/projects/500/apps/701/api_config/_generate_client_secret");
        assert_eq!(regenerate.body, Some(json!({})));
        assert_eq!(fake.api_apps.len(), 1, "no second app");
        assert_eq!(stored.values(INTROSPECTION_SECRET_NAME), ["api-secret-1", "api-secret-2"]);
        assert_eq!(fake.api_apps[0].secret, "api-secret-2", "the stored secret is the one ZITADEL holds");
        assert!(out.contains("Found the API app \"zitadel-claims-introspection\" (id 701) in project 500: generated a new client secret"), "{out}");
        assert!(out.contains("INTROSPECTION_CLIENT_ID = \"700@zitadel-claims\""), "the same client id: {out}");

        // Without the flag: no API app, no secret, no variable.
        let mut plain = Fake::default();
        let mut plain_stored = Stored::default();
        let out = run_with(&mut plain, &mut plain_stored, CONNECT).unwrap();
        assert!(!plain.calls().contains(&Call::CreateApiApp) && plain.api_apps.is_empty());
        assert!(plain_stored.values(INTROSPECTION_SECRET_NAME).is_empty());
        assert!(!out.contains("INTROSPECTION_CLIENT_ID"), "{out}");
    }

    #[test]
    fn an_introspection_app_that_is_not_basic_or_no_api_app_is_refused_and_left_alone() {
        let mut fake = Fake::default();
        fake.projects.push(("42".into(), "mine".into()));
        fake.api_apps.push(FakeApiApp {
            project: "42".into(),
            id: "77".into(),
            name: "zitadel-claims-introspection".into(),
            client_id: "77@mine".into(),
            auth_method: Some("API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT".into()),
            secret: String::new(),
        });
        let mut stored = Stored::default();
        let err = run_with(&mut fake, &mut stored, &format!("{INTROSPECTION} --connect-project 42")).unwrap_err();
        assert_eq!(
            err,
            Error::ApiAppNotBasic {
                name: "zitadel-claims-introspection".into(),
                project: "42".into(),
                auth_method: "API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT".into(),
            }
        );
        assert!(err.to_string().starts_with("the API app \"zitadel-claims-introspection\" of project 42 authenticates with API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT, not with HTTP Basic"), "{err}");
        assert!(!fake.calls().contains(&Call::RegenerateApiSecret) && !fake.calls().contains(&Call::CreateApiApp));
        assert!(stored.values(INTROSPECTION_SECRET_NAME).is_empty());

        let mut fake = Fake::default();
        fake.apps.push(("42".into(), "78".into(), "zitadel-claims-introspection".into(), json!({"clientId": "78@p"})));
        let err =
            run_with(&mut fake, &mut Stored::default(), &format!("{INTROSPECTION} --connect-project 42")).unwrap_err();
        assert_eq!(err, Error::NotApiApp { name: "zitadel-claims-introspection".into(), project: "42".into() });
        assert!(!fake.calls().contains(&Call::CreateApiApp));
    }

    #[test]
    fn a_failing_wrangler_after_a_new_introspection_secret_says_to_run_again() {
        let mut fake = Fake::default();
        let (err, out) = run_failing(&mut fake, INTROSPECTION_SECRET_NAME, INTROSPECTION);
        assert!(
            err.to_string().contains("the client secret ZITADEL just made was not stored: run this command again"),
            "{err}"
        );
        assert!(!out.contains("Done.") && !out.contains("Stored the API app's client secret"), "{out}");
        assert_eq!(fake.api_apps.len(), 1);
    }

    const EXCHANGE: &str = "--domain z --worker-url https://w.example.workers.dev/hook --connect --exchange-client 312909075212468632@project --exchange-client b";

    /// The back ends' secrets as printed: (client id, secret) from the lines under step 5.
    fn printed_secrets(out: &str) -> Vec<(String, String)> {
        let step = out.split("  5. ").nth(1).expect("step 5");
        step.lines()
            .skip(1)
            .take_while(|l| l.starts_with("       "))
            .map(|l| {
                let (id, secret) = l.trim().split_once(": ").unwrap();
                (id.to_string(), secret.to_string())
            })
            .collect()
    }

    #[test]
    fn each_exchange_client_gets_a_new_secret_stored_together_and_printed_once() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let out = run_with(&mut fake, &mut stored, EXCHANGE).unwrap();
        let value = stored.last(EXCHANGE_SECRET_NAME).to_string();
        let pairs: Vec<(&str, &str)> = value.split(',').map(|p| p.split_once(':').unwrap()).collect();
        assert_eq!(pairs.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ["312909075212468632@project", "b"]);
        for (_, secret) in &pairs {
            assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32, "base64url of 32 bytes: {secret}");
            assert_eq!(out.matches(secret).count(), 1, "printed once: {out}");
        }
        assert_ne!(pairs[0].1, pairs[1].1);
        let printed = printed_secrets(&out);
        let expected: Vec<(String, String)> = pairs.iter().map(|(i, s)| (i.to_string(), s.to_string())).collect();
        assert_eq!(printed, expected, "{out}");
        assert!(out.contains("  5. Give each back end its secret, shown only now; it authenticates to POST https://w.example.workers.dev/token with HTTP Basic (client id and secret form-urlencoded first, RFC 6749 §2.3.1):\n"), "{out}");
        assert!(out.contains("stored them as the worker's secret TOKEN_EXCHANGE_CLIENTS (fake secret put TOKEN_EXCHANGE_CLIENTS); this replaces the whole secret"), "{out}");
        assert!(out.contains("TOKEN_EXCHANGE_CLIENTS now holds these back ends alone: name every back end with --exchange-client on each run."), "{out}");
        let names: Vec<&str> = stored.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [SECRET_NAME, SEALING_SECRET_NAME, EXCHANGE_SECRET_NAME]);
        assert!(!fake.calls().contains(&Call::CreateApiApp), "no ZITADEL call for the back ends");

        // Again: new secrets, the whole value replaced.
        let again = run_with(&mut fake, &mut stored, EXCHANGE).unwrap();
        let second = stored.last(EXCHANGE_SECRET_NAME).to_string();
        assert_ne!(second, value);
        assert_eq!(printed_secrets(&again).len(), 2);

        let without = run_with(&mut Fake::default(), &mut Stored::default(), CONNECT).unwrap();
        assert!(!without.contains("  5. ") && !without.contains("TOKEN_EXCHANGE_CLIENTS"), "{without}");
    }

    #[test]
    fn a_failing_wrangler_prints_no_back_end_secret() {
        let (err, out) = run_failing(&mut Fake::default(), EXCHANGE_SECRET_NAME, EXCHANGE);
        assert!(err.to_string().ends_with("nothing was stored: run this command again once wrangler works"), "{err}");
        assert!(!out.contains("Done.") && !out.contains("  5. "), "{out}");
    }
}
