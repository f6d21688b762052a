//! Settings: read once per isolate from the Worker's vars and secrets into a typed [`Config`].
//!
//! [`Config::from_lookup`] takes a function from setting name to value, so it is tested without a
//! runtime. Every problem is collected, named by its setting, and described without its value.
//! Values are trimmed and an empty value counts as not set, except for claim names, where the
//! empty string turns that claim off.

use crate::connect::return_to::ReturnUrls;
use crate::contract::id::is_zitadel_id;
use crate::runtime::deadline::MAX_UPSTREAM_TIMEOUT_MS;
use crate::seal::SealingKeys;
use crate::secret::{DecryptionKey, Secret, SigningKey};

/// One setting that is missing or invalid. `problem` never contains the setting's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub setting: &'static str,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Credentials {
    /// A personal access token, sent as `Authorization: Bearer`.
    AccessToken(Secret),
    /// A service user's client id and secret, exchanged for a token (client-credentials grant).
    ClientCredentials { client_id: String, client_secret: Secret },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZitadelApiConfig {
    /// `https://<ZITADEL_DOMAIN>`, or the URL as given; no trailing slash.
    pub base_url: String,
    pub credentials: Credentials,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PermissionsConfig {
    pub claim: String,
    /// Only grants of this project count.
    pub project_id: Option<String>,
    /// Read the mapping of this organization instead of the user's.
    pub org_id: Option<String>,
    /// Only metadata keys with this prefix are mappings; the rest of the key is the role.
    pub metadata_prefix: String,
    /// `PERMISSIONS_MAPPING_MAX_BYTES`: the most one organization's mapping may hold (keys and
    /// values); reading stops there, and the claim is left out.
    pub mapping_max_bytes: usize,
    /// `PERMISSIONS_CACHE_MAX_BYTES`: the most the isolate keeps of all organizations' mappings;
    /// the oldest are dropped first.
    pub cache_max_bytes: usize,
    /// `PERMISSIONS_CLAIM_MAX_BYTES`: the largest permissions claim (its JSON); a larger one is
    /// left out.
    pub claim_max_bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MsTokenConfig {
    pub metadata_key: String,
    /// Where the refresh token and the expiry (unix seconds) are stored beside the access token.
    pub refresh_token_metadata_key: String,
    pub expires_at_metadata_key: String,
    pub claim: String,
    pub in_userinfo: bool,
    /// The OIDC clients (`application.client_id`) whose tokens get the claim; the claim is off
    /// when `MS_TOKEN_CLIENT_IDS` is unset.
    pub clients: Option<MsTokenClients>,
    /// ZITADEL's Microsoft identity provider: the sign-in capture takes tokens from it only, and
    /// is off without it.
    pub idp_id: Option<String>,
    /// Set when `MS_CLIENT_ID` and `MS_CLIENT_SECRET` are: stale tokens are then refreshed.
    pub refresh: Option<MsRefreshConfig>,
    /// `MS_ACCEPT_UNSEALED`: with a sealing key, still pass on an access token stored in clear (to
    /// migrate users); a refresh token in clear is never redeemed either way.
    pub accept_unsealed: bool,
}

/// The connect flow's own settings (`CONNECT_CLIENT_ID` and `CONNECT_RETURN_URLS` set). The flow is
/// on when the ZITADEL API, the Microsoft app and the sealing key are configured as well
/// ([`Config::connect_needs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectConfig {
    /// The worker's OIDC application in ZITADEL (a public client with PKCE).
    pub client_id: String,
    pub return_urls: ReturnUrls,
    /// The worker's public origin, when the request's own origin is not the one registered.
    pub public_url: Option<String>,
    /// The `iss` values accepted in ZITADEL's ID token: the `ZITADEL_DOMAIN` URL, then
    /// `ZITADEL_ISSUERS` (custom domains).
    pub issuers: Vec<String>,
    /// Microsoft, as data: a second provider would be another value, not new code.
    pub provider: ConnectProvider,
}

/// An identity provider the worker connects users to, as data.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectProvider {
    /// Its name in the routes: `/connect/{name}` and `/connect/{name}/callback`.
    pub name: &'static str,
    pub authorize_url: String,
    /// What the worker asks for: `openid` and `MS_SCOPES`.
    pub scopes: String,
    /// ZITADEL's identity provider for it (`MS_IDP_ID`): a user linked there must connect the
    /// linked account.
    pub idp_id: Option<String>,
}

/// The token exchange's own settings (`TOKEN_EXCHANGE_CLIENTS` set). The exchange is on when the
/// connect flow is ([`Config::exchange_needs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeConfig {
    /// The back ends that may exchange, each with its secret.
    pub clients: Vec<ExchangeClient>,
    /// `INTROSPECTION_CLIENT_ID` and `INTROSPECTION_CLIENT_SECRET`: an API application of ZITADEL,
    /// to check opaque subject tokens with. Without it only JWT access tokens are accepted.
    pub introspection: Option<ExchangeClient>,
}

/// A client id and its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeClient {
    pub id: String,
    pub secret: Secret,
}

/// A feature of the worker and whether its settings turn it on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Feature {
    pub name: &'static str,
    pub on: bool,
    /// What to set to turn it on (empty when on).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<&'static str>,
}

/// `MS_TOKEN_CLIENT_IDS`: `*`, or a comma-separated list of client ids.
#[derive(Debug, Clone, PartialEq)]
pub enum MsTokenClients {
    /// Every client, and payloads that name none (older ZITADEL).
    All,
    Only(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MsRefreshConfig {
    /// The Entra app of ZITADEL's Microsoft identity provider (refresh tokens are bound to it).
    pub client_id: String,
    pub client_secret: Secret,
    pub token_url: String,
    pub scopes: String,
    pub skew_seconds: u64,
    pub on_error: MsRefreshPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsRefreshPolicy {
    /// Leave the claim out when a refresh fails for a passing reason (timeout, network, 5xx).
    Omit,
    /// Use the old token then, if it has not expired yet.
    Stale,
}

/// `IMPERSONATION_PERMISSIONS`: the permissions claim of a token issued to someone impersonating
/// the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImpersonationPolicy {
    /// The user's permissions, as for the user's own token (ZITADEL's roles go into it too).
    Keep,
    /// No permissions claim.
    Omit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamPolicy {
    /// Answer without the claims that need the failed upstream.
    Omit,
    /// Answer 502 so that a target with `interruptOnError` stops token issuance.
    Fail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Every key that may have signed a call: several during a rotation.
    pub signing_keys: Vec<SigningKey>,
    pub signature_tolerance_seconds: u64,
    /// The ZITADEL API: required for the permissions claim, and used to store captured tokens.
    pub zitadel: Option<ZitadelApiConfig>,
    pub permissions: Option<PermissionsConfig>,
    pub flat_roles_claim: Option<String>,
    pub groups_claim: Option<String>,
    pub ms_token: Option<MsTokenConfig>,
    /// `TOKEN_SEALING_KEY`: every token the worker writes is sealed with the first key, and sealed
    /// values open with any of them.
    pub sealing: Option<SealingKeys>,
    /// The connect flow's own settings, when given.
    pub connect: Option<ConnectConfig>,
    /// The token exchange's own settings, when given.
    pub exchange: Option<ExchangeConfig>,
    pub cache_ttl_seconds: u64,
    pub stale_if_error_seconds: u64,
    pub upstream_timeout_ms: u64,
    pub on_upstream_error: UpstreamPolicy,
    pub impersonation_permissions: ImpersonationPolicy,
    pub log_claims: bool,
    /// Signed and encrypted payloads.
    pub payload: PayloadConfig,
}

/// Which payload types are accepted, and what checking and opening them needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadConfig {
    pub json: bool,
    pub jwt: bool,
    pub jwe: bool,
    /// The instance's key set, `{ZITADEL_DOMAIN}/oauth/v2/keys`, when the domain is set.
    pub jwks_url: Option<String>,
    /// The target's private keys, newest first.
    pub decryption_keys: Vec<DecryptionKey>,
}

pub const ZITADEL_SIGNING_KEY: &str = "ZITADEL_SIGNING_KEY";
/// The name ZITADEL's reference worker uses, read when [`ZITADEL_SIGNING_KEY`] is not set.
pub const AUTHORIZATION_SIGNING_KEY: &str = "AUTHORIZATION_SIGNING_KEY";
pub const SIGNATURE_TOLERANCE_SECONDS: &str = "SIGNATURE_TOLERANCE_SECONDS";
pub const ZITADEL_DOMAIN: &str = "ZITADEL_DOMAIN";
pub const ZITADEL_ACCESS_TOKEN: &str = "ZITADEL_ACCESS_TOKEN";
/// The reference worker's name for the access token.
pub const ACCESS_TOKEN: &str = "ACCESS_TOKEN";
pub const ZITADEL_CLIENT_ID: &str = "ZITADEL_CLIENT_ID";
pub const ZITADEL_CLIENT_SECRET: &str = "ZITADEL_CLIENT_SECRET";
pub const PERMISSIONS_CLAIM: &str = "PERMISSIONS_CLAIM";
pub const PERMISSIONS_PROJECT_ID: &str = "PERMISSIONS_PROJECT_ID";
pub const PERMISSIONS_ORG_ID: &str = "PERMISSIONS_ORG_ID";
pub const PERMISSIONS_METADATA_PREFIX: &str = "PERMISSIONS_METADATA_PREFIX";
pub const PERMISSIONS_MAPPING_MAX_BYTES: &str = "PERMISSIONS_MAPPING_MAX_BYTES";
pub const PERMISSIONS_CACHE_MAX_BYTES: &str = "PERMISSIONS_CACHE_MAX_BYTES";
pub const PERMISSIONS_CLAIM_MAX_BYTES: &str = "PERMISSIONS_CLAIM_MAX_BYTES";
pub const FLAT_ROLES_CLAIM: &str = "FLAT_ROLES_CLAIM";
pub const GROUPS_CLAIM: &str = "GROUPS_CLAIM";
pub const MS_TOKEN_METADATA_KEY: &str = "MS_TOKEN_METADATA_KEY";
pub const MS_TOKEN_CLAIM: &str = "MS_TOKEN_CLAIM";
pub const MS_TOKEN_IN_USERINFO: &str = "MS_TOKEN_IN_USERINFO";
pub const MS_TOKEN_CLIENT_IDS: &str = "MS_TOKEN_CLIENT_IDS";
pub const MS_IDP_ID: &str = "MS_IDP_ID";
pub const MS_ACCEPT_UNSEALED: &str = "MS_ACCEPT_UNSEALED";
pub const TOKEN_SEALING_KEY: &str = "TOKEN_SEALING_KEY";
pub const CONNECT_CLIENT_ID: &str = "CONNECT_CLIENT_ID";
pub const CONNECT_RETURN_URLS: &str = "CONNECT_RETURN_URLS";
pub const PUBLIC_URL: &str = "PUBLIC_URL";
pub const ZITADEL_ISSUERS: &str = "ZITADEL_ISSUERS";
pub const MS_AUTHORIZE_URL: &str = "MS_AUTHORIZE_URL";
pub const TOKEN_EXCHANGE_CLIENTS: &str = "TOKEN_EXCHANGE_CLIENTS";
pub const INTROSPECTION_CLIENT_ID: &str = "INTROSPECTION_CLIENT_ID";
pub const INTROSPECTION_CLIENT_SECRET: &str = "INTROSPECTION_CLIENT_SECRET";
pub const MS_CLIENT_ID: &str = "MS_CLIENT_ID";
pub const MS_CLIENT_SECRET: &str = "MS_CLIENT_SECRET";
pub const MS_TENANT: &str = "MS_TENANT";
pub const MS_SCOPES: &str = "MS_SCOPES";
pub const MS_TOKEN_URL: &str = "MS_TOKEN_URL";
pub const MS_REFRESH_TOKEN_METADATA_KEY: &str = "MS_REFRESH_TOKEN_METADATA_KEY";
pub const MS_TOKEN_EXPIRES_AT_METADATA_KEY: &str = "MS_TOKEN_EXPIRES_AT_METADATA_KEY";
pub const MS_REFRESH_SKEW_SECONDS: &str = "MS_REFRESH_SKEW_SECONDS";
pub const MS_ON_REFRESH_ERROR: &str = "MS_ON_REFRESH_ERROR";
pub const METADATA_CACHE_TTL_SECONDS: &str = "METADATA_CACHE_TTL_SECONDS";
pub const METADATA_STALE_IF_ERROR_SECONDS: &str = "METADATA_STALE_IF_ERROR_SECONDS";
pub const UPSTREAM_TIMEOUT_MS: &str = "UPSTREAM_TIMEOUT_MS";
pub const ON_UPSTREAM_ERROR: &str = "ON_UPSTREAM_ERROR";
pub const LOG_CLAIMS: &str = "LOG_CLAIMS";
pub const IMPERSONATION_PERMISSIONS: &str = "IMPERSONATION_PERMISSIONS";
pub const PAYLOAD_TYPES: &str = "PAYLOAD_TYPES";
pub const PAYLOAD_DECRYPTION_KEY: &str = "PAYLOAD_DECRYPTION_KEY";

/// Claims whose names start with this are dropped by ZITADEL without a word.
const RESERVED_CLAIM_PREFIX: &str = "urn:zitadel:iam";

/// The claims zitadel/oidc writes from its own fields (`TokenClaims`, `AccessTokenClaims`,
/// `IDTokenClaims`, `UserInfo` with its profile, email, phone and address, and the introspection
/// answer, pkg/oidc): when it merges a token, these overwrite a target's claim of the same name
/// (`mergeAndMarshalClaims`), so a claim so named never reaches the token as the worker made it.
const REGISTERED_CLAIMS: [&str; 40] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "client_id",
    "act",
    "scope",
    "at_hash",
    "c_hash",
    "sid",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
    "preferred_username",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "address",
    "active",
    "token_type",
    "username",
];

impl Config {
    /// Reads every setting through `get` (name → raw value).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Vec<Problem>> {
        let mut s = Settings { get: &get, problems: Vec::new() };

        let signing_keys = s
            .text(ZITADEL_SIGNING_KEY)
            .or_else(|| s.text(AUTHORIZATION_SIGNING_KEY))
            .map(|list| signing_keys(&list))
            .unwrap_or_default();
        if signing_keys.is_empty() {
            s.problem(
                ZITADEL_SIGNING_KEY,
                format!("is not set (also read as {AUTHORIZATION_SIGNING_KEY}): set it to the target's signing key with `wrangler secret put {ZITADEL_SIGNING_KEY}`"),
            );
        }
        let signature_tolerance_seconds = s.number(SIGNATURE_TOLERANCE_SECONDS, 300, 1, 3600);

        let permissions_claim = s.claim_name(PERMISSIONS_CLAIM, "permissions");
        let flat_roles_claim = s.claim_name(FLAT_ROLES_CLAIM, "my:zitadel:grants");
        let groups_claim = s.claim_name(GROUPS_CLAIM, "");
        let ms_claim = s.claim_name(MS_TOKEN_CLAIM, "urn:custom:ms_access_token");

        // The permissions claim needs the API; the other features that call it (the capture, the
        // connect flow, the exchange) are on when it is configured, and a domain alone is enough
        // for signed payloads (the key set is public).
        let zitadel = match (permissions_claim.is_some(), s.text(ZITADEL_DOMAIN).is_some()) {
            (true, _) => s.zitadel_api(true),
            (false, true) => s.zitadel_api(false),
            (false, false) => None,
        };
        // The permissions read the API, whose client the target builds from `zitadel`; without its
        // settings they are off, and `zitadel_api` reported what is missing.
        let permissions = match (permissions_claim, &zitadel) {
            (Some(claim), Some(_)) => Some(PermissionsConfig {
                claim,
                project_id: s.text(PERMISSIONS_PROJECT_ID),
                org_id: s.text(PERMISSIONS_ORG_ID).filter(|id| {
                    let valid = is_zitadel_id(id);
                    if !valid {
                        s.problem(
                            PERMISSIONS_ORG_ID,
                            "must be an organization id (letters, digits, `_` and `-`, at most 200)".into(),
                        );
                    }
                    valid
                }),
                metadata_prefix: s.text(PERMISSIONS_METADATA_PREFIX).unwrap_or_default(),
                // 1 MiB holds 500 roles of 50 permissions of 30 characters each (about 750 KB).
                mapping_max_bytes: s.number(PERMISSIONS_MAPPING_MAX_BYTES, 1 << 20, 1024, 8 << 20) as usize,
                // 16 MiB: sixteen such mappings, or hundreds of ordinary ones, in a 128 MB isolate.
                cache_max_bytes: s.number(PERMISSIONS_CACHE_MAX_BYTES, 16 << 20, 0, 64 << 20) as usize,
                // 64 KiB: thousands of permissions in one token, far past what a token should carry.
                claim_max_bytes: s.number(PERMISSIONS_CLAIM_MAX_BYTES, 64 << 10, 1024, 1 << 20) as usize,
            }),
            _ => None,
        };
        let ms_token = ms_claim.map(|claim| MsTokenConfig {
            metadata_key: s.text(MS_TOKEN_METADATA_KEY).unwrap_or_else(|| "microsoft_access_token".into()),
            refresh_token_metadata_key: s
                .text(MS_REFRESH_TOKEN_METADATA_KEY)
                .unwrap_or_else(|| "microsoft_refresh_token".into()),
            expires_at_metadata_key: s
                .text(MS_TOKEN_EXPIRES_AT_METADATA_KEY)
                .unwrap_or_else(|| "microsoft_access_token_expires_at".into()),
            claim,
            in_userinfo: s.boolean(MS_TOKEN_IN_USERINFO, false),
            clients: s.text(MS_TOKEN_CLIENT_IDS).and_then(|list| ms_token_clients(&list)),
            idp_id: s.text(MS_IDP_ID),
            refresh: s.ms_refresh(),
            accept_unsealed: s.boolean(MS_ACCEPT_UNSEALED, false),
        });
        let sealing = s.text(TOKEN_SEALING_KEY).and_then(|keys| match SealingKeys::parse(&keys) {
            Ok(keys) => Some(keys),
            Err(problem) => {
                s.problem(TOKEN_SEALING_KEY, problem);
                None
            }
        });

        let cache_ttl_seconds = s.number(METADATA_CACHE_TTL_SECONDS, 60, 0, 86_400);
        let stale_if_error_seconds = s.number(METADATA_STALE_IF_ERROR_SECONDS, 0, 0, 7 * 86_400);
        let upstream_timeout_ms = s.number(UPSTREAM_TIMEOUT_MS, 2000, 50, MAX_UPSTREAM_TIMEOUT_MS);
        let on_upstream_error = match s.text(ON_UPSTREAM_ERROR).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("omit") => UpstreamPolicy::Omit,
            Some("fail") => UpstreamPolicy::Fail,
            Some(_) => {
                s.problem(ON_UPSTREAM_ERROR, "must be `omit` or `fail`".into());
                UpstreamPolicy::Omit
            }
        };
        let impersonation_permissions =
            match s.text(IMPERSONATION_PERMISSIONS).map(|v| v.to_ascii_lowercase()).as_deref() {
                None | Some("keep") => ImpersonationPolicy::Keep,
                Some("omit") => ImpersonationPolicy::Omit,
                Some(_) => {
                    s.problem(IMPERSONATION_PERMISSIONS, "must be `keep` or `omit`".into());
                    ImpersonationPolicy::Keep
                }
            };
        let log_claims = s.boolean(LOG_CLAIMS, false);
        let payload = s.payload();
        let connect = s.connect(zitadel.as_ref(), ms_token.as_ref());
        let exchange = s.exchange();

        let config = Config {
            signing_keys,
            signature_tolerance_seconds,
            zitadel,
            permissions,
            flat_roles_claim,
            groups_claim,
            ms_token,
            sealing,
            connect,
            exchange,
            cache_ttl_seconds,
            stale_if_error_seconds,
            upstream_timeout_ms,
            on_upstream_error,
            impersonation_permissions,
            log_claims,
            payload,
        };
        s.check_claim_names_are_distinct(&config);
        if s.problems.is_empty() {
            Ok(config)
        } else {
            Err(s.problems)
        }
    }

    /// Each feature, on or off; when off, the settings that would turn it on (for `/healthz`).
    pub fn features(&self) -> Vec<Feature> {
        let feature = |name, needs: Vec<&'static str>| Feature { name, on: needs.is_empty(), needs };
        let claim = |on: bool, setting| if on { vec![] } else { vec![setting] };
        let ms = self.ms_token.as_ref();
        let ms_claim = match ms {
            None => vec![MS_TOKEN_CLAIM],
            Some(ms) if ms.clients.is_none() => vec![MS_TOKEN_CLIENT_IDS],
            Some(_) => vec![],
        };
        let ms_capture = match ms {
            None => vec![MS_TOKEN_CLAIM],
            Some(ms) => {
                let mut needs = claim(ms.idp_id.is_some(), MS_IDP_ID);
                needs.extend(self.api_needs());
                needs
            }
        };
        let ms_refresh = match ms {
            None => vec![MS_TOKEN_CLAIM],
            Some(ms) => {
                if ms.refresh.is_some() {
                    vec![]
                } else {
                    vec![MS_CLIENT_ID, MS_CLIENT_SECRET]
                }
            }
        };
        vec![
            feature("permissions", claim(self.permissions.is_some(), PERMISSIONS_CLAIM)),
            feature("flat_roles", claim(self.flat_roles_claim.is_some(), FLAT_ROLES_CLAIM)),
            feature("groups", claim(self.groups_claim.is_some(), GROUPS_CLAIM)),
            feature("microsoft_token_claim", ms_claim),
            feature("microsoft_sign_in_capture", ms_capture),
            feature("microsoft_refresh", ms_refresh),
            feature("token_sealing", claim(self.sealing.is_some(), TOKEN_SEALING_KEY)),
            feature("microsoft_connect", self.connect_needs()),
            feature("token_exchange", self.exchange_needs()),
        ]
    }

    /// What the connect flow still needs, by setting name; on when empty.
    pub fn connect_needs(&self) -> Vec<&'static str> {
        let mut needs = self.api_needs();
        match &self.ms_token {
            None => needs.push(MS_TOKEN_CLAIM),
            Some(ms) if ms.refresh.is_none() => needs.extend([MS_CLIENT_ID, MS_CLIENT_SECRET]),
            Some(_) => {}
        }
        if self.sealing.is_none() {
            needs.push(TOKEN_SEALING_KEY);
        }
        if self.connect.is_none() {
            needs.extend([CONNECT_CLIENT_ID, CONNECT_RETURN_URLS]);
        }
        needs
    }

    /// What the features that call the ZITADEL API need of it: the domain, or with the domain
    /// set, credentials.
    fn api_needs(&self) -> Vec<&'static str> {
        match (&self.zitadel, &self.payload.jwks_url) {
            (Some(_), _) => vec![],
            (None, None) => vec![ZITADEL_DOMAIN],
            (None, Some(_)) => vec![ZITADEL_ACCESS_TOKEN],
        }
    }

    /// What the token exchange still needs, by setting name; on when empty: what the connect flow
    /// needs, and `TOKEN_EXCHANGE_CLIENTS`.
    pub fn exchange_needs(&self) -> Vec<&'static str> {
        let mut needs = self.connect_needs();
        if self.exchange.is_none() {
            needs.push(TOKEN_EXCHANGE_CLIENTS);
        }
        needs
    }

    /// The claim names in use, with the setting that names each.
    pub fn claim_names(&self) -> Vec<(&'static str, &str)> {
        let mut names = Vec::new();
        if let Some(p) = &self.permissions {
            names.push((PERMISSIONS_CLAIM, p.claim.as_str()));
        }
        if let Some(c) = &self.flat_roles_claim {
            names.push((FLAT_ROLES_CLAIM, c.as_str()));
        }
        if let Some(c) = &self.groups_claim {
            names.push((GROUPS_CLAIM, c.as_str()));
        }
        if let Some(m) = &self.ms_token {
            names.push((MS_TOKEN_CLAIM, m.claim.as_str()));
        }
        names
    }
}

/// A comma-separated list of keys; blanks around and between entries are dropped. ZITADEL's keys
/// are letters and digits, so a comma never occurs inside one.
fn signing_keys(list: &str) -> Vec<SigningKey> {
    comma_list(list).into_iter().map(SigningKey::new).collect()
}

/// `PAYLOAD_DECRYPTION_KEY`: comma-separated PKCS#8 private keys, each a PEM (`BEGIN PRIVATE
/// KEY`) or the base64 of its DER (or of the PEM) on one line, optionally behind `<key id>:`, the
/// id ZITADEL gave its public key.
fn decryption_keys(list: &str) -> Result<Vec<DecryptionKey>, &'static str> {
    use base64::Engine;
    const NOT_PKCS8: &str = "must hold PKCS#8 private keys: PEMs that begin with `-----BEGIN PRIVATE KEY-----`, or their base64 (convert others with `openssl pkcs8 -topk8 -nocrypt`), separated by commas";
    let from_pem = |pem: &str| {
        let body = pem
            .trim()
            .strip_prefix("-----BEGIN PRIVATE KEY-----")?
            .trim_end()
            .strip_suffix("-----END PRIVATE KEY-----")?;
        let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD.decode(body).ok()
    };
    comma_list(list)
        .into_iter()
        .map(|entry| {
            let (kid, key) = match entry.split_once(':') {
                Some((kid, key)) if !entry.starts_with("-----") => (Some(kid.trim().to_string()), key.trim()),
                _ => (None, entry.as_str()),
            };
            let der = if key.starts_with("-----") {
                from_pem(key)
            } else {
                base64::engine::general_purpose::STANDARD.decode(key).ok().and_then(|bytes| {
                    match std::str::from_utf8(&bytes) {
                        Ok(text) if text.trim_start().starts_with("-----") => from_pem(text),
                        _ => Some(bytes),
                    }
                })
            };
            // A DER SEQUENCE; whether it is a key the runtime can use shows when it decrypts.
            let der = der.filter(|d| d.first() == Some(&0x30)).ok_or(NOT_PKCS8)?;
            Ok(DecryptionKey::new(kid.filter(|k| !k.is_empty()), der))
        })
        .collect()
}

/// `*` alone is every client; a list that names none leaves the claim off, as unset does.
fn ms_token_clients(list: &str) -> Option<MsTokenClients> {
    let ids = comma_list(list);
    if ids == ["*"] {
        return Some(MsTokenClients::All);
    }
    (!ids.is_empty()).then_some(MsTokenClients::Only(ids))
}

/// The entries of a comma-separated list, trimmed, without empty ones.
fn comma_list(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_string).collect()
}

/// `my.zitadel.cloud` → `https://my.zitadel.cloud`; a full http(s) URL is taken as is.
pub fn base_url(domain: &str) -> Option<String> {
    let url = if domain.contains("://") { domain.to_string() } else { format!("https://{domain}") };
    let url = url.trim_end_matches('/').to_string();
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split('/').next().unwrap_or("");
    let valid_host = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    valid_host.then_some(url)
}

/// The origin of an http(s) URL (`scheme://host[:port]`, no path beyond `/`), as given.
fn origin_of(url: &str) -> Option<String> {
    let url = url.trim_end_matches('/');
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let valid = !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    valid.then(|| url.to_string())
}

struct Settings<'a, F> {
    get: &'a F,
    problems: Vec<Problem>,
}

impl<F: Fn(&str) -> Option<String>> Settings<'_, F> {
    fn problem(&mut self, setting: &'static str, problem: String) {
        self.problems.push(Problem { setting, problem });
    }

    fn text(&self, name: &str) -> Option<String> {
        (self.get)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// A whole number in `min..=max`, or `default` when not set.
    fn number(&mut self, name: &'static str, default: u64, min: u64, max: u64) -> u64 {
        let Some(raw) = self.text(name) else { return default };
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(name, format!("must be a whole number from {min} to {max}"));
                default
            }
        }
    }

    fn boolean(&mut self, name: &'static str, default: bool) -> bool {
        match self.text(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => default,
            Some("true" | "1" | "yes" | "on") => true,
            Some("false" | "0" | "no" | "off") => false,
            Some(_) => {
                self.problem(name, "must be `true` or `false`".into());
                default
            }
        }
    }

    /// A claim name: `default` when not set, off (`None`) when set to the empty string.
    fn claim_name(&mut self, name: &'static str, default: &str) -> Option<String> {
        let value = match (self.get)(name) {
            None => default.to_string(),
            Some(v) => v.trim().to_string(),
        };
        if value.is_empty() {
            return None;
        }
        if value.starts_with(RESERVED_CLAIM_PREFIX) {
            self.problem(name, format!("starts with `{RESERVED_CLAIM_PREFIX}`, which ZITADEL silently drops from tokens; choose another name, or set it to the empty string to turn the claim off"));
        }
        if REGISTERED_CLAIMS.contains(&value.as_str()) {
            self.problem(name, format!("is `{value}`, a claim ZITADEL's OIDC library writes itself, over any a target gives; choose another name, or set it to the empty string to turn the claim off"));
        }
        Some(value)
    }

    /// The ZITADEL API settings: `required` by the permissions claim (a problem when missing);
    /// otherwise credentials may be absent, and the API is then off (a half-set pair, or a bad
    /// domain, is still a problem).
    fn zitadel_api(&mut self, required: bool) -> Option<ZitadelApiConfig> {
        let base_url = match self.text(ZITADEL_DOMAIN) {
            None => {
                self.problem(ZITADEL_DOMAIN, format!("is not set: the permissions claim reads organization metadata from the ZITADEL API (set {PERMISSIONS_CLAIM} to the empty string to turn that claim off)"));
                None
            }
            Some(domain) => {
                let url = base_url(&domain);
                if url.is_none() {
                    self.problem(
                        ZITADEL_DOMAIN,
                        "must be a host name such as `my-instance.zitadel.cloud` or an http(s) URL".into(),
                    );
                }
                url
            }
        };
        let token = self.text(ZITADEL_ACCESS_TOKEN).or_else(|| self.text(ACCESS_TOKEN));
        let client_id = self.text(ZITADEL_CLIENT_ID);
        let client_secret = self.text(ZITADEL_CLIENT_SECRET);
        let credentials = match (token, client_id, client_secret) {
            (Some(token), _, _) => Some(Credentials::AccessToken(Secret::new(token))),
            (None, Some(client_id), Some(secret)) => {
                Some(Credentials::ClientCredentials { client_id, client_secret: Secret::new(secret) })
            }
            (None, Some(_), None) => {
                self.problem(
                    ZITADEL_CLIENT_SECRET,
                    format!("is not set, but {ZITADEL_CLIENT_ID} is: both are needed for the client-credentials grant"),
                );
                None
            }
            (None, None, Some(_)) => {
                self.problem(
                    ZITADEL_CLIENT_ID,
                    format!(
                        "is not set, but {ZITADEL_CLIENT_SECRET} is: both are needed for the client-credentials grant"
                    ),
                );
                None
            }
            (None, None, None) if !required => None,
            (None, None, None) => {
                self.problem(ZITADEL_ACCESS_TOKEN, format!("is not set (also read as {ACCESS_TOKEN}), nor are {ZITADEL_CLIENT_ID} and {ZITADEL_CLIENT_SECRET}: calls to the ZITADEL API at {ZITADEL_DOMAIN} need credentials (without the permissions claim, leave {ZITADEL_DOMAIN} unset if you need no API)"));
                None
            }
        };
        Some(ZitadelApiConfig { base_url: base_url?, credentials: credentials? })
    }

    /// Refresh settings, when `MS_CLIENT_ID` and `MS_CLIENT_SECRET` are set.
    fn ms_refresh(&mut self) -> Option<MsRefreshConfig> {
        let (client_id, client_secret) = match (self.text(MS_CLIENT_ID), self.text(MS_CLIENT_SECRET)) {
            (Some(id), Some(secret)) => (id, Secret::new(secret)),
            (None, None) => return None,
            (Some(_), None) => {
                self.problem(
                    MS_CLIENT_SECRET,
                    format!("is not set, but {MS_CLIENT_ID} is: refreshing Microsoft tokens needs both"),
                );
                return None;
            }
            (None, Some(_)) => {
                self.problem(
                    MS_CLIENT_ID,
                    format!("is not set, but {MS_CLIENT_SECRET} is: refreshing Microsoft tokens needs both"),
                );
                return None;
            }
        };
        let tenant = self.text(MS_TENANT).unwrap_or_else(|| "common".into());
        if !tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
            self.problem(MS_TENANT, "must be a tenant id, a domain, `common`, `organizations` or `consumers`".into());
        }
        let token_url = match self.text(MS_TOKEN_URL) {
            None => format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => url,
            Some(_) => {
                self.problem(MS_TOKEN_URL, "must be an http(s) URL".into());
                String::new()
            }
        };
        let on_error = match self.text(MS_ON_REFRESH_ERROR).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("omit") => MsRefreshPolicy::Omit,
            Some("stale") => MsRefreshPolicy::Stale,
            Some(_) => {
                self.problem(MS_ON_REFRESH_ERROR, "must be `omit` or `stale`".into());
                MsRefreshPolicy::Omit
            }
        };
        Some(MsRefreshConfig {
            client_id,
            client_secret,
            token_url,
            scopes: self.text(MS_SCOPES).unwrap_or_else(|| "offline_access User.Read".into()),
            skew_seconds: self.number(MS_REFRESH_SKEW_SECONDS, 300, 0, 3000),
            on_error,
        })
    }

    /// `PAYLOAD_TYPES` and what the types it accepts need. A type the default accepts but whose
    /// settings are missing is refused per call; one named explicitly makes the settings required.
    /// The connect flow's settings: `None` without `CONNECT_CLIENT_ID` and `CONNECT_RETURN_URLS`
    /// (one without the other is a problem, as is a bad value).
    fn connect(&mut self, zitadel: Option<&ZitadelApiConfig>, ms: Option<&MsTokenConfig>) -> Option<ConnectConfig> {
        let client_id = self.text(CONNECT_CLIENT_ID);
        let return_urls = self.text(CONNECT_RETURN_URLS);
        let (client_id, return_urls) = match (client_id, return_urls) {
            (None, None) => return None,
            (Some(id), Some(urls)) => (id, urls),
            (Some(_), None) => {
                self.problem(CONNECT_RETURN_URLS, format!("is not set, but {CONNECT_CLIENT_ID} is: the connect flow needs both (the application URLs users may return to)"));
                return None;
            }
            (None, Some(_)) => {
                self.problem(CONNECT_CLIENT_ID, format!("is not set, but {CONNECT_RETURN_URLS} is: the connect flow needs both (the client id of the worker's OIDC application in ZITADEL)"));
                return None;
            }
        };
        let return_urls = match ReturnUrls::parse(&return_urls) {
            Ok(urls) => urls,
            Err(problem) => {
                self.problem(CONNECT_RETURN_URLS, problem);
                return None;
            }
        };
        let public_url = match self.text(PUBLIC_URL) {
            None => None,
            Some(url) => match origin_of(&url) {
                Some(origin) => Some(origin),
                None => {
                    self.problem(
                        PUBLIC_URL,
                        "must be the worker's public origin, such as `https://claims.example.com`".into(),
                    );
                    None
                }
            },
        };
        let mut issuers: Vec<String> = zitadel.map(|api| api.base_url.clone()).into_iter().collect();
        for issuer in comma_list(&self.text(ZITADEL_ISSUERS).unwrap_or_default()) {
            match base_url(&issuer) {
                Some(url) if !issuers.contains(&url) => issuers.push(url),
                Some(_) => {}
                None => self.problem(
                    ZITADEL_ISSUERS,
                    "must list http(s) URLs (or host names) of the instance, separated by commas".into(),
                ),
            }
        }
        let tenant = self.text(MS_TENANT).unwrap_or_else(|| "common".into());
        let authorize_url = match self.text(MS_AUTHORIZE_URL) {
            None => format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"),
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => url,
            Some(_) => {
                self.problem(MS_AUTHORIZE_URL, "must be an http(s) URL".into());
                String::new()
            }
        };
        let ms_scopes = ms.and_then(|ms| ms.refresh.as_ref()).map(|r| r.scopes.clone()).unwrap_or_default();
        if ms.is_some_and(|ms| ms.refresh.is_some()) && !ms_scopes.split_whitespace().any(|s| s == "offline_access") {
            self.problem(
                MS_SCOPES,
                "must include `offline_access` for the connect flow: without it Microsoft gives no refresh token"
                    .into(),
            );
        }
        let scopes = std::iter::once("openid")
            .chain(ms_scopes.split_whitespace().filter(|s| *s != "openid"))
            .collect::<Vec<_>>()
            .join(" ");
        let provider =
            ConnectProvider { name: "microsoft", authorize_url, scopes, idp_id: ms.and_then(|ms| ms.idp_id.clone()) };
        Some(ConnectConfig { client_id, return_urls, public_url, issuers, provider })
    }

    /// The token exchange's settings: `None` without `TOKEN_EXCHANGE_CLIENTS`. The introspection
    /// client's id and secret go together.
    fn exchange(&mut self) -> Option<ExchangeConfig> {
        let introspection = match (self.text(INTROSPECTION_CLIENT_ID), self.text(INTROSPECTION_CLIENT_SECRET)) {
            (Some(id), Some(secret)) => Some(ExchangeClient { id, secret: Secret::new(secret) }),
            (None, None) => None,
            (Some(_), None) => {
                self.problem(INTROSPECTION_CLIENT_SECRET, format!("is not set, but {INTROSPECTION_CLIENT_ID} is: introspection needs both (the API application's client secret)"));
                None
            }
            (None, Some(_)) => {
                self.problem(INTROSPECTION_CLIENT_ID, format!("is not set, but {INTROSPECTION_CLIENT_SECRET} is: introspection needs both (the API application's client id)"));
                None
            }
        };
        let list = self.text(TOKEN_EXCHANGE_CLIENTS)?;
        let mut clients: Vec<ExchangeClient> = Vec::new();
        for (n, pair) in comma_list(&list).into_iter().enumerate() {
            let parsed = pair.split_once(':').map(|(id, secret)| (id.trim(), secret.trim()));
            match parsed {
                Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
                    if clients.iter().any(|c| c.id == id) {
                        self.problem(TOKEN_EXCHANGE_CLIENTS, format!("names a client twice (entry {})", n + 1));
                    }
                    clients.push(ExchangeClient { id: id.to_string(), secret: Secret::new(secret) });
                }
                _ => self.problem(
                    TOKEN_EXCHANGE_CLIENTS,
                    format!("entry {} is not `clientId:secret` (pairs are separated by commas)", n + 1),
                ),
            }
        }
        Some(ExchangeConfig { clients, introspection })
    }

    fn payload(&mut self) -> PayloadConfig {
        let explicit = self.text(PAYLOAD_TYPES);
        let (mut json, mut jwt, mut jwe) = (explicit.is_none(), explicit.is_none(), explicit.is_none());
        for kind in comma_list(explicit.as_deref().unwrap_or_default()) {
            match kind.to_ascii_lowercase().as_str() {
                "json" => json = true,
                "jwt" => jwt = true,
                "jwe" => jwe = true,
                _ => self.problem(PAYLOAD_TYPES, "must list `json`, `jwt` and/or `jwe`, separated by commas".into()),
            }
        }
        if explicit.is_some() && !(json || jwt || jwe) {
            self.problem(PAYLOAD_TYPES, "must list at least one of `json`, `jwt` and `jwe`".into());
        }
        let jwks_url = self.text(ZITADEL_DOMAIN).and_then(|d| base_url(&d)).map(|url| format!("{url}/oauth/v2/keys"));
        let mut bad_keys = false;
        let decryption_keys = match self.text(PAYLOAD_DECRYPTION_KEY) {
            None => Vec::new(),
            Some(list) => match decryption_keys(&list) {
                Ok(keys) => keys,
                Err(problem) => {
                    self.problem(PAYLOAD_DECRYPTION_KEY, problem.into());
                    bad_keys = true;
                    Vec::new()
                }
            },
        };
        if explicit.is_some() {
            if jwe && decryption_keys.is_empty() && !bad_keys {
                self.problem(
                    PAYLOAD_DECRYPTION_KEY,
                    format!("is not set, but {PAYLOAD_TYPES} accepts `jwe`: set it to the target's private key"),
                );
            }
            if (jwt || jwe) && self.text(ZITADEL_DOMAIN).is_none() {
                self.problem(ZITADEL_DOMAIN, format!("is not set, but {PAYLOAD_TYPES} accepts signed payloads: their keys are the instance's (`/oauth/v2/keys`)"));
            }
        }
        PayloadConfig { json, jwt, jwe, jwks_url, decryption_keys }
    }

    fn check_claim_names_are_distinct(&mut self, config: &Config) {
        let names = config.claim_names();
        for (i, (setting, name)) in names.iter().enumerate() {
            if let Some((first, _)) = names[..i].iter().find(|(_, other)| other == name) {
                self.problem(setting, format!("names the same claim as {first}; each claim needs its own name"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid configuration with every feature at its default.
    const BASE: &[(&str, &str)] =
        &[(ZITADEL_SIGNING_KEY, "abc"), (ZITADEL_DOMAIN, "z.example"), (ZITADEL_ACCESS_TOKEN, "pat")];

    fn config(pairs: &[(&str, &str)]) -> Result<Config, Vec<Problem>> {
        crate::testing::settings(pairs)
    }

    fn with(extra: &[(&str, &str)]) -> Result<Config, Vec<Problem>> {
        let mut pairs = BASE.to_vec();
        pairs.extend_from_slice(extra);
        config(&pairs)
    }

    fn settings_named(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.setting).collect()
    }

    #[test]
    fn every_setting_constant_is_named_as_the_setting_it_holds() {
        let source = include_str!("config.rs");
        let consts: Vec<(&str, &str)> = source
            .lines()
            .filter_map(|l| l.strip_prefix("pub const "))
            .filter_map(|l| l.split_once(": &str = \""))
            .map(|(name, rest)| (name, rest.split('"').next().unwrap_or("")))
            .collect();
        assert!(consts.len() >= 30, "read {consts:?}");
        let misnamed: Vec<_> = consts.iter().filter(|(name, value)| name != value).collect();
        assert!(misnamed.is_empty(), "{misnamed:?}");
    }

    #[test]
    fn defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.signing_keys, vec![SigningKey::new("abc")]);
        assert_eq!(c.signature_tolerance_seconds, 300);
        let p = c.permissions.unwrap();
        assert_eq!(p.claim, "permissions");
        assert_eq!((p.project_id, p.org_id, p.metadata_prefix.as_str()), (None, None, ""));
        assert_eq!(
            c.zitadel.unwrap(),
            ZitadelApiConfig {
                base_url: "https://z.example".into(),
                credentials: Credentials::AccessToken(Secret::new("pat"))
            }
        );
        assert_eq!(c.flat_roles_claim.as_deref(), Some("my:zitadel:grants"));
        assert_eq!(c.groups_claim, None);
        assert_eq!(
            c.ms_token,
            Some(MsTokenConfig {
                metadata_key: "microsoft_access_token".into(),
                refresh_token_metadata_key: "microsoft_refresh_token".into(),
                expires_at_metadata_key: "microsoft_access_token_expires_at".into(),
                claim: "urn:custom:ms_access_token".into(),
                in_userinfo: false,
                clients: None,
                idp_id: None,
                refresh: None,
                accept_unsealed: false
            })
        );
        assert_eq!((c.cache_ttl_seconds, c.stale_if_error_seconds, c.upstream_timeout_ms), (60, 0, 2000));
        assert_eq!(c.on_upstream_error, UpstreamPolicy::Omit);
        assert!(!c.log_claims);
    }

    #[test]
    fn features_say_what_is_on_and_what_turns_the_rest_on() {
        let named = |c: &Config| -> Vec<(&'static str, bool, Vec<&'static str>)> {
            c.features().into_iter().map(|f| (f.name, f.on, f.needs)).collect()
        };
        let defaults = named(&with(&[]).unwrap());
        assert_eq!(
            defaults,
            [
                ("permissions", true, vec![]),
                ("flat_roles", true, vec![]),
                ("groups", false, vec![GROUPS_CLAIM]),
                ("microsoft_token_claim", false, vec![MS_TOKEN_CLIENT_IDS]),
                ("microsoft_sign_in_capture", false, vec![MS_IDP_ID]),
                ("microsoft_refresh", false, vec![MS_CLIENT_ID, MS_CLIENT_SECRET]),
                ("token_sealing", false, vec![TOKEN_SEALING_KEY]),
                (
                    "microsoft_connect",
                    false,
                    vec![MS_CLIENT_ID, MS_CLIENT_SECRET, TOKEN_SEALING_KEY, CONNECT_CLIENT_ID, CONNECT_RETURN_URLS]
                ),
                (
                    "token_exchange",
                    false,
                    vec![
                        MS_CLIENT_ID,
                        MS_CLIENT_SECRET,
                        TOKEN_SEALING_KEY,
                        CONNECT_CLIENT_ID,
                        CONNECT_RETURN_URLS,
                        TOKEN_EXCHANGE_CLIENTS
                    ]
                ),
            ]
        );
        let all = with(&[
            (MS_TOKEN_CLIENT_IDS, "*"),
            (MS_IDP_ID, "idp"),
            (MS_CLIENT_ID, "app"),
            (MS_CLIENT_SECRET, "s"),
            (GROUPS_CLAIM, "groups"),
            (TOKEN_SEALING_KEY, "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            (CONNECT_CLIENT_ID, "connect-app"),
            (CONNECT_RETURN_URLS, "https://app.example/"),
            (TOKEN_EXCHANGE_CLIENTS, "back-end:s3cret"),
        ])
        .unwrap();
        assert!(all.features().iter().all(|f| f.on && f.needs.is_empty()), "{:?}", all.features());
        let off = with(&[(MS_TOKEN_CLAIM, ""), (PERMISSIONS_CLAIM, "")]).unwrap();
        assert_eq!(named(&off)[0], ("permissions", false, vec![PERMISSIONS_CLAIM]));
        assert_eq!(named(&off)[3], ("microsoft_token_claim", false, vec![MS_TOKEN_CLAIM]));
    }

    #[test]
    fn registered_claim_names_are_refused() {
        for name in ["sub", "aud", "email", "groups_x", "preferred_username", "scope"] {
            let result = with(&[(GROUPS_CLAIM, name)]);
            if name == "groups_x" {
                assert!(result.is_ok());
            } else {
                assert_eq!(settings_named(&result.unwrap_err()), [GROUPS_CLAIM], "{name}");
            }
        }
        assert!(with(&[(GROUPS_CLAIM, "groups")]).is_ok(), "`groups` is not one of zitadel/oidc's fields");
    }

    #[test]
    fn the_mapping_organization_must_be_an_organization_id() {
        let c = with(&[(PERMISSIONS_ORG_ID, "312909075211944344")]).unwrap();
        assert_eq!(c.permissions.unwrap().org_id.as_deref(), Some("312909075211944344"));
        let problems = with(&[(PERMISSIONS_ORG_ID, "../admin")]).unwrap_err();
        assert_eq!(settings_named(&problems), [PERMISSIONS_ORG_ID]);
        assert!(!problems[0].problem.contains("admin"));
    }

    #[test]
    fn exchange_clients_are_id_secret_pairs_and_introspection_needs_both_settings() {
        let c = with(&[
            (TOKEN_EXCHANGE_CLIENTS, " 312@backend:s3:cret , other : two "),
            (INTROSPECTION_CLIENT_ID, "api@p"),
            (INTROSPECTION_CLIENT_SECRET, "api-secret"),
        ])
        .unwrap();
        let exchange = c.exchange.unwrap();
        let pairs: Vec<_> = exchange.clients.iter().map(|c| (c.id.as_str(), c.secret.expose())).collect();
        assert_eq!(pairs, [("312@backend", "s3:cret"), ("other", "two")], "a secret may hold `:`");
        let introspection = exchange.introspection.unwrap();
        assert_eq!((introspection.id.as_str(), introspection.secret.expose()), ("api@p", "api-secret"));
        assert_eq!(with(&[]).unwrap().exchange, None);
        for bad in ["no-colon-secret-xyz", ":secret-xyz", "id:", "a:secret-xyz,a:secret-xyz"] {
            let problems = with(&[(TOKEN_EXCHANGE_CLIENTS, bad)]).unwrap_err();
            assert_eq!(settings_named(&problems), [TOKEN_EXCHANGE_CLIENTS], "{bad}");
            assert!(problems.iter().all(|p| !p.problem.contains("secret-xyz")), "{problems:?}");
        }
        let problems = with(&[(TOKEN_EXCHANGE_CLIENTS, "a:b"), (INTROSPECTION_CLIENT_ID, "api")]).unwrap_err();
        assert_eq!(settings_named(&problems), [INTROSPECTION_CLIENT_SECRET]);
        let problems = with(&[(INTROSPECTION_CLIENT_SECRET, "s")]).unwrap_err();
        assert_eq!(settings_named(&problems), [INTROSPECTION_CLIENT_ID]);
    }

    #[test]
    fn the_sealing_key_is_read_and_a_bad_one_named_without_its_value() {
        let key = "k2:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let c = with(&[(TOKEN_SEALING_KEY, key), (MS_ACCEPT_UNSEALED, "true")]).unwrap();
        assert_eq!(c.sealing.unwrap().sealing_key_id(), "k2");
        assert!(c.ms_token.unwrap().accept_unsealed);
        assert_eq!(with(&[]).unwrap().sealing, None);
        let problems = with(&[(TOKEN_SEALING_KEY, "k1:c2hvcnQ=")]).unwrap_err();
        assert_eq!(settings_named(&problems), [TOKEN_SEALING_KEY]);
        assert!(!problems[0].problem.contains("c2hvcnQ"), "{:?}", problems[0]);
    }

    #[test]
    fn the_connect_settings_are_read_and_checked() {
        let c = with(&[
            (CONNECT_CLIENT_ID, "connect-app"),
            (CONNECT_RETURN_URLS, "https://app.example/home"),
            (PUBLIC_URL, "https://claims.example.com/"),
            (ZITADEL_ISSUERS, "login.example.com, https://z.example"),
            (MS_CLIENT_ID, "entra"),
            (MS_CLIENT_SECRET, "s"),
            (MS_TENANT, "contoso.example"),
            (MS_IDP_ID, "ms-idp"),
        ])
        .unwrap();
        let connect = c.connect.clone().unwrap();
        assert_eq!(connect.client_id, "connect-app");
        assert_eq!(connect.public_url.as_deref(), Some("https://claims.example.com"));
        assert_eq!(connect.issuers, ["https://z.example", "https://login.example.com"]);
        assert_eq!(
            connect.provider.authorize_url,
            "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/authorize"
        );
        assert_eq!(connect.provider.scopes, "openid offline_access User.Read");
        assert_eq!(connect.provider.idp_id.as_deref(), Some("ms-idp"));
        assert_eq!(c.connect_needs(), [TOKEN_SEALING_KEY], "on with a sealing key too");
        assert!(connect.return_urls.check("https://app.example/home/x").is_ok());

        assert_eq!(with(&[]).unwrap().connect, None);
        let problems = with(&[(CONNECT_CLIENT_ID, "connect-app")]).unwrap_err();
        assert_eq!(settings_named(&problems), [CONNECT_RETURN_URLS]);
        let problems = with(&[(CONNECT_RETURN_URLS, "https://app.example/")]).unwrap_err();
        assert_eq!(settings_named(&problems), [CONNECT_CLIENT_ID]);
        for (setting, bad) in [
            (CONNECT_RETURN_URLS, "javascript:alert(1)"),
            (PUBLIC_URL, "claims.example.com/path"),
            (MS_AUTHORIZE_URL, "login.example/authorize"),
            (MS_SCOPES, "User.Read"),
        ] {
            let problems = with(&[
                (CONNECT_CLIENT_ID, "connect-app"),
                (CONNECT_RETURN_URLS, "https://app.example/"),
                (MS_CLIENT_ID, "entra"),
                (MS_CLIENT_SECRET, "s"),
                (setting, bad),
            ])
            .unwrap_err();
            assert_eq!(settings_named(&problems), [setting], "{setting}={bad}");
            assert!(!problems[0].problem.contains(bad), "the value is not repeated: {:?}", problems[0]);
        }
    }

    #[test]
    fn several_keys_are_separated_by_commas_and_blanks_dropped() {
        let c = with(&[(ZITADEL_SIGNING_KEY, " new-key , old-key ,, ")]).unwrap();
        assert_eq!(c.signing_keys, vec![SigningKey::new("new-key"), SigningKey::new("old-key")]);
    }

    #[test]
    fn reference_worker_names_are_read_when_ours_are_absent() {
        let c = config(&[(AUTHORIZATION_SIGNING_KEY, "legacy"), (ZITADEL_DOMAIN, "z"), (ACCESS_TOKEN, "legacy-pat")])
            .unwrap();
        assert_eq!(c.signing_keys, vec![SigningKey::new("legacy")]);
        assert_eq!(c.zitadel.unwrap().credentials, Credentials::AccessToken(Secret::new("legacy-pat")));
        let both = with(&[(AUTHORIZATION_SIGNING_KEY, "legacy")]).unwrap();
        assert_eq!(both.signing_keys, vec![SigningKey::new("abc")]);
    }

    #[test]
    fn missing_signing_key_is_a_problem_naming_the_setting() {
        for key in ["  ", ",,"] {
            let problems = with(&[(ZITADEL_SIGNING_KEY, key)]).unwrap_err();
            assert_eq!(settings_named(&problems), [ZITADEL_SIGNING_KEY]);
            assert!(problems[0].problem.contains("is not set"));
        }
    }

    #[test]
    fn numbers_are_whole_and_in_range() {
        assert_eq!(with(&[(SIGNATURE_TOLERANCE_SECONDS, "60")]).unwrap().signature_tolerance_seconds, 60);
        assert_eq!(with(&[(METADATA_CACHE_TTL_SECONDS, "0")]).unwrap().cache_ttl_seconds, 0);
        for (setting, bad) in [
            (SIGNATURE_TOLERANCE_SECONDS, "0"),
            (SIGNATURE_TOLERANCE_SECONDS, "3601"),
            (SIGNATURE_TOLERANCE_SECONDS, "-5"),
            (METADATA_CACHE_TTL_SECONDS, "1m"),
            (UPSTREAM_TIMEOUT_MS, "10"),
            (METADATA_STALE_IF_ERROR_SECONDS, "1.5"),
        ] {
            let problems = with(&[(setting, bad)]).unwrap_err();
            assert_eq!(settings_named(&problems), [setting], "{setting}={bad}");
        }
    }

    #[test]
    fn policy_and_booleans_are_checked() {
        assert_eq!(with(&[(ON_UPSTREAM_ERROR, "FAIL")]).unwrap().on_upstream_error, UpstreamPolicy::Fail);
        assert!(with(&[(LOG_CLAIMS, "true")]).unwrap().log_claims);
        assert!(with(&[(MS_TOKEN_IN_USERINFO, "1")]).unwrap().ms_token.unwrap().in_userinfo);
        let clients = |list| with(&[(MS_TOKEN_CLIENT_IDS, list)]).unwrap().ms_token.unwrap().clients;
        assert_eq!(
            clients(" backend-1 ,, backend-2 "),
            Some(MsTokenClients::Only(vec!["backend-1".to_string(), "backend-2".to_string()]))
        );
        assert_eq!(clients(" * "), Some(MsTokenClients::All));
        assert_eq!(clients("*, backend-1"), Some(MsTokenClients::Only(vec!["*".into(), "backend-1".into()])));
        assert_eq!(clients(" , "), None);
        assert_eq!(settings_named(&with(&[(ON_UPSTREAM_ERROR, "retry")]).unwrap_err()), [ON_UPSTREAM_ERROR]);
        assert_eq!(settings_named(&with(&[(LOG_CLAIMS, "maybe")]).unwrap_err()), [LOG_CLAIMS]);
    }

    #[test]
    fn empty_claim_name_turns_the_claim_off() {
        let c = with(&[(PERMISSIONS_CLAIM, ""), (FLAT_ROLES_CLAIM, " "), (MS_TOKEN_CLAIM, "")]).unwrap();
        assert_eq!((c.permissions, c.flat_roles_claim, c.ms_token), (None, None, None));
        let c = with(&[(GROUPS_CLAIM, "groups")]).unwrap();
        assert_eq!(c.groups_claim.as_deref(), Some("groups"));
    }

    #[test]
    fn without_the_permissions_claim_no_zitadel_settings_are_needed() {
        let c = config(&[(ZITADEL_SIGNING_KEY, "k"), (PERMISSIONS_CLAIM, "")]).unwrap();
        assert_eq!((c.permissions, c.zitadel), (None, None));
    }

    #[test]
    fn the_api_is_configured_without_permissions_when_the_domain_is_set() {
        let c = config(&[
            (ZITADEL_SIGNING_KEY, "k"),
            (PERMISSIONS_CLAIM, ""),
            (ZITADEL_DOMAIN, "z"),
            (ZITADEL_ACCESS_TOKEN, "t"),
        ])
        .unwrap();
        assert_eq!(c.permissions, None);
        assert_eq!(c.zitadel.unwrap().base_url, "https://z");
        assert_eq!(with(&[(MS_IDP_ID, "idp-1")]).unwrap().ms_token.unwrap().idp_id.as_deref(), Some("idp-1"));
    }

    #[test]
    fn a_domain_without_credentials_is_enough_for_signed_payloads_and_turns_no_api_feature_on() {
        // The key set is public: without the permissions claim, no credentials are demanded.
        let c = config(&[(ZITADEL_SIGNING_KEY, "k"), (PERMISSIONS_CLAIM, ""), (ZITADEL_DOMAIN, "z")]).unwrap();
        assert_eq!(c.zitadel, None);
        assert_eq!(c.payload.jwks_url.as_deref(), Some("https://z/oauth/v2/keys"));
        let capture = c.features().into_iter().find(|f| f.name == "microsoft_sign_in_capture").unwrap();
        assert_eq!(capture.needs, [MS_IDP_ID, ZITADEL_ACCESS_TOKEN], "the domain is there: credentials are missing");
        assert_eq!(c.connect_needs()[0], ZITADEL_ACCESS_TOKEN);
        // Half a pair is still a problem, as is a bad domain.
        let problems = config(&[
            (ZITADEL_SIGNING_KEY, "k"),
            (PERMISSIONS_CLAIM, ""),
            (ZITADEL_DOMAIN, "z"),
            (ZITADEL_CLIENT_ID, "id"),
        ])
        .unwrap_err();
        assert_eq!(settings_named(&problems), [ZITADEL_CLIENT_SECRET]);
        let problems =
            config(&[(ZITADEL_SIGNING_KEY, "k"), (PERMISSIONS_CLAIM, ""), (ZITADEL_DOMAIN, "ftp://z")]).unwrap_err();
        assert!(settings_named(&problems).contains(&ZITADEL_DOMAIN));
    }

    #[test]
    fn the_permissions_claim_needs_a_domain_and_credentials() {
        let problems = config(&[(ZITADEL_SIGNING_KEY, "k")]).unwrap_err();
        assert_eq!(settings_named(&problems), [ZITADEL_DOMAIN, ZITADEL_ACCESS_TOKEN]);
        assert!(problems[0].problem.contains(PERMISSIONS_CLAIM));
        let problems =
            config(&[(ZITADEL_SIGNING_KEY, "k"), (ZITADEL_DOMAIN, "z"), (ZITADEL_CLIENT_ID, "id")]).unwrap_err();
        assert_eq!(settings_named(&problems), [ZITADEL_CLIENT_SECRET]);
        let problems =
            config(&[(ZITADEL_SIGNING_KEY, "k"), (ZITADEL_DOMAIN, "z"), (ZITADEL_CLIENT_SECRET, "s")]).unwrap_err();
        assert_eq!(settings_named(&problems), [ZITADEL_CLIENT_ID]);
    }

    #[test]
    fn client_credentials_are_used_when_there_is_no_token() {
        let c = config(&[
            (ZITADEL_SIGNING_KEY, "k"),
            (ZITADEL_DOMAIN, "z"),
            (ZITADEL_CLIENT_ID, "id"),
            (ZITADEL_CLIENT_SECRET, "s"),
        ])
        .unwrap();
        assert_eq!(
            c.zitadel.unwrap().credentials,
            Credentials::ClientCredentials { client_id: "id".into(), client_secret: Secret::new("s") }
        );
    }

    #[test]
    fn domain_forms() {
        assert_eq!(base_url("my.zitadel.cloud").as_deref(), Some("https://my.zitadel.cloud"));
        assert_eq!(base_url("https://my.zitadel.cloud/").as_deref(), Some("https://my.zitadel.cloud"));
        assert_eq!(base_url("http://127.0.0.1:8788").as_deref(), Some("http://127.0.0.1:8788"));
        assert_eq!(base_url("https://example.com/zitadel").as_deref(), Some("https://example.com/zitadel"));
        for bad in ["ftp://x", "https://", "with space", "https://a b", "http:///path"] {
            assert_eq!(base_url(bad), None, "{bad}");
        }
        assert_eq!(settings_named(&with(&[(ZITADEL_DOMAIN, "not a host")]).unwrap_err()), [ZITADEL_DOMAIN]);
    }

    #[test]
    fn microsoft_refresh_defaults_when_the_client_is_set() {
        let c = with(&[(MS_CLIENT_ID, "app"), (MS_CLIENT_SECRET, "secret")]).unwrap();
        let ms = c.ms_token.unwrap();
        assert_eq!(ms.refresh_token_metadata_key, "microsoft_refresh_token");
        assert_eq!(ms.expires_at_metadata_key, "microsoft_access_token_expires_at");
        let r = ms.refresh.unwrap();
        assert_eq!(r.client_id, "app");
        assert_eq!(r.token_url, "https://login.microsoftonline.com/common/oauth2/v2.0/token");
        assert_eq!(r.scopes, "offline_access User.Read");
        assert_eq!((r.skew_seconds, r.on_error), (300, MsRefreshPolicy::Omit));
        let tenant =
            with(&[(MS_CLIENT_ID, "a"), (MS_CLIENT_SECRET, "s"), (MS_TENANT, "contoso.onmicrosoft.com")]).unwrap();
        assert_eq!(
            tenant.ms_token.unwrap().refresh.unwrap().token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        let url = with(&[
            (MS_CLIENT_ID, "a"),
            (MS_CLIENT_SECRET, "s"),
            (MS_TOKEN_URL, "http://127.0.0.1:9/token"),
            (MS_ON_REFRESH_ERROR, "stale"),
        ])
        .unwrap();
        let r = url.ms_token.unwrap().refresh.unwrap();
        assert_eq!((r.token_url.as_str(), r.on_error), ("http://127.0.0.1:9/token", MsRefreshPolicy::Stale));
    }

    #[test]
    fn microsoft_refresh_settings_are_checked() {
        assert_eq!(settings_named(&with(&[(MS_CLIENT_ID, "a")]).unwrap_err()), [MS_CLIENT_SECRET]);
        assert_eq!(settings_named(&with(&[(MS_CLIENT_SECRET, "s")]).unwrap_err()), [MS_CLIENT_ID]);
        let bad = with(&[
            (MS_CLIENT_ID, "a"),
            (MS_CLIENT_SECRET, "s"),
            (MS_TENANT, "a/b"),
            (MS_TOKEN_URL, "ftp://x"),
            (MS_ON_REFRESH_ERROR, "x"),
            (MS_REFRESH_SKEW_SECONDS, "9999"),
        ]);
        assert_eq!(
            settings_named(&bad.unwrap_err()),
            [MS_TENANT, MS_TOKEN_URL, MS_ON_REFRESH_ERROR, MS_REFRESH_SKEW_SECONDS]
        );
        assert_eq!(
            with(&[(MS_CLIENT_ID, "a"), (MS_CLIENT_SECRET, "s"), (MS_TOKEN_CLAIM, "")]).unwrap().ms_token,
            None,
            "no claim, no refresh"
        );
    }

    #[test]
    fn reserved_claim_names_are_refused() {
        let problems =
            with(&[(GROUPS_CLAIM, "urn:zitadel:iam:groups"), (MS_TOKEN_CLAIM, "urn:zitadel:iam:ms")]).unwrap_err();
        assert_eq!(settings_named(&problems), [GROUPS_CLAIM, MS_TOKEN_CLAIM]);
        assert!(problems[0].problem.contains("silently drops"));
    }

    #[test]
    fn two_features_may_not_share_a_claim_name() {
        let problems = with(&[(GROUPS_CLAIM, "permissions")]).unwrap_err();
        assert_eq!(settings_named(&problems), [GROUPS_CLAIM]);
        assert!(problems[0].problem.contains(PERMISSIONS_CLAIM));
    }

    #[test]
    fn all_problems_are_reported_together() {
        let problems = config(&[(SIGNATURE_TOLERANCE_SECONDS, "x"), (PERMISSIONS_CLAIM, "")]).unwrap_err();
        assert_eq!(settings_named(&problems), [ZITADEL_SIGNING_KEY, SIGNATURE_TOLERANCE_SECONDS]);
    }

    /// A PKCS#8 DER for the tests: only its shape (a DER SEQUENCE) matters here.
    const DER: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x00];

    fn pem(der: &[u8]) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
    }

    #[test]
    fn payload_types_accept_all_three_by_default_or_those_listed() {
        let p = with(&[]).unwrap().payload;
        assert_eq!((p.json, p.jwt, p.jwe), (true, true, true));
        assert_eq!(p.jwks_url.as_deref(), Some("https://z.example/oauth/v2/keys"));
        assert!(p.decryption_keys.is_empty(), "jwe is refused per call until a key is set");
        let key = pem(DER);
        let jwe = with(&[(PAYLOAD_TYPES, " JWE "), (PAYLOAD_DECRYPTION_KEY, &key)]).unwrap().payload;
        assert_eq!((jwe.json, jwe.jwt, jwe.jwe), (false, false, true));
        assert_eq!(settings_named(&with(&[(PAYLOAD_TYPES, "json,xml")]).unwrap_err()), [PAYLOAD_TYPES]);
        assert_eq!(settings_named(&with(&[(PAYLOAD_TYPES, ",")]).unwrap_err()), [PAYLOAD_TYPES]);
    }

    #[test]
    fn payload_types_named_explicitly_need_their_settings() {
        assert_eq!(settings_named(&with(&[(PAYLOAD_TYPES, "jwe")]).unwrap_err()), [PAYLOAD_DECRYPTION_KEY]);
        let no_domain = config(&[(ZITADEL_SIGNING_KEY, "k"), (PERMISSIONS_CLAIM, ""), (PAYLOAD_TYPES, "json,jwt")]);
        assert_eq!(settings_named(&no_domain.unwrap_err()), [ZITADEL_DOMAIN]);
        assert!(config(&[(ZITADEL_SIGNING_KEY, "k"), (PERMISSIONS_CLAIM, ""), (PAYLOAD_TYPES, "json")]).is_ok());
    }

    #[test]
    fn decryption_keys_are_pems_or_base64_optionally_behind_their_key_id() {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let list = format!("key-2:{}, {} ,key-1:{},{}", b64(DER), pem(DER), pem(DER), b64(pem(DER).as_bytes()));
        let keys = with(&[(PAYLOAD_DECRYPTION_KEY, &list)]).unwrap().payload.decryption_keys;
        let ids: Vec<Option<&str>> = keys.iter().map(|k| k.kid()).collect();
        assert_eq!(ids, [Some("key-2"), None, Some("key-1"), None]);
        assert!(keys.iter().all(|k| k.pkcs8() == DER), "each entry's DER");
        for bad in
            ["not a key", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----", "k:%%%", "AQID"]
        {
            let problems = with(&[(PAYLOAD_DECRYPTION_KEY, bad)]).unwrap_err();
            assert_eq!(settings_named(&problems), [PAYLOAD_DECRYPTION_KEY], "{bad}");
            assert!(problems[0].problem.contains("PKCS#8") && !problems[0].problem.contains(bad), "{bad}");
            let with_jwe = with(&[(PAYLOAD_TYPES, "jwe"), (PAYLOAD_DECRYPTION_KEY, bad)]).unwrap_err();
            assert_eq!(settings_named(&with_jwe), [PAYLOAD_DECRYPTION_KEY], "one problem, not two: {bad}");
        }
        let debug = format!("{:?}", with(&[(PAYLOAD_DECRYPTION_KEY, &format!("kid-9:{}", b64(DER)))]).unwrap());
        assert!(debug.contains("kid-9") && !debug.contains(&b64(DER)), "Debug shows the key id only");
    }

    #[test]
    fn problems_and_debug_never_contain_a_secret() {
        let problems = config(&[
            (SIGNATURE_TOLERANCE_SECONDS, "supersecret"),
            (ZITADEL_CLIENT_SECRET, "supersecret"),
            (ZITADEL_DOMAIN, "supersecret host"),
        ])
        .unwrap_err();
        assert!(problems.iter().all(|p| !p.problem.contains("supersecret")));
        let c = with(&[(ZITADEL_ACCESS_TOKEN, "supersecret-pat")]).unwrap();
        assert!(!format!("{c:?}").contains("supersecret"));
    }
}
