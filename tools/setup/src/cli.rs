//! The command line: the usage text, the options as clap reads them, and their checks, which
//! make the [`Options`] of a run. Only `main` uses this module.
//!
//! The messages are the tool's own, as they always were: clap's errors become the tool's sentences
//! ([`clap_stop`]), and value parsers keep the tool's reading where clap's differs (a value that
//! starts with `--` is missing; the first wrong argument is the one named; `--` ends nothing).

use std::fmt;
use std::sync::{Arc, Mutex};

use clap::error::{ContextKind, ErrorKind};
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
use url::Url;

use crate::keys::DEFAULT_KEY_FILE;
use crate::types::{Connect, KeyAction, KeyType, Options, PayloadType};

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

When the target's payload type is jwt or jwe (set with --payload-type, or read from the target), it
prints the line to set under [vars] in wrangler.toml, PAYLOAD_TYPES = \"jwe\" (or \"jwt\"): without
it the worker also accepts plain JSON payloads, which only the signing key's HMAC proves. The tool
does not edit wrangler.toml.

With --connect it also provisions the worker's connect flow (users link their Microsoft account):
the OIDC app \"<name>-connect\" (a public client: code flow with PKCE), whose redirect URI is
<worker origin>/connect/zitadel/callback, in the project --connect-project or else in the project
named --name (made when missing; an app or project of that name is reused, and the app's redirect
URI updated); the worker's secret TOKEN_SEALING_KEY (\"<key id>:<base64 of 32 random bytes>\",
through wrangler's standard input, never printed), made only when the worker has none. It then
prints the client id to set as the variable CONNECT_CLIENT_ID and the redirect URI to register in
the Entra app.

With --introspection (and --connect) it also makes the API app \"<name>-introspection\" in that
project, with HTTP Basic client authentication, and stores its client secret as the worker's secret
INTROSPECTION_CLIENT_SECRET (through wrangler's standard input, never printed). ZITADEL shows a
secret only when it makes one, so for an app that exists it has ZITADEL generate a new one (the old
one stops working). It prints the client id to set as the variable INTROSPECTION_CLIENT_ID.

With --exchange-client <client id> (and --connect; repeat it for each back end) it makes a random
secret for each back end (base64url of 32 random bytes) and stores them all as the worker's secret
TOKEN_EXCHANGE_CLIENTS (\"<client id>:<secret>\", comma-separated, through wrangler's standard
input), then prints each secret once: the back end authenticates to POST <worker origin>/token with
HTTP Basic. This replaces the whole secret (a Worker secret cannot be read back), so name every back
end on each run.

Options:
  --domain <host|url>    your instance: my-instance.zitadel.cloud (means https://) or a full URL
  --worker-url <url>     the worker's endpoint, e.g. https://zitadel-claims.<you>.workers.dev/
  --name <name>          the target's name (default: zitadel-claims)
  --timeout <duration>   the target's timeout, e.g. 10s or 2.5s, at most 270s (a new target: 10s;
                         an existing one keeps its own)
  --interrupt-on-error   fail the user's token request when the worker fails (a new target: it
                         does not; an existing one keeps its setting)
  --no-interrupt-on-error
                         let the token request go on without the worker's claims when it fails
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
  --rotate               a new signing key, without a moment in which calls fail: the target is
                         renamed <name>-retiring (still bound), a new target <name> with the same
                         settings and a new key is made, the worker's secret becomes
                         \"<new>,<old>\", a call signed with the new key is sent until the worker
                         takes it, every execution then calls the new target in the old one's
                         place, and the old target is deleted (needs action.target.delete). A run
                         that stops halfway goes on when run again
  --rotate-encryption-key
                         make and activate a new encryption key pair (ZITADEL deactivates the
                         old one) and store \"<new>,<old>\" as PAYLOAD_DECRYPTION_KEY, so calls
                         encrypted just before the switch still open
  --finish-rotation      after a rotation: store only the current signing key, and only the
                         active encryption key; remove the inactive public keys from the target
                         and their private keys from the key file
  --connect              also provision the connect flow (see above); needs --worker-url, whose
                         origin is the worker's
  --connect-project <id> the project of the connect app (default: the project named --name)
  --introspection        with --connect: also the API app \"<name>-introspection\" (HTTP Basic) and
                         the worker's secret INTROSPECTION_CLIENT_SECRET (see above)
  --exchange-client <client id>
                         with --connect: a back end that may exchange its users' tokens at
                         <worker origin>/token, named by the ZITADEL client id of the app whose
                         user tokens it exchanges (312909075212468632@project); repeat it for each
                         back end. Each run replaces the whole TOKEN_EXCHANGE_CLIENTS: name every
                         back end each time
  --env <name>           the wrangler environment the worker is deployed to (`wrangler deploy --env
                         <name>`): passed to every wrangler command
  --dry-run              print the plan: with ZITADEL_PAT, only reads go to ZITADEL (searches and
                         gets) and the plan says what would be created, changed or left alone;
                         without it, every call is printed with placeholders. Nothing is written
  --allow-http           allow http:// in --domain and --worker-url (local testing only)
  --version              print the tool's version
  -h, --help             print this text

--rotate, --rotate-encryption-key and --finish-rotation exclude each other: rotate one key at a
time, and finish it before the next. With any of them, --worker-url is optional: without it only
the key is handled; with it the target and its bindings are provisioned too (a rotation gives its
new target that endpoint and the bindings asked for). --rotate keeps the payload type.

Before it writes anything, the tool reads the worker's <origin>/healthz and stops when nothing
answers, when something else answers (a 404, not the worker's JSON), or when the worker misses a
setting the tool does not store. After `wrangler secret put` it waits until /healthz no longer
names what was stored, then binds the target, then sends one call signed with the target's key
(the sample of `npm run sample`) and prints the claims that came back.

Environment:
  ZITADEL_PAT      (required) a personal access token with action.target.read,
                   action.target.write, action.execution.read and action.execution.write (with
                   --rotate also action.target.delete; with --connect also project.read,
                   project.create, project.app.read and project.app.write, in the organization
                   of the token's user), e.g. of a service user with the IAM_OWNER role
  SETUP_WRANGLER   a program to run instead of `npx wrangler`
  SETUP_WAIT_SECONDS
                   how long to wait for the worker to take a stored secret (default: 60)

Exit status: 0 done, 1 failed (the message says why), 2 wrong usage or ZITADEL_PAT not set.
";

/// ZITADEL refuses a longer target timeout (validate rule of UpdateTargetRequest.timeout).
const MAX_TIMEOUT_SECONDS: u64 = 270;

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    /// `--version`.
    Version,
    /// Boxed: the options are large beside `Help`.
    Run(Box<Options>),
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

/// The command line as clap reads it. A value option is a `Vec` (clap appends each occurrence)
/// so that its value parser (see [`Reading`]) checks a repeat's value before refusing the repeat,
/// as the messages always did; clap refuses a repeated switch itself. `--exchange-client` alone
/// may be repeated (one back end each); [`options`] refuses a client id given twice. `stray` takes
/// the first argument that is neither (an unknown option, a lone value) and all after it, to
/// refuse it.
#[derive(Parser, Debug)]
#[command(no_binary_name = true, disable_help_flag = true, disable_version_flag = true, override_help = USAGE)]
struct Args {
    /// `--help`. The short `-h` is read in `stray`: clap would also take `-hh` for help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    // A value option takes the next argument whatever it is, as the tool always did (`--name -x`);
    // its value parser refuses one that starts with `--` (`--domain --worker-url x`).
    #[arg(long, allow_hyphen_values = true)]
    domain: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    worker_url: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    name: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    timeout: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    payload_type: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    key_type: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    key_file: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    connect_project: Vec<String>,
    #[arg(long, allow_hyphen_values = true)]
    exchange_client: Vec<String>,
    #[arg(long)]
    interrupt_on_error: bool,
    #[arg(long)]
    no_interrupt_on_error: bool,
    #[arg(long)]
    userinfo: bool,
    #[arg(long)]
    saml: bool,
    #[arg(long)]
    capture_idp_tokens: bool,
    #[arg(long)]
    rotate: bool,
    #[arg(long)]
    rotate_encryption_key: bool,
    #[arg(long)]
    finish_rotation: bool,
    #[arg(long)]
    connect: bool,
    #[arg(long)]
    introspection: bool,
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    version: bool,
    #[arg(long, allow_hyphen_values = true)]
    env: Vec<String>,
    #[arg(long)]
    allow_http: bool,
    #[arg(hide = true, num_args = 1.., allow_hyphen_values = true)]
    stray: Vec<String>,
}

/// Why reading the command line stops before the options are checked.
#[derive(Debug, Clone)]
enum Stop {
    Help,
    Usage(UsageError),
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Help => f.write_str("help"),
            Stop::Usage(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Stop {}

fn stop(message: impl Into<String>) -> Stop {
    Stop::Usage(usage(message))
}

/// What the value parsers have seen of one command line; clap calls them in the order of the
/// arguments.
struct Reading {
    /// The arguments, to tell `--opt value` from `--opt=value`.
    args: Vec<String>,
    /// How often each value option came so far.
    counts: Vec<(String, usize)>,
    /// The first wrong argument. When the argument after a value is itself wrong (`--userinfo=x`),
    /// clap reports that one and drops the value parser's error; the earlier one is kept here.
    first_stop: Option<Stop>,
}

impl Reading {
    /// Counts an occurrence of `flag`; how many there were, this one included.
    fn count(&mut self, flag: &str) -> usize {
        match self.counts.iter_mut().find(|(f, _)| f == flag) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.counts.push((flag.to_string(), 1));
                1
            }
        }
    }

    /// Whether the `occurrence`th `flag` is `--opt value` (not `--opt=value`). No earlier argument
    /// that looks like `flag` was taken as a value: such a value stops the reading at once.
    fn value_apart(&self, flag: &str, occurrence: usize) -> bool {
        let mut spellings =
            self.args.iter().filter(|a| a.strip_prefix(flag).is_some_and(|r| r.is_empty() || r.starts_with('=')));
        spellings.nth(occurrence - 1).is_some_and(|a| a == flag)
    }

    fn keep<T>(&mut self, result: Result<T, Stop>) -> Result<T, Stop> {
        if let Err(stop) = &result {
            self.first_stop.get_or_insert_with(|| stop.clone());
        }
        result
    }
}

/// The value parser of the value option `flag`: the value, unless it is missing (`--opt` followed
/// by an argument that starts with `--`) or the option came before and is not `repeatable`.
fn option_value(
    reading: &Arc<Mutex<Reading>>,
    flag: String,
    repeatable: bool,
) -> impl Fn(&str) -> Result<String, Stop> + Clone + Send + Sync + 'static {
    let reading = Arc::clone(reading);
    move |value: &str| {
        let mut reading = reading.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let occurrence = reading.count(&flag);
        let result = if value.starts_with("--") && reading.value_apart(&flag, occurrence) {
            Err(stop(format!("{flag} needs a value")))
        } else if occurrence > 1 && !repeatable {
            Err(stop(format!("{flag} is given twice")))
        } else {
            Ok(value.to_string())
        };
        reading.keep(result)
    }
}

/// The value parser of `stray`: every argument that is no known option stops the reading.
fn stray(reading: &Arc<Mutex<Reading>>) -> impl Fn(&str) -> Result<String, Stop> + Clone + Send + Sync + 'static {
    let reading = Arc::clone(reading);
    move |value: &str| {
        let result = Err(if value == "-h" {
            Stop::Help
        } else if let Some(long) = value.strip_prefix("--") {
            // `--opt=value` names `--opt`.
            stop(format!("unknown option --{}", long.split('=').next().unwrap_or_default()))
        } else if value.starts_with('-') {
            // The one short option is `-h`; `-hx`, `-h=x` and a lone `-` are named whole.
            stop(format!("unknown option {value}"))
        } else {
            stop(format!("unexpected argument {value:?} (options start with --)"))
        });
        reading.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).keep(result)
    }
}

/// The tool's message for an error of clap's own.
fn clap_stop(error: &clap::Error) -> Stop {
    // The option's name, without the `<VALUE>` clap adds.
    let flag = error
        .get(ContextKind::InvalidArg)
        .map(|arg| arg.to_string())
        .and_then(|arg| arg.split(' ').next().map(str::to_string))
        .unwrap_or_default();
    match error.kind() {
        ErrorKind::DisplayHelp => Stop::Help,
        // `--help=x` was always help.
        ErrorKind::TooManyValues if flag == "--help" => Stop::Help,
        ErrorKind::TooManyValues => stop(format!("{flag} takes no value")),
        ErrorKind::ArgumentConflict => stop(format!("{flag} is given twice")),
        // The last argument is a value option.
        ErrorKind::InvalidValue => stop(format!("{flag} needs a value")),
        // Not reached: `stray` takes what clap would call unknown.
        _ => stop(error.kind().as_str().unwrap_or("the command line cannot be read").to_string()),
    }
}

/// Parses the arguments after the program name. `--opt value` and `--opt=value` both work.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator<Item = String>,
{
    let mut args: Vec<String> = args.into_iter().collect();
    // For clap a lone `--` ends the options; this tool has no such marker. What comes before it is
    // read as always; if that is right, the `--` is the unknown option.
    let marker = args.iter().position(|a| a == "--");
    if let Some(at) = marker {
        args.truncate(at);
    }
    let reading = Arc::new(Mutex::new(Reading { args: args.clone(), counts: Vec::new(), first_stop: None }));
    let command = Args::command().mut_args(|arg| {
        if arg.is_positional() {
            arg.value_parser(stray(&reading))
        } else if arg.get_action().takes_values() {
            let flag = format!("--{}", arg.get_long().unwrap_or_default());
            let repeatable = flag == "--exchange-client";
            arg.value_parser(option_value(&reading, flag, repeatable))
        } else {
            arg
        }
    });
    let read = command.try_get_matches_from(args).and_then(|matches| Args::from_arg_matches(&matches));
    let first_stop = reading.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).first_stop.take();
    let args = match (read, first_stop) {
        (_, Some(stop)) => Err(stop),
        (Err(error), None) => Err(clap_stop(&error)),
        (Ok(_), None) if marker.is_some() => Err(stop("unknown option --")),
        (Ok(args), None) => Ok(args),
    };
    match args {
        Ok(args) if args.version => Ok(Command::Version),
        Ok(args) => options(args).map(|options| Command::Run(Box::new(options))),
        Err(Stop::Help) => Ok(Command::Help),
        Err(Stop::Usage(e)) => Err(e),
    }
}

fn options(raw: Args) -> Result<Options, UsageError> {
    // A repeat stopped the reading: a value option holds one value at most.
    let [domain, worker, name, duration, payload, pair, key_file, connect_project, wrangler_env] = [
        raw.domain,
        raw.worker_url,
        raw.name,
        raw.timeout,
        raw.payload_type,
        raw.key_type,
        raw.key_file,
        raw.connect_project,
        raw.env,
    ]
    .map(|values| values.into_iter().next());
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
    let payload_type = match payload.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("json") => Some(PayloadType::Json),
        Some("jwt") => Some(PayloadType::Jwt),
        Some("jwe") => Some(PayloadType::Jwe),
        Some(_) => return Err(usage("--payload-type must be json, jwt or jwe")),
    };
    let key_type = match pair.as_deref().map(str::to_ascii_lowercase).as_deref() {
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
    if pair.is_some() && !makes_keys {
        return Err(usage("--key-type is for the key pair of --payload-type jwe or --rotate-encryption-key"));
    }
    if key_file.is_some() && !makes_keys && key_action != KeyAction::FinishRotation {
        return Err(usage("--key-file is for --payload-type jwe, --rotate-encryption-key and --finish-rotation"));
    }
    let key_file = key_file.unwrap_or_else(|| DEFAULT_KEY_FILE.to_string());
    if key_file.trim().is_empty() {
        return Err(usage("--key-file needs a path"));
    }
    let domain = domain.ok_or_else(|| usage("--domain is required (your ZITADEL instance)"))?;
    let base_url = base_url(&domain, raw.allow_http)?;
    let worker_url = match worker {
        Some(url) => Some(worker_url(&url, raw.allow_http)?),
        None if key_action == KeyAction::Store => {
            return Err(usage("--worker-url is required (the worker's https:// endpoint)"));
        }
        None => None,
    };
    if worker_url.is_none() {
        let given = [
            ("--timeout", duration.is_some()),
            ("--payload-type", payload.is_some()),
            ("--interrupt-on-error", raw.interrupt_on_error),
            ("--no-interrupt-on-error", raw.no_interrupt_on_error),
            ("--userinfo", raw.userinfo),
            ("--saml", raw.saml),
            ("--capture-idp-tokens", raw.capture_idp_tokens),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            return Err(usage(format!("{flag} changes the target or its bindings: give --worker-url too")));
        }
    }
    if key_action == KeyAction::Rotate && payload.is_some() {
        // The rotation copies the target (and a jwe target's key); a switch makes keys of its own.
        return Err(usage(
            "--rotate keeps the target's payload type: change it with --payload-type in a run without --rotate",
        ));
    }
    let name = name.unwrap_or_else(|| "zitadel-claims".to_string());
    if name.trim().is_empty() || name.len() > 1000 {
        return Err(usage("--name must be 1 to 1000 characters"));
    }
    let timeout = duration.as_deref().map(timeout).transpose()?;
    let interrupt_on_error = match (raw.interrupt_on_error, raw.no_interrupt_on_error) {
        (true, true) => return Err(usage("--interrupt-on-error and --no-interrupt-on-error exclude each other")),
        (true, false) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    };
    let connect = match (raw.connect, &worker_url) {
        (false, _) if connect_project.is_some() => return Err(usage("--connect-project is for --connect")),
        (false, _) if raw.introspection => return Err(usage("--introspection is for --connect")),
        (false, _) if !raw.exchange_client.is_empty() => return Err(usage("--exchange-client is for --connect")),
        (false, _) => None,
        (true, None) => {
            return Err(usage(
                "--connect needs --worker-url: the connect flow's redirect URIs are on the worker's origin",
            ))
        }
        (true, Some(url)) => Some(Connect {
            origin: origin(url)?,
            project_id: project_id(connect_project)?,
            introspection: raw.introspection,
            exchange_clients: exchange_clients(raw.exchange_client)?,
        }),
    };
    Ok(Options {
        base_url,
        worker_url,
        name,
        timeout,
        interrupt_on_error,
        userinfo: raw.userinfo,
        saml: raw.saml,
        capture_idp_tokens: raw.capture_idp_tokens,
        key_action,
        payload_type,
        key_type,
        key_file,
        connect,
        dry_run: raw.dry_run,
        env: wrangler_env.map(|e| env_name(&e)).transpose()?,
    })
}

/// The origin (`scheme://host[:port]`, no default port) of a URL `worker_url` checked.
fn origin(worker_url: &str) -> Result<String, UsageError> {
    match Url::parse(worker_url).map(|url| url.origin()) {
        Ok(origin @ url::Origin::Tuple(..)) => Ok(origin.ascii_serialization()),
        _ => Err(usage(format!("--worker-url {worker_url:?} has no origin"))),
    }
}

/// `--connect-project`: a project id (ZITADEL's ids are digits; anything else is sent as one path
/// segment and ZITADEL answers).
fn project_id(value: Option<String>) -> Result<Option<String>, UsageError> {
    match value {
        Some(id) if id.trim().is_empty() || id.len() > 200 || id.contains(char::is_whitespace) => {
            Err(usage("--connect-project must be a project id such as 312909075212468632"))
        }
        other => Ok(other),
    }
}

/// `--exchange-client`, each value a client id such as `312909075212468632@project`: not empty,
/// without `,` and `:` (they separate the entries of `TOKEN_EXCHANGE_CLIENTS`, `id:secret,...`) or
/// whitespace, each once.
fn exchange_clients(ids: Vec<String>) -> Result<Vec<String>, UsageError> {
    let mut seen: Vec<String> = Vec::new();
    for id in ids {
        if id.is_empty() {
            return Err(usage("--exchange-client needs a client id such as 312909075212468632@project"));
        }
        if id.contains([',', ':']) || id.contains(char::is_whitespace) {
            return Err(usage(format!(
                "--exchange-client {id:?}: a client id has no \",\", \":\" or whitespace (TOKEN_EXCHANGE_CLIENTS is \"<client id>:<secret>\", comma-separated)"
            )));
        }
        if seen.contains(&id) {
            return Err(usage(format!("--exchange-client {id:?} is given twice")));
        }
        seen.push(id);
    }
    Ok(seen)
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

/// `--env`: a wrangler environment's name (a table name in wrangler.toml: letters, digits, `-`, `_`).
fn env_name(value: &str) -> Result<String, UsageError> {
    let ok = !value.is_empty()
        && value.len() <= 100
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(value.to_string())
    } else {
        Err(usage(format!(
            "--env {value:?}: give the name of an environment of wrangler.toml (letters, digits, - and _)"
        )))
    }
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
            Command::Run(options) => Ok(*options),
            other => panic!("expected options, got {other:?}"),
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
                timeout: None,
                interrupt_on_error: None,
                userinfo: false,
                saml: false,
                capture_idp_tokens: false,
                key_action: KeyAction::Store,
                payload_type: None,
                key_type: KeyType::Rsa,
                key_file: ".payload-decryption-keys".into(),
                connect: None,
                dry_run: false,
                env: None,
            }
        );
    }

    #[test]
    fn connect_takes_the_worker_urls_origin_and_an_optional_project() {
        let base = ["--domain", "z.cloud", "--connect"];
        let with = |extra: &[&str]| run(&[&base[..], extra].concat());
        let o = with(&["--worker-url", "https://W.example.workers.dev:443/claims/hook?x=1"]).unwrap();
        assert_eq!(
            o.connect,
            Some(Connect {
                origin: "https://w.example.workers.dev".into(),
                project_id: None,
                introspection: false,
                exchange_clients: vec![],
            })
        );
        let local = with(&["--worker-url", "http://127.0.0.1:8787/", "--allow-http", "--connect-project=42"]).unwrap();
        assert_eq!(
            local.connect,
            Some(Connect {
                origin: "http://127.0.0.1:8787".into(),
                project_id: Some("42".into()),
                introspection: false,
                exchange_clients: vec![],
            })
        );
        assert!(err(&["--domain", "z.cloud", "--rotate", "--connect"]).starts_with("--connect needs --worker-url"));
        assert_eq!(
            err(&["--domain", "z", "--worker-url", "https://w.dev/", "--connect-project", "42"]),
            "--connect-project is for --connect"
        );
        assert!(with(&["--worker-url", "https://w.dev/", "--connect-project", " "]).is_err());
        assert_eq!(
            err(&["--domain", "z", "--worker-url", "https://w.dev/", "--connect", "--connect"]),
            "--connect is given twice"
        );
    }

    #[test]
    fn introspection_and_exchange_clients_go_with_connect() {
        let base = ["--domain", "z.cloud", "--worker-url", "https://w.dev/", "--connect"];
        let with = |extra: &[&str]| run(&[&base[..], extra].concat()).map(|o| o.connect.unwrap());
        let none = with(&[]).unwrap();
        assert!(!none.introspection && none.exchange_clients.is_empty());
        let all = with(&[
            "--introspection",
            "--exchange-client",
            "312909075212468632@project",
            "--exchange-client=b",
            "--exchange-client",
            "-c",
        ])
        .unwrap();
        assert!(all.introspection);
        assert_eq!(all.exchange_clients, ["312909075212468632@project", "b", "-c"], "in the order given");

        let err = |extra: &[&str]| with(extra).expect_err("expected a usage error").0;
        assert_eq!(err(&["--introspection", "--introspection"]), "--introspection is given twice");
        assert_eq!(err(&["--introspection=yes"]), "--introspection takes no value");
        assert_eq!(
            err(&["--exchange-client", "a", "--exchange-client", "a"]),
            "--exchange-client \"a\" is given twice"
        );
        assert_eq!(
            err(&["--exchange-client=a", "--exchange-client", "b", "--exchange-client=a"]),
            "--exchange-client \"a\" is given twice"
        );
        assert_eq!(err(&["--exchange-client", "--introspection"]), "--exchange-client needs a value");
        assert_eq!(err(&["--exchange-client", "a", "--exchange-client"]), "--exchange-client needs a value");
        assert!(err(&["--exchange-client="]).starts_with("--exchange-client needs a client id"));
        assert!(err(&["--exchange-client", ""]).starts_with("--exchange-client needs a client id"));
        for bad in ["a,b", "a:b", "a b", " a", "a\t", "\u{a0}a"] {
            let message = err(&["--exchange-client", bad]);
            assert!(
                message.starts_with(&format!("--exchange-client {bad:?}: a client id has no")),
                "{bad:?}: {message}"
            );
        }

        // Only with --connect.
        let without = ["--domain", "z.cloud", "--worker-url", "https://w.dev/"];
        let err = |extra: &[&str]| run(&[&without[..], extra].concat()).expect_err("expected a usage error").0;
        assert_eq!(err(&["--introspection"]), "--introspection is for --connect");
        assert_eq!(err(&["--exchange-client", "a"]), "--exchange-client is for --connect");
        assert_eq!(err(&["--exchange-client", "a", "--exchange-client", "b"]), "--exchange-client is for --connect");
        assert!(self::err(&["--domain", "z", "--rotate", "--introspection"]).starts_with("--introspection is for"));
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
        assert_eq!(o.timeout.as_deref(), Some("2.5s"));
        assert_eq!(o.interrupt_on_error, Some(true));
        assert!(o.userinfo && o.capture_idp_tokens && o.dry_run);
    }

    #[test]
    fn no_interrupt_on_error_is_said_and_excludes_its_opposite() {
        let base = ["--domain", "z", "--worker-url", "https://w.example/"];
        let o = run(&[&base[..], &["--no-interrupt-on-error"]].concat()).unwrap();
        assert_eq!(o.interrupt_on_error, Some(false));
        let err = run(&[&base[..], &["--interrupt-on-error", "--no-interrupt-on-error"]].concat()).unwrap_err();
        assert_eq!(err.0, "--interrupt-on-error and --no-interrupt-on-error exclude each other");
        let err = run(&["--domain", "z", "--rotate", "--no-interrupt-on-error"]).unwrap_err();
        assert!(err.0.starts_with("--no-interrupt-on-error changes the target"), "{}", err.0);
    }

    #[test]
    fn a_rotation_keeps_the_payload_type() {
        let err = run(&["--domain", "z", "--rotate", "--worker-url", "https://w.example/", "--payload-type", "jwe"])
            .unwrap_err();
        assert!(err.0.starts_with("--rotate keeps the target's payload type"), "{}", err.0);
    }

    #[test]
    fn version_and_env() {
        assert_eq!(parse(["--version".into()]).unwrap(), Command::Version);
        assert_eq!(parse(["--domain".into(), "z".into(), "--version".into()]).unwrap(), Command::Version);
        let o = run(&["--domain", "z", "--worker-url", "https://w.example/", "--env", "staging"]).unwrap();
        assert_eq!(o.env.as_deref(), Some("staging"));
        let err = run(&["--domain", "z", "--worker-url", "https://w.example/", "--env", "a b"]).unwrap_err();
        assert!(err.0.starts_with("--env \"a b\": give the name of an environment"), "{}", err.0);
        let err =
            run(&["--domain", "z", "--worker-url", "https://w.example/", "--env", "a", "--env", "b"]).unwrap_err();
        assert_eq!(err.0, "--env is given twice");
    }

    #[test]
    fn help_wins_wherever_it_stands() {
        assert_eq!(parse(["--domain".into(), "x".into(), "--help".into()]).unwrap(), Command::Help);
        assert_eq!(parse(["-h".into()]).unwrap(), Command::Help);
    }

    #[test]
    fn odd_command_lines_read_as_they_always_did() {
        let base = ["--domain", "z.cloud", "--worker-url", "https://w.dev/"];
        let with = |extra: &[&str]| run(&[&base[..], extra].concat());
        // A value option takes the next argument unless that starts with `--`.
        assert_eq!(with(&["--name", "-x"]).unwrap().name, "-x");
        assert_eq!(with(&["--name=--x"]).unwrap().name, "--x");
        assert_eq!(err(&["--name", "--x", "--domain", "z"]), "--name needs a value");
        // The first wrong argument is named, also where clap would name a later one.
        assert_eq!(err(&["--domain", "--x", "--userinfo=1"]), "--domain needs a value");
        assert_eq!(err(&["--domain", "a", "--domain", "--x"]), "--domain needs a value");
        assert_eq!(err(&["--domain", "a", "--domain", "b", "--frobnicate"]), "--domain is given twice");
        assert_eq!(err(&["stray", "--frobnicate"]), "unexpected argument \"stray\" (options start with --)");
        // `--` ends no options; `-h` is the one short option.
        assert_eq!(with(&["--"]).unwrap_err().0, "unknown option --");
        for odd in ["-", "-x", "-hx", "-h=x", "-hh"] {
            assert_eq!(err(&[odd]), format!("unknown option {odd}"));
        }
        assert_eq!(err(&["--frobnicate=1"]), "unknown option --frobnicate");
        assert_eq!(parse(["--help=x".into()]).unwrap(), Command::Help);
        assert_eq!(parse(["-h".into(), "--".into()]).unwrap(), Command::Help);
        assert_eq!(Args::command().render_help().to_string(), USAGE);
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
