use super::*;

#[test]
fn path_is_read_from_the_url_without_query_or_fragment() {
    for (url, path) in [
        ("http://127.0.0.1:8787/", "/"),
        ("https://worker.example/zitadel/complement-token", "/zitadel/complement-token"),
        ("https://worker.example/healthz?x=/y", "/healthz"),
        ("https://worker.example/a#/b?c", "/a"),
        ("https://worker.example:8443/a%3F%23b?c", "/a%3F%23b"),
        ("https://worker.example?query", "/"),
        ("https://worker.example#fragment", "/"),
        ("/already/a/path", "/already/a/path"),
        ("no-scheme", "/"),
    ] {
        assert_eq!(path_of(url), path, "{url}");
    }
}

#[test]
fn both_paths_are_the_call_and_only_post() {
    assert_eq!(route("POST", "/"), Ok(Route::Call));
    assert_eq!(route("POST", "/zitadel/complement-token"), Ok(Route::Call));
    assert_eq!(route("GET", "/"), Err(Error::MethodNotAllowed { allow: "POST" }));
    assert_eq!(route("PUT", "/zitadel/complement-token"), Err(Error::MethodNotAllowed { allow: "POST" }));
}

#[test]
fn connect_routes_name_their_provider_and_take_get_only() {
    use crate::flow::Step;
    assert_eq!(route("GET", "/connect/microsoft"), Ok(Route::Connect(Step::Start, "microsoft")));
    assert_eq!(route("GET", "/connect/microsoft/callback"), Ok(Route::Connect(Step::ProviderCallback, "microsoft")));
    assert_eq!(route("GET", "/connect/zitadel/callback"), Ok(Route::Connect(Step::ZitadelCallback, "")));
    assert_eq!(route("GET", "/connect/google"), Ok(Route::Connect(Step::Start, "google")));
    assert_eq!(route("POST", "/connect/microsoft"), Err(Error::MethodNotAllowed { allow: "GET" }));
    for path in ["/connect/", "/connect/Microsoft", "/connect/a/b", "/connect//callback", "/connect/ms%2f"] {
        assert_eq!(route("GET", path), Err(Error::NotFound), "{path}");
    }
}

#[test]
fn healthz_is_get_only_and_other_paths_are_not_found() {
    assert_eq!(route("GET", "/healthz"), Ok(Route::Health));
    assert_eq!(route("POST", "/healthz"), Err(Error::MethodNotAllowed { allow: "GET" }));
    assert_eq!(route("POST", "/zitadel"), Err(Error::NotFound));
    assert_eq!(route("POST", "/zitadel/complement-token/"), Err(Error::NotFound));
}

/// A request as the glue hands it over, which counts how often its body is read.
struct Fake {
    signature: Option<String>,
    body: Vec<u8>,
    reads: std::cell::Cell<usize>,
}

impl Fake {
    fn new(body: &[u8]) -> Self {
        Fake { signature: None, body: body.to_vec(), reads: std::cell::Cell::new(0) }
    }
}

impl Incoming for Fake {
    fn header(&self, name: &str) -> Option<String> {
        name.eq_ignore_ascii_case(signature::HEADER).then(|| self.signature.clone()).flatten()
    }

    async fn body(&self, limit: usize) -> Result<Vec<u8>, Error> {
        self.reads.set(self.reads.get() + 1);
        if self.body.len() > limit {
            return Err(Error::PayloadTooLarge { limit });
        }
        Ok(self.body.clone())
    }
}

fn app() -> App {
    App::new(crate::testing::settings(&[
        ("ZITADEL_SIGNING_KEY", "k1"),
        ("PERMISSIONS_CLAIM", ""),
        ("FLAT_ROLES_CLAIM", ""),
        ("MS_TOKEN_CLAIM", ""),
    ]))
}

fn serve(app: &App, method: &str, path: &str, request: &Fake) -> (Response, Trace) {
    let runtime = crate::testing::FakeRuntime::new(vec![]);
    futures::executor::block_on(app.serve(
        &runtime,
        method,
        &format!("https://worker.example{path}"),
        request,
        IsolateFacts::default(),
    ))
}

#[test]
fn an_unknown_path_or_method_is_answered_without_reading_the_body() {
    let request = Fake::new(b"{}");
    let (response, trace) = serve(&app(), "POST", "/nope", &request);
    assert_eq!((response.status, trace.outcome, trace.status), (404, "not_found", 404));
    let (response, trace) = serve(&app(), "GET", "/", &request);
    assert_eq!((response.status, trace.outcome), (405, "method_not_allowed"));
    assert!(response.headers.contains(&("allow", "POST".into())));
    assert_eq!(request.reads.get(), 0);
}

#[test]
fn every_answer_is_json_that_no_cache_keeps() {
    let (response, _) = serve(&app(), "GET", "/healthz", &Fake::new(b""));
    assert_eq!(response.status, 200);
    assert!(response.headers.contains(&("content-type", "application/json".into())));
    assert!(response.headers.contains(&("cache-control", "no-store".into())));
}

#[test]
fn with_bad_settings_healthz_says_why_and_a_call_is_refused_unread() {
    let app = App::new(crate::testing::settings(&[]));
    let (response, trace) = serve(&app, "GET", "/healthz", &Fake::new(b""));
    assert_eq!((response.status, trace.outcome), (503, "ok"));
    assert!(response.body.contains("ZITADEL_SIGNING_KEY"), "{}", response.body);
    let request = Fake::new(b"{}");
    let (response, trace) = serve(&app, "POST", "/", &request);
    assert_eq!((response.status, trace.outcome), (500, "misconfigured"));
    assert_eq!(request.reads.get(), 0);
}

#[test]
fn a_call_is_read_checked_and_traced() {
    let body = br#"{"function":"preaccesstoken","user":{"id":"u1"}}"#;
    let mut request = Fake::new(body);
    let now = crate::testing::START_MS as i64 / 1000;
    request.signature = Some(signature::header_for(now, body, &[crate::secret::SigningKey::new("k1")]));
    let (response, trace) = serve(&app(), "POST", "/zitadel/complement-token", &request);
    assert_eq!((response.status, response.body.as_str()), (200, "{}"));
    assert_eq!((trace.outcome, trace.status, trace.function), ("ok", 200, Some("function/preaccesstoken")));
    assert_eq!(trace.user_id.as_deref(), Some("u1"));
    request.signature = None;
    let (response, trace) = serve(&app(), "POST", "/", &request);
    assert_eq!((response.status, trace.outcome), (401, "missing_signature"));
    assert_eq!(request.reads.get(), 1, "a call without a header is refused unread");
}

#[test]
fn a_call_whose_header_is_missing_malformed_or_out_of_its_window_is_refused_unread() {
    let body = vec![b' '; 1 << 20];
    let now = crate::testing::START_MS as i64 / 1000;
    let keys = [crate::secret::SigningKey::new("k1")];
    let cases = [
        (None, "missing_signature"),
        (Some("t=abc,v1=00".to_string()), "malformed_signature"),
        (Some(signature::header_for(now - 301, &body, &keys)), "stale_signature"),
        (Some(signature::header_for(now + 61, &body, &keys)), "future_signature"),
    ];
    for (header, code) in cases {
        let mut request = Fake::new(&body);
        request.signature = header;
        let (response, trace) = serve(&app(), "POST", "/", &request);
        assert_eq!((response.status, trace.outcome), (401, code));
        assert_eq!(request.reads.get(), 0, "{code}: the body was read");
    }
    // A header in its window gets its body read, and a wrong MAC is judged then.
    let mut request = Fake::new(&body);
    request.signature = Some(signature::header_for(now, b"another body", &keys));
    let (response, trace) = serve(&app(), "POST", "/", &request);
    assert_eq!((response.status, trace.outcome, request.reads.get()), (401, "invalid_signature", 1));
}
