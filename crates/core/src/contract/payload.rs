//! The request body ZITADEL posts to a target: a function payload (`preaccesstoken`,
//! `preuserinfo`, `presamlresponse`: ContextInfo in ZITADEL's internal/api/oidc/userinfo.go and
//! internal/api/saml/storage.go) or an API execution, decoded from the raw bytes.
//!
//! Only the fields the worker reads are decoded, all optional, `null` meaning absent. Every other
//! field is skipped unchecked, so a ZITADEL upgrade that adds or retypes fields we do not use cannot
//! break token issuance. Strings borrow from the body where they contain no escapes.

use std::borrow::Cow;

use serde::Deserialize;

/// The functions this target serves, as ZITADEL names them in `function`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    PreAccessToken,
    PreUserinfo,
    /// SAML applications: the answer holds attributes instead of claims.
    PreSamlResponse,
}

impl Function {
    /// All supported names, for error messages.
    pub const SUPPORTED: &'static str = "function/preaccesstoken, function/preuserinfo, function/presamlresponse";

    /// Accepts `function/preaccesstoken` as ZITADEL sends it, and the bare name.
    pub fn from_name(name: &str) -> Option<Function> {
        match name.strip_prefix("function/").unwrap_or(name) {
            "preaccesstoken" => Some(Function::PreAccessToken),
            "preuserinfo" => Some(Function::PreUserinfo),
            "presamlresponse" => Some(Function::PreSamlResponse),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::PreAccessToken => "function/preaccesstoken",
            Function::PreUserinfo => "function/preuserinfo",
            Function::PreSamlResponse => "function/presamlresponse",
        }
    }
}

/// Debug prints everything in unit tests; elsewhere, metadata keys but not their values, and the
/// sizes of `request` and `response` (they may carry tokens).
#[cfg_attr(test, derive(Debug))]
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ContextInfo<'a> {
    #[serde(borrow)]
    pub function: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "object")]
    pub user: Option<User<'a>>,
    /// The user's organization (not the project's).
    #[serde(borrow, deserialize_with = "object")]
    pub org: Option<Org<'a>>,
    /// Absent unless the project asserts roles or roles were requested by scope.
    #[serde(borrow, deserialize_with = "objects")]
    pub user_grants: Option<Vec<UserGrant<'a>>>,
    #[serde(borrow, deserialize_with = "objects")]
    pub user_metadata: Option<Vec<UserMetadata<'a>>>,
    #[serde(borrow, deserialize_with = "object")]
    pub application: Option<Application<'a>>,
    /// Set when the token is issued to someone impersonating the user (ZITADEL's token exchange,
    /// zitadel/zitadel#12566): `{"user_id","issuer","actor"?}` (domain.TokenActor). Only its
    /// presence is read; `null` counts as absent.
    pub actor: Option<serde::de::IgnoredAny>,
    /// Request and response executions (API calls) carry `fullMethod`, `request` and `response`
    /// instead of `function`. In a function payload, `response` is what the earlier targets of the
    /// execution answered (see [`crate::contract::chain`]).
    #[serde(borrow, rename = "fullMethod")]
    pub full_method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub request: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    pub response: Option<&'a serde_json::value::RawValue>,
}

#[cfg(not(test))]
impl std::fmt::Debug for ContextInfo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = |m: &Vec<UserMetadata>| m.iter().map(|e| e.key.as_deref().map(str::to_owned)).collect::<Vec<_>>();
        let size = |raw: &Option<&serde_json::value::RawValue>| raw.map(|r| r.get().len());
        f.debug_struct("ContextInfo")
            .field("function", &self.function)
            .field("user", &self.user)
            .field("org", &self.org)
            .field("user_grants", &self.user_grants)
            .field("user_metadata_keys", &self.user_metadata.as_ref().map(keys))
            .field("application", &self.application)
            .field("full_method", &self.full_method)
            .field("request_bytes", &size(&self.request))
            .field("response_bytes", &size(&self.response))
            .finish()
    }
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct User<'a> {
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
    /// The id of the user's organization.
    #[serde(borrow)]
    pub resource_owner: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Org<'a> {
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
}

/// One grant, in the snake_case V2 shape (`project_id`, not the V1 `projectId`).
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct UserGrant<'a> {
    #[serde(borrow)]
    pub project_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub roles: Option<Vec<Cow<'a, str>>>,
}

/// One metadata entry; `value` is standard padded base64 of the stored bytes.
#[cfg_attr(test, derive(Debug))]
#[derive(Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct UserMetadata<'a> {
    #[serde(borrow)]
    pub key: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub value: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Application<'a> {
    #[serde(borrow)]
    pub client_id: Option<Cow<'a, str>>,
}

/// `T` read from a JSON object only. serde's derived structs also accept a JSON array and read
/// it by position (`"org": ["o1"]` as `org.id = "o1"`); ZITADEL always sends objects, so an array
/// is a type error like any other.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

fn object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Ok(Option::<Object<T>>::deserialize(deserializer)?.map(|o| o.0))
}

fn objects<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Vec<T>>, D::Error> {
    Ok(Option::<Vec<Object<T>>>::deserialize(deserializer)?.map(|list| list.into_iter().map(|o| o.0).collect()))
}

impl ContextInfo<'_> {
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref()?.id.as_deref()
    }

    /// The OIDC client the token is for (newer ZITADEL versions send it).
    pub fn client_id(&self) -> Option<&str> {
        self.application.as_ref()?.client_id.as_deref()
    }

    /// The user's organization: `org.id`, else the user's `resource_owner` (SAML payloads have
    /// no `org`).
    pub fn org_id(&self) -> Option<&str> {
        self.org.as_ref().and_then(|o| o.id.as_deref()).or_else(|| self.user.as_ref()?.resource_owner.as_deref())
    }
}

/// Why a body could not be decoded. Messages name positions, fields and JSON kinds, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON at all: serde_json's own description (fixed texts without input), line and column.
    Json { reason: String, line: usize, column: usize },
    /// JSON, but a field the worker reads has the wrong type.
    Field { path: String, problem: String },
}

/// Decodes a body, which must be a JSON object. A path `.` in an error means the body itself.
pub fn decode(body: &[u8]) -> Result<ContextInfo<'_>, DecodeError> {
    // The fast path decodes untracked; only a type error pays for a second, path-tracking pass.
    match decode_with(body, |de| Object::deserialize(de)) {
        Err(DecodeError::Field { .. }) => decode_with(body, |de| serde_path_to_error::deserialize(de)),
        other => other,
    }
}

fn decode_with<'a, E: Into<Tracked>>(
    body: &'a [u8],
    deserialize: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::SliceRead<'a>>,
    ) -> Result<Object<ContextInfo<'a>>, E>,
) -> Result<ContextInfo<'a>, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let info = deserialize(&mut de).map_err(|e| {
        let Tracked { error, path } = e.into();
        from_serde(error, &path)
    })?;
    de.end().map_err(|e| from_serde(e, "."))?;
    Ok(info.0)
}

/// A serde_json error with the path where it happened, when known.
struct Tracked {
    error: serde_json::Error,
    path: String,
}

impl From<serde_json::Error> for Tracked {
    fn from(error: serde_json::Error) -> Self {
        Tracked { error, path: ".".to_string() }
    }
}

impl From<serde_path_to_error::Error<serde_json::Error>> for Tracked {
    fn from(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        Tracked { error: e.into_inner(), path }
    }
}

fn from_serde(e: serde_json::Error, path: &str) -> DecodeError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => DecodeError::Field { path: path.to_string(), problem: describe_data_error(&e.to_string()) },
        Category::Syntax | Category::Eof | Category::Io => {
            // Syntax messages are fixed texts; strip serde_json's own " at line L column C".
            let full = e.to_string();
            let reason = full.split(" at line ").next().unwrap_or("invalid JSON").to_string();
            DecodeError::Json { reason, line: e.line(), column: e.column() }
        }
    }
}

/// Turns serde's data error into words that never repeat the offending value: serde writes
/// `invalid type: string "<the value>", expected a sequence`, and the value may be a token.
fn describe_data_error(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let found = match rest.split([' ', ',']).next().unwrap_or("") {
            "string" | "char" => "a string",
            "integer" | "floating" => "a number",
            "boolean" => "a boolean",
            "map" => "an object",
            "sequence" => "an array",
            "null" | "unit" => "null",
            _ => "a value of another type",
        };
        let expected_text = rest.rsplit(", expected ").next().unwrap_or("");
        let expected = if expected_text.contains("sequence") {
            "an array"
        } else if expected_text.contains("struct") || expected_text.contains("map") {
            "an object"
        } else if expected_text.contains("string") {
            "a string"
        } else {
            "another type"
        };
        return format!("is {found} where {expected} is expected");
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        // The field name is one of ours (a known field), never input text.
        let field = rest.split('`').next().unwrap_or("");
        return format!("has the field `{field}` more than once");
    }
    "has an invalid value".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A realistic `preaccesstoken` body with every field of docs/zitadel-contract.md §3.
    pub const FULL: &str = include_str!("../../../../tests/fixtures/payloads/preaccesstoken.json");
    const MACHINE: &str = include_str!("../../../../tests/fixtures/payloads/preuserinfo-machine.json");

    #[test]
    fn full_realistic_payload_decodes_every_field_the_worker_reads() {
        let info = decode(FULL.as_bytes()).unwrap();
        assert_eq!(info.function.as_deref(), Some("function/preaccesstoken"));
        assert_eq!(info.user_id(), Some("312909075212468632"));
        assert_eq!(info.org_id(), Some("312909075211944344"));
        let grants = info.user_grants.as_ref().unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!(grants[0].project_id.as_deref(), Some("312909075212861848"));
        let roles: Vec<&str> = grants[0].roles.as_ref().unwrap().iter().map(|r| r.as_ref()).collect();
        assert_eq!(roles, ["admin", "editor"]);
        let metadata = info.user_metadata.as_ref().unwrap();
        assert_eq!(metadata[0].key.as_deref(), Some("microsoft_access_token"));
        assert!(metadata[0].value.as_deref().unwrap().ends_with('='));
        assert_eq!(info.application.unwrap().client_id.as_deref(), Some("312909075213386136"));
    }

    #[test]
    fn machine_user_payload_decodes() {
        let info = decode(MACHINE.as_bytes()).unwrap();
        assert_eq!(info.function.as_deref(), Some("function/preuserinfo"));
        assert_eq!(info.user_id(), Some("312909999999999999"));
        assert!(info.user_grants.is_none());
    }

    #[test]
    fn minimal_payloads_decode() {
        assert_eq!(format!("{:?}", decode(b"{}").unwrap()), format!("{:?}", ContextInfo::default()));
        let info = decode(br#"{"function":"function/preuserinfo"}"#).unwrap();
        assert_eq!(info.function.as_deref(), Some("function/preuserinfo"));
        assert_eq!(info.user_id(), None);
        assert_eq!(info.org_id(), None);
    }

    #[test]
    fn null_means_absent_everywhere() {
        let body = br#"{"function":null,"user":null,"org":null,"user_grants":null,"user_metadata":null,
            "application":null}"#;
        assert_eq!(format!("{:?}", decode(body).unwrap()), format!("{:?}", ContextInfo::default()));
        let nested = br#"{"user":{"id":null},"user_grants":[{"project_id":null,"roles":null}]}"#;
        let info = decode(nested).unwrap();
        assert_eq!(info.user_id(), None);
        assert_eq!(info.user_grants.unwrap()[0], UserGrant::default());
    }

    #[test]
    fn unknown_fields_and_retyped_unread_fields_are_ignored() {
        let body = br#"{"function":"preaccesstoken","new_field":{"x":[1,2]},"userinfo":7,
            "user":{"id":"u1","human":{"gender":3,"email":{"nested":true}},"machine":"odd"},
            "user_grants":[{"roles":["r"],"projectId":"camelCase is ignored","state":"whatever"}]}"#;
        let info = decode(body).unwrap();
        assert_eq!(info.user_id(), Some("u1"));
        assert_eq!(info.user_grants.unwrap()[0].project_id, None);
    }

    #[test]
    fn org_falls_back_to_the_users_resource_owner() {
        let info = decode(br#"{"user":{"id":"u","resource_owner":"o1"}}"#).unwrap();
        assert_eq!(info.org_id(), Some("o1"));
        let info = decode(br#"{"user":{"resource_owner":"o1"},"org":{"id":"o2"}}"#).unwrap();
        assert_eq!(info.org_id(), Some("o2"));
    }

    #[test]
    fn escaped_strings_decode() {
        let info = decode(br#"{"user":{"id":"a\"b\u00e9"}}"#).unwrap();
        assert_eq!(info.user_id(), Some("a\"b\u{e9}"));
    }

    #[test]
    fn wrong_type_names_the_field_and_kinds_but_not_the_value() {
        let cases: [(&[u8], &str, &str); 6] = [
            (
                br#"{"user_grants":[{"roles":"secret-role"}]}"#,
                "user_grants[0].roles",
                "is a string where an array is expected",
            ),
            (br#"{"user_grants":{"roles":[]}}"#, "user_grants", "is an object where an array is expected"),
            (
                br#"{"user_grants":[{},{"roles":["a",5]}]}"#,
                "user_grants[1].roles[1]",
                "is a number where a string is expected",
            ),
            (br#"{"function":true}"#, "function", "is a boolean where a string is expected"),
            (br#"{"user":"secret-user"}"#, "user", "is a string where an object is expected"),
            (
                br#"{"user_metadata":[{"key":"k","value":["x"]}]}"#,
                "user_metadata[0].value",
                "is an array where a string is expected",
            ),
        ];
        for (body, path, problem) in cases {
            let err = decode(body).unwrap_err();
            assert_eq!(
                err,
                DecodeError::Field { path: path.into(), problem: problem.into() },
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn duplicate_known_field_is_reported() {
        let err = decode(br#"{"user":{"id":"a","id":"b"}}"#).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Field { path: "user".into(), problem: "has the field `id` more than once".into() }
        );
    }

    #[test]
    fn invalid_json_gives_line_and_column() {
        let err = decode(b"{\n  \"function\": \"x\",\n  oops\n}").unwrap_err();
        assert_eq!(err, DecodeError::Json { reason: "key must be a string".into(), line: 3, column: 3 });
        let truncated = decode(br#"{"user_grants":[{"roles":["a""#).unwrap_err();
        assert!(matches!(truncated, DecodeError::Json { line: 1, .. }), "{truncated:?}");
        assert!(matches!(decode(b"").unwrap_err(), DecodeError::Json { .. }));
        assert!(
            matches!(decode(b"{} {}").unwrap_err(), DecodeError::Json { ref reason, .. } if reason == "trailing characters")
        );
    }

    #[test]
    fn non_utf8_inside_a_string_is_invalid_json() {
        assert!(matches!(decode(b"{\"function\":\"\xff\"}").unwrap_err(), DecodeError::Json { .. }));
    }

    #[test]
    fn deep_nesting_in_unread_fields_is_skipped_without_recursion() {
        // serde_json skips unread values iteratively: depth costs memory (bounded by the body
        // limit), never stack. Fields the worker reads are at most three levels deep.
        let depth = 400_000;
        let deep = format!("{{\"x\":{}{},\"function\":\"preuserinfo\"}}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(decode(deep.as_bytes()).unwrap().function.as_deref(), Some("preuserinfo"));
        let unbalanced = format!("{{\"x\":{}", "[".repeat(depth));
        assert!(matches!(decode(unbalanced.as_bytes()).unwrap_err(), DecodeError::Json { .. }));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        for body in [&b"[]"[..], b"[\"function/preaccesstoken\"]", b"\"x\"", b"null", b"3"] {
            assert!(decode(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn function_names_with_and_without_prefix() {
        assert_eq!(Function::from_name("function/preaccesstoken"), Some(Function::PreAccessToken));
        assert_eq!(Function::from_name("preaccesstoken"), Some(Function::PreAccessToken));
        assert_eq!(Function::from_name("function/preuserinfo"), Some(Function::PreUserinfo));
        assert_eq!(Function::from_name("preuserinfo"), Some(Function::PreUserinfo));
        assert_eq!(Function::from_name("function/presamlresponse"), Some(Function::PreSamlResponse));
        assert_eq!(Function::from_name("function/preotpsmscode"), None);
        assert_eq!(Function::from_name("Function/preuserinfo"), None);
        assert_eq!(Function::from_name(""), None);
    }
}
