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
fn healthz_is_get_only_and_other_paths_are_not_found() {
    assert_eq!(route("GET", "/healthz"), Ok(Route::Health));
    assert_eq!(route("POST", "/healthz"), Err(Error::MethodNotAllowed { allow: "GET" }));
    assert_eq!(route("POST", "/zitadel"), Err(Error::NotFound));
    assert_eq!(route("POST", "/zitadel/complement-token/"), Err(Error::NotFound));
}
