//! The ZITADEL API calls the tool makes (the Action API V2; for `--connect` the projects, OIDC apps
//! and API apps of the management API v1), and how an answer becomes a value or an error.
//!
//! Requests go through a `Transport` (the real one in `http.rs`, a printing one in `dry_run.rs`),
//! so the whole protocol is tested without a network.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use url::Url;

use crate::error::Error;
use crate::secret::Secret;
use crate::types::{Call, PayloadType};

/// The OIDC configuration fields the tool sets on the connect app; [`OidcAppSpec::config`] gives
/// their values. The other fields of an existing app are kept as they are.
pub const OWNED_OIDC_FIELDS: [&str; 7] =
    ["redirectUris", "responseTypes", "grantTypes", "appType", "authMethodType", "devMode", "accessTokenType"];

/// The fields of an app's `oidcConfig` (as `ListApps` shows it) that `UpdateOIDCAppConfig` also
/// takes, besides the owned ones: sent back as they are, so an update changes only what it must.
const KEPT_OIDC_FIELDS: [&str; 9] = [
    "postLogoutRedirectUris",
    "accessTokenRoleAssertion",
    "idTokenRoleAssertion",
    "idTokenUserinfoAssertion",
    "clockSkew",
    "additionalOrigins",
    "skipNativeAppSuccessPage",
    "backChannelLogoutUri",
    "loginVersion",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// One API call. Bodies never hold a secret (signing keys and client secrets only travel in
/// answers, and of a key pair only the public key is sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub call: Call,
    pub method: Method,
    pub url: String,
    pub body: Option<Value>,
}

/// A raw HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
}

pub trait Transport {
    /// Sends the request; `Err` only when no answer came (`Error::Unreachable`).
    fn send(&mut self, request: &Request) -> Result<Answer, Error>;
}

/// An execution's condition: when ZITADEL calls the targets bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// A function such as `preaccesstoken`.
    Function(&'static str),
    /// The response of an API method such as `/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent`.
    Response(&'static str),
}

impl Condition {
    pub fn to_json(self) -> Value {
        match self {
            Condition::Function(name) => json!({ "function": { "name": name } }),
            Condition::Response(method) => json!({ "response": { "method": method } }),
        }
    }

    pub fn describe(self) -> String {
        match self {
            Condition::Function(name) => format!("function {name}"),
            Condition::Response(method) => format!("response of {method}"),
        }
    }
}

/// What a target is set to (the body of CreateTarget and UpdateTarget).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    pub name: String,
    pub endpoint: String,
    pub timeout: String,
    pub interrupt_on_error: bool,
    /// `None` sends no `payloadType`: CreateTarget takes ZITADEL's default (JSON), UpdateTarget
    /// keeps the target's.
    pub payload_type: Option<PayloadType>,
}

impl TargetSpec {
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "name": self.name,
            "endpoint": self.endpoint,
            "timeout": self.timeout,
            "restCall": { "interruptOnError": self.interrupt_on_error },
        });
        if let Some(payload_type) = self.payload_type {
            body["payloadType"] = json!(payload_type.proto_name());
        }
        body
    }
}

/// The OIDC app of the worker's connect flow: a public client (PKCE, no secret) of the
/// authorization code flow whose one redirect URI is the worker's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcAppSpec {
    pub name: String,
    pub redirect_uri: String,
    /// Only for an `http://` redirect URI (local development): ZITADEL refuses one otherwise.
    pub dev_mode: bool,
}

impl OidcAppSpec {
    /// The owned fields ([`OWNED_OIDC_FIELDS`]) with the values the connect flow needs.
    pub fn config(&self) -> serde_json::Map<String, Value> {
        let config = json!({
            "redirectUris": [self.redirect_uri],
            "responseTypes": ["OIDC_RESPONSE_TYPE_CODE"],
            "grantTypes": ["OIDC_GRANT_TYPE_AUTHORIZATION_CODE"],
            "appType": "OIDC_APP_TYPE_USER_AGENT",
            "authMethodType": "OIDC_AUTH_METHOD_TYPE_NONE",
            "devMode": self.dev_mode,
            "accessTokenType": "OIDC_TOKEN_TYPE_BEARER",
        });
        match config {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object"),
        }
    }

    /// The body of `AddOIDCApp`: the name and the owned fields, nothing else.
    pub fn to_json(&self) -> Value {
        let mut body = self.config();
        body.insert("name".into(), json!(self.name));
        Value::Object(body)
    }

    /// The owned fields whose value in `existing` (an app's `oidcConfig`) differs from ours, in the
    /// order of [`OWNED_OIDC_FIELDS`]. An absent field has its protobuf default (protojson may
    /// leave defaults out): an empty list, the enum's first value, `false`.
    pub fn differences(&self, existing: &serde_json::Map<String, Value>) -> Vec<&'static str> {
        let ours = self.config();
        OWNED_OIDC_FIELDS
            .into_iter()
            .filter(|field| {
                let default = match *field {
                    "appType" => json!("OIDC_APP_TYPE_WEB"),
                    "authMethodType" => json!("OIDC_AUTH_METHOD_TYPE_BASIC"),
                    "accessTokenType" => json!("OIDC_TOKEN_TYPE_BEARER"),
                    "devMode" => json!(false),
                    _ => json!([]),
                };
                let theirs = existing.get(*field).filter(|v| !v.is_null()).unwrap_or(&default);
                Some(theirs) != ours.get(*field)
            })
            .collect()
    }

    /// The body of `UpdateOIDCAppConfig` for an app whose `oidcConfig` is `existing`: its other
    /// settings as they are, the owned fields as ours.
    pub fn update_json(&self, existing: &serde_json::Map<String, Value>) -> Value {
        let mut body: serde_json::Map<String, Value> = KEPT_OIDC_FIELDS
            .into_iter()
            .filter_map(|field| existing.get(field).map(|value| (field.to_string(), value.clone())))
            .collect();
        body.extend(self.config());
        Value::Object(body)
    }
}

/// An OIDC app as `ListApps` shows it (what the tool reads).
#[derive(Debug, Clone, PartialEq)]
pub struct OidcApp {
    pub id: String,
    pub client_id: String,
    /// The app's `oidcConfig`, to compare with and to send back what the tool does not set.
    pub config: serde_json::Map<String, Value>,
}

/// The authentication of an API app by client id and secret (HTTP Basic): `APIAuthMethodType`'s
/// first value, so protojson leaves it out.
pub const API_AUTH_BASIC: &str = "API_AUTH_METHOD_TYPE_BASIC";

/// An API app as `ListApps` shows it (what the tool reads). Its secret cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiApp {
    pub id: String,
    pub client_id: String,
    /// `apiConfig.authMethodType`; absent is [`API_AUTH_BASIC`], the enum's zero value.
    pub auth_method: String,
}

/// A public key of the target's payload encryption, as ListPublicKeys shows it (what the tool reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    pub key_id: String,
    pub active: bool,
}

/// A target as GetTarget returns it (only what the tool reads).
#[derive(Debug)]
pub struct TargetInfo {
    pub signing_key: Secret,
    pub payload_type: Option<String>,
    pub endpoint: Option<String>,
    pub timeout: Option<String>,
    /// Whether it is a `restCall` target (the type whose answer ZITADEL uses).
    pub rest_call: bool,
    /// `interruptOnError` of a `restCall` or `restWebhook` target.
    pub interrupts: Option<bool>,
}

/// Turns an answer into its JSON body, or into the error the user sees.
pub fn check(call: Call, url: &str, answer: Answer) -> Result<Value, Error> {
    if (200..300).contains(&answer.status) {
        if answer.body.trim().is_empty() {
            return Ok(json!({}));
        }
        return serde_json::from_str(&answer.body)
            .map_err(|_| Error::BadAnswer { call, detail: format!("the answer of {url} is not JSON") });
    }
    let message = zitadel_message(&answer.body);
    Err(match answer.status {
        401 => Error::Unauthorized,
        403 => Error::Forbidden { call, message },
        status => Error::Status {
            call,
            status,
            message,
            location: if (300..400).contains(&status) { answer.location } else { None },
        },
    })
}

/// The `message` of a grpc-gateway error body `{code, message, details}`, shortened and without
/// control characters so a strange answer cannot garble the terminal.
pub fn zitadel_message(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let message = value.get("message")?.as_str()?.trim();
    if message.is_empty() {
        return None;
    }
    let clean: String = message.chars().filter(|c| !c.is_control()).take(300).collect();
    Some(clean)
}

/// A transport that says each call in a few words before it goes out: a real run's progress.
pub struct Narrated<'t, W: std::io::Write> {
    pub inner: &'t mut dyn Transport,
    pub out: W,
}

impl<W: std::io::Write> Transport for Narrated<'_, W> {
    fn send(&mut self, request: &Request) -> Result<Answer, Error> {
        // Losing a progress line (closed stdout) must not stop a half-done setup.
        let _ = writeln!(self.out, "  ZITADEL: {}", request.call.what());
        self.inner.send(request)
    }
}

/// The typed client over a transport.
pub struct Zitadel<'t> {
    base_url: Url,
    transport: &'t mut dyn Transport,
}

impl<'t> Zitadel<'t> {
    /// `base_url` is the instance's address (`cli::base_url` checked it), maybe with a path.
    pub fn new(base_url: &str, transport: &'t mut dyn Transport) -> Result<Self, Error> {
        let base_url = Url::parse(base_url)
            .ok()
            .filter(|url| !url.cannot_be_a_base())
            .ok_or_else(|| Error::Usage(format!("{base_url:?} is not the URL of a ZITADEL instance")))?;
        Ok(Zitadel { base_url, transport })
    }

    /// The URL of an API path (absolute, its segments percent-encoded), under the base URL's own
    /// path: `https://id.example.com/zitadel` + `/v2/x` is `https://id.example.com/zitadel/v2/x`.
    pub fn url(&self, path: &str) -> String {
        let mut url = self.base_url.clone();
        url.set_path(&format!("{}{path}", self.base_url.path().trim_end_matches('/')));
        url.into()
    }

    fn call(&mut self, call: Call, method: Method, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let request = Request { call, method, url: self.url(path), body };
        let answer = self.transport.send(&request)?;
        check(call, &request.url, answer)
    }

    /// ListTargets of the names that start with `name`, in one call: the ids of the target named
    /// exactly `name` and of the one named `name` + `suffix`, if there are.
    pub fn find_targets(&mut self, name: &str, suffix: &str) -> Result<(Option<String>, Option<String>), Error> {
        let call = Call::SearchTargets;
        let body = json!({
            "filters": [{ "targetNameFilter": { "targetName": name, "method": "TEXT_FILTER_METHOD_STARTS_WITH" } }]
        });
        let answer = self.call(call, Method::Post, "/v2/actions/targets/search", Some(body))?;
        let targets = list(&answer, "targets", call)?;
        // Only exact matches count, whatever the server did with the filter.
        let the_one = |wanted: &str| -> Result<Option<String>, Error> {
            let ids: Vec<String> =
                named(targets, wanted).map(|t| string_field(t, "id", call)).collect::<Result<_, _>>()?;
            match ids.len() {
                0 => Ok(None),
                1 => Ok(ids.into_iter().next()),
                count => Err(Error::AmbiguousTarget { name: wanted.to_string(), count }),
            }
        };
        Ok((the_one(name)?, the_one(&format!("{name}{suffix}"))?))
    }

    /// CreateTarget: the new target's id and signing key.
    pub fn create_target(&mut self, spec: &TargetSpec) -> Result<(String, Secret), Error> {
        let call = Call::CreateTarget;
        let answer = self.call(call, Method::Post, "/v2/actions/targets", Some(spec.to_json()))?;
        Ok((string_field(&answer, "id", call)?, Secret::new(string_field(&answer, "signingKey", call)?)))
    }

    /// UpdateTarget without `expirationSigningKey`: the key stays as it is.
    pub fn update_target(&mut self, id: &str, spec: &TargetSpec) -> Result<(), Error> {
        self.call(Call::UpdateTarget, Method::Post, &target_path(id), Some(spec.to_json()))?;
        Ok(())
    }

    /// GetTarget: the current signing key (and payload type, for what a run says about a JWE target).
    pub fn get_target(&mut self, id: &str) -> Result<TargetInfo, Error> {
        let call = Call::GetTarget;
        let answer = self.call(call, Method::Get, &target_path(id), None)?;
        let target = answer.get("target").ok_or_else(|| missing("target", call))?;
        let text = |field: &str| target.get(field).and_then(Value::as_str).map(str::to_string);
        Ok(TargetInfo {
            signing_key: Secret::new(string_field(target, "signingKey", call)?),
            payload_type: text("payloadType"),
            endpoint: text("endpoint"),
            timeout: text("timeout"),
            rest_call: target.get("restCall").is_some_and(Value::is_object),
            // protojson leaves `false` out: `"restCall": {}` does not interrupt.
            interrupts: ["restCall", "restWebhook"]
                .iter()
                .find_map(|kind| target.get(*kind).filter(|settings| settings.is_object()))
                .map(|settings| settings.get("interruptOnError").and_then(Value::as_bool).unwrap_or(false)),
        })
    }

    /// UpdateTarget with only a new name.
    pub fn rename_target(&mut self, id: &str, name: &str) -> Result<(), Error> {
        self.call(Call::RenameTarget, Method::Post, &target_path(id), Some(json!({ "name": name })))?;
        Ok(())
    }

    /// DeleteTarget: ZITADEL also removes it from every execution.
    pub fn delete_target(&mut self, id: &str) -> Result<(), Error> {
        self.call(Call::DeleteTarget, Method::Delete, &target_path(id), None)?;
        Ok(())
    }

    /// ListExecutions of the target `id`: each execution that calls it, as its condition (as
    /// ZITADEL wrote it) and its target ids in order.
    pub fn executions_of(&mut self, id: &str) -> Result<Vec<(Value, Vec<String>)>, Error> {
        let call = Call::SearchExecutions;
        let body = json!({ "filters": [{ "targetFilter": { "targetId": id } }] });
        let answer = self.call(call, Method::Post, "/v2/actions/executions/search", Some(body))?;
        let mut found = Vec::new();
        for execution in list(&answer, "executions", call)? {
            let condition = execution.get("condition").cloned().ok_or_else(|| missing("condition", call))?;
            let unreadable = || Error::UnreadableExecution { condition: condition.to_string() };
            let targets = execution.get("targets").and_then(Value::as_array).ok_or_else(unreadable)?;
            let ids = targets.iter().map(|t| t.as_str().map(str::to_string)).collect::<Option<Vec<_>>>();
            found.push((condition.clone(), ids.ok_or_else(unreadable)?));
        }
        Ok(found)
    }

    /// SetExecution of a condition as ZITADEL wrote it: REPLACES its target list.
    pub fn set_execution_of(&mut self, condition: &Value, targets: &[String]) -> Result<(), Error> {
        let body = json!({ "condition": condition, "targets": targets });
        self.call(Call::SetExecution, Method::Put, "/v2/actions/executions", Some(body))?;
        Ok(())
    }

    /// ListPublicKeys: the target's public keys for payload encryption, at most one of them active.
    pub fn list_public_keys(&mut self, target: &str) -> Result<Vec<PublicKeyInfo>, Error> {
        let call = Call::ListPublicKeys;
        let answer =
            self.call(call, Method::Post, &format!("{}/publickeys/search", target_path(target)), Some(json!({})))?;
        list(&answer, "publicKeys", call)?
            .iter()
            .map(|key| {
                let active = match key.get("active") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(active)) => *active,
                    Some(_) => return Err(Error::BadAnswer { call, detail: "\"active\" is not a boolean".into() }),
                };
                Ok(PublicKeyInfo { key_id: string_field(key, "keyId", call)?, active })
            })
            .collect()
    }

    /// AddPublicKey: sends the PEM (as the base64 a protobuf `bytes` field is in JSON); the new
    /// key's id. ZITADEL adds it inactive.
    pub fn add_public_key(&mut self, target: &str, public_pem: &str) -> Result<String, Error> {
        let call = Call::AddPublicKey;
        let body = json!({ "publicKey": STANDARD.encode(public_pem) });
        let answer = self.call(call, Method::Post, &format!("{}/publickeys", target_path(target)), Some(body))?;
        string_field(&answer, "keyId", call)
    }

    /// ActivatePublicKey: ZITADEL encrypts with this key from now on and deactivates the one before.
    pub fn activate_public_key(&mut self, target: &str, key_id: &str) -> Result<(), Error> {
        let path = format!("{}/activate", public_key_path(target, key_id));
        self.call(Call::ActivatePublicKey, Method::Post, &path, None)?;
        Ok(())
    }

    /// RemovePublicKey: only an inactive key can be removed.
    pub fn remove_public_key(&mut self, target: &str, key_id: &str) -> Result<(), Error> {
        self.call(Call::RemovePublicKey, Method::Delete, &public_key_path(target, key_id), None)?;
        Ok(())
    }

    /// ListExecutions for one condition: the ids of the targets bound to it, in order.
    pub fn execution_targets(&mut self, condition: Condition) -> Result<Vec<String>, Error> {
        let call = Call::SearchExecutions;
        let body = json!({ "filters": [{ "inConditionsFilter": { "conditions": [condition.to_json()] } }] });
        let answer = self.call(call, Method::Post, "/v2/actions/executions/search", Some(body))?;
        let mut ids: Vec<String> = Vec::new();
        for execution in list(&answer, "executions", call)? {
            let Some(targets) = execution.get("targets") else { continue };
            let targets =
                targets.as_array().ok_or_else(|| Error::UnreadableExecution { condition: condition.describe() })?;
            for target in targets {
                let id =
                    target.as_str().ok_or_else(|| Error::UnreadableExecution { condition: condition.describe() })?;
                if !ids.iter().any(|known| known == id) {
                    ids.push(id.to_string());
                }
            }
        }
        Ok(ids)
    }

    /// SetExecution: REPLACES the condition's target list with `targets`.
    pub fn set_execution(&mut self, condition: Condition, targets: &[String]) -> Result<(), Error> {
        let body = json!({ "condition": condition.to_json(), "targets": targets });
        self.call(Call::SetExecution, Method::Put, "/v2/actions/executions", Some(body))?;
        Ok(())
    }

    /// ListProjects (management v1) by exact name: the id of the project named `name`, if there
    /// is one. The management API works in the organization of the PAT's user.
    pub fn find_project(&mut self, name: &str) -> Result<Option<String>, Error> {
        let call = Call::SearchProjects;
        let body = json!({ "queries": [{ "nameQuery": { "name": name, "method": "TEXT_QUERY_METHOD_EQUALS" } }] });
        let answer = self.call(call, Method::Post, "/management/v1/projects/_search", Some(body))?;
        let ids: Vec<String> = named(list(&answer, "result", call)?, name)
            .map(|project| string_field(project, "id", call))
            .collect::<Result<_, _>>()?;
        match ids.len() {
            0 => Ok(None),
            1 => Ok(ids.into_iter().next()),
            count => Err(Error::AmbiguousProject { name: name.to_string(), count }),
        }
    }

    /// AddProject (management v1): the new project's id.
    pub fn create_project(&mut self, name: &str) -> Result<String, Error> {
        let call = Call::CreateProject;
        let answer = self.call(call, Method::Post, "/management/v1/projects", Some(json!({ "name": name })))?;
        string_field(&answer, "id", call)
    }

    /// ListApps (management v1) by exact name: the project's app named `name`, if there is one.
    fn find_app(&mut self, project: &str, name: &str) -> Result<Option<Value>, Error> {
        let call = Call::SearchApps;
        let body = json!({ "queries": [{ "nameQuery": { "name": name, "method": "TEXT_QUERY_METHOD_EQUALS" } }] });
        let answer = self.call(call, Method::Post, &format!("{}/apps/_search", project_path(project)), Some(body))?;
        let apps: Vec<&Value> = named(list(&answer, "result", call)?, name).collect();
        match apps.as_slice() {
            [] => Ok(None),
            [app] => Ok(Some((*app).clone())),
            many => {
                Err(Error::AmbiguousApp { name: name.to_string(), project: project.to_string(), count: many.len() })
            }
        }
    }

    /// ListApps (management v1) by exact name: the project's OIDC app named `name`, if there is
    /// one; an app of that name that is not an OIDC app is an error.
    pub fn find_oidc_app(&mut self, project: &str, name: &str) -> Result<Option<OidcApp>, Error> {
        let call = Call::SearchApps;
        let Some(app) = self.find_app(project, name)? else { return Ok(None) };
        let Some(Value::Object(config)) = app.get("oidcConfig") else {
            return Err(Error::NotOidcApp { name: name.to_string(), project: project.to_string() });
        };
        Ok(Some(OidcApp {
            id: string_field(&app, "id", call)?,
            client_id: string_field(&Value::Object(config.clone()), "clientId", call)?,
            config: config.clone(),
        }))
    }

    /// ListApps (management v1) by exact name: the project's API app named `name`, if there is
    /// one; an app of that name that is not an API app is an error.
    pub fn find_api_app(&mut self, project: &str, name: &str) -> Result<Option<ApiApp>, Error> {
        let call = Call::SearchApps;
        let Some(app) = self.find_app(project, name)? else { return Ok(None) };
        let Some(config @ Value::Object(_)) = app.get("apiConfig") else {
            return Err(Error::NotApiApp { name: name.to_string(), project: project.to_string() });
        };
        let auth_method = match config.get("authMethodType") {
            None | Some(Value::Null) => API_AUTH_BASIC.to_string(),
            Some(Value::String(method)) => method.clone(),
            Some(_) => return Err(Error::BadAnswer { call, detail: "\"authMethodType\" is not a string".into() }),
        };
        Ok(Some(ApiApp {
            id: string_field(&app, "id", call)?,
            client_id: string_field(config, "clientId", call)?,
            auth_method,
        }))
    }

    /// AddOIDCApp (management v1): the new app's id and client id. A public client gets no
    /// client secret.
    pub fn create_oidc_app(&mut self, project: &str, spec: &OidcAppSpec) -> Result<(String, String), Error> {
        let call = Call::CreateOidcApp;
        let answer =
            self.call(call, Method::Post, &format!("{}/apps/oidc", project_path(project)), Some(spec.to_json()))?;
        Ok((string_field(&answer, "appId", call)?, string_field(&answer, "clientId", call)?))
    }

    /// UpdateOIDCAppConfig (management v1): the owned fields as `spec` has them, the others as
    /// `existing` (the app's `oidcConfig`) has them.
    pub fn update_oidc_config(
        &mut self,
        project: &str,
        app: &str,
        spec: &OidcAppSpec,
        existing: &serde_json::Map<String, Value>,
    ) -> Result<(), Error> {
        let path = format!("{}/apps/{}/oidc_config", project_path(project), path_segment(app));
        self.call(Call::UpdateOidcConfig, Method::Put, &path, Some(spec.update_json(existing)))?;
        Ok(())
    }

    /// AddAPIApp (management v1) with HTTP Basic client authentication: the new app's id, client
    /// id and client secret (which ZITADEL shows only now).
    pub fn create_api_app(&mut self, project: &str, name: &str) -> Result<(String, String, Secret), Error> {
        let call = Call::CreateApiApp;
        let body = json!({ "name": name, "authMethodType": API_AUTH_BASIC });
        let answer = self.call(call, Method::Post, &format!("{}/apps/api", project_path(project)), Some(body))?;
        Ok((
            string_field(&answer, "appId", call)?,
            string_field(&answer, "clientId", call)?,
            Secret::new(string_field(&answer, "clientSecret", call)?),
        ))
    }

    /// RegenerateAPIClientSecret (management v1): the API app's new client secret; ZITADEL no
    /// longer accepts the one before.
    pub fn regenerate_api_secret(&mut self, project: &str, app: &str) -> Result<Secret, Error> {
        let call = Call::RegenerateApiSecret;
        let path = format!("{}/apps/{}/api_config/_generate_client_secret", project_path(project), path_segment(app));
        let answer = self.call(call, Method::Post, &path, Some(json!({})))?;
        Ok(Secret::new(string_field(&answer, "clientSecret", call)?))
    }
}

/// The items of a search answer named exactly `name`, whatever the server did with the filter.
fn named<'v>(items: &'v [Value], name: &'v str) -> impl Iterator<Item = &'v Value> {
    items.iter().filter(move |item| item.get("name").and_then(Value::as_str) == Some(name))
}

fn project_path(id: &str) -> String {
    format!("/management/v1/projects/{}", path_segment(id))
}

/// The target list an execution needs so that `ours` is called too: the current targets in their
/// order, then ours. `None` when it is already there (nothing to send).
pub fn merge_targets(current: &[String], ours: &str) -> Option<Vec<String>> {
    if current.iter().any(|id| id == ours) {
        return None;
    }
    let mut merged = current.to_vec();
    merged.push(ours.to_string());
    Some(merged)
}

fn target_path(id: &str) -> String {
    format!("/v2/actions/targets/{}", path_segment(id))
}

fn public_key_path(target: &str, key_id: &str) -> String {
    format!("{}/publickeys/{}", target_path(target), path_segment(key_id))
}

/// Ids are digits; anything else is percent-encoded so it stays one path segment.
fn path_segment(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

fn missing(field: &str, call: Call) -> Error {
    Error::BadAnswer { call, detail: format!("no {field:?} in the answer") }
}

/// A string field; the message names the field, never its value (it may be a key).
fn string_field(value: &Value, field: &str, call: Call) -> Result<String, Error> {
    match value.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(missing(field, call)),
    }
}

/// A list field; absent means empty (protojson leaves out empty lists).
fn list<'v>(value: &'v Value, field: &str, call: Call) -> Result<&'v [Value], Error> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Error::BadAnswer { call, detail: format!("{field:?} is not a list") }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status, body: body.to_string(), location: None }
    }

    #[test]
    fn a_narrated_transport_says_each_call_before_sending_it() {
        struct Empty(usize);
        impl Transport for Empty {
            fn send(&mut self, _: &Request) -> Result<Answer, Error> {
                self.0 += 1;
                Ok(Answer { status: 200, body: r#"{"targets":[]}"#.into(), location: None })
            }
        }
        let mut inner = Empty(0);
        let mut out = Vec::new();
        let mut narrated = Narrated { inner: &mut inner, out: &mut out };
        assert_eq!(Zitadel::new("https://z", &mut narrated).unwrap().find_targets("t", "-x").unwrap(), (None, None));
        assert_eq!(String::from_utf8(out).unwrap(), "  ZITADEL: searching the targets\n");
        assert_eq!(inner.0, 1);
    }

    #[test]
    fn merge_appends_ours_after_the_others() {
        let current = vec!["111".to_string(), "222".to_string()];
        assert_eq!(merge_targets(&current, "333"), Some(vec!["111".into(), "222".into(), "333".into()]));
        assert_eq!(merge_targets(&[], "333"), Some(vec!["333".into()]));
    }

    #[test]
    fn merge_changes_nothing_when_ours_is_bound() {
        let current = vec!["111".to_string(), "333".to_string(), "222".to_string()];
        assert_eq!(merge_targets(&current, "333"), None);
    }

    #[test]
    fn check_maps_statuses_to_errors() {
        let body = r#"{"code":7,"message":"No matching permissions found (AUTH-5mWD2)","details":[]}"#;
        assert_eq!(check(Call::SearchExecutions, "u", answer(401, body)).unwrap_err(), Error::Unauthorized);
        assert_eq!(
            check(Call::SearchExecutions, "u", answer(403, body)).unwrap_err(),
            Error::Forbidden {
                call: Call::SearchExecutions,
                message: Some("No matching permissions found (AUTH-5mWD2)".into())
            }
        );
        assert_eq!(
            check(Call::CreateTarget, "u", answer(500, "<html>oops</html>")).unwrap_err(),
            Error::Status { call: Call::CreateTarget, status: 500, message: None, location: None }
        );
        let redirect = Answer { status: 302, body: String::new(), location: Some("https://elsewhere".into()) };
        assert_eq!(
            check(Call::GetTarget, "u", redirect).unwrap_err(),
            Error::Status {
                call: Call::GetTarget,
                status: 302,
                message: None,
                location: Some("https://elsewhere".into())
            }
        );
        assert_eq!(check(Call::SetExecution, "u", answer(200, "")).unwrap(), json!({}));
        assert!(matches!(check(Call::SetExecution, "u", answer(200, "nope")), Err(Error::BadAnswer { .. })));
    }

    #[test]
    fn zitadel_message_is_cleaned_and_shortened() {
        assert_eq!(zitadel_message(r#"{"message":"a\u001b[31mb"}"#).as_deref(), Some("a[31mb"));
        assert_eq!(zitadel_message(&format!(r#"{{"message":"{}"}}"#, "x".repeat(500))).unwrap().len(), 300);
        assert_eq!(zitadel_message(r#"{"message":""}"#), None);
        assert_eq!(zitadel_message(r#"{"error":"x"}"#), None);
        assert_eq!(zitadel_message("not json"), None);
    }

    #[test]
    fn bodies_match_the_rest_wire_format() {
        let spec = TargetSpec {
            name: "n".into(),
            endpoint: "https://w/".into(),
            timeout: "10s".into(),
            interrupt_on_error: true,
            payload_type: None,
        };
        assert_eq!(
            spec.to_json(),
            json!({"name":"n","endpoint":"https://w/","timeout":"10s","restCall":{"interruptOnError":true}})
        );
        let jwe = TargetSpec { payload_type: Some(PayloadType::Jwe), ..spec.clone() };
        assert_eq!(jwe.to_json()["payloadType"], "PAYLOAD_TYPE_JWE");
        assert_eq!(
            TargetSpec { payload_type: Some(PayloadType::Json), ..spec }.to_json()["payloadType"],
            "PAYLOAD_TYPE_JSON"
        );
        assert_eq!(Condition::Function("preaccesstoken").to_json(), json!({"function":{"name":"preaccesstoken"}}));
        assert_eq!(
            Condition::Response("/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent").to_json(),
            json!({"response":{"method":"/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent"}})
        );
    }

    #[test]
    fn target_ids_stay_one_path_segment() {
        assert_eq!(target_path("312909075212468632"), "/v2/actions/targets/312909075212468632");
        assert_eq!(target_path("a/b?c"), "/v2/actions/targets/a%2Fb%3Fc");
        assert_eq!(public_key_path("1", "2/3"), "/v2/actions/targets/1/publickeys/2%2F3");
    }

    /// Answers from a script, recording requests.
    struct Scripted {
        answers: Vec<Answer>,
        requests: Vec<Request>,
    }

    impl Transport for Scripted {
        fn send(&mut self, request: &Request) -> Result<Answer, Error> {
            self.requests.push(request.clone());
            Ok(self.answers.remove(0))
        }
    }

    #[test]
    fn find_targets_counts_only_exact_names() {
        let mut t = Scripted {
            answers: vec![answer(
                200,
                r#"{"targets":[{"id":"1","name":"zitadel-claims-old"},{"id":"2","name":"zitadel-claims"},{"id":"3","name":"zitadel-claims-retiring"}]}"#,
            )],
            requests: vec![],
        };
        let found = Zitadel::new("http://z", &mut t).unwrap().find_targets("zitadel-claims", "-retiring").unwrap();
        assert_eq!(found, (Some("2".into()), Some("3".into())));
        assert_eq!(t.requests[0].url, "http://z/v2/actions/targets/search");
        assert_eq!(
            t.requests[0].body,
            Some(
                json!({"filters":[{"targetNameFilter":{"targetName":"zitadel-claims","method":"TEXT_FILTER_METHOD_STARTS_WITH"}}]})
            )
        );
        let mut none =
            Scripted { answers: vec![answer(200, r#"{"pagination":{"totalResult":"0"}}"#)], requests: vec![] };
        assert_eq!(Zitadel::new("http://z", &mut none).unwrap().find_targets("x", "-y").unwrap(), (None, None));
        let two = r#"{"targets":[{"id":"1","name":"x"},{"id":"2","name":"x"}]}"#;
        let mut two = Scripted { answers: vec![answer(200, two)], requests: vec![] };
        let err = Zitadel::new("http://z", &mut two).unwrap().find_targets("x", "-y").unwrap_err();
        assert_eq!(err, Error::AmbiguousTarget { name: "x".into(), count: 2 });
    }

    #[test]
    fn execution_targets_unions_the_lists_and_refuses_what_it_cannot_read() {
        let body = r#"{"executions":[{"condition":{"function":{"name":"preaccesstoken"}},"targets":["1","2"]},{"targets":["2","3"]}]}"#;
        let mut t = Scripted { answers: vec![answer(200, body)], requests: vec![] };
        let ids =
            Zitadel::new("http://z", &mut t).unwrap().execution_targets(Condition::Function("preaccesstoken")).unwrap();
        assert_eq!(ids, vec!["1", "2", "3"]);
        assert_eq!(
            t.requests[0].body,
            Some(json!({"filters":[{"inConditionsFilter":{"conditions":[{"function":{"name":"preaccesstoken"}}]}}]}))
        );
        let v2beta = r#"{"executions":[{"targets":[{"target":"1"}]}]}"#;
        let mut t = Scripted { answers: vec![answer(200, v2beta)], requests: vec![] };
        assert!(matches!(
            Zitadel::new("http://z", &mut t).unwrap().execution_targets(Condition::Function("preuserinfo")),
            Err(Error::UnreadableExecution { .. })
        ));
    }

    #[test]
    fn a_missing_key_is_named_but_never_shown() {
        let mut t = Scripted { answers: vec![answer(200, r#"{"id":"1","signingKey":""}"#)], requests: vec![] };
        let spec = TargetSpec {
            name: "n".into(),
            endpoint: "https://w/".into(),
            timeout: "10s".into(),
            interrupt_on_error: false,
            payload_type: None,
        };
        let err = Zitadel::new("http://z", &mut t).unwrap().create_target(&spec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected answer from ZITADEL when creating the target: no \"signingKey\" in the answer"
        );
    }

    #[test]
    fn public_key_calls_match_the_rest_wire_format() {
        let mut t = Scripted {
            answers: vec![
                answer(200, r#"{"keyId":"900","creationDate":"2025-01-01T00:00:00Z"}"#),
                answer(200, r#"{"changeDate":"2025-01-01T00:00:00Z"}"#),
                answer(200, r#"{"publicKeys":[{"keyId":"900","active":true,"publicKey":"LS0t"},{"keyId":"800"}]}"#),
                answer(200, r#"{"deletionDate":"2025-01-01T00:00:00Z"}"#),
                answer(200, r#"{}"#),
            ],
            requests: vec![],
        };
        let mut z = Zitadel::new("http://z", &mut t).unwrap();
        let pem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
        assert_eq!(z.add_public_key("1", pem).unwrap(), "900");
        z.activate_public_key("1", "900").unwrap();
        assert_eq!(
            z.list_public_keys("1").unwrap(),
            [
                PublicKeyInfo { key_id: "900".into(), active: true },
                PublicKeyInfo { key_id: "800".into(), active: false }
            ]
        );
        z.remove_public_key("1", "800").unwrap();
        assert_eq!(z.list_public_keys("1").unwrap(), [], "protojson leaves out an empty list");
        let sent: Vec<(Method, &str, Option<&Value>)> =
            t.requests.iter().map(|r| (r.method, r.url.as_str(), r.body.as_ref())).collect();
        let encoded = STANDARD.encode(pem);
        assert_eq!(
            sent,
            [
                (Method::Post, "http://z/v2/actions/targets/1/publickeys", Some(&json!({ "publicKey": encoded }))),
                (Method::Post, "http://z/v2/actions/targets/1/publickeys/900/activate", None),
                (Method::Post, "http://z/v2/actions/targets/1/publickeys/search", Some(&json!({}))),
                (Method::Delete, "http://z/v2/actions/targets/1/publickeys/800", None),
                (Method::Post, "http://z/v2/actions/targets/1/publickeys/search", Some(&json!({}))),
            ]
        );
        assert_eq!(STANDARD.decode(&encoded).unwrap(), pem.as_bytes(), "the PEM text itself, real newlines");
    }

    #[test]
    fn management_calls_match_the_rest_wire_format_and_count_only_exact_names() {
        let mut t = Scripted {
            answers: vec![
                answer(
                    200,
                    r#"{"result":[{"id":"1","name":"zitadel-claims-old"},{"id":"2","name":"zitadel-claims"}]}"#,
                ),
                answer(200, r#"{"id":"3","details":{}}"#),
                answer(
                    200,
                    r#"{"result":[{"id":"8","name":"c-connect","oidcConfig":{"clientId":"8@p","devMode":true}}]}"#,
                ),
                answer(200, r#"{"details":{"totalResult":"0"}}"#),
            ],
            requests: vec![],
        };
        let mut z = Zitadel::new("http://z/base", &mut t).unwrap();
        assert_eq!(z.find_project("zitadel-claims").unwrap(), Some("2".into()));
        assert_eq!(z.create_project("zitadel-claims").unwrap(), "3");
        let app = z.find_oidc_app("2", "c-connect").unwrap().unwrap();
        assert_eq!((app.id.as_str(), app.client_id.as_str(), &app.config["devMode"]), ("8", "8@p", &json!(true)));
        assert_eq!(z.find_oidc_app("2/x", "c-connect").unwrap(), None, "protojson leaves out an empty list");
        let sent: Vec<(Method, &str, Option<&Value>)> =
            t.requests.iter().map(|r| (r.method, r.url.as_str(), r.body.as_ref())).collect();
        let by_name = |name: &str| json!({"queries":[{"nameQuery":{"name":name,"method":"TEXT_QUERY_METHOD_EQUALS"}}]});
        assert_eq!(
            sent,
            [
                (Method::Post, "http://z/base/management/v1/projects/_search", Some(&by_name("zitadel-claims"))),
                (Method::Post, "http://z/base/management/v1/projects", Some(&json!({"name":"zitadel-claims"}))),
                (Method::Post, "http://z/base/management/v1/projects/2/apps/_search", Some(&by_name("c-connect"))),
                (Method::Post, "http://z/base/management/v1/projects/2%2Fx/apps/_search", Some(&by_name("c-connect"))),
            ]
        );
    }

    #[test]
    fn two_projects_or_apps_of_one_name_and_an_app_without_oidc_config_are_errors() {
        let mut t = Scripted {
            answers: vec![
                answer(200, r#"{"result":[{"id":"1","name":"n"},{"id":"2","name":"n"}]}"#),
                answer(200, r#"{"result":[{"id":"1","name":"a","oidcConfig":{}},{"id":"2","name":"a"}]}"#),
                answer(200, r#"{"result":[{"id":"1","name":"a","apiConfig":{"clientId":"x"}}]}"#),
            ],
            requests: vec![],
        };
        let mut z = Zitadel::new("http://z", &mut t).unwrap();
        assert_eq!(z.find_project("n").unwrap_err(), Error::AmbiguousProject { name: "n".into(), count: 2 });
        assert_eq!(
            z.find_oidc_app("9", "a").unwrap_err(),
            Error::AmbiguousApp { name: "a".into(), project: "9".into(), count: 2 }
        );
        assert_eq!(z.find_oidc_app("9", "a").unwrap_err(), Error::NotOidcApp { name: "a".into(), project: "9".into() });
    }

    #[test]
    fn api_app_calls_match_the_rest_wire_format() {
        let mut t = Scripted {
            answers: vec![
                answer(200, r#"{"details":{"totalResult":"0"}}"#),
                answer(200, r#"{"appId":"9","details":{"sequence":"1"},"clientId":"9@p","clientSecret":"s3cr3t"}"#),
                answer(
                    200,
                    r#"{"result":[{"id":"9","name":"c-introspection","state":"APP_STATE_ACTIVE","apiConfig":{"clientId":"9@p"}}]}"#,
                ),
                answer(200, r#"{"clientSecret":"n3w","details":{"sequence":"2"}}"#),
                answer(
                    200,
                    r#"{"result":[{"id":"9","name":"c-introspection","apiConfig":{"clientId":"9@p","authMethodType":"API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT"}}]}"#,
                ),
            ],
            requests: vec![],
        };
        let mut z = Zitadel::new("http://z/base", &mut t).unwrap();
        assert_eq!(z.find_api_app("2", "c-introspection").unwrap(), None);
        let (id, client_id, secret) = z.create_api_app("2", "c-introspection").unwrap();
        assert_eq!((id.as_str(), client_id.as_str(), secret.expose()), ("9", "9@p", "s3cr3t"));
        let app = z.find_api_app("2", "c-introspection").unwrap().unwrap();
        assert_eq!(
            app,
            ApiApp { id: "9".into(), client_id: "9@p".into(), auth_method: API_AUTH_BASIC.into() },
            "protojson leaves out BASIC, the enum's zero value"
        );
        assert_eq!(z.regenerate_api_secret("2", "9/x").unwrap().expose(), "n3w");
        let jwt = z.find_api_app("2", "c-introspection").unwrap().unwrap();
        assert_eq!(jwt.auth_method, "API_AUTH_METHOD_TYPE_PRIVATE_KEY_JWT");
        let sent: Vec<(Call, Method, &str, Option<&Value>)> =
            t.requests.iter().map(|r| (r.call, r.method, r.url.as_str(), r.body.as_ref())).collect();
        let by_name = json!({"queries":[{"nameQuery":{"name":"c-introspection","method":"TEXT_QUERY_METHOD_EQUALS"}}]});
        let search =
            (Call::SearchApps, Method::Post, "http://z/base/management/v1/projects/2/apps/_search", Some(&by_name));
        assert_eq!(
            sent,
            [
                search,
                (
                    Call::CreateApiApp,
                    Method::Post,
                    "http://z/base/management/v1/projects/2/apps/api",
                    Some(&json!({"name":"c-introspection","authMethodType":"API_AUTH_METHOD_TYPE_BASIC"}))
                ),
                search,
                (
                    Call::RegenerateApiSecret,
                    Method::Post,
                    "http://z/base/management/v1/projects/2/apps/9%2Fx/api_config/_generate_client_secret",
                    Some(&json!({}))
                ),
                search,
            ]
        );
    }

    #[test]
    fn an_api_app_answer_without_its_secret_or_an_app_of_another_type_is_an_error() {
        let mut t = Scripted {
            answers: vec![
                answer(200, r#"{"appId":"9","clientId":"9@p"}"#),
                answer(200, r#"{"details":{}}"#),
                answer(200, r#"{"result":[{"id":"1","name":"a","oidcConfig":{"clientId":"1@p"}}]}"#),
                answer(200, r#"{"result":[{"id":"1","name":"a","apiConfig":{"clientId":"1@p","authMethodType":1}}]}"#),
            ],
            requests: vec![],
        };
        let mut z = Zitadel::new("http://z", &mut t).unwrap();
        let err = z.create_api_app("2", "a").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected answer from ZITADEL when creating the API app: no \"clientSecret\" in the answer"
        );
        assert!(matches!(
            z.regenerate_api_secret("2", "9"),
            Err(Error::BadAnswer { call: Call::RegenerateApiSecret, .. })
        ));
        assert_eq!(z.find_api_app("2", "a").unwrap_err(), Error::NotApiApp { name: "a".into(), project: "2".into() });
        assert!(matches!(z.find_api_app("2", "a"), Err(Error::BadAnswer { call: Call::SearchApps, .. })));
    }

    #[test]
    fn an_absent_oidc_field_has_its_protobuf_default() {
        let spec = OidcAppSpec { name: "a".into(), redirect_uri: "https://w/cb".into(), dev_mode: false };
        let ours = spec.config();
        assert_eq!(spec.differences(&ours), Vec::<&str>::new());
        // ZITADEL may leave out false, the first enum value and empty lists.
        let mut sparse = ours.clone();
        sparse.remove("devMode");
        sparse.remove("accessTokenType");
        assert_eq!(spec.differences(&sparse), Vec::<&str>::new());
        let empty = serde_json::Map::new();
        assert_eq!(
            spec.differences(&empty),
            ["redirectUris", "responseTypes", "grantTypes", "appType", "authMethodType"],
            "WEB and BASIC are the defaults of appType and authMethodType"
        );
        let dev = OidcAppSpec { dev_mode: true, ..spec.clone() };
        assert_eq!(dev.differences(&ours), ["devMode"]);
        // An update sends back what it does not set, and never the client id or secret.
        let mut existing = ours;
        existing.insert("clientId".into(), json!("1@p"));
        existing.insert("clientSecret".into(), json!("s"));
        existing.insert("version".into(), json!("OIDC_VERSION_1_0"));
        existing.insert("additionalOrigins".into(), json!(["https://app"]));
        let update = dev.update_json(&existing);
        assert_eq!(update["additionalOrigins"], json!(["https://app"]));
        assert_eq!(update["devMode"], json!(true));
        for absent in ["clientId", "clientSecret", "version", "name"] {
            assert!(update.get(absent).is_none(), "{absent}");
        }
    }

    #[test]
    fn an_unreadable_public_key_list_is_refused() {
        let mut t = Scripted {
            answers: vec![answer(200, r#"{"publicKeys":[{"keyId":"1","active":"yes"}]}"#)],
            requests: vec![],
        };
        assert!(matches!(
            Zitadel::new("http://z", &mut t).unwrap().list_public_keys("1"),
            Err(Error::BadAnswer { call: Call::ListPublicKeys, .. })
        ));
        let mut t = Scripted { answers: vec![answer(200, r#"{"keyId":""}"#)], requests: vec![] };
        assert!(Zitadel::new("http://z", &mut t).unwrap().add_public_key("1", "pem").is_err());
    }
}
