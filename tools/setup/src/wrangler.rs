//! Storing the worker's secrets (the signing key, the payload decryption key) with
//! `wrangler secret put`.
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
}

pub struct Wrangler {
    program: String,
    args: Vec<String>,
}

impl Wrangler {
    /// `npx wrangler`, or the program named by `SETUP_WRANGLER`.
    pub fn new(setup_wrangler: Option<String>) -> Self {
        match setup_wrangler.filter(|p| !p.trim().is_empty()) {
            Some(program) => Wrangler { program, args: vec![] },
            None => Wrangler {
                program: if cfg!(windows) { "npx.cmd" } else { "npx" }.to_string(),
                args: vec!["wrangler".to_string()],
            },
        }
    }

    fn args(&self, name: &str) -> Vec<String> {
        let mut args = self.args.clone();
        args.extend(["secret", "put", name].map(str::to_string));
        args
    }
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
        let w = Wrangler::new(None);
        assert!(w.command_line("ZITADEL_SIGNING_KEY").ends_with(" wrangler secret put ZITADEL_SIGNING_KEY"));
        assert!(w.command_line("X").starts_with("npx"));
        assert_eq!(Wrangler::new(Some("  ".into())).command_line("X"), w.command_line("X"));
    }

    #[test]
    fn setup_wrangler_replaces_the_program() {
        let w = Wrangler::new(Some("/tmp/fake-wrangler".into()));
        assert_eq!(w.command_line("ZITADEL_SIGNING_KEY"), "/tmp/fake-wrangler secret put ZITADEL_SIGNING_KEY");
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

        let mut w = Wrangler::new(Some(script.display().to_string()));
        w.put("ZITADEL_SIGNING_KEY", &Secret::new("k1,k2"), "keys").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "k1,k2");

        let mut failing = Wrangler::new(Some(format!("{}-missing", script.display())));
        let err = failing.put("ZITADEL_SIGNING_KEY", &Secret::new("k"), "key").unwrap_err().to_string();
        assert!(err.contains("could not be started"), "{err}");
        assert!(!err.contains(": k"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
