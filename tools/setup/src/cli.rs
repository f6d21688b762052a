//! The command line: options, their checks, and the usage text.

use std::ffi::{OsStr, OsString};
use std::fmt;

use lexopt::Arg;
use url::Url;

use crate::keys::DEFAULT_KEY_FILE;
use crate::types::{KeyAction, KeyType, Options, PayloadType};

pub const USAGE: &str = "\
zitadel-claims-setup: provision ZITADEL for the zitadel-claims worker in one command.

Usage:
  npm run setup -- --domain <zitadel> --worker-url <https url> [options]
  npm run setup -- --domain <zitadel> --rotate | --rotate-encryption-key | --finish-rotation
                   [options]

It creates the Actions V2 target named --name (or updates the one that exists), pointing at the
worker; stores the target's signing key as the worker's secret ZITADEL_SIGNING_KEY with
`wrangler secret put` (the key goes to wrangler's standard input and is never printed); then binds
the target to the preaccesstoken function, keeping any other target bound there. Running it again
leaves one target and one binding, and stores the key again.

With --payload-type jwe it also makes a key pair on this machine, adds the public key to the
target in ZITADEL and activates it, and stores the private key as the worker's secret
PAYLOAD_DECRYPTION_KEY (\"<key id>:<base64 of the PKCS#8 DER>\", through wrangler's standard input).
A Worker secret cannot be read back, so the private key is also kept in the key file; running
again reuses the key the file holds.

Options:
  --domain <host|url>    your instance: my-instance.zitadel.cloud (means https://) or a full URL
  --worker-url <url>     the worker's endpoint, e.g. https://zitadel-claims.<you>.workers.dev/
  --name <name>          the target's name (default: zitadel-claims)
  --timeout <duration>   the target's timeout, e.g. 10s or 2.5s, at most 270s (default: 10s)
  --interrupt-on-error   fail the user's token request when the worker fails (default: don't)
  --userinfo             also bind preuserinfo (claims in the id_token, userinfo, introspection)
  --saml                 also bind presamlresponse (the same data as SAML attributes)
  --capture-idp-tokens   also bind the response of
                         /zitadel.user.v2.UserService/RetrieveIdentityProviderIntent
  --payload-type <type>  how ZITADEL sends the payload: json (plain), jwt (signed with the
                         instance's key) or jwe (signed, then encrypted to the target's key);
                         without it a new target gets ZITADEL's default (json) and an existing
                         one keeps its type
  --key-type <type>      the key pair made for jwe: rsa (RSA 2048, the default) or p256 (EC P-256)
  --key-file <path>      where the private keys are kept (default: .payload-decryption-keys in
                         the current directory); written with mode 0600: keep it safe, out of git
  --rotate               rotate the signing key and store \"<new>,<old>\", so calls signed just
                         before the switch still pass
  --rotate-encryption-key
                         make and activate a new encryption key pair (ZITADEL deactivates the
                         old one) and store \"<new>,<old>\" as PAYLOAD_DECRYPTION_KEY, so calls
                         encrypted just before the switch still open
  --finish-rotation      after a rotation: store only the current signing key, and only the
                         active encryption key; remove the inactive public keys from the target
                         and their private keys from the key file
  --dry-run              print every API call and the wrangler command; send and run nothing
  --allow-http           allow http:// in --domain and --worker-url (local testing only)
  -h, --help             print this text

--rotate, --rotate-encryption-key and --finish-rotation exclude each other: rotate one key at a
time, and finish it before the next. With any of them, --worker-url is optional: without it only
the key is handled; with it the target and its bindings are provisioned first.

Environment:
  ZITADEL_PAT      (required) a personal access token with action.target.read,
                   action.target.write, action.execution.read and action.execution.write,
                   e.g. of a service user with the IAM_OWNER role
  SETUP_WRANGLER   a program to run instead of `npx wrangler`

Exit status: 0 done, 1 failed (the message says why), 2 wrong usage or ZITADEL_PAT not set.
";

/// ZITADEL refuses a longer target timeout (validate rule of UpdateTargetRequest.timeout).
const MAX_TIMEOUT_SECONDS: u64 = 270;

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Run(Options),
}

/// A wrong command line; the message names the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage(message: impl Into<String>) -> UsageError {
    UsageError(message.into())
}

#[derive(Default)]
struct Raw {
    domain: Option<String>,
    worker_url: Option<String>,
    name: Option<String>,
    timeout: Option<String>,
    payload_type: Option<String>,
    key_type: Option<String>,
    key_file: Option<String>,
    interrupt_on_error: bool,
    userinfo: bool,
    saml: bool,
    capture_idp_tokens: bool,
    rotate: bool,
    rotate_encryption_key: bool,
    finish_rotation: bool,
    dry_run: bool,
    allow_http: bool,
}

/// Parses the arguments after the program name. `--opt value` and `--opt=value` both work.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = String>,
{
    let mut raw = Raw::default();
    let mut parser = lexopt::Parser::from_args(args);
    // Keep `-h=x` whole, so it is reported as the unknown option it is (see `Arg::Short` below).
    parser.set_short_equals(false);
    loop {
        // lexopt reads a lone `--` as the end of the options; this tool has no such marker.
        if parser.try_raw_args().is_some_and(|rest| rest.peek() == Some(OsStr::new("--"))) {
            return Err(usage("unknown option --"));
        }
        let flag = match parser.next() {
            Ok(None) => break,
            Ok(Some(Arg::Long(name))) => format!("--{name}"),
            // The one short option is `-h`; `-hx` and `-x` are unknown options, named whole.
            Ok(Some(Arg::Short(c))) => format!("-{c}"),
            // lexopt gives a lone `-` as a value; it was always an unknown option here.
            Ok(Some(Arg::Value(value))) if value == "-" => return Err(usage("unknown option -")),
            Ok(Some(Arg::Value(value))) => {
                let value = text(value);
                return Err(usage(format!("unexpected argument {value:?} (options start with --)")));
            }
            Err(e) => return Err(usage(e.to_string())),
        };
        if !flag.starts_with("--") {
            return match parser.optional_value() {
                None if flag == "-h" => Ok(Command::Help),
                rest => Err(usage(format!("unknown option {flag}{}", rest.map(text).unwrap_or_default()))),
            };
        }
        let slot = match flag.as_str() {
            "--help" => return Ok(Command::Help),
            "--domain" => &mut raw.domain,
            "--worker-url" => &mut raw.worker_url,
            "--name" => &mut raw.name,
            "--timeout" => &mut raw.timeout,
            "--payload-type" => &mut raw.payload_type,
            "--key-type" => &mut raw.key_type,
            "--key-file" => &mut raw.key_file,
            _ => {
                let switch = match flag.as_str() {
                    "--interrupt-on-error" => &mut raw.interrupt_on_error,
                    "--userinfo" => &mut raw.userinfo,
                    "--saml" => &mut raw.saml,
                    "--capture-idp-tokens" => &mut raw.capture_idp_tokens,
                    "--rotate" => &mut raw.rotate,
                    "--rotate-encryption-key" => &mut raw.rotate_encryption_key,
                    "--finish-rotation" => &mut raw.finish_rotation,
                    "--dry-run" => &mut raw.dry_run,
                    "--allow-http" => &mut raw.allow_http,
                    other => return Err(usage(format!("unknown option {other}"))),
                };
                // `--switch=value`: lexopt holds the value back until asked.
                if parser.optional_value().is_some() {
                    return Err(usage(format!("{flag} takes no value")));
                }
                if *switch {
                    return Err(usage(format!("{flag} is given twice")));
                }
                *switch = true;
                continue;
            }
        };
        let value = match parser.optional_value() {
            Some(inline) => text(inline),
            // lexopt would take the next argument even if it is an option: `--domain --worker-url x`
            // is a missing value, not the domain "--worker-url".
            None => match parser.value().map(text) {
                Ok(value) if !value.starts_with("--") => value,
                _ => return Err(usage(format!("{flag} needs a value"))),
            },
        };
        if slot.is_some() {
            return Err(usage(format!("{flag} is given twice")));
        }
        *slot = Some(value);
    }
    options(raw).map(Command::Run)
}

/// The arguments came in as `String`s, so what lexopt hands back is UTF-8.
fn text(value: OsString) -> String {
    value.into_string().unwrap_or_else(|value| value.to_string_lossy().into_owned())
}

fn options(raw: Raw) -> Result<Options, UsageError> {
    let actions = [
        ("--rotate", raw.rotate, KeyAction::Rotate),
        ("--rotate-encryption-key", raw.rotate_encryption_key, KeyAction::RotateEncryptionKey),
        ("--finish-rotation", raw.finish_rotation, KeyAction::FinishRotation),
    ];
    let given: Vec<_> = actions.iter().filter(|(_, given, _)| *given).collect();
    let key_action = match given.as_slice() {
        [] => KeyAction::Store,
        [(_, _, action)] => *action,
        [(first, ..), (second, ..), ..] => {
            return Err(usage(format!("{first} and {second} exclude each other (rotate one key at a time)")));
        }
    };
    let payload_type = match raw.payload_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("json") => Some(PayloadType::Json),
        Some("jwt") => Some(PayloadType::Jwt),
        Some("jwe") => Some(PayloadType::Jwe),
        Some(_) => return Err(usage("--payload-type must be json, jwt or jwe")),
    };
    let key_type = match raw.key_type.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("rsa") => KeyType::Rsa,
        Some("p256") => KeyType::P256,
        Some(_) => return Err(usage("--key-type must be rsa (RSA 2048) or p256 (EC P-256)")),
    };
    let makes_keys = payload_type == Some(PayloadType::Jwe) || key_action == KeyAction::RotateEncryptionKey;
    if key_action == KeyAction::RotateEncryptionKey
        && matches!(payload_type, Some(PayloadType::Json | PayloadType::Jwt))
    {
        return Err(usage("--rotate-encryption-key is for a jwe target: it cannot go with --payload-type json or jwt"));
    }
    if raw.key_type.is_some() && !makes_keys {
        return Err(usage("--key-type is for the key pair of --payload-type jwe or --rotate-encryption-key"));
    }
    if raw.key_file.is_some() && !makes_keys && key_action != KeyAction::FinishRotation {
        return Err(usage("--key-file is for --payload-type jwe, --rotate-encryption-key and --finish-rotation"));
    }
    let key_file = raw.key_file.unwrap_or_else(|| DEFAULT_KEY_FILE.to_string());
    if key_file.trim().is_empty() {
        return Err(usage("--key-file needs a path"));
    }
    let domain = raw.domain.ok_or_else(|| usage("--domain is required (your ZITADEL instance)"))?;
    let base_url = base_url(&domain, raw.allow_http)?;
    let worker_url = match raw.worker_url {
        Some(url) => Some(worker_url(&url, raw.allow_http)?),
        None if key_action == KeyAction::Store => {
            return Err(usage("--worker-url is required (the worker's https:// endpoint)"));
        }
        None => None,
    };
    if worker_url.is_none() {
        let given = [
            ("--timeout", raw.timeout.is_some()),
            ("--payload-type", raw.payload_type.is_some()),
            ("--interrupt-on-error", raw.interrupt_on_error),
            ("--userinfo", raw.userinfo),
            ("--saml", raw.saml),
            ("--capture-idp-tokens", raw.capture_idp_tokens),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            return Err(usage(format!("{flag} changes the target or its bindings: give --worker-url too")));
        }
    }
    let name = raw.name.unwrap_or_else(|| "zitadel-claims".to_string());
    if name.trim().is_empty() || name.len() > 1000 {
        return Err(usage("--name must be 1 to 1000 characters"));
    }
    let timeout = match raw.timeout {
        Some(t) => timeout(&t)?,
        None => "10s".to_string(),
    };
    Ok(Options {
        base_url,
        worker_url,
        name,
        timeout,
        interrupt_on_error: raw.interrupt_on_error,
        userinfo: raw.userinfo,
        saml: raw.saml,
        capture_idp_tokens: raw.capture_idp_tokens,
        key_action,
        payload_type,
        key_type,
        key_file,
        dry_run: raw.dry_run,
    })
}

/// The instance's base URL from `--domain`: a bare host (`my.zitadel.cloud`, `localhost:8080`)
/// means `https://host`; a full `http(s)://` URL is taken as is (without a trailing slash).
/// Plain http is refused without `--allow-http`: the PAT would cross the network in clear.
///
/// `url` checks the address; the result is the text as given (scheme in lower case), not `url`'s
/// normal form (which adds a `/` after a bare host, lowercases the host, writes IDNA as punycode).
pub fn base_url(domain: &str, allow_http: bool) -> Result<String, UsageError> {
    let domain = domain.trim();
    if domain.is_empty() || domain.contains(char::is_whitespace) {
        return Err(usage("--domain must be a host such as my-instance.zitadel.cloud or a full URL"));
    }
    let http_refused =
        "--domain is http://: the token would be sent unencrypted; use https:// or add --allow-http (local testing only)";
    let Some((url, after_scheme)) = full_url("--domain", domain, allow_http, http_refused)? else {
        let url = format!("https://{domain}");
        // A path (also one `url` reads from a backslash) or a user is no host.
        if domain.contains(['/', '?', '#', '@']) || !Url::parse(&url).is_ok_and(|parsed| parsed.path() == "/") {
            return Err(usage(
                "--domain must be a host such as my-instance.zitadel.cloud or a full URL such as https://id.example.com",
            ));
        }
        return Ok(url);
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(usage("--domain: the URL has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(usage("--domain: give the instance's address without ?query or #fragment"));
    }
    Ok(format!("{}://{}", url.scheme(), after_scheme.trim_end_matches('/')))
}

/// The target endpoint from `--worker-url`: an absolute https URL (http with `--allow-http`).
///
/// `url` checks it; the result is the text as given (scheme in lower case): ZITADEL stores the
/// endpoint as the user wrote it, e.g. without the `/` that `url` would add after a bare host.
pub fn worker_url(input: &str, allow_http: bool) -> Result<String, UsageError> {
    let input = input.trim();
    let http_refused =
        "--worker-url must be https:// (ZITADEL sends user data to it); add --allow-http for local testing only";
    let Some((url, after_scheme)) = full_url("--worker-url", input, allow_http, http_refused)? else {
        return Err(usage("--worker-url must be a full URL such as https://zitadel-claims.<you>.workers.dev/"));
    };
    if input.len() > 2048 {
        return Err(usage("--worker-url is longer than ZITADEL accepts (2048 characters)"));
    }
    Ok(format!("{}://{after_scheme}", url.scheme()))
}

/// The URL given to `flag` parsed by `url`, with the text after `://`; `None` without `://`, which
/// alone tells a URL from a bare host (`url` reads `localhost:8080` as the scheme `localhost`).
/// The scheme is checked first: https, or http with `--allow-http` (else `http_refused`).
fn full_url<'a>(
    flag: &str,
    input: &'a str,
    allow_http: bool,
    http_refused: &str,
) -> Result<Option<(Url, &'a str)>, UsageError> {
    let Some((scheme, after_scheme)) = input.split_once("://") else {
        return Ok(None);
    };
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(usage(http_refused)),
        scheme => return Err(usage(format!("{flag}: unsupported scheme {scheme}:// (use https://)"))),
    }
    let no_host = || usage(format!("{flag}: the URL has no host"));
    // `url` skips slashes after `://` (it reads `https:///path` as the host `path`) and would
    // percent-encode a space in the path.
    if after_scheme.starts_with(['/', '\\']) || input.contains(char::is_whitespace) {
        return Err(no_host());
    }
    let url = Url::parse(input).map_err(|e| match e {
        url::ParseError::EmptyHost => no_host(),
        e => usage(format!("{flag} {input:?} is not a valid URL: {e}")),
    })?;
    Ok(Some((url, after_scheme)))
}

/// `--timeout` in the protobuf JSON form ZITADEL's REST API reads: seconds with up to nine
/// decimals and an `s`, more than zero and at most 270 s.
pub fn timeout(value: &str) -> Result<String, UsageError> {
    let bad =
        || usage(format!("--timeout {value:?}: give seconds such as 10s or 2.5s (at most {MAX_TIMEOUT_SECONDS}s)"));
    let number = value.strip_suffix('s').ok_or_else(bad)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 9 || number.ends_with('.') {
        return Err(bad());
    }
    let seconds: u64 = whole.parse().map_err(|_| bad())?;
    let has_fraction = fraction.chars().any(|c| c != '0');
    if (seconds == 0 && !has_fraction)
        || seconds > MAX_TIMEOUT_SECONDS
        || (seconds == MAX_TIMEOUT_SECONDS && has_fraction)
    {
        return Err(bad());
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, UsageError> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(options) => Ok(options),
            Command::Help => panic!("expected options, got help"),
        }
    }

    fn err(args: &[&str]) -> String {
        run(args).expect_err("expected a usage error").0
    }

    #[test]
    fn defaults() {
        let o = run(&["--domain", "my.zitadel.cloud", "--worker-url", "https://w.example.workers.dev/"]).unwrap();
        assert_eq!(
            o,
            Options {
                base_url: "https://my.zitadel.cloud".into(),
                worker_url: Some("https://w.example.workers.dev/".into()),
                name: "zitadel-claims".into(),
                timeout: "10s".into(),
                interrupt_on_error: false,
                userinfo: false,
                saml: false,
                capture_idp_tokens: false,
                key_action: KeyAction::Store,
                payload_type: None,
                key_type: KeyType::Rsa,
                key_file: ".payload-decryption-keys".into(),
                dry_run: false,
            }
        );
    }

    #[test]
    fn payload_type_key_type_and_key_file() {
        let base = ["--domain", "z.cloud", "--worker-url", "https://w.dev/"];
        let with = |extra: &[&str]| run(&[&base[..], extra].concat());
        assert_eq!(with(&["--payload-type", "jwt"]).unwrap().payload_type, Some(PayloadType::Jwt));
        assert_eq!(with(&["--payload-type=JSON"]).unwrap().payload_type, Some(PayloadType::Json));
        let jwe = with(&["--payload-type", "jwe", "--key-type", "p256", "--key-file", "/tmp/k"]).unwrap();
        assert_eq!(
            (jwe.payload_type, jwe.key_type, jwe.key_file.as_str()),
            (Some(PayloadType::Jwe), KeyType::P256, "/tmp/k")
        );
        assert_eq!(with(&["--payload-type", "jwe"]).unwrap().key_type, KeyType::Rsa, "RSA is the default");
        assert_eq!(PayloadType::Jwe.proto_name(), "PAYLOAD_TYPE_JWE");
        let err = |extra: &[&str]| with(extra).expect_err("expected a usage error").0;
        assert_eq!(err(&["--payload-type", "xml"]), "--payload-type must be json, jwt or jwe");
        assert!(err(&["--payload-type", "jwe", "--key-type", "ed25519"]).starts_with("--key-type must be rsa"));
        assert!(err(&["--key-type", "p256"]).starts_with("--key-type is for"));
        assert!(err(&["--payload-type", "jwt", "--key-type", "p256"]).starts_with("--key-type is for"));
        assert!(err(&["--key-file", "k"]).starts_with("--key-file is for"));
        assert_eq!(err(&["--payload-type", "jwe", "--key-file", " "]), "--key-file needs a path");
        assert!(err(&["--payload-type", "json", "--rotate-encryption-key"]).contains("is for a jwe target"));
        assert!(
            self::err(&["--domain", "z.cloud", "--rotate", "--payload-type", "jwe"]).contains("give --worker-url too")
        );
    }

    #[test]
    fn the_encryption_key_rotation_needs_no_worker_url_and_excludes_the_other_rotations() {
        let o =
            run(&["--domain", "z.cloud", "--rotate-encryption-key", "--key-type", "p256", "--key-file", "k"]).unwrap();
        assert_eq!((o.key_action, o.key_type, o.worker_url), (KeyAction::RotateEncryptionKey, KeyType::P256, None));
        let finish = run(&["--domain", "z.cloud", "--finish-rotation", "--key-file", "k"]).unwrap();
        assert_eq!(finish.key_file, "k");
        assert_eq!(
            err(&["--domain", "z.cloud", "--rotate", "--rotate-encryption-key"]),
            "--rotate and --rotate-encryption-key exclude each other (rotate one key at a time)"
        );
        assert!(err(&["--domain", "z.cloud", "--finish-rotation", "--rotate-encryption-key"])
            .starts_with("--rotate-encryption-key and --finish-rotation exclude each other"));
        assert_eq!(
            err(&["--domain", "z", "--rotate-encryption-key", "--rotate-encryption-key"]),
            "--rotate-encryption-key is given twice"
        );
    }

    #[test]
    fn every_option_in_both_spellings() {
        let o = run(&[
            "--domain=http://127.0.0.1:8080/",
            "--worker-url",
            "http://127.0.0.1:8787/",
            "--name=claims",
            "--timeout",
            "2.5s",
            "--interrupt-on-error",
            "--userinfo",
            "--capture-idp-tokens",
            "--dry-run",
            "--allow-http",
        ])
        .unwrap();
        assert_eq!(o.base_url, "http://127.0.0.1:8080");
        assert_eq!(o.worker_url.as_deref(), Some("http://127.0.0.1:8787/"));
        assert_eq!(o.name, "claims");
        assert_eq!(o.timeout, "2.5s");
        assert!(o.interrupt_on_error && o.userinfo && o.capture_idp_tokens && o.dry_run);
    }

    #[test]
    fn help_wins_wherever_it_stands() {
        assert_eq!(parse(["--domain".into(), "x".into(), "--help".into()]).unwrap(), Command::Help);
        assert_eq!(parse(["-h".into()]).unwrap(), Command::Help);
    }

    #[test]
    fn required_options() {
        assert!(err(&["--worker-url", "https://w.dev/"]).contains("--domain is required"));
        assert!(err(&["--domain", "z.cloud"]).contains("--worker-url is required"));
    }

    #[test]
    fn key_actions_need_no_worker_url_but_refuse_binding_options_without_it() {
        assert_eq!(run(&["--domain", "z.cloud", "--rotate"]).unwrap().key_action, KeyAction::Rotate);
        let finish = run(&["--domain", "z.cloud", "--finish-rotation"]).unwrap();
        assert_eq!(finish.key_action, KeyAction::FinishRotation);
        assert_eq!(finish.worker_url, None);
        assert!(err(&["--domain", "z.cloud", "--rotate", "--userinfo"]).contains("--userinfo"));
        assert!(err(&["--domain", "z.cloud", "--rotate", "--finish-rotation"]).contains("exclude each other"));
        let both = run(&["--domain", "z.cloud", "--rotate", "--worker-url", "https://w.dev/", "--userinfo"]).unwrap();
        assert!(both.userinfo);
    }

    #[test]
    fn wrong_arguments_are_named() {
        assert_eq!(err(&["--domain", "z.cloud", "--frobnicate"]), "unknown option --frobnicate");
        assert!(err(&["--domain", "z.cloud", "stray"]).contains("\"stray\""));
        assert_eq!(err(&["--domain"]), "--domain needs a value");
        assert_eq!(err(&["--domain", "--worker-url", "https://w.dev"]), "--domain needs a value");
        assert_eq!(err(&["--domain", "a", "--domain", "b"]), "--domain is given twice");
        assert_eq!(err(&["--domain", "a", "--userinfo=yes"]), "--userinfo takes no value");
        assert_eq!(err(&["--domain", "a", "--dry-run", "--dry-run"]), "--dry-run is given twice");
        assert!(err(&["--domain", "a", "--worker-url", "https://w.dev", "--name", " "]).contains("--name"));
    }

    #[test]
    fn domain_host_means_https() {
        assert_eq!(base_url("my-instance.zitadel.cloud", false).unwrap(), "https://my-instance.zitadel.cloud");
        assert_eq!(base_url(" localhost:8080 ", false).unwrap(), "https://localhost:8080");
    }

    #[test]
    fn domain_url_is_taken_as_is_without_trailing_slash() {
        assert_eq!(base_url("https://id.example.com/", false).unwrap(), "https://id.example.com");
        assert_eq!(base_url("HTTPS://id.example.com/zitadel//", false).unwrap(), "https://id.example.com/zitadel");
        assert_eq!(base_url("http://127.0.0.1:41234", true).unwrap(), "http://127.0.0.1:41234");
    }

    #[test]
    fn domain_refuses_http_without_allow_http_and_odd_input() {
        assert!(base_url("http://127.0.0.1:8080", false).unwrap_err().0.contains("--allow-http"));
        assert!(base_url("ftp://x", true).unwrap_err().0.contains("unsupported scheme ftp"));
        assert!(base_url("id.example.com/path", false).is_err());
        assert!(base_url("https://", false).is_err());
        assert!(base_url("https://user@host", false).is_err());
        assert!(base_url("https://host/?x=1", false).is_err());
        assert!(base_url("", false).is_err());
        assert!(base_url("a b", false).is_err());
    }

    #[test]
    fn worker_url_must_be_https_unless_allowed() {
        assert_eq!(worker_url("https://w.example.workers.dev", false).unwrap(), "https://w.example.workers.dev");
        assert!(worker_url("http://w.example.workers.dev/", false).unwrap_err().0.contains("--allow-http"));
        assert_eq!(worker_url("http://127.0.0.1:8787/", true).unwrap(), "http://127.0.0.1:8787/");
        assert!(worker_url("w.example.workers.dev", false).is_err());
        assert!(worker_url("https:///path", false).is_err());
        assert!(worker_url(&format!("https://w.dev/{}", "a".repeat(2048)), false).is_err());
    }

    #[test]
    fn timeout_is_a_protobuf_duration_within_zitadels_bounds() {
        for ok in ["10s", "1s", "0.5s", "2.500000000s", "270s"] {
            assert_eq!(timeout(ok).unwrap(), ok);
        }
        for bad in ["10", "10m", "0s", "0.0s", "-1s", "271s", "270.1s", "1.s", ".5s", "1.0000000001s", "ten s", ""] {
            assert!(timeout(bad).is_err(), "{bad} should be refused");
        }
    }
}
