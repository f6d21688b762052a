//! The connect flow's `return_to` check against a browser's reading of what it answers.

use proptest::prelude::*;
use zitadel_claims_core::connect::return_to::ReturnUrls;

const ALLOWED: &str = "https://app.example.com/app,http://localhost:3000/cb/";

/// Pieces a hostile `return_to` is made of: the allowed origins and near misses, separators,
/// dot segments plain and encoded, backslashes, userinfo, whitespace, non-ASCII.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "https://",
        "http://",
        "HTTPS://",
        "https:",
        "//",
        "/",
        "\\",
        "app.example.com",
        "APP.example.com",
        "evil.example",
        "localhost",
        ":3000",
        ":443",
        ":80",
        ":",
        "@",
        ".",
        "..",
        "/..",
        "/.",
        "%2e",
        "%2E",
        "%2f",
        "%5c",
        "%61",
        "%",
        "app",
        "cb",
        "x",
        "?",
        "#",
        "&",
        "=",
        " ",
        "\t",
        "\n",
        "é",
        "[",
        "]",
        "::1",
        "%00",
        ";",
    ])
}

/// Path segments, allowed and not, plain and encoded.
fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "app", "cb", "", ".", "..", "x", "appx", "%2e", "%2e%2e", ".%2E", "%2f", "%61pp", "\\..", "\\", "é", "a@b",
        "a:b", "<x>", "a|b", "%zz", "a b", "\t..",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// What `check` accepts, a browser reads (WHATWG, the `url` crate) as the same URL, on an
    /// allowed origin and under an allowed path; and checking the answer again gives it back.
    #[test]
    fn an_accepted_return_to_is_where_a_browser_goes(
        start in prop::sample::select(vec![
            "https://app.example.com", "http://localhost:3000", "HTTPS://APP.example.com:443", "https://evil.example",
            "https://app.example.com@evil.example", "https:", "",
        ]),
        segments in prop::collection::vec(segment(), 1..7),
        end in prop::collection::vec(piece(), 0..3),
    ) {
        let urls = ReturnUrls::parse(ALLOWED).unwrap();
        let given = format!("{start}/{}{}", segments.join("/"), end.concat());
        if let Ok(answer) = urls.check(&given) {
            let browser = url::Url::parse(&answer).expect("a browser can parse the answer");
            let origin = browser.origin().ascii_serialization();
            let path = browser.path();
            prop_assert!(
                (origin == "https://app.example.com" && (path == "/app" || path.starts_with("/app/")))
                    || (origin == "http://localhost:3000" && path.starts_with("/cb/")),
                "{given:?} gave {answer:?}, which a browser reads as {origin} {path}"
            );
            prop_assert_eq!(urls.check(&answer), Ok(answer.clone()));
        }
    }

    /// From the allowed prefix, with any suffix: the check never panics, and an acceptance stays
    /// on the allowed origin in a browser's reading.
    #[test]
    fn an_allowed_prefix_with_any_suffix_stays_on_its_origin(
        prefix in prop::sample::select(vec!["https://app.example.com/app", "http://localhost:3000/cb/"]),
        pieces in prop::collection::vec(piece(), 0..10),
        tail in ".{0,12}",
    ) {
        let urls = ReturnUrls::parse(ALLOWED).unwrap();
        let given = format!("{prefix}{}{tail}", pieces.concat());
        if let Ok(answer) = urls.check(&given) {
            let browser = url::Url::parse(&answer).expect("a browser can parse the answer");
            prop_assert!(answer.starts_with(&browser.origin().ascii_serialization()), "{given:?} gave {answer:?}");
            prop_assert!(prefix.starts_with(&browser.origin().ascii_serialization()), "{given:?} gave {answer:?}");
            prop_assert!(browser.username().is_empty() && browser.password().is_none());
        }
    }
}
