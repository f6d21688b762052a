use super::*;

#[test]
fn a_cookie_is_found_by_its_exact_name() {
    let header = "a=1; __Host-zitadel-claims-connect-x=no; __Host-zitadel-claims-connect=sealed:v1:k:i:c; b=2";
    assert_eq!(cookie_value(header, COOKIE), Some("sealed:v1:k:i:c"));
    assert_eq!(cookie_value("a=1", COOKIE), None);
}

#[test]
fn the_origin_is_scheme_host_and_port() {
    assert_eq!(origin_of("http://127.0.0.1:8787/connect/microsoft?return_to=x"), "http://127.0.0.1:8787");
    assert_eq!(origin_of("https://claims.example.com"), "https://claims.example.com");
    assert_eq!(origin_of("https://claims.example.com?x#y"), "https://claims.example.com");
}

#[test]
fn the_first_of_a_repeated_query_parameter_counts_and_values_are_decoded() {
    let query = Query::of("https://w/cb?state=a%2Bb&state=evil&code=c+d#frag");
    assert_eq!((query.get("state"), query.get("code"), query.get("error")), (Some("a+b"), Some("c d"), None));
}
