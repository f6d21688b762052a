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

mod walk {
    //! The flow step by step against the fake runtime: ZITADEL's token endpoint, key set and links,
    //! Microsoft's token endpoint and the metadata API answer from a script, and each step's cookie
    //! is carried into the next request as a browser would.
    use super::super::*;
    use crate::port::Clock;
    use crate::testing::{b64url, settings, FakeRuntime, Reply};
    use futures::executor::block_on;
    use p256::ecdsa::signature::Signer;
    use serde_json::json;

    const Z: &str = "https://z.example";
    const WORKER: &str = "https://claims.example";
    const RETURN: &str = "https://app.example/home";
    const USER: &str = "u-ada";
    const LINKED_OID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    fn target(extra: &[(&str, &str)]) -> Target {
        let mut pairs = vec![
            ("ZITADEL_SIGNING_KEY", "k"),
            ("ZITADEL_DOMAIN", Z),
            ("ZITADEL_ACCESS_TOKEN", "pat"),
            ("PERMISSIONS_CLAIM", ""),
            ("MS_CLIENT_ID", "entra-app"),
            ("MS_CLIENT_SECRET", "entra-secret"),
            ("MS_IDP_ID", "ms-idp"),
            ("TOKEN_SEALING_KEY", "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
            ("CONNECT_CLIENT_ID", "connect-app"),
            ("CONNECT_RETURN_URLS", "https://app.example/"),
        ];
        pairs.extend_from_slice(extra);
        Target::new(settings(&pairs).unwrap())
    }

    /// A request with (or without) the flow's cookie.
    struct Browser(Option<String>);

    impl Incoming for Browser {
        fn header(&self, name: &str) -> Option<String> {
            name.eq_ignore_ascii_case("cookie").then(|| self.0.clone()).flatten()
        }

        async fn body(&self, _: usize) -> Result<Vec<u8>, Error> {
            panic!("the flow's routes never read a body")
        }
    }

    fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
        response.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_ref())
    }

    /// The cookie a response sets, as the browser sends it back.
    fn cookie_of(response: &Response) -> Option<String> {
        header(response, "set-cookie")?.split(';').next().map(str::to_string)
    }

    fn param(location: &str, name: &str) -> Option<String> {
        Query::of(location).get(name).map(str::to_string)
    }

    fn step(
        target: &Target,
        runtime: &FakeRuntime,
        step: Step,
        url: &str,
        cookie: Option<String>,
    ) -> (Response, Trace) {
        let (result, trace) = block_on(serve(target, runtime, step, "microsoft", url, &Browser(cookie)));
        (result.unwrap(), trace)
    }

    /// ZITADEL's signing key (ES256), its key set, and an ID token of `claims` signed with it.
    fn signing_key() -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    fn key_set() -> serde_json::Value {
        let point = signing_key().verifying_key().to_encoded_point(false);
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "zk1", "alg": "ES256", "use": "sig",
            "x": b64url(point.x().unwrap()), "y": b64url(point.y().unwrap())}]})
    }

    fn id_token(claims: serde_json::Value) -> String {
        let input = format!("{}.{}", b64url(r#"{"alg":"ES256","kid":"zk1"}"#), b64url(claims.to_string()));
        let signature: p256::ecdsa::Signature = signing_key().sign(input.as_bytes());
        format!("{input}.{}", b64url(signature.to_bytes()))
    }

    fn zitadel_claims(runtime: &FakeRuntime, nonce: &str) -> serde_json::Value {
        let now = runtime.now_ms() / 1000;
        json!({"iss": Z, "sub": USER, "aud": ["connect-app", "project-1"], "azp": "connect-app",
            "exp": now + 3600, "iat": now, "nonce": nonce})
    }

    fn links(user_id: &str) -> Reply {
        Reply::json(200, json!({"result": [{"idpId": "ms-idp", "userId": user_id, "userName": "ada@contoso.example"}]}))
    }

    fn microsoft_tokens(oid: &str) -> Reply {
        let id_token =
            format!("{}.{}.", b64url(r#"{"alg":"RS256"}"#), b64url(json!({"oid": oid, "sub": "pairwise"}).to_string()));
        Reply::json(
            200,
            json!({"access_token": "ms-at", "refresh_token": "ms-rt", "expires_in": 3600, "id_token": id_token}),
        )
    }

    /// The first step: the browser goes to ZITADEL with PKCE, a state and a nonce, and gets the
    /// flow's cookie.
    fn start(target: &Target, runtime: &FakeRuntime) -> (String, String, String) {
        let url = format!(
            "{WORKER}/connect/microsoft?return_to={}",
            form_urlencoded::byte_serialize(RETURN.as_bytes()).collect::<String>()
        );
        let (response, trace) = step(target, runtime, Step::Start, &url, None);
        assert_eq!((response.status, trace.outcome), (302, ""));
        let location = header(&response, "location").unwrap().to_string();
        assert!(location.starts_with(&format!("{Z}/oauth/v2/authorize?")), "{location}");
        for (name, value) in [
            ("client_id", "connect-app"),
            ("redirect_uri", "https://claims.example/connect/zitadel/callback"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge_method", "S256"),
        ] {
            assert_eq!(param(&location, name).as_deref(), Some(value), "{name}");
        }
        let set_cookie = header(&response, "set-cookie").unwrap();
        assert!(set_cookie.starts_with("__Host-zitadel-claims-connect=sealed:v1:k1:"));
        assert!(set_cookie.ends_with("; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax"), "{set_cookie}");
        (param(&location, "state").unwrap(), param(&location, "nonce").unwrap(), cookie_of(&response).unwrap())
    }

    /// Start and ZITADEL's callback: where the browser goes next, and its cookie.
    fn to_microsoft(target: &Target, runtime: &FakeRuntime) -> (Response, Option<String>) {
        let (state, nonce, cookie) = start(target, runtime);
        runtime.push(Reply::json(
            200,
            json!({"access_token": "z-at", "id_token": id_token(zitadel_claims(runtime, &nonce))}),
        ));
        runtime.push(Reply::json(200, key_set()));
        runtime.push(links(LINKED_OID));
        let url = format!("{WORKER}/connect/zitadel/callback?code=z-code&state={state}");
        let (response, _) = step(target, runtime, Step::ZitadelCallback, &url, Some(cookie));
        let cookie = cookie_of(&response);
        (response, cookie)
    }

    #[test]
    fn the_whole_flow_connects_the_linked_account_and_stores_its_tokens_sealed() {
        let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
        let (response, cookie) = to_microsoft(&target, &runtime);
        assert_eq!(response.status, 302);
        let location = header(&response, "location").unwrap().to_string();
        assert!(location.starts_with("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?"), "{location}");
        assert_eq!(param(&location, "scope").as_deref(), Some("openid offline_access User.Read"));
        assert_eq!(param(&location, "login_hint").as_deref(), Some("ada@contoso.example"));
        assert_eq!(
            param(&location, "redirect_uri").as_deref(),
            Some("https://claims.example/connect/microsoft/callback")
        );
        let sent = runtime.sent();
        let token_form: Vec<(String, String)> = form_urlencoded::parse(&sent[0].body).into_owned().collect();
        assert!(token_form.contains(&("code".into(), "z-code".into())));
        assert_eq!(sent[2].url, format!("{Z}/v2/users/{USER}/links/_search"));

        runtime.push(microsoft_tokens(&LINKED_OID.to_uppercase()));
        runtime.push(Reply::json(200, json!({"setDate": "x"})));
        let url =
            format!("{WORKER}/connect/microsoft/callback?code=ms-code&state={}", param(&location, "state").unwrap());
        let (response, trace) = step(&target, &runtime, Step::ProviderCallback, &url, cookie);
        assert_eq!((response.status, trace.outcome, trace.metadata_written), (302, "connected", Some(true)));
        assert_eq!(header(&response, "location"), Some("https://app.example/home?connected=microsoft"));
        assert!(header(&response, "set-cookie").unwrap().contains("Max-Age=0"), "the cookie is cleared");
        assert_eq!(trace.user_id.as_deref(), Some(USER));

        let write = runtime.sent().pop().unwrap();
        assert_eq!(write.url, format!("{Z}/v2/users/{USER}/metadata"));
        let body: serde_json::Value = serde_json::from_slice(&write.body).unwrap();
        let keys = target.config().sealing.clone().unwrap();
        let expires = (runtime.now_ms() / 1000 + 3600).to_string();
        let expected = [
            ("microsoft_access_token", "ms-at"),
            ("microsoft_refresh_token", "ms-rt"),
            ("microsoft_access_token_expires_at", expires.as_str()),
        ];
        for (entry, (key, plaintext)) in body["metadata"].as_array().unwrap().iter().zip(expected) {
            assert_eq!(entry["key"], key);
            let text = base64::engine::general_purpose::STANDARD.decode(entry["value"].as_str().unwrap()).unwrap();
            let opened = block_on(seal::open_bytes(&runtime, &keys, &Aad::metadata(USER, key), &text));
            assert_eq!(opened.unwrap(), plaintext.as_bytes(), "{key}");
        }
    }

    #[test]
    fn another_microsoft_account_than_the_linked_one_is_refused() {
        let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
        let (response, cookie) = to_microsoft(&target, &runtime);
        let state = param(header(&response, "location").unwrap(), "state").unwrap();
        runtime.push(microsoft_tokens("99999999-4b5a-6978-8796-a5b4c3d2e1f0"));
        let url = format!("{WORKER}/connect/microsoft/callback?code=ms-code&state={state}");
        let sends = runtime.sends();
        let (response, trace) = step(&target, &runtime, Step::ProviderCallback, &url, cookie);
        assert_eq!(header(&response, "location"), Some("https://app.example/home?error=account_mismatch"));
        assert_eq!((trace.outcome, trace.metadata_written), ("account_mismatch", Some(false)));
        assert_eq!(runtime.sends(), sends + 1, "nothing is written");
    }

    #[test]
    fn a_bad_return_to_gets_a_page_and_no_redirect() {
        let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
        for url in [
            format!("{WORKER}/connect/microsoft"),
            format!("{WORKER}/connect/microsoft?return_to=https://evil.example/home"),
            format!("{WORKER}/connect/microsoft?return_to=https://app.example.evil/"),
        ] {
            let (response, trace) = step(&target, &runtime, Step::Start, &url, None);
            assert_eq!((response.status, trace.outcome), (400, "invalid_request"), "{url}");
            assert_eq!(header(&response, "location"), None);
            assert!(!response.body.contains("evil"), "the page repeats nothing of the request");
        }
    }

    #[test]
    fn a_callback_without_its_cookie_or_with_another_steps_is_refused_with_a_page() {
        let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
        let (state, _, cookie) = start(&target, &runtime);
        let url = format!("{WORKER}/connect/zitadel/callback?code=c&state={state}");
        let (response, _) = step(&target, &runtime, Step::ZitadelCallback, &url, None);
        assert_eq!((response.status, header(&response, "location")), (400, None));
        // The ZITADEL step's cookie at Microsoft's callback: another step of the flow.
        let url = format!("{WORKER}/connect/microsoft/callback?code=c&state={state}");
        let (response, _) = step(&target, &runtime, Step::ProviderCallback, &url, Some(cookie.clone()));
        assert_eq!((response.status, header(&response, "location")), (400, None));
        // Expired: ten minutes later.
        runtime.advance_ms(601_000);
        let url = format!("{WORKER}/connect/zitadel/callback?code=c&state={state}");
        let (response, _) = step(&target, &runtime, Step::ZitadelCallback, &url, Some(cookie));
        assert_eq!((response.status, header(&response, "location")), (400, None));
        assert!(runtime.sent().is_empty(), "no code is exchanged");
    }

    #[test]
    fn another_state_or_a_refusal_at_zitadel_goes_back_with_its_code() {
        let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
        let (state, _, cookie) = start(&target, &runtime);
        for (query, expected) in [
            (format!("code=c&state={state}x"), "invalid_request"),
            (format!("error=access_denied&state={state}"), "access_denied"),
            (format!("error=login_required&state={state}"), "invalid_request"),
            (format!("state={state}"), "invalid_request"),
        ] {
            let url = format!("{WORKER}/connect/zitadel/callback?{query}");
            let (response, trace) = step(&target, &runtime, Step::ZitadelCallback, &url, Some(cookie.clone()));
            assert_eq!(header(&response, "location"), Some(format!("{RETURN}?error={expected}").as_str()), "{query}");
            assert_eq!(trace.outcome, expected);
        }
        // The token endpoint refusing the code (a spent code, or a PKCE mismatch).
        runtime.push(Reply::json(400, json!({"error": "invalid_grant"})));
        let url = format!("{WORKER}/connect/zitadel/callback?code=c&state={state}");
        let (response, _) = step(&target, &runtime, Step::ZitadelCallback, &url, Some(cookie.clone()));
        assert_eq!(header(&response, "location"), Some(format!("{RETURN}?error=invalid_request").as_str()));
        // ZITADEL down: the log line says how.
        runtime.push(Reply::json(503, json!({})));
        let (response, trace) = step(&target, &runtime, Step::ZitadelCallback, &url, Some(cookie));
        assert_eq!(header(&response, "location"), Some(format!("{RETURN}?error=upstream_unavailable").as_str()));
        assert_eq!(trace.upstream_error, Some("bad_status"));
    }

    #[test]
    fn an_id_token_for_another_nonce_or_issuer_or_badly_signed_is_refused() {
        let (target, runtime) = (target(&[]), FakeRuntime::new(vec![]));
        let (state, nonce, cookie) = start(&target, &runtime);
        let mut other_issuer = zitadel_claims(&runtime, &nonce);
        other_issuer["iss"] = json!("https://evil.example");
        let mut bad_signature = id_token(zitadel_claims(&runtime, &nonce));
        bad_signature.pop();
        bad_signature.push('A');
        let tokens = [id_token(zitadel_claims(&runtime, "another nonce")), id_token(other_issuer), bad_signature];
        for (i, id_token) in tokens.into_iter().enumerate() {
            runtime.push(Reply::json(200, json!({"id_token": id_token})));
            if i == 0 {
                runtime.push(Reply::json(200, key_set())); // then kept by the isolate
            }
            let url = format!("{WORKER}/connect/zitadel/callback?code=c&state={state}");
            let (response, _) = step(&target, &runtime, Step::ZitadelCallback, &url, Some(cookie.clone()));
            assert_eq!(header(&response, "location"), Some(format!("{RETURN}?error=invalid_request").as_str()));
        }
    }

    #[test]
    fn a_provider_other_than_the_configured_one_is_not_found() {
        let url = format!("{WORKER}/connect/google?return_to=https://app.example/home");
        let (result, _) =
            block_on(serve(&target(&[]), &FakeRuntime::new(vec![]), Step::Start, "google", &url, &Browser(None)));
        assert_eq!(result.unwrap_err(), Error::NotFound);
    }

    #[test]
    fn a_route_whose_feature_is_off_names_what_it_needs() {
        let target = Target::new(settings(&[("ZITADEL_SIGNING_KEY", "k"), ("PERMISSIONS_CLAIM", "")]).unwrap());
        let (result, _) =
            block_on(serve(&target, &FakeRuntime::new(vec![]), Step::Start, "microsoft", WORKER, &Browser(None)));
        let error = result.unwrap_err();
        assert_eq!((error.status(), error.code()), (404, "feature_off"));
        assert!(error.message().contains("TOKEN_SEALING_KEY") && error.message().contains("CONNECT_CLIENT_ID"));
    }
}

/// The ZITADEL callback, run as the worker runs it: a cookie sealed as the start step seals it,
/// ZITADEL's token endpoint answering an ES256 ID token, its key set, and the user's links.
mod zitadel_callback {
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    use serde_json::json;

    use super::*;
    use crate::testing::{b64, b64url, settings, FakeRuntime, Reply, START_MS};

    const USER: &str = "312909075212468632";

    struct Browser(String);

    impl Incoming for Browser {
        fn header(&self, name: &str) -> Option<String> {
            name.eq_ignore_ascii_case("cookie").then(|| self.0.clone())
        }

        async fn body(&self, _limit: usize) -> Result<Vec<u8>, Error> {
            Ok(Vec::new())
        }
    }

    fn target() -> Target {
        Target::new(
            settings(&[
                ("ZITADEL_SIGNING_KEY", "k"),
                ("ZITADEL_DOMAIN", "https://z.example"),
                ("ZITADEL_ACCESS_TOKEN", "pat"),
                ("PERMISSIONS_CLAIM", ""),
                ("MS_CLIENT_ID", "entra-app"),
                ("MS_CLIENT_SECRET", "entra-secret"),
                ("MS_IDP_ID", "ms-idp"),
                ("TOKEN_SEALING_KEY", &format!("k1:{}", b64([9u8; 32]))),
                ("CONNECT_CLIENT_ID", "connect-app"),
                ("CONNECT_RETURN_URLS", "https://app.example/"),
            ])
            .expect("good settings"),
        )
    }

    /// An ID token as ZITADEL signs it (ES256), for `nonce`, and the key set that verifies it.
    fn id_token(nonce: &str) -> (String, serde_json::Value) {
        let key = SigningKey::from_bytes(&[7u8; 32].into()).expect("a P-256 key");
        let point = key.verifying_key().to_encoded_point(false);
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "web-key-1", "alg": "ES256", "use": "sig",
            "x": b64url(point.x().unwrap()), "y": b64url(point.y().unwrap())}]});
        let now = START_MS / 1000;
        let claims = json!({"iss": "https://z.example", "sub": USER, "aud": ["connect-app", "project-1"],
            "azp": "connect-app", "exp": now + 3600, "iat": now, "nonce": nonce});
        let input = format!(
            "{}.{}",
            b64url(json!({"alg": "ES256", "kid": "web-key-1", "typ": "JWT"}).to_string()),
            b64url(claims.to_string())
        );
        let signature: Signature = key.sign(input.as_bytes());
        (format!("{input}.{}", b64url(signature.to_bytes())), jwks)
    }

    #[test]
    fn the_log_line_names_the_user_the_id_token_signed_in() {
        let target = target();
        let (token, jwks) = id_token("n0nce");
        let runtime = FakeRuntime::new(vec![
            Reply::json(
                200,
                json!({"access_token": "at", "token_type": "Bearer", "expires_in": 43199, "id_token": token}),
            ),
            Reply::json(200, jwks),
            Reply::json(
                200,
                json!({"result": [{"idpId": "ms-idp", "userId": "oid-1", "userName": "ada@contoso.example"}]}),
            ),
        ]);
        let flow = Flow::of(&target).expect("the connect flow is on");
        let state = FlowState {
            provider: "microsoft".into(),
            next: "zitadel".into(),
            exp: START_MS / 1000 + STATE_TTL_S,
            state: "st4te".into(),
            nonce: "n0nce".into(),
            verifier: pkce::verifier_from(&[3u8; 32]),
            return_to: "https://app.example/x".into(),
            user: None,
            linked: None,
        };
        let set_cookie = futures::executor::block_on(flow.seal_state(&runtime, &state)).expect("sealed");
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let url = "https://worker.example/connect/zitadel/callback?code=c0de&state=st4te";
        let (response, trace) = futures::executor::block_on(serve(
            &target,
            &runtime,
            Step::ZitadelCallback,
            "microsoft",
            url,
            &Browser(cookie),
        ));
        let response = response.expect("an answer");
        assert_eq!(response.status, 302, "{}", response.body);
        let location = response.headers.iter().find(|(n, _)| *n == "location").map(|(_, v)| v.to_string()).unwrap();
        assert!(location.contains("login_hint=ada%40contoso.example"), "{location}");
        assert_eq!(trace.outcome, "", "an intermediate step: App::serve makes it `ok`");
        assert_eq!(trace.user_id.as_deref(), Some(USER));
        assert_eq!(runtime.sends(), 3);
    }
}
