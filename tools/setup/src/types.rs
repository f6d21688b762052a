//! The vocabulary the other modules share: what a run is asked to do ([`Options`], with its
//! [`KeyAction`], [`PayloadType`], [`KeyType`] and [`Connect`]) and the ZITADEL API calls ([`Call`]) that
//! requests carry and errors name. It uses no other module of the crate, so every module may use it.

use std::fmt;

/// The timeout of a new target when `--timeout` is not given.
pub const DEFAULT_TIMEOUT: &str = "10s";

/// What a run is asked to do: the command line, checked (`cli::parse` makes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The instance's base URL, without a trailing slash.
    pub base_url: String,
    /// The target's endpoint; `None` only with `--rotate`/`--finish-rotation` (key only).
    pub worker_url: Option<String>,
    pub name: String,
    /// `--timeout`, as a protobuf JSON duration (`10s`); `None`: a new target gets
    /// [`DEFAULT_TIMEOUT`], an existing one keeps its own.
    pub timeout: Option<String>,
    /// `--interrupt-on-error` (`Some(true)`) or `--no-interrupt-on-error` (`Some(false)`); `None`: a
    /// new target does not interrupt, an existing one keeps its own.
    pub interrupt_on_error: Option<bool>,
    pub userinfo: bool,
    pub saml: bool,
    pub capture_idp_tokens: bool,
    pub key_action: KeyAction,
    /// `None`: a new target gets ZITADEL's default, an existing one keeps its type.
    pub payload_type: Option<PayloadType>,
    /// The kind of a new encryption key pair.
    pub key_type: KeyType,
    /// Where the private keys of the encryption key pairs are kept.
    pub key_file: String,
    /// `--connect`: the OIDC app of the worker's connect flow and its settings.
    pub connect: Option<Connect>,
    pub dry_run: bool,
    /// `--env`: the wrangler environment of the worker (`wrangler deploy --env <name>`), passed to
    /// every wrangler command.
    pub env: Option<String>,
}

/// What `--connect` provisions for: the worker's origin and the project of its OIDC app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// `scheme://host[:port]` of `--worker-url`: the connect flow's routes are at its root.
    pub origin: String,
    /// `--connect-project`: the project to create the app in; `None`: the project named `--name`,
    /// created when there is none.
    pub project_id: Option<String>,
    /// `--introspection`: also the API app `<name>-introspection` (HTTP Basic) in that project and
    /// the worker's secret `INTROSPECTION_CLIENT_SECRET`.
    pub introspection: bool,
    /// `--exchange-client`: the client ids of the back ends that exchange tokens at the worker's
    /// `/token`, in the order given; each gets a new secret in `TOKEN_EXCHANGE_CLIENTS`.
    pub exchange_clients: Vec<String>,
}

/// Which key a run rotates, if any (`--rotate`, `--rotate-encryption-key`, `--finish-rotation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    /// Store the target's current key (the default).
    Store,
    /// Rotate the signing key, then store `new,old`.
    Rotate,
    /// Make and activate a new encryption key pair, then store `new,old` as the decryption key.
    RotateEncryptionKey,
    /// Store only the current keys and drop the old encryption keys, ending a rotation.
    FinishRotation,
}

/// The target's `payloadType`: how ZITADEL sends the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadType {
    Json,
    Jwt,
    Jwe,
}

impl PayloadType {
    /// The enum value's name, as the REST API writes it.
    pub fn proto_name(self) -> &'static str {
        match self {
            PayloadType::Json => "PAYLOAD_TYPE_JSON",
            PayloadType::Jwt => "PAYLOAD_TYPE_JWT",
            PayloadType::Jwe => "PAYLOAD_TYPE_JWE",
        }
    }

    /// The type a target's `payloadType` names; `None` for another value (`PAYLOAD_TYPE_UNSPECIFIED`,
    /// ZITADEL's JSON, or one this tool does not know).
    pub fn from_proto_name(name: &str) -> Option<PayloadType> {
        [PayloadType::Json, PayloadType::Jwt, PayloadType::Jwe].into_iter().find(|t| t.proto_name() == name)
    }

    /// The type as the worker's `PAYLOAD_TYPES` and `--payload-type` write it.
    pub fn worker_name(self) -> &'static str {
        match self {
            PayloadType::Json => "json",
            PayloadType::Jwt => "jwt",
            PayloadType::Jwe => "jwe",
        }
    }
}

/// The kind of key pair `--key-type` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// RSA 2048: ZITADEL wraps the content key with RSA-OAEP-256.
    Rsa,
    /// EC P-256: ZITADEL agrees on the content key with ECDH-ES+A256KW.
    P256,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Rsa => "RSA 2048",
            KeyType::P256 => "EC P-256",
        })
    }
}

/// The calls, named after the RPCs of `zitadel.action.v2.ActionService`, and for `--connect` of
/// `zitadel.management.v1.ManagementService` (`ListProjects`, `AddProject`, `ListApps`, `AddOIDCApp`,
/// `UpdateOIDCAppConfig`, `AddAPIApp`, `RegenerateAPIClientSecret`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    SearchTargets,
    CreateTarget,
    UpdateTarget,
    GetTarget,
    RenameTarget,
    DeleteTarget,
    SearchExecutions,
    SetExecution,
    ListPublicKeys,
    AddPublicKey,
    ActivatePublicKey,
    RemovePublicKey,
    SearchProjects,
    CreateProject,
    SearchApps,
    CreateOidcApp,
    UpdateOidcConfig,
    CreateApiApp,
    RegenerateApiSecret,
}

impl Call {
    /// The permission ZITADEL checks for this call.
    pub fn permission(self) -> &'static str {
        match self {
            Call::SearchTargets | Call::GetTarget | Call::ListPublicKeys => "action.target.read",
            Call::CreateTarget
            | Call::UpdateTarget
            | Call::RenameTarget
            | Call::AddPublicKey
            | Call::ActivatePublicKey
            | Call::RemovePublicKey => "action.target.write",
            Call::DeleteTarget => "action.target.delete",
            Call::SearchExecutions => "action.execution.read",
            Call::SetExecution => "action.execution.write",
            Call::SearchProjects => "project.read",
            Call::CreateProject => "project.create",
            Call::SearchApps => "project.app.read",
            Call::CreateOidcApp | Call::UpdateOidcConfig | Call::CreateApiApp | Call::RegenerateApiSecret => {
                "project.app.write"
            }
        }
    }

    /// Whether the call only reads (a search or a get): what a dry run may send.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Call::SearchTargets
                | Call::GetTarget
                | Call::SearchExecutions
                | Call::ListPublicKeys
                | Call::SearchProjects
                | Call::SearchApps
        )
    }

    /// What the call does, for messages ("ZITADEL denied <what>").
    pub fn what(self) -> &'static str {
        match self {
            Call::SearchTargets => "searching the targets",
            Call::CreateTarget => "creating the target",
            Call::UpdateTarget => "updating the target",
            Call::GetTarget => "reading the target (its settings and signing key)",
            Call::RenameTarget => "renaming a target",
            Call::DeleteTarget => "deleting the old target",
            Call::SearchExecutions => "reading the executions",
            Call::SetExecution => "binding the target to an execution",
            Call::ListPublicKeys => "listing the target's public keys",
            Call::AddPublicKey => "adding the public key to the target",
            Call::ActivatePublicKey => "activating the target's public key",
            Call::RemovePublicKey => "removing an inactive public key of the target",
            Call::SearchProjects => "searching the projects",
            Call::CreateProject => "creating the project",
            Call::SearchApps => "searching the project's apps",
            Call::CreateOidcApp => "creating the OIDC app",
            Call::UpdateOidcConfig => "updating the OIDC app's configuration",
            Call::CreateApiApp => "creating the API app",
            Call::RegenerateApiSecret => "generating a new client secret of the API app",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_types_read_back_from_zitadels_names() {
        for t in [PayloadType::Json, PayloadType::Jwt, PayloadType::Jwe] {
            assert_eq!(PayloadType::from_proto_name(t.proto_name()), Some(t));
        }
        assert_eq!(PayloadType::from_proto_name("PAYLOAD_TYPE_UNSPECIFIED"), None);
        assert_eq!(PayloadType::from_proto_name("jwe"), None);
        assert_eq!(PayloadType::Jwe.worker_name(), "jwe");
    }
}
