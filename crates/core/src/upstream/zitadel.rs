//! The ZITADEL APIs the worker calls: an organization's metadata (v2, or management v1 on
//! instances that have no v2 route for it), authenticated with a personal access token or with a token
//! from the client-credentials grant, kept per isolate.
//!
//! Wire format as the REST gateway speaks it: camelCase, uint64 as strings, bytes as standard
//! base64.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{check_status, TokenAnswer, UpstreamError};
use crate::config::{Credentials, ZitadelApiConfig};
use crate::contract::id::is_zitadel_id;
use crate::port::{Clock, Http, HttpRequest, HttpResponse, Timer};
use crate::runtime::backoff::Backoff;
use crate::runtime::single_flight::SingleFlight;

const PAGE_SIZE: u64 = 100;
/// A guard against a server that never finishes paging: 100 pages of 100 entries.
const MAX_PAGES: u32 = 100;
/// A token is used until this long before it expires.
const TOKEN_EXPIRY_MARGIN_MS: u64 = 60_000;
const TOKEN_SCOPE: &str = "openid urn:zitadel:iam:org:project:id:zitadel:aud";

/// The ZITADEL API client, kept per isolate: its base URL and credentials, its token cache,
/// whether the instance has the v2 metadata API, and its 429 backoff.
pub struct ZitadelClient {
    api: ZitadelApiConfig,
    tokens: TokenCache,
    management_v1: Cell<bool>,
    backoff: Backoff,
}

/// The client-credentials token, fetched by one request for all and kept until shortly before it
/// expires.
#[derive(Default)]
struct TokenCache {
    token: RefCell<Option<(Rc<str>, u64)>>,
    flight: SingleFlight<Result<Rc<str>, UpstreamError>>,
}

impl ZitadelClient {
    /// The instance's base URL (`https://<ZITADEL_DOMAIN>`), where its OIDC endpoints are too.
    pub fn base_url(&self) -> &str {
        &self.api.base_url
    }

    /// A client of the API `api` whose token fetch, run by one request for all, ends within
    /// `live_for_ms` while that request lives (see [`SingleFlight::new`]).
    pub fn new(api: ZitadelApiConfig, live_for_ms: u64) -> Self {
        // Field by field: `..Default::default()` would build and drop a second flight map, whose
        // drop code the wasm would then carry.
        ZitadelClient {
            api,
            tokens: TokenCache { token: RefCell::default(), flight: SingleFlight::new(live_for_ms) },
            management_v1: Cell::default(),
            backoff: Backoff::default(),
        }
    }

    /// True once the instance showed it has no v2 metadata API (for tests and logs).
    pub fn uses_management_v1(&self) -> bool {
        self.management_v1.get()
    }
}

/// One metadata entry, value decoded from base64.
pub type MetadataEntry = (String, Vec<u8>);

impl ZitadelClient {
    /// All metadata entries of `org_id` whose key starts with `prefix`, every page of them, or
    /// `MappingTooLarge` as soon as their keys and decoded values pass `max_bytes` (reading stops there:
    /// a tenant's mapping never costs the isolate more than that).
    pub async fn org_metadata<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        org_id: &str,
        prefix: &str,
        max_bytes: usize,
    ) -> Result<Vec<MetadataEntry>, UpstreamError> {
        let org_id = zitadel_id(org_id)?;
        self.v2_or_v1(
            || self.list_metadata(runtime, org_id, prefix, Api::V2, max_bytes),
            || self.list_metadata(runtime, org_id, prefix, Api::ManagementV1, max_bytes),
        )
        .await
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Api {
    V2,
    ManagementV1,
}

/// The body of a metadata search: one page, and the key's prefix unless it is empty.
#[derive(Serialize)]
#[serde(untagged)]
enum SearchBody<'a> {
    V2 { pagination: Page, filters: &'a [Filter<'a>] },
    ManagementV1 { query: Page, queries: &'a [Filter<'a>] },
}

#[derive(Serialize)]
struct Page {
    /// A uint64, so a string.
    offset: String,
    limit: u64,
    asc: bool,
}

#[derive(Serialize)]
enum Filter<'a> {
    #[serde(rename = "keyFilter")]
    V2(KeyFilter<'a>),
    #[serde(rename = "keyQuery")]
    ManagementV1(KeyFilter<'a>),
}

#[derive(Serialize)]
struct KeyFilter<'a> {
    key: &'a str,
    method: &'static str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V2Page<'a> {
    #[serde(default)]
    pagination: Option<V2Pagination>,
    #[serde(default, borrow)]
    metadata: Vec<RawEntry<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V2Pagination {
    #[serde(default)]
    total_result: Option<Uint64>,
}

#[derive(Deserialize)]
struct V1Page<'a> {
    #[serde(default)]
    details: Option<V1Details>,
    #[serde(default, borrow)]
    result: Vec<RawEntry<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Details {
    #[serde(default)]
    total_result: Option<Uint64>,
}

/// One entry as the answer holds it: borrowed from the answer's text where it has no escapes (a
/// base64 value never has), so that reading a page copies no value but into its decoded bytes.
#[derive(Deserialize)]
pub(super) struct RawEntry<'a> {
    #[serde(default, borrow)]
    pub(super) key: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(super) value: Cow<'a, str>,
}

/// protojson writes uint64 as a string; accept a number too. (Read raw: an untagged enum would
/// pull serde's buffering machinery into the wasm.)
#[derive(Deserialize)]
#[serde(transparent)]
struct Uint64(Box<serde_json::value::RawValue>);

impl Uint64 {
    fn get(&self) -> Option<u64> {
        let raw = self.0.get();
        raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(raw).parse().ok()
    }
}

impl ZitadelClient {
    async fn list_metadata<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        org_id: &str,
        prefix: &str,
        which: Api,
        max_bytes: usize,
    ) -> Result<Vec<MetadataEntry>, UpstreamError> {
        let (url, org_header) = match which {
            Api::V2 => (format!("{}/v2/organizations/{org_id}/metadata/search", self.api.base_url), None),
            Api::ManagementV1 => (format!("{}/management/v1/metadata/_search", self.api.base_url), Some(org_id)),
        };
        let mut entries = Vec::new();
        let mut bytes = 0;
        let search = MetadataSearch { url: &url, org_header, which, prefix, max_pages: MAX_PAGES };
        self.search_metadata(runtime, search, |raw| {
            let value = base64::engine::general_purpose::STANDARD.decode(raw.value.as_bytes());
            // An undecodable value is kept as empty bytes under its key, so the mapping reports
            // the key as unreadable instead of silently losing it.
            let value = value.unwrap_or_default();
            bytes += raw.key.len() + value.len();
            if bytes > max_bytes {
                return Err(UpstreamError::MappingTooLarge);
            }
            entries.push((raw.key.into_owned(), value));
            Ok(())
        })
        .await?;
        Ok(entries)
    }

    /// Every page of a metadata search (an organization's or a user's, v2 or management v1),
    /// filtered by the key's prefix unless it is empty; each entry goes to `take` as its page is
    /// read, borrowed from the answer's text. More than `max_pages` pages is `Malformed` (a server
    /// that never stops paging).
    pub(super) async fn search_metadata<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        search: MetadataSearch<'_>,
        mut take: impl FnMut(RawEntry<'_>) -> Result<(), UpstreamError>,
    ) -> Result<(), UpstreamError> {
        let MetadataSearch { url, org_header, which, prefix, max_pages } = search;
        // The two APIs name the same things differently (REST gateway JSON, uint64 as a string).
        let filter = match which {
            Api::V2 => Filter::V2(KeyFilter { key: prefix, method: "TEXT_FILTER_METHOD_STARTS_WITH" }),
            Api::ManagementV1 => {
                Filter::ManagementV1(KeyFilter { key: prefix, method: "TEXT_QUERY_METHOD_STARTS_WITH" })
            }
        };
        let filter = (!prefix.is_empty()).then_some(filter);
        let filters = filter.as_slice();
        let mut offset: u64 = 0;
        for _ in 0..max_pages {
            let page = Page { offset: offset.to_string(), limit: PAGE_SIZE, asc: true };
            let body = match which {
                Api::V2 => SearchBody::V2 { pagination: page, filters },
                Api::ManagementV1 => SearchBody::ManagementV1 { query: page, queries: filters },
            };
            let body = serde_json::to_vec(&body).map_err(|_| UpstreamError::Malformed)?;
            let response = self.authorized_post(runtime, url, body, org_header).await?;
            let (page, total) = match which {
                Api::V2 => {
                    let page: V2Page = serde_json::from_slice(&response.body).map_err(|_| UpstreamError::Malformed)?;
                    let total = page.pagination.and_then(|p| p.total_result).map_or(Some(0), |t| t.get());
                    (page.metadata, total)
                }
                Api::ManagementV1 => {
                    let page: V1Page = serde_json::from_slice(&response.body).map_err(|_| UpstreamError::Malformed)?;
                    let total = page.details.and_then(|d| d.total_result).map_or(Some(0), |t| t.get());
                    (page.result, total)
                }
            };
            let total = total.ok_or(UpstreamError::Malformed)?;
            let count = page.len() as u64;
            for raw in page {
                take(raw)?;
            }
            offset += count;
            if count == 0 || offset >= total {
                return Ok(());
            }
        }
        Err(UpstreamError::Malformed)
    }
}

/// One metadata search: where it goes (management v1 names the organization in a header), which
/// API that is, the key's prefix, and the most pages read.
pub(super) struct MetadataSearch<'a> {
    pub(super) url: &'a str,
    pub(super) org_header: Option<&'a str>,
    pub(super) which: Api,
    pub(super) prefix: &'a str,
    pub(super) max_pages: u32,
}

impl ZitadelClient {
    /// Stores metadata on a user (`POST /v2/users/{id}/metadata`, or on an instance without it
    /// management v1's `POST /management/v1/users/{id}/metadata/_bulk`, both `user.write`); each
    /// entry replaces its key.
    pub async fn set_user_metadata<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        user_id: &str,
        entries: &[crate::contract::response::Metadata],
    ) -> Result<(), UpstreamError> {
        #[derive(Serialize)]
        struct SetUserMetadata<'a> {
            metadata: &'a [crate::contract::response::Metadata],
        }
        let user_id = zitadel_id(user_id)?;
        let body = serde_json::to_vec(&SetUserMetadata { metadata: entries }).map_err(|_| UpstreamError::Malformed)?;
        let base = &self.api.base_url;
        let (v2, v1) = (
            format!("{base}/v2/users/{user_id}/metadata"),
            format!("{base}/management/v1/users/{user_id}/metadata/_bulk"),
        );
        self.v2_or_v1(
            || self.authorized_post(runtime, &v2, body.clone(), None),
            || self.authorized_post(runtime, &v1, body.clone(), None),
        )
        .await
        .map(|_| ())
    }

    /// `v2`, unless the instance showed it has no v2 metadata API; on a routing 404 that is
    /// remembered, and `v1` (management v1) answers instead. Reads of organization metadata and
    /// every user metadata call share what the instance showed.
    pub(super) async fn v2_or_v1<T, F2, F1>(
        &self,
        v2: impl FnOnce() -> F2,
        v1: impl FnOnce() -> F1,
    ) -> Result<T, UpstreamError>
    where
        F2: std::future::Future<Output = Result<T, UpstreamError>>,
        F1: std::future::Future<Output = Result<T, UpstreamError>>,
    {
        if !self.management_v1.get() {
            match v2().await {
                Err(UpstreamError::MissingApi) => self.management_v1.set(true),
                other => return other,
            }
        }
        v1().await
    }
}

impl ZitadelClient {
    /// POSTs JSON with the configured credentials. A client-credentials token refused with 401 is
    /// fetched anew once.
    pub(super) async fn authorized_post<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        url: &str,
        body: Vec<u8>,
        org_header: Option<&str>,
    ) -> Result<HttpResponse, UpstreamError> {
        self.authorized(runtime, "POST", url, body, org_header).await
    }

    /// Sends JSON with `method` and the configured credentials, as [`Self::authorized_post`].
    pub(super) async fn authorized<R: Http + Clock + Timer>(
        &self,
        runtime: &R,
        method: &'static str,
        url: &str,
        body: Vec<u8>,
        org_header: Option<&str>,
    ) -> Result<HttpResponse, UpstreamError> {
        let mut retried = false;
        loop {
            if self.backoff.active(runtime.now_ms()) {
                return Err(UpstreamError::RateLimited);
            }
            let token = self.bearer(runtime).await?;
            let mut headers = vec![
                ("content-type", "application/json".to_string()),
                ("accept", "application/json".to_string()),
                ("authorization", format!("Bearer {token}")),
            ];
            if let Some(org) = org_header {
                headers.push(("x-zitadel-orgid", org.to_string()));
            }
            let request = HttpRequest { method, url: url.to_string(), headers, body: body.clone() };
            let response = runtime.send(request).await?;
            match response.status {
                401 if !retried && matches!(self.api.credentials, Credentials::ClientCredentials { .. }) => {
                    self.tokens.token.borrow_mut().take();
                    retried = true;
                }
                404 if is_missing_route(&response.body) => return Err(UpstreamError::MissingApi),
                _ => return check_status(&response, &self.backoff, runtime.now_ms()).map(|()| response),
            }
        }
    }
}

/// True for a 404 that says the route does not exist: ZITADEL's API gateway answers an unknown
/// route with the bare status `{"code":5,"message":"Not Found"}`, and anything in front of it that
/// does not know the path answers with something that is not a gRPC status at all. A resource the
/// API did not find is also code 5, but carries ZITADEL's own message and error details
/// (`{"code":5,"message":"Errors.… (ID)","details":[{"@type":"…ErrorDetail",…}]}`).
fn is_missing_route(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Status {
        code: Option<i64>,
        message: Option<String>,
        #[serde(default)]
        details: Vec<serde::de::IgnoredAny>,
    }
    match serde_json::from_slice::<Status>(body) {
        Ok(Status { code: Some(code), message, details }) => {
            code == 5 && details.is_empty() && message.as_deref().is_none_or(|m| m == "Not Found")
        }
        _ => true,
    }
}

impl ZitadelClient {
    async fn bearer<R: Http + Clock + Timer>(&self, runtime: &R) -> Result<Rc<str>, UpstreamError> {
        let (client_id, client_secret) = match &self.api.credentials {
            Credentials::AccessToken(pat) => return Ok(Rc::from(pat.expose())),
            Credentials::ClientCredentials { client_id, client_secret } => (client_id, client_secret),
        };
        let tokens = &self.tokens;
        if let Some((token, valid_until)) = tokens.token.borrow().as_ref() {
            if runtime.now_ms() < *valid_until {
                return Ok(token.clone());
            }
        }
        tokens
            .flight
            .run(runtime, "token", || async {
                let basic = basic_credentials(client_id, client_secret.expose());
                let request = HttpRequest {
                    method: "POST",
                    url: format!("{}/oauth/v2/token", self.api.base_url),
                    headers: vec![
                        ("content-type", "application/x-www-form-urlencoded".to_string()),
                        ("accept", "application/json".to_string()),
                        ("authorization", format!("Basic {basic}")),
                    ],
                    body: form_urlencoded::Serializer::new(String::new())
                        .append_pair("grant_type", "client_credentials")
                        .append_pair("scope", TOKEN_SCOPE)
                        .finish()
                        .into_bytes(),
                };
                let response = runtime.send(request).await?;
                if response.status == 400 {
                    return Err(UpstreamError::Unauthorized(400)); // invalid_client, RFC 6749 §5.2
                }
                check_status(&response, &self.backoff, runtime.now_ms())?;
                let mut answer = TokenAnswer::parse(&response.body).ok_or(UpstreamError::Malformed)?;
                let token: Rc<str> = Rc::from(answer.access_token()?);
                // ZITADEL's tokens live 12 hours by default; longer claims are cut to a day.
                let lifetime_s = match answer.expires_in()? {
                    None => 300,
                    Some(seconds) => u64::try_from(seconds).map_err(|_| UpstreamError::Malformed)?,
                };
                let lifetime_ms = lifetime_s.min(86_400).saturating_mul(1000);
                let margin = TOKEN_EXPIRY_MARGIN_MS.min(lifetime_ms / 2);
                let valid_until = runtime.now_ms().saturating_add(lifetime_ms - margin);
                *tokens.token.borrow_mut() = Some((token.clone(), valid_until));
                Ok(token)
            })
            .await
    }
}

/// The value of an HTTP Basic `Authorization` for `id` and `secret`, each form-encoded first as
/// RFC 6749 §2.3.1 has it (ZITADEL's client ids contain `@`).
pub(super) fn basic_credentials(id: &str, secret: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret)))
}

/// `s` encoded as `application/x-www-form-urlencoded`.
pub(super) fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `id` when it looks as ZITADEL's ids do ([`is_zitadel_id`]), to be put into a URL path or a
/// header as it is; any other is never sent (`InvalidId`). Percent-encoding is not enough: `..`
/// survives it, and `/v2/organizations/../metadata/search` is another route.
pub fn zitadel_id(id: &str) -> Result<&str, UpstreamError> {
    is_zitadel_id(id).then_some(id).ok_or(UpstreamError::InvalidId)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::TransportError;
    use crate::secret::Secret;
    use crate::testing::{live_for_ms, FakeRuntime, Reply};
    use futures::executor::block_on;

    pub fn pat_api(base: &str) -> ZitadelApiConfig {
        ZitadelApiConfig { base_url: base.into(), credentials: Credentials::AccessToken(Secret::new("pat-1")) }
    }

    /// A client of `api`, its flights living as long as the longest deadline allows.
    fn client(api: ZitadelApiConfig) -> ZitadelClient {
        ZitadelClient::new(api, live_for_ms())
    }

    fn client_api() -> ZitadelApiConfig {
        ZitadelApiConfig {
            base_url: "https://z.example".into(),
            credentials: Credentials::ClientCredentials {
                client_id: "client@project".into(),
                client_secret: Secret::new("s3cr:t"),
            },
        }
    }

    fn v2_page(total: u64, keys: &[(&str, &str)]) -> Reply {
        let metadata: Vec<_> = keys
            .iter()
            .map(|(k, v)| serde_json::json!({"key": k, "value": base64::engine::general_purpose::STANDARD.encode(v), "creationDate": "2025-01-01T00:00:00Z"}))
            .collect();
        Reply::json(
            200,
            serde_json::json!({"pagination": {"totalResult": total.to_string(), "appliedLimit": "100"}, "metadata": metadata}),
        )
    }

    #[test]
    fn v2_request_has_the_rest_gateway_shape() {
        let runtime = FakeRuntime::new(vec![v2_page(1, &[("admin", "[\"p\"]")])]);
        let entries =
            block_on(client(pat_api("https://z.example")).org_metadata(&runtime, "o1", "perm:", 4 << 20)).unwrap();
        assert_eq!(entries, vec![("admin".to_string(), b"[\"p\"]".to_vec())]);
        let sent = runtime.sent();
        assert_eq!(sent[0].url, "https://z.example/v2/organizations/o1/metadata/search");
        assert_eq!(sent[0].header("authorization"), Some("Bearer pat-1"));
        assert_eq!(sent[0].header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "pagination": {"offset": "0", "limit": 100, "asc": true},
                "filters": [{"keyFilter": {"key": "perm:", "method": "TEXT_FILTER_METHOD_STARTS_WITH"}}]
            })
        );
    }

    #[test]
    fn every_page_is_read() {
        let first: Vec<(String, String)> = (0..100).map(|i| (format!("r{i}"), format!("p{i}"))).collect();
        let first: Vec<(&str, &str)> = first.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let runtime = FakeRuntime::new(vec![v2_page(150, &first), v2_page(150, &[("last", "x"); 50])]);
        let entries = block_on(client(pat_api("https://z")).org_metadata(&runtime, "o1", "", 4 << 20)).unwrap();
        assert_eq!(entries.len(), 150);
        let second: serde_json::Value = serde_json::from_slice(&runtime.sent()[1].body).unwrap();
        assert_eq!(second["pagination"]["offset"], "100");
        assert_eq!(second["filters"], serde_json::json!([]));
    }

    #[test]
    fn a_server_that_never_stops_paging_is_malformed() {
        let runtime = FakeRuntime::repeating(v2_page(u64::MAX, &[("k", "v")]));
        let result = block_on(client(pat_api("https://z")).org_metadata(&runtime, "o1", "", 4 << 20));
        assert_eq!(result, Err(UpstreamError::Malformed));
        assert_eq!(runtime.sent().len(), MAX_PAGES as usize);
    }

    #[test]
    fn more_metadata_than_the_budget_is_too_large() {
        let value = "v".repeat(64 * 1024);
        let page: Vec<(String, &str)> = (0..10).map(|i| (format!("r{i}"), value.as_str())).collect();
        let page: Vec<(&str, &str)> = page.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        // 640 KiB per page: the seventh page passes a budget of 4 MiB, the second one of 1 MiB.
        let runtime = FakeRuntime::repeating(v2_page(1000, &page));
        let result = block_on(client(pat_api("https://z")).org_metadata(&runtime, "o1", "", 4 << 20));
        assert_eq!(result, Err(UpstreamError::MappingTooLarge));
        assert_eq!(runtime.sent().len(), 7);
        let runtime = FakeRuntime::repeating(v2_page(1000, &page));
        let result = block_on(client(pat_api("https://z")).org_metadata(&runtime, "o1", "", 1 << 20));
        assert_eq!((result, runtime.sent().len()), (Err(UpstreamError::MappingTooLarge), 2));
    }

    #[test]
    fn empty_answer_without_fields_is_an_empty_list() {
        let runtime = FakeRuntime::new(vec![Reply::json(200, serde_json::json!({"pagination": {}}))]);
        let entries = block_on(client(pat_api("https://z")).org_metadata(&runtime, "o1", "", 4 << 20)).unwrap();
        assert!(entries.is_empty());
    }

    #[test]
    fn v2_404_falls_back_to_management_v1_and_remembers() {
        let v1 = Reply::json(
            200,
            serde_json::json!({"details": {"totalResult": "1"}, "result": [{"key": "admin", "value": "cA=="}]}),
        );
        let runtime = FakeRuntime::new(vec![
            Reply::json(404, serde_json::json!({"code": 5, "message": "Not Found"})),
            v1.clone(),
            v1,
        ]);
        let session = client(pat_api("https://z"));
        let entries = block_on(session.org_metadata(&runtime, "o1", "", 4 << 20)).unwrap();
        assert_eq!(entries, vec![("admin".to_string(), b"p".to_vec())]);
        assert!(session.uses_management_v1());
        block_on(session.org_metadata(&runtime, "o1", "", 4 << 20)).unwrap();
        let sent = runtime.sent();
        assert_eq!(sent.len(), 3, "v2 is not tried again");
        assert_eq!(sent[1].url, "https://z/management/v1/metadata/_search");
        assert_eq!(sent[1].header("x-zitadel-orgid"), Some("o1"));
        let body: serde_json::Value = serde_json::from_slice(&sent[1].body).unwrap();
        assert_eq!(body["query"], serde_json::json!({"offset": "0", "limit": 100, "asc": true}));
    }

    #[test]
    fn only_a_missing_route_falls_back_to_v1() {
        let v1 = Reply::json(200, serde_json::json!({"details": {"totalResult": "0"}, "result": []}));
        for missing in [
            Reply::json(404, serde_json::json!({"code": 5, "message": "Not Found", "details": []})),
            Reply::raw(404, b"404 page not found\n"),
        ] {
            let runtime = FakeRuntime::new(vec![missing, v1.clone()]);
            let session = client(pat_api("https://z"));
            assert_eq!(block_on(session.org_metadata(&runtime, "o1", "", 4 << 20)), Ok(vec![]));
            assert!(session.uses_management_v1());
        }
        // A resource the API did not find: ZITADEL's own error, with its details.
        let not_found = serde_json::json!({"code": 5, "message": "Errors.Org.NotFound (QUERY-dj2FF)",
            "details": [{"@type": "type.googleapis.com/zitadel.v1.ErrorDetail", "id": "QUERY-dj2FF", "message": "Errors.Org.NotFound"}]});
        let runtime = FakeRuntime::new(vec![Reply::json(404, not_found), v1]);
        let session = client(pat_api("https://z"));
        let result = block_on(session.org_metadata(&runtime, "o1", "", 4 << 20));
        assert_eq!(result, Err(UpstreamError::Status(404)));
        assert!(!session.uses_management_v1(), "one NotFound does not switch the isolate to v1");
        assert_eq!(runtime.sent().len(), 1);
    }

    #[test]
    fn statuses_map_to_errors() {
        for (status, expected) in [
            (401, UpstreamError::Unauthorized(401)),
            (403, UpstreamError::Unauthorized(403)),
            (500, UpstreamError::Status(500)),
            (429, UpstreamError::RateLimited),
        ] {
            let runtime = FakeRuntime::new(vec![Reply::json(status, serde_json::json!({}))]);
            let result = block_on(client(pat_api("https://z")).org_metadata(&runtime, "o1", "", 4 << 20));
            assert_eq!(result, Err(expected), "{status}");
        }
        let runtime = FakeRuntime::new(vec![Reply::raw(200, b"<html>")]);
        assert_eq!(
            block_on(client(pat_api("https://z")).org_metadata(&runtime, "o1", "", 4 << 20)),
            Err(UpstreamError::Malformed)
        );
        let runtime = FakeRuntime::new(vec![Reply::Fail(TransportError::Timeout)]);
        assert_eq!(
            block_on(client(pat_api("https://z")).org_metadata(&runtime, "o1", "", 4 << 20)),
            Err(UpstreamError::Timeout)
        );
    }

    #[test]
    fn a_429_backs_off_for_retry_after_without_calling_again() {
        let runtime = FakeRuntime::new(vec![Reply::rate_limited(30), v2_page(0, &[])]);
        let session = client(pat_api("https://z"));
        assert_eq!(block_on(session.org_metadata(&runtime, "o1", "", 4 << 20)), Err(UpstreamError::RateLimited));
        runtime.advance_ms(29_000);
        assert_eq!(block_on(session.org_metadata(&runtime, "o1", "", 4 << 20)), Err(UpstreamError::RateLimited));
        assert_eq!(runtime.sent().len(), 1, "no call while Retry-After lasts");
        runtime.advance_ms(1_000);
        assert!(block_on(session.org_metadata(&runtime, "o1", "", 4 << 20)).is_ok());
    }

    #[test]
    fn client_credentials_token_is_fetched_once_and_reused() {
        let token =
            Reply::json(200, serde_json::json!({"access_token": "tok-1", "token_type": "Bearer", "expires_in": 43199}));
        let runtime = FakeRuntime::new(vec![token, v2_page(0, &[]), v2_page(0, &[])]);
        let session = client(client_api());
        block_on(session.org_metadata(&runtime, "o1", "", 4 << 20)).unwrap();
        block_on(session.org_metadata(&runtime, "o2", "", 4 << 20)).unwrap();
        let sent = runtime.sent();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0].url, "https://z.example/oauth/v2/token");
        assert_eq!(sent[0].header("content-type"), Some("application/x-www-form-urlencoded"));
        let basic = base64::engine::general_purpose::STANDARD.encode("client%40project:s3cr%3At");
        assert_eq!(sent[0].header("authorization"), Some(format!("Basic {basic}").as_str()));
        assert_eq!(
            String::from_utf8(sent[0].body.clone()).unwrap(),
            "grant_type=client_credentials&scope=openid+urn%3Azitadel%3Aiam%3Aorg%3Aproject%3Aid%3Azitadel%3Aaud"
        );
        assert_eq!(sent[1].header("authorization"), Some("Bearer tok-1"));
        assert_eq!(sent[2].header("authorization"), Some("Bearer tok-1"));
    }

    #[test]
    fn token_is_fetched_again_when_it_nears_expiry() {
        let token = |t: &str| Reply::json(200, serde_json::json!({"access_token": t, "expires_in": 120}));
        let runtime = FakeRuntime::new(vec![token("a"), v2_page(0, &[]), token("b"), v2_page(0, &[])]);
        let session = client(client_api());
        block_on(session.org_metadata(&runtime, "o1", "", 4 << 20)).unwrap();
        runtime.advance_ms(60_001); // 120 s token, 60 s margin
        block_on(session.org_metadata(&runtime, "o1", "", 4 << 20)).unwrap();
        assert_eq!(runtime.sent()[3].header("authorization"), Some("Bearer b"));
    }

    #[test]
    fn a_401_with_client_credentials_fetches_a_new_token_once() {
        let token = |t: &str| Reply::json(200, serde_json::json!({"access_token": t, "expires_in": 43199}));
        let unauthorized = Reply::json(401, serde_json::json!({"code": 16}));
        let runtime = FakeRuntime::new(vec![token("old"), unauthorized.clone(), token("new"), v2_page(0, &[])]);
        block_on(client(client_api()).org_metadata(&runtime, "o1", "", 4 << 20)).unwrap();
        assert_eq!(runtime.sent()[3].header("authorization"), Some("Bearer new"));

        let runtime = FakeRuntime::new(vec![token("a"), unauthorized.clone(), token("b"), unauthorized]);
        let result = block_on(client(client_api()).org_metadata(&runtime, "o1", "", 4 << 20));
        assert_eq!(result, Err(UpstreamError::Unauthorized(401)));
        assert_eq!(runtime.sent().len(), 4, "one retry, not a loop");
    }

    #[test]
    fn refused_client_credentials_are_unauthorized() {
        let runtime = FakeRuntime::new(vec![Reply::json(400, serde_json::json!({"error": "invalid_client"}))]);
        let result = block_on(client(client_api()).org_metadata(&runtime, "o1", "", 4 << 20));
        assert_eq!(result, Err(UpstreamError::Unauthorized(400)));
    }

    #[test]
    fn user_metadata_is_set_with_the_v2_api() {
        let runtime = FakeRuntime::new(vec![Reply::json(200, serde_json::json!({"setDate": "2026-01-01T00:00:00Z"}))]);
        let entries = [crate::contract::response::Metadata::new("microsoft_access_token", b"tok")];
        block_on(client(pat_api("https://z")).set_user_metadata(&runtime, "u1", &entries)).unwrap();
        let sent = runtime.sent();
        assert_eq!(sent[0].url, "https://z/v2/users/u1/metadata");
        let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
        assert_eq!(body, serde_json::json!({"metadata": [{"key": "microsoft_access_token", "value": "dG9r"}]}));
        let runtime = FakeRuntime::new(vec![Reply::json(403, serde_json::json!({"code": 7}))]);
        let result = block_on(client(pat_api("https://z")).set_user_metadata(&runtime, "u1", &entries));
        assert_eq!(result, Err(UpstreamError::Unauthorized(403)));
    }

    #[test]
    fn user_metadata_is_written_through_management_v1_where_the_v2_route_is_missing_and_that_is_remembered() {
        let entries = [crate::contract::response::Metadata::new("k", b"v")];
        let v1_instance = client(pat_api("https://z"));
        let runtime = FakeRuntime::new(vec![
            Reply::json(404, serde_json::json!({"code": 5, "message": "Not Found"})),
            Reply::json(200, serde_json::json!({"details": {}})),
            Reply::json(200, serde_json::json!({"details": {}})),
        ]);
        block_on(v1_instance.set_user_metadata(&runtime, "u1", &entries)).unwrap();
        block_on(v1_instance.set_user_metadata(&runtime, "u1", &entries)).unwrap();
        let urls: Vec<String> = runtime.sent().into_iter().map(|s| s.url).collect();
        assert_eq!(
            urls,
            [
                "https://z/v2/users/u1/metadata",
                "https://z/management/v1/users/u1/metadata/_bulk",
                "https://z/management/v1/users/u1/metadata/_bulk"
            ]
        );
        let body: serde_json::Value = serde_json::from_slice(&runtime.sent()[1].body).unwrap();
        assert_eq!(body, serde_json::json!({"metadata": [{"key": "k", "value": "dg=="}]}));
        // A user the API did not find (ZITADEL's own 404, with details) is no missing route.
        let v2_instance = client(pat_api("https://z"));
        let not_found =
            serde_json::json!({"code": 5, "message": "Errors.User.NotFound (COMMAND-x)", "details": [{"@type": "x"}]});
        let runtime = FakeRuntime::new(vec![Reply::json(404, not_found)]);
        assert_eq!(block_on(v2_instance.set_user_metadata(&runtime, "u1", &entries)), Err(UpstreamError::Status(404)));
        assert!(!v2_instance.uses_management_v1());
    }

    #[test]
    fn only_ids_as_zitadel_makes_them_go_into_a_url_or_a_header() {
        for good in ["312909075211944344", "V1_abc-DEF_9", &"1".repeat(200)] {
            assert_eq!(zitadel_id(good), Ok(good));
        }
        for bad in ["", "..", "31290/../x", "a b", "a.b", "é", "%2e%2e", &"1".repeat(201), "o1\r\nx-evil: 1"] {
            assert_eq!(zitadel_id(bad), Err(UpstreamError::InvalidId), "{bad:?}");
        }
        assert_eq!(form_encode("a b&c=d"), "a+b%26c%3Dd");
    }

    #[test]
    fn an_org_id_that_is_no_zitadel_id_is_never_sent_and_keeps_the_v2_api() {
        let client = client(pat_api("https://z"));
        let runtime = FakeRuntime::new(vec![]);
        assert_eq!(block_on(client.org_metadata(&runtime, "..", "", 4 << 20)), Err(UpstreamError::InvalidId));
        assert_eq!(block_on(client.set_user_metadata(&runtime, "u/1", &[])), Err(UpstreamError::InvalidId));
        assert_eq!(runtime.sends(), 0);
        assert!(!client.uses_management_v1());
    }

    #[test]
    fn error_texts_carry_no_body() {
        assert_eq!(UpstreamError::Status(502).to_string(), "HTTP 502");
        assert_eq!(UpstreamError::Timeout.code(), "timeout");
    }
}
