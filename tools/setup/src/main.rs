//! `zitadel-claims-setup`: provisions ZITADEL for the zitadel-claims worker in one command.
//!
//! Creates (or updates) the Actions V2 target, stores its signing key as the worker's secret with
//! `wrangler secret put`, and binds the target to `preaccesstoken` (and on request `preuserinfo`
//! and the response of `RetrieveIdentityProviderIntent`) without dropping other bindings. For a
//! target whose payload is encrypted (`--payload-type jwe`) it makes the key pair on this machine,
//! gives ZITADEL the public key and stores the private key as the worker's secret. With
//! `--connect` it also makes (or reuses) the OIDC app of the worker's connect flow and the
//! worker's token sealing key. It checks the worker's `/healthz` before writing anything, waits
//! for the worker to take what it stored, and ends with a signed sample call through the worker;
//! `--rotate` gives the target a new signing key through a second target, without a gap.
//! Run it with `npm run setup -- --help`.
//!
//! The modules, from the bottom up; each uses only modules above it in this list, so there is no
//! import circle, and `cli` is used by `main` alone:
//!
//! 1. `types` (what a run is asked to do, the API calls) and `secret` (a value kept out of
//!    output): they use no other module;
//! 2. `error`: every failure, its message and exit code;
//! 3. `api` (ZITADEL's API over a transport), `keys` (the key pairs, the key file and the token
//!    sealing key), `wrangler` (the worker's secrets) and `worker` (the worker's `/healthz` and a
//!    signed sample call);
//! 4. `http` (the real transports) and `setup` (the provisioning: `setup/mod.rs` orders the steps,
//!    the files beside it each provision one thing and use no other of them);
//! 5. `dry_run`: the printing transport, secret store and key store of `--dry-run`;
//! 6. `cli`: the command line, read into `types::Options`;
//! 7. `main`: runs `setup` for real or as a dry run.
//!
//! Only tests reach upward: those of `setup` and `dry_run` read their options with `cli::parse`.

mod api;
mod cli;
mod dry_run;
mod error;
mod http;
mod keys;
mod secret;
mod setup;
mod types;
mod worker;
mod wrangler;

use std::env;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use api::{Transport, Zitadel};
use cli::Command;
use error::Error;
use keys::LocalKeys;
use secret::Secret;
use types::Options;
use wrangler::Wrangler;

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = env::args_os().skip(1).map(|a| a.into_string()).collect();
    let command = match args {
        Ok(args) => cli::parse(args).map_err(|e| Error::Usage(e.0)),
        Err(_) => Err(Error::Usage("an argument is not valid UTF-8".into())),
    };
    let result = match command {
        Ok(Command::Help) => {
            let _ = io::stdout().write_all(cli::USAGE.as_bytes());
            Ok(())
        }
        Ok(Command::Version) => {
            let _ = writeln!(io::stdout(), "zitadel-claims-setup {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Ok(Command::Run(options)) => run(&options),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut stderr = io::stderr();
            let _ = writeln!(stderr, "error: {error}");
            if matches!(error, Error::Usage(_)) {
                // npm swallows a bare `--help`: the options go after `--`.
                let _ = writeln!(stderr, "(run `npm run setup -- --help` for usage)");
            }
            ExitCode::from(error.exit_code())
        }
    }
}

fn run(options: &Options) -> Result<(), Error> {
    let wrangler = Wrangler::new(env::var("SETUP_WRANGLER").ok(), options.env.clone());
    let checks = setup::Checks { wait: wait()?, interval: Duration::from_secs(1), dry_run: options.dry_run };
    let mut probe = http::WorkerHttp::new();
    if options.dry_run {
        let mut stdout = io::stdout();
        let mut reader = pat().ok().map(http::Http::new);
        let reading = reader.is_some();
        if reading {
            let _ = writeln!(
                stdout,
                "Dry run: only reads go to ZITADEL (searches and gets), the key file is only read, and wrangler \
                 only lists the secrets' names; nothing is written. A real run would do this, in order (ids of \
                 what it would make are placeholders):"
            );
        } else {
            let _ = writeln!(
                stdout,
                "Dry run: nothing is sent to ZITADEL and wrangler is not run. A real run would do this, in order:"
            );
            let _ = writeln!(
                stdout,
                "(ZITADEL_PAT is not set, so nothing is read either: the plan assumes what the notes say; with it, \
                 the dry run reads the instance and plans from what is there)"
            );
        }
        let mut api = dry_run::DryRunApi::new(io::stdout(), options, reader.as_mut().map(|r| r as &mut dyn Transport));
        let mut secrets = dry_run::DryRunSecrets::new(io::stdout(), wrangler, reading);
        let local = LocalKeys::new(&options.key_file);
        let mut keys = dry_run::DryRunKeys::new(io::stdout(), options, reading.then_some(local));
        let mut zitadel = Zitadel::new(&options.base_url, &mut api)?;
        if reading {
            // What was read is real: the run's own lines say what it would leave alone.
            setup::run(options, &mut zitadel, &mut secrets, &mut keys, &mut probe, &checks, &mut stdout)?;
        } else {
            // The progress lines would describe placeholders: leave them out, but for the worker's
            // check, which is real.
            setup::check_worker(options, &mut probe, &mut stdout)?;
            setup::run(options, &mut zitadel, &mut secrets, &mut keys, &mut probe, &checks, &mut io::sink())?;
            dry_run::next_steps(&mut stdout, options);
        }
        return Ok(());
    }
    let mut http = http::Http::new(pat()?);
    let mut transport = api::Narrated { inner: &mut http, out: io::stdout() };
    let mut wrangler = wrangler;
    let mut keys = LocalKeys::new(&options.key_file);
    setup::run(
        options,
        &mut Zitadel::new(&options.base_url, &mut transport)?,
        &mut wrangler,
        &mut keys,
        &mut probe,
        &checks,
        &mut io::stdout(),
    )
}

/// How long to wait for the worker to pick up a stored secret: `SETUP_WAIT_SECONDS`, else 60 s.
fn wait() -> Result<Duration, Error> {
    match env::var("SETUP_WAIT_SECONDS") {
        Err(_) => Ok(Duration::from_secs(60)),
        Ok(s) => {
            s.trim().parse::<u64>().ok().filter(|s| *s <= 3600).map(Duration::from_secs).ok_or_else(|| {
                Error::Usage("SETUP_WAIT_SECONDS must be a whole number of seconds, at most 3600".into())
            })
        }
    }
}

fn pat() -> Result<Secret, Error> {
    match env::var("ZITADEL_PAT") {
        Ok(pat) if !pat.trim().is_empty() => Ok(Secret::new(pat.trim())),
        _ => Err(Error::MissingPat),
    }
}
