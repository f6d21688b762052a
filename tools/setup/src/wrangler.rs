//! Storing the worker's secrets (the signing key, the payload decryption key, the token sealing
//! key) with `wrangler secret put`, and listing their names with `wrangler secret list`.
//!
//! The key is written to wrangler's standard input: never on a command line (visible to every
//! user of the machine in the process list), never printed.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::error::Error;
use crate::secret::Secret;

pub trait SecretStore {
    /// Stores `value` as the worker's secret `name`. `what` says in words what the value is.
    fn put(&mut self, name: &str, value: &Secret, what: &str) -> Result<(), Error>;
    /// The command line, without the value.
    fn command_line(&self, name: &str) -> String;
    /// The names of the worker's secrets (their values cannot be read back).
    fn names(&mut self) -> Result<Vec<String>, Error>;
}

pub struct Wrangler {
    program: String,
    args: Vec<String>,
    /// `--env <name>`, added to every command.
    env: Option<String>,
}

impl Wrangler {
    /// `npx wrangler`, or the program named by `SETUP_WRANGLER`; `env`: `--env <name>` for every
    /// command.
    pub fn new(setup_wrangler: Option<String>, env: Option<String>) -> Self {
        let (program, args) = match setup_wrangler.filter(|p| !p.trim().is_empty()) {
            Some(program) => (program, vec![]),
            None => (if cfg!(windows) { "npx.cmd" } else { "npx" }.to_string(), vec!["wrangler".to_string()]),
        };
        Wrangler { program, args, env }
    }

    fn with_env(&self, command: &[&str]) -> Vec<String> {
        let mut args = self.args.clone();
        args.extend(command.iter().map(|s| s.to_string()));
        if let Some(env) = &self.env {
            args.extend(["--env".to_string(), env.clone()]);
        }
        args
    }

    fn args(&self, name: &str) -> Vec<String> {
        self.with_env(&["secret", "put", name])
    }

    fn list_args(&self) -> Vec<String> {
        self.with_env(&["secret", "list", "--format", "json"])
    }

    /// `wrangler secret list --format json`, without running it.
    pub fn list_command_line(&self) -> String {
        std::iter::once(self.program.clone()).chain(self.list_args()).collect::<Vec<_>>().join(" ")
    }
}

/// The names in the output of `wrangler secret list --format json`: a JSON array of
/// `{"name", "type"}`, maybe after other lines (a notice of a newer wrangler).
pub fn secret_names(output: &str) -> Option<Vec<String>> {
    let start = output.find('[')?;
    let mut items = serde_json::Deserializer::from_str(&output[start..]).into_iter::<Vec<serde_json::Value>>();
    let list = items.next()?.ok()?;
    list.iter().map(|secret| secret.get("name").and_then(|n| n.as_str()).map(str::to_string)).collect()
}

impl SecretStore for Wrangler {
    fn put(&mut self, name: &str, value: &Secret, _what: &str) -> Result<(), Error> {
        let command = self.command_line(name);
        let fail =
            |detail: String, hint: &str| Error::Wrangler { command: command.clone(), detail, hint: hint.to_string() };
        let mut child =
            Command::new(&self.program).args(self.args(name)).stdin(Stdio::piped()).spawn().map_err(|e| {
                fail(
                    format!("could not be started: {e}"),
                    " (is Node.js installed? set SETUP_WRANGLER to use another program)",
                )
            })?;
        let written = match child.stdin.take() {
            // Dropping stdin closes it: wrangler reads the value until end of input.
            Some(mut stdin) => stdin.write_all(value.expose().as_bytes()),
            None => Ok(()),
        };
        let status = child.wait().map_err(|e| fail(format!("did not finish: {e}"), ""))?;
        if !status.success() {
            let code = status.code().map(|c| format!("exit code {c}")).unwrap_or_else(|| "killed by a signal".into());
            return Err(fail(
                format!("failed ({code})"),
                " (is wrangler logged in? run `npx wrangler login`, or set CLOUDFLARE_API_TOKEN)",
            ));
        }
        written.map_err(|e| fail(format!("did not read the key from its standard input: {e}"), ""))
    }

    fn command_line(&self, name: &str) -> String {
        std::iter::once(self.program.clone()).chain(self.args(name)).collect::<Vec<_>>().join(" ")
    }

    fn names(&mut self) -> Result<Vec<String>, Error> {
        let command = self.list_command_line();
        let fail =
            |detail: String, hint: &str| Error::Wrangler { command: command.clone(), detail, hint: hint.to_string() };
        let output = Command::new(&self.program)
            .args(self.list_args())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| {
                fail(
                    format!("could not be started: {e}"),
                    " (is Node.js installed? set SETUP_WRANGLER to use another program)",
                )
            })?;
        if !output.status.success() {
            let status = output.status;
            let code = status.code().map(|c| format!("exit code {c}")).unwrap_or_else(|| "killed by a signal".into());
            return Err(fail(
                format!("failed ({code})"),
                " (is wrangler logged in? run `npx wrangler login`, or set CLOUDFLARE_API_TOKEN)",
            ));
        }
        secret_names(&String::from_utf8_lossy(&output.stdout))
            .ok_or_else(|| fail("printed no list of secrets (a JSON array of {\"name\", \"type\"})".into(), ""))
    }
}

/// The error of a failing `wrangler secret put` with `extra` added to its hint; other errors as they
/// are.
pub fn with_hint(error: Error, extra: &str) -> Error {
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

    #[test]
    fn default_is_npx_wrangler_secret_put() {
        let w = Wrangler::new(None, None);
        assert!(w.command_line("ZITADEL_SIGNING_KEY").ends_with(" wrangler secret put ZITADEL_SIGNING_KEY"));
        assert!(w.command_line("X").starts_with("npx"));
        assert_eq!(Wrangler::new(Some("  ".into()), None).command_line("X"), w.command_line("X"));
    }

    #[test]
    fn setup_wrangler_replaces_the_program() {
        let w = Wrangler::new(Some("/tmp/fake-wrangler".into()), None);
        assert_eq!(w.command_line("ZITADEL_SIGNING_KEY"), "/tmp/fake-wrangler secret put ZITADEL_SIGNING_KEY");
        assert_eq!(w.list_command_line(), "/tmp/fake-wrangler secret list --format json");
        assert!(Wrangler::new(None, None).list_command_line().ends_with(" wrangler secret list --format json"));
        let staging = Wrangler::new(Some("w".into()), Some("staging".into()));
        assert_eq!(staging.command_line("K"), "w secret put K --env staging");
        assert_eq!(staging.list_command_line(), "w secret list --format json --env staging");
    }

    #[test]
    fn secret_names_are_read_from_wranglers_json_list() {
        let listed = "[\n  {\n    \"name\": \"ZITADEL_SIGNING_KEY\",\n    \"type\": \"secret_text\"\n  },\n  {\"name\": \"TOKEN_SEALING_KEY\", \"type\": \"secret_text\"}\n]\n";
        assert_eq!(secret_names(listed).unwrap(), ["ZITADEL_SIGNING_KEY", "TOKEN_SEALING_KEY"]);
        assert_eq!(secret_names("[]").unwrap(), Vec::<String>::new());
        assert_eq!(secret_names(&format!("A newer wrangler is out\n{listed}")).unwrap().len(), 2);
        assert_eq!(secret_names("Secret Name: X"), None);
        assert_eq!(secret_names("[{\"type\": \"secret_text\"}]"), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_value_goes_to_stdin_and_failures_are_reported() {
        let dir = std::env::temp_dir().join(format!("zitadel-claims-setup-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("stdin");
        let script = dir.join("wrangler.sh");
        std::fs::write(&script, format!("#!/bin/sh\ncat > '{}'\nexit \"${{FAIL:-0}}\"\n", out.display())).unwrap();
        std::process::Command::new("chmod").arg("+x").arg(&script).status().unwrap();

        let mut w = Wrangler::new(Some(script.display().to_string()), None);
        w.put("ZITADEL_SIGNING_KEY", &Secret::new("k1,k2"), "keys").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "k1,k2");

        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$@\" > '{}'\necho '[{{\"name\":\"A\",\"type\":\"secret_text\"}}]'\nexit \"${{FAIL:-0}}\"\n", out.display()),
        )
        .unwrap();
        assert_eq!(w.names().unwrap(), ["A"]);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "secret list --format json\n");

        let mut failing = Wrangler::new(Some(format!("{}-missing", script.display())), None);
        let err = failing.put("ZITADEL_SIGNING_KEY", &Secret::new("k"), "key").unwrap_err().to_string();
        assert!(err.contains("could not be started"), "{err}");
        assert!(!err.contains(": k"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
