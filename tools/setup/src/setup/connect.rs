//! `--connect`: what the worker's connect flow needs. The OIDC app users sign in with before they
//! connect their Microsoft account (in the project `--connect-project`, or in the project named
//! `--name`, made when there is none), found by its name so a second run reuses it; the worker's
//! token sealing key `TOKEN_SEALING_KEY`, made only when the worker has none; and what is left to
//! do by hand: the variable `CONNECT_CLIENT_ID`, the Entra app's redirect URI, `MS_SCOPES` and
//! `CONNECT_RETURN_URLS`.
//!
//! The app is made with the management API v1 (`AddOIDCApp`): the one every ZITADEL version
//! since v1 has, though deprecated in favour of the application service v2.

use std::io::Write;

use crate::api::{OidcAppSpec, Zitadel};
use crate::error::Error;
use crate::keys::Keys;
use crate::types::{Connect, Options};
use crate::wrangler::{with_hint, SecretStore};

/// The worker's variable holding the app's client id (no secret: a public client has none).
pub(super) const CLIENT_ID_VAR: &str = "CONNECT_CLIENT_ID";
/// The worker's secret holding the key that seals the tokens it keeps.
pub(super) const SEALING_SECRET_NAME: &str = "TOKEN_SEALING_KEY";
/// Where ZITADEL sends the user back after signing in, on the worker's origin.
pub(super) const ZITADEL_CALLBACK: &str = "/connect/zitadel/callback";
/// Where Microsoft sends the user back after consenting, on the worker's origin.
pub(super) const MICROSOFT_CALLBACK: &str = "/connect/microsoft/callback";

/// The connect app's name: the tool's `--name` and `-connect`.
pub(super) fn app_name(options: &Options) -> String {
    format!("{}-connect", options.name)
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

/// Provisions the connect flow; the app's client id.
pub(super) fn provision(
    options: &Options,
    connect: &Connect,
    api: &mut Zitadel,
    secrets: &mut dyn SecretStore,
    keys: &mut dyn Keys,
    out: &mut dyn Write,
) -> Result<String, Error> {
    let project = project(options, connect, api, out)?;
    let client_id = app(&spec(options, connect), &project, api, out)?;
    sealing_key(secrets, keys, out)?;
    Ok(client_id)
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

/// What is left to do by hand once the app's client id is known.
pub fn next_steps(connect: &Connect, client_id: &str) -> String {
    let origin = &connect.origin;
    let quoted = serde_json::Value::String(client_id.to_string()).to_string();
    format!(
        "\
For the connect flow, left to do by hand:
  1. Set the worker's variable {CLIENT_ID_VAR} (no secret) to the app's client id, in wrangler.toml:
       [vars]
       {CLIENT_ID_VAR} = {quoted}
  2. Register this redirect URI in the Entra app (Authentication, platform Web):
       {origin}{MICROSOFT_CALLBACK}
  3. MS_SCOPES must include offline_access (else Microsoft gives no refresh token).
  4. CONNECT_RETURN_URLS must list the application URLs users return to after connecting.
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::fakes::{run_keys, run_with, Fake, MemoryKeys, Stored, BASE};
    use crate::setup::signing_key::SECRET_NAME;
    use crate::types::Call;
    use base64::engine::general_purpose::STANDARD;
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

    #[test]
    fn a_failing_wrangler_stops_before_anything_is_printed_as_done() {
        struct Failing;
        impl SecretStore for Failing {
            fn put(&mut self, name: &str, _: &crate::secret::Secret, _: &str) -> Result<(), Error> {
                if name == SEALING_SECRET_NAME {
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
        let mut fake = Fake::default();
        let options = crate::setup::fakes::options(CONNECT);
        let mut out = Vec::new();
        let err = crate::setup::run(
            &options,
            &mut Zitadel::new("https://z", &mut fake).unwrap(),
            &mut Failing,
            &mut MemoryKeys::default(),
            &mut out,
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("run this command again once wrangler works"), "{err}");
        assert!(!String::from_utf8(out).unwrap().contains("Done."));
    }
}
