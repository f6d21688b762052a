//! The run's checks of the worker: before any write in ZITADEL, that the URL answers as this
//! project's worker and that nothing is wrong with it but what this run stores; after `wrangler
//! secret put`, that the worker has picked that up; after binding, one signed sample call and the
//! claims that came back. The worker itself is `worker.rs`'s.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::secret::Secret;
use crate::types::{KeyAction, Options};
use crate::worker::{Health, Sample, Worker};
use crate::wrangler::SecretStore;

use super::connect::{EXCHANGE_SECRET_NAME, INTROSPECTION_SECRET_NAME, SEALING_SECRET_NAME};
use super::encryption_keys::{self, DECRYPTION_SECRET_NAME};
use super::signing_key::SECRET_NAME;

/// How long the checks wait for the worker.
pub struct Checks {
    /// How long to wait for the worker to pick up a stored secret (a deployed worker takes a few
    /// seconds).
    pub wait: Duration,
    /// The pause between two tries.
    pub interval: Duration,
    /// `--dry-run`: `/healthz` is read (a read changes nothing) and a problem printed instead of
    /// stopping; nothing is waited for and no sample is sent.
    pub dry_run: bool,
}

/// A secret store that remembers the names it stored: what the worker must then have picked up.
pub(super) struct Recording<'s> {
    pub inner: &'s mut dyn SecretStore,
    pub stored: Vec<&'static str>,
}

impl SecretStore for Recording<'_> {
    fn put(&mut self, name: &str, value: &Secret, what: &str) -> Result<(), Error> {
        self.inner.put(name, value, what)?;
        if let Some(known) = [SECRET_NAME, DECRYPTION_SECRET_NAME].into_iter().find(|k| *k == name) {
            if !self.stored.contains(&known) {
                self.stored.push(known);
            }
        }
        Ok(())
    }
    fn command_line(&self, name: &str) -> String {
        self.inner.command_line(name)
    }
    fn names(&mut self) -> Result<Vec<String>, Error> {
        self.inner.names()
    }
}

/// The worker's secrets this run stores: the problems of `/healthz` it may find before it starts.
pub(super) fn stored_by(options: &Options) -> Vec<&'static str> {
    let mut names = Vec::new();
    if options.worker_url.is_some() || options.key_action != KeyAction::RotateEncryptionKey {
        names.push(SECRET_NAME);
    }
    if encryption_keys::stores_key(options) {
        names.push(DECRYPTION_SECRET_NAME);
    }
    if let Some(connect) = &options.connect {
        names.push(SEALING_SECRET_NAME);
        if connect.introspection {
            names.push(INTROSPECTION_SECRET_NAME);
        }
        if !connect.exchange_clients.is_empty() {
            names.push(EXCHANGE_SECRET_NAME);
        }
    }
    names
}

/// Before any write: the worker answers `/healthz` as itself, and a 503 names only settings in
/// `stores`.
pub(super) fn before(worker: &mut Worker, stores: &[&str], dry_run: bool, out: &mut dyn Write) -> Result<(), Error> {
    say!(out, "Checking the worker: GET {}", worker.health_url());
    let result = worker.health().and_then(|health| match health {
        Health::Ready => {
            say!(out, "The worker answers 200 ok");
            Ok(())
        }
        Health::Misconfigured(problems) => {
            let (ours, others): (Vec<_>, Vec<_>) =
                problems.into_iter().partition(|(s, _)| stores.contains(&s.as_str()));
            if !others.is_empty() {
                return Err(Error::WorkerMisconfigured { url: worker.health_url().to_string(), problems: others });
            }
            let names: Vec<&str> = ours.iter().map(|(s, _)| s.as_str()).collect();
            say!(out, "The worker answers 503, missing only {}, which this run stores", names.join(", "));
            Ok(())
        }
    });
    match result {
        Err(error) if dry_run => {
            say!(out, "A real run would stop here: {error}");
            Ok(())
        }
        result => result,
    }
}

/// After `stored` were put: waits until the worker's `/healthz` names none of them.
pub(super) fn ready(worker: &mut Worker, checks: &Checks, stored: &[&str], out: &mut dyn Write) -> Result<(), Error> {
    if stored.is_empty() {
        return Ok(());
    }
    if checks.dry_run {
        say!(out, "(a real run waits here until GET {} names none of {})", worker.health_url(), stored.join(", "));
        return Ok(());
    }
    let started = Instant::now();
    loop {
        // A worker being redeployed may not answer for a moment: that is waited for too.
        let named: Vec<String> = match worker.health() {
            Ok(Health::Ready) => Vec::new(),
            Ok(health) => health.settings().into_iter().filter(|s| stored.contains(s)).map(str::to_string).collect(),
            Err(Error::WorkerUnreachable { .. }) if started.elapsed() < checks.wait => {
                stored.iter().map(|s| s.to_string()).collect()
            }
            Err(error) => return Err(error),
        };
        if named.is_empty() {
            say!(out, "The worker has picked up {}", stored.join(", "));
            return Ok(());
        }
        if started.elapsed() >= checks.wait {
            return Err(Error::WorkerNotReady {
                url: worker.health_url().to_string(),
                seconds: checks.wait.as_secs(),
                settings: named,
            });
        }
        std::thread::sleep(checks.interval);
    }
}

/// Sends the sample signed with `key` (tried again while the worker refuses the key: it may not
/// have picked it up yet) and prints what came back.
pub(super) fn sample(worker: &mut Worker, checks: &Checks, key: &Secret, out: &mut dyn Write) -> Result<(), Error> {
    if checks.dry_run {
        say!(out, "(a real run sends a signed sample call to {} here and prints the claims)", worker.endpoint());
        return Ok(());
    }
    let started = Instant::now();
    let sample = loop {
        let waiting = started.elapsed() < checks.wait;
        match worker.sample(key) {
            // A worker being redeployed may not answer for a moment.
            Err(Error::WorkerUnreachable { .. }) if waiting => std::thread::sleep(checks.interval),
            Err(error) => return Err(error),
            Ok(Sample::KeyRefused) if waiting => std::thread::sleep(checks.interval),
            Ok(Sample::KeyRefused) => {
                let url = worker.endpoint().to_string();
                return Err(Error::WorkerRefusesKey { url, seconds: checks.wait.as_secs() });
            }
            Ok(sample) => break sample,
        }
    };
    let endpoint = worker.endpoint().to_string();
    match sample {
        Sample::Answered { claims, log_claims } => {
            say!(out, "Sample call (function/preaccesstoken, the sample user of `npm run sample`) to {endpoint}: 200");
            if claims.is_empty() {
                say!(out, "  no claims came back (the sample's organization may have no permission mapping here)");
            }
            for (name, value) in claims {
                say!(out, "  claim {name} = {value}");
            }
            for (name, value) in log_claims {
                say!(out, "  log claim {name} = {value}");
            }
        }
        Sample::JsonRefused => {
            say!(
                out,
                "Sample call to {endpoint}: the worker takes no plain JSON payloads (PAYLOAD_TYPES), as a jwt or jwe target wants; sign in to see the claims"
            );
        }
        Sample::Failed { status: 404, error, .. } => {
            say!(
                out,
                "Warning: the sample call to {endpoint} answered 404{}: the worker takes calls at / and /zitadel/complement-token alone; give one of them in --worker-url",
                error.map(|e| format!(" {e}")).unwrap_or_default()
            );
        }
        Sample::Failed { status, error, message } => {
            say!(
                out,
                "Warning: the sample call to {endpoint} answered {status}{}{}: see `npx wrangler tail` and docs/reference.md",
                error.map(|e| format!(" {e}")).unwrap_or_default(),
                message.map(|m| format!(" ({m})")).unwrap_or_default()
            );
        }
        Sample::KeyRefused => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::fakes::{options, run_checked, Fake, FakeWorker, Stored, BASE};
    use crate::types::Call;

    const MISSING_KEY: &str =
        r#"{"status":"misconfigured","problems":[{"setting":"ZITADEL_SIGNING_KEY","problem":"is not set"}]}"#;

    #[test]
    fn a_first_setup_finds_the_key_missing_stores_it_waits_binds_and_sends_the_sample() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let mut worker = FakeWorker::default();
        worker.health.extend([(503, MISSING_KEY.to_string()), (503, MISSING_KEY.to_string())]);
        let out = run_checked(&mut fake, &mut stored, &mut worker, BASE).unwrap();
        assert_eq!(worker.gets, 3, "before, then until the key is no longer named");
        assert_eq!(worker.samples, vec!["key-1".to_string()], "signed with the stored key");
        assert!(out.contains("Checking the worker: GET https://w.dev/healthz\n"), "{out}");
        assert!(out.contains("missing only ZITADEL_SIGNING_KEY, which this run stores"), "{out}");
        assert!(out.contains("The worker has picked up ZITADEL_SIGNING_KEY"), "{out}");
        assert!(out.contains("  claim permissions = [\"read\"]\n"), "{out}");
        let (picked, bound, sampled) =
            (out.find("picked up").unwrap(), out.find("Bound the target").unwrap(), out.find("Sample call").unwrap());
        assert!(picked < bound && bound < sampled, "{out}");
        assert!(!out.contains("key-1"), "{out}");
    }

    #[test]
    fn a_404_an_html_page_or_another_problem_stops_the_run_before_any_write() {
        for (status, body, says) in [
            (404, "Not Found".to_string(), "answered 404"),
            (200, "<html></html>".to_string(), "not JSON"),
            (
                503,
                r#"{"status":"misconfigured","problems":[{"setting":"ZITADEL_SIGNING_KEY","problem":"is not set"},{"setting":"ZITADEL_ACCESS_TOKEN","problem":"is not set"}]}"#.to_string(),
                "misconfigured, and not in a way this tool fixes: ZITADEL_ACCESS_TOKEN is not set;",
            ),
        ] {
            let (mut fake, mut stored) = (Fake::default(), Stored::default());
            let mut worker = FakeWorker::default();
            worker.health.push_back((status, body));
            let err = run_checked(&mut fake, &mut stored, &mut worker, BASE).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
            assert_eq!(fake.calls(), [Call::SearchTargets], "reads only");
            assert!(stored.0.is_empty());
        }
    }

    #[test]
    fn a_worker_that_is_away_for_a_moment_while_redeployed_is_waited_for_but_not_before_the_run() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let mut worker = FakeWorker { down: (2, 3), ..FakeWorker::default() };
        run_checked(&mut fake, &mut stored, &mut worker, BASE).unwrap();
        assert_eq!(worker.gets, 5, "the first check, three unanswered polls, then 200");
        let mut worker = FakeWorker { down: (1, 1), ..FakeWorker::default() };
        let err = run_checked(&mut Fake::default(), &mut Stored::default(), &mut worker, BASE).unwrap_err();
        assert!(matches!(err, Error::WorkerUnreachable { .. }), "{err}");
    }

    #[test]
    fn a_worker_that_never_picks_the_key_up_leaves_the_target_unbound() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let mut worker = FakeWorker { health_after: (503, MISSING_KEY.to_string()), ..FakeWorker::default() };
        let err = run_checked(&mut fake, &mut stored, &mut worker, BASE).unwrap_err();
        assert!(
            matches!(&err, Error::WorkerNotReady { settings, .. } if settings == &["ZITADEL_SIGNING_KEY"]),
            "{err}"
        );
        assert!(!fake.calls().contains(&Call::SetExecution), "not bound");
    }

    #[test]
    fn a_worker_refusing_the_key_fails_the_run_and_json_refused_is_a_note() {
        let (mut fake, mut stored) = (Fake::default(), Stored::default());
        let mut worker =
            FakeWorker { sample_after: (401, r#"{"error":"invalid_signature"}"#.to_string()), ..FakeWorker::default() };
        let err = run_checked(&mut fake, &mut stored, &mut worker, BASE).unwrap_err();
        assert!(matches!(err, Error::WorkerRefusesKey { .. }), "{err}");

        let mut worker = FakeWorker::default();
        worker.sample_answers.push_back((400, r#"{"error":"unsupported_payload_type"}"#.to_string()));
        let out = run_checked(&mut fake, &mut stored, &mut worker, BASE).unwrap();
        assert!(out.contains("takes no plain JSON payloads"), "{out}");

        let mut worker = FakeWorker::default();
        worker.sample_answers.push_back((404, r#"{"error":"not_found"}"#.to_string()));
        let out = run_checked(&mut fake, &mut stored, &mut worker, BASE).unwrap();
        assert!(
            out.contains("answered 404 not_found: the worker takes calls at / and /zitadel/complement-token alone"),
            "{out}"
        );

        let mut worker = FakeWorker::default();
        worker.sample_answers.push_back((502, r#"{"error":"upstream_unavailable","message":"m"}"#.to_string()));
        let out = run_checked(&mut fake, &mut stored, &mut worker, BASE).unwrap();
        assert!(
            out.contains("Warning: the sample call to https://w.dev/ answered 502 upstream_unavailable (m)"),
            "{out}"
        );
    }

    #[test]
    fn what_a_run_stores_is_what_a_first_503_may_name() {
        assert_eq!(stored_by(&options(BASE)), [SECRET_NAME]);
        assert_eq!(stored_by(&options(&format!("{BASE} --payload-type jwe"))), [SECRET_NAME, DECRYPTION_SECRET_NAME]);
        assert_eq!(stored_by(&options("--domain z --rotate-encryption-key")), [DECRYPTION_SECRET_NAME]);
        assert_eq!(
            stored_by(&options(&format!("{BASE} --connect --introspection --exchange-client a"))),
            [SECRET_NAME, SEALING_SECRET_NAME, INTROSPECTION_SECRET_NAME, EXCHANGE_SECRET_NAME]
        );
    }
}
