use super::*;
use crate::config::MsRefreshConfig;
use crate::port::TransportError;
use crate::secret::Secret;
use crate::testing::{b64, live_for_ms, FakeRuntime, Reply};
use futures::executor::block_on;

const NOW: i64 = 1_700_000_000;

fn config(on_error: MsRefreshPolicy) -> MsTokenConfig {
    MsTokenConfig {
        metadata_key: "microsoft_access_token".into(),
        refresh_token_metadata_key: "microsoft_refresh_token".into(),
        expires_at_metadata_key: "microsoft_access_token_expires_at".into(),
        claim: "urn:custom:ms_access_token".into(),
        in_userinfo: false,
        clients: Some(crate::config::MsTokenClients::All),
        idp_id: None,
        refresh: Some(MsRefreshConfig {
            client_id: "entra-app".into(),
            client_secret: Secret::new("entra secret"),
            token_url: "https://login.example/common/oauth2/v2.0/token".into(),
            scopes: "offline_access User.Read".into(),
            skew_seconds: 300,
            on_error,
        }),
        accept_unsealed: false,
    }
}

fn stored(access: &str, refresh: Option<&str>, expires_at: Option<i64>) -> Stored {
    Stored { access: Some(Ok(access.into())), refresh: refresh.map(Into::into), expires_at }
}

fn granted(access: &str, refresh: Option<&str>) -> Reply {
    let mut body = serde_json::json!({"token_type": "Bearer", "scope": "User.Read", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access});
    if let Some(r) = refresh {
        body["refresh_token"] = r.into();
    }
    Reply::json(200, body)
}

/// The isolate's refresher for `config`, when it refreshes.
fn refresher(config: &MsTokenConfig) -> Option<Refresher> {
    config.refresh.clone().map(|r| Refresher::new(MicrosoftClient::new(r), live_for_ms()))
}

fn run(runtime: &FakeRuntime, config: &MsTokenConfig, stored: Stored) -> Outcome {
    block_on(token_claim(runtime, refresher(config).as_ref(), config, stored, NOW, runtime.now_ms() + 2000))
}

#[test]
fn a_fresh_token_is_used_without_a_call() {
    let runtime = FakeRuntime::new(vec![]);
    let outcome = run(&runtime, &config(MsRefreshPolicy::Omit), stored("old", Some("rt"), Some(NOW + 301)));
    assert_eq!(outcome, Outcome::Token { token: "old".into(), write_back: vec![], refreshed: false });
    assert!(runtime.sent().is_empty());
}

#[test]
fn a_stale_token_is_refreshed_once_and_written_back_byte_for_byte() {
    let runtime = FakeRuntime::new(vec![granted("new-access", Some("new-refresh"))]);
    let outcome = run(&runtime, &config(MsRefreshPolicy::Omit), stored("old", Some("old-refresh"), Some(NOW + 299)));
    let Outcome::Token { token, write_back, refreshed } = outcome else { panic!("{outcome:?}") };
    assert_eq!((token.as_str(), refreshed), ("new-access", true));
    let written: Vec<(&str, &str)> = write_back.iter().map(|m| (m.key.as_str(), m.value.as_str())).collect();
    let expires_at = (NOW + 3599).to_string();
    assert_eq!(
        written,
        [
            ("microsoft_access_token", b64("new-access").as_str()),
            ("microsoft_refresh_token", b64("new-refresh").as_str()),
            ("microsoft_access_token_expires_at", b64(&expires_at).as_str()),
        ]
    );
    let sent = runtime.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].url, "https://login.example/common/oauth2/v2.0/token");
    assert_eq!(sent[0].header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        String::from_utf8(sent[0].body.clone()).unwrap(),
        "grant_type=refresh_token&refresh_token=old-refresh&client_id=entra-app&client_secret=entra+secret&scope=offline_access+User.Read"
    );
}

#[test]
fn unknown_expiry_refreshes() {
    let runtime = FakeRuntime::new(vec![granted("new", None)]);
    let outcome = run(&runtime, &config(MsRefreshPolicy::Omit), stored("opaque-EwB", Some("rt"), None));
    let Outcome::Token { token, write_back, .. } = outcome else { panic!() };
    assert_eq!(token, "new");
    assert_eq!(write_back.len(), 2, "no new refresh token came back, so none is written");
    assert_eq!(write_back[1].key, "microsoft_access_token_expires_at");
}

#[test]
fn a_jwt_exp_counts_when_no_expiry_is_stored() {
    let payload =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"aud":"x","exp":{}}}"#, NOW + 3000));
    let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.sig");
    assert_eq!(jwt_expiry(&jwt), Some(NOW + 3000));
    let runtime = FakeRuntime::new(vec![]);
    let outcome = run(&runtime, &config(MsRefreshPolicy::Omit), stored(&jwt, Some("rt"), None));
    assert!(matches!(outcome, Outcome::Token { refreshed: false, .. }));
    assert!(runtime.sent().is_empty());
    assert_eq!(jwt_expiry("EwBwA8l6opaque"), None);
    assert_eq!(jwt_expiry("a.%%%.c"), None);
}

#[test]
fn invalid_grant_omits_the_claim_whatever_the_policy() {
    for policy in [MsRefreshPolicy::Omit, MsRefreshPolicy::Stale] {
        for code in ["invalid_grant", "interaction_required"] {
            let runtime = FakeRuntime::new(vec![Reply::json(
                400,
                serde_json::json!({"error": code, "error_description": "AADSTS700082: expired"}),
            )]);
            let outcome = run(&runtime, &config(policy), stored("old", Some("rt"), Some(NOW + 60)));
            assert_eq!(
                outcome,
                Outcome::Omit(if code == "invalid_grant" { "invalid_grant" } else { "interaction_required" })
            );
        }
    }
}

#[test]
fn a_timeout_omits_by_default_and_serves_the_unexpired_old_token_with_stale() {
    let runtime = FakeRuntime::new(vec![Reply::Hang]);
    assert_eq!(
        run(&runtime, &config(MsRefreshPolicy::Omit), stored("old", Some("rt"), Some(NOW + 60))),
        Outcome::Omit("timeout"),
        "a refresh still running at the deadline is a timeout"
    );
    let runtime = FakeRuntime::new(vec![Reply::Hang]);
    assert_eq!(
        run(&runtime, &config(MsRefreshPolicy::Stale), stored("old", Some("rt"), Some(NOW + 60))),
        Outcome::Stale { token: "old".into(), failure: "timeout" },
        "a hang past the deadline is a passing error too"
    );

    let runtime = FakeRuntime::new(vec![Reply::Fail(TransportError::Timeout)]);
    assert_eq!(
        run(&runtime, &config(MsRefreshPolicy::Omit), stored("old", Some("rt"), Some(NOW + 60))),
        Outcome::Omit("timeout")
    );
    let runtime = FakeRuntime::new(vec![Reply::Fail(TransportError::Network)]);
    assert_eq!(
        run(&runtime, &config(MsRefreshPolicy::Stale), stored("old", Some("rt"), Some(NOW + 60))),
        Outcome::Stale { token: "old".into(), failure: "network_error" }
    );
    let runtime = FakeRuntime::new(vec![Reply::json(503, serde_json::json!({}))]);
    assert_eq!(
        run(&runtime, &config(MsRefreshPolicy::Stale), stored("old", Some("rt"), Some(NOW - 1))),
        Outcome::Omit("bad_status"),
        "expired: never emitted"
    );
    let runtime = FakeRuntime::new(vec![Reply::rate_limited(60)]);
    assert_eq!(
        run(&runtime, &config(MsRefreshPolicy::Stale), stored("old", Some("rt"), None)),
        Outcome::Omit("rate_limited"),
        "unknown expiry: never emitted"
    );
}

/// Microsoft's refusal of a refresh token with the OAuth error `code`.
fn refused(code: &str) -> Reply {
    Reply::json(
        400,
        serde_json::json!({"error": code, "error_description": "AADSTS70000: revoked", "error_codes": [70000]}),
    )
}

/// How many requests to Microsoft carried the refresh token `rt`.
fn sent_with(runtime: &FakeRuntime, rt: &str) -> usize {
    let form = format!("refresh_token={rt}&");
    runtime.sent().iter().filter(|s| String::from_utf8_lossy(&s.body).contains(&form)).count()
}

#[test]
fn a_429_holds_back_that_refresh_token_only_until_retry_after() {
    let runtime = FakeRuntime::new(vec![Reply::rate_limited(60), granted("new-b", None)]);
    let c = config(MsRefreshPolicy::Omit);
    let refresher = refresher(&c);
    let claim = |rt: &str| {
        block_on(token_claim(&runtime, refresher.as_ref(), &c, stored("old", Some(rt), None), NOW, u64::MAX))
    };
    assert_eq!(claim("rt-user-a"), Outcome::Omit("rate_limited"));
    assert!(
        matches!(claim("rt-user-b"), Outcome::Token { ref token, refreshed: true, .. } if token == "new-b"),
        "another user's refresh goes on"
    );
    runtime.advance_ms(59_999);
    assert_eq!(claim("rt-user-a"), Outcome::Omit("rate_limited"), "user A waits out Retry-After");
    assert_eq!((sent_with(&runtime, "rt-user-a"), sent_with(&runtime, "rt-user-b")), (1, 1));
    // Whatever the scopes: the wait is the refresh token's (the user's), not one scope's.
    let narrower = block_on(refresher.as_ref().unwrap().refresh(&runtime, "rt-user-a", Some("Mail.Read"), NOW));
    assert_eq!(narrower, Err(RefreshError::Transient(UpstreamError::RateLimited)));
    assert_eq!(sent_with(&runtime, "rt-user-a"), 1, "no call while Retry-After lasts");

    runtime.advance_ms(1);
    runtime.push(granted("new-a", None));
    assert!(matches!(claim("rt-user-a"), Outcome::Token { ref token, refreshed: true, .. } if token == "new-a"));
    assert_eq!(sent_with(&runtime, "rt-user-a"), 2);

    // Without Retry-After, one second, as for every upstream.
    runtime.push(Reply::Answer { status: 429, body: b"{}".to_vec(), retry_after: None });
    assert_eq!(claim("rt-user-c"), Outcome::Omit("rate_limited"));
    runtime.advance_ms(999);
    assert_eq!(claim("rt-user-c"), Outcome::Omit("rate_limited"));
    assert_eq!(sent_with(&runtime, "rt-user-c"), 1);
    runtime.advance_ms(1);
    runtime.push(granted("new-c", None));
    assert!(matches!(claim("rt-user-c"), Outcome::Token { refreshed: true, .. }));
    assert_eq!(sent_with(&runtime, "rt-user-c"), 2);
}

#[test]
fn a_429_at_the_code_exchange_holds_back_no_refresh() {
    let runtime = FakeRuntime::new(vec![Reply::rate_limited(60), granted("new", None)]);
    let c = config(MsRefreshPolicy::Omit);
    let refresher = refresher(&c).unwrap();
    let exchanged = block_on(refresher.microsoft().exchange_code(&runtime, "c0de", "https://w/cb", "v3rifier", NOW));
    assert_eq!(exchanged.map(|_| ()), Err(RefreshError::Transient(UpstreamError::RateLimited)));
    let outcome = block_on(token_claim(&runtime, Some(&refresher), &c, stored("old", Some("rt"), None), NOW, u64::MAX));
    assert!(matches!(outcome, Outcome::Token { refreshed: true, .. }), "{outcome:?}");
    assert_eq!(runtime.sent().len(), 2);
}

#[test]
fn a_refusal_is_remembered_for_ten_minutes_and_answered_alike() {
    let c = config(MsRefreshPolicy::Stale);
    let refresher = refresher(&c).unwrap();
    for code in ["invalid_grant", "interaction_required", "consent_required"] {
        let rt = format!("rt-{code}");
        let runtime = FakeRuntime::new(vec![refused(code)]);
        let refresh = || block_on(refresher.refresh(&runtime, &rt, None, NOW));
        let claim = || {
            let stored = stored("old-but-valid", Some(&rt), Some(NOW + 60));
            block_on(token_claim(&runtime, Some(&refresher), &c, stored, NOW, u64::MAX))
        };
        assert_eq!(refresh(), Err(RefreshError::SignInAgain(code)));
        assert_eq!(refresh(), Err(RefreshError::SignInAgain(code)), "remembered: the same error");
        assert_eq!(claim(), Outcome::Omit(code), "the claim is left out as for the refusal itself");
        runtime.advance_ms(REFUSAL_MEMORY_MS - 1);
        assert_eq!(claim(), Outcome::Omit(code));
        assert_eq!(runtime.sent().len(), 1, "{code}: not sent again within the window");

        runtime.advance_ms(1);
        runtime.push(granted("new", None));
        assert!(matches!(claim(), Outcome::Token { refreshed: true, .. }), "{code}: sent again after it");
        assert_eq!(runtime.sent().len(), 2);
    }
    assert_eq!(REFUSAL_MEMORY_MS, 600_000);
}

#[test]
fn a_refusal_is_remembered_for_its_refresh_token_and_scopes_only() {
    let c = config(MsRefreshPolicy::Omit);
    let refresher = refresher(&c).unwrap();
    let runtime = FakeRuntime::new(vec![refused("invalid_grant"), granted("mail", None), granted("other", None)]);
    let refresh =
        |rt: &str, scopes| block_on(refresher.refresh(&runtime, rt, scopes, NOW)).map(|r| r.access_token.clone());
    assert_eq!(refresh("rt", None), Err(RefreshError::SignInAgain("invalid_grant")));
    // A refusal for some scopes may be theirs alone (consent withdrawn for one): other scopes ask.
    assert_eq!(refresh("rt", Some("Mail.Read")), Ok("mail".into()));
    assert_eq!(refresh("rt-other", None), Ok("other".into()));
    assert_eq!(refresh("rt", None), Err(RefreshError::SignInAgain("invalid_grant")));
    assert_eq!(runtime.sent().len(), 3);
}

#[test]
fn only_refusals_that_mean_sign_in_again_are_remembered() {
    let c = config(MsRefreshPolicy::Omit);
    let refresher = refresher(&c).unwrap();
    let runtime = FakeRuntime::new(vec![
        Reply::json(401, serde_json::json!({"error": "invalid_client"})),
        Reply::json(401, serde_json::json!({"error": "invalid_client"})),
        Reply::json(503, serde_json::json!({})),
        Reply::json(503, serde_json::json!({})),
    ]);
    let refresh = || block_on(refresher.refresh(&runtime, "rt", None, NOW)).map(|_| ());
    assert_eq!(refresh(), Err(RefreshError::Refused("invalid_client")));
    assert_eq!(refresh(), Err(RefreshError::Refused("invalid_client")), "a setting to fix: asked again");
    assert_eq!(refresh(), Err(RefreshError::Transient(UpstreamError::Status(503))));
    assert_eq!(refresh(), Err(RefreshError::Transient(UpstreamError::Status(503))));
    assert_eq!(runtime.sent().len(), 4);
}

#[test]
fn the_memory_of_refusals_is_bounded() {
    let c = config(MsRefreshPolicy::Omit);
    let refresher = refresher(&c).unwrap();
    // The fake runtime takes 1,000 requests at most: two of them, on one clock.
    let first = FakeRuntime::repeating(refused("invalid_grant"));
    for i in 0..MAX_TIMED {
        first.advance_ms(1);
        assert!(block_on(refresher.refresh(&first, &format!("rt-{i}"), None, NOW)).is_err());
    }
    assert_eq!(refresher.refused.entries.borrow().len(), MAX_TIMED);
    let second = FakeRuntime::repeating(refused("invalid_grant"));
    second.advance_ms(first.now_ms() - second.now_ms() + 1);
    assert!(block_on(refresher.refresh(&second, "rt-one-more", None, NOW)).is_err());
    assert_eq!(refresher.refused.entries.borrow().len(), MAX_TIMED, "never more");
    // The refusal that would have ended soonest (the oldest) was forgotten, and only it.
    assert!(block_on(refresher.refresh(&second, "rt-1", None, NOW)).is_err());
    assert_eq!(second.sent().len(), 1, "rt-1 is still remembered");
    assert!(block_on(refresher.refresh(&second, "rt-0", None, NOW)).is_err());
    assert_eq!(second.sent().len(), 2, "rt-0 was forgotten: asked again");
}

#[test]
fn a_full_timed_memory_forgets_what_is_over_first_then_what_ends_soonest() {
    let timed = Timed::<u32>::default();
    for i in 0..MAX_TIMED as u64 {
        // Every tenth ends at 100, the others at 1_000 + i.
        let until = if i % 10 == 0 { 100 } else { 1_000 + i };
        timed.insert(&format!("k{i}"), 1, until, 0);
    }
    assert_eq!(timed.get("k0", 99), Some(1));
    assert_eq!(timed.get("k0", 100), None, "over at its time");
    timed.insert("k1", 2, 5_000, 200); // a key it has: replaced, nothing forgotten
    assert_eq!((timed.entries.borrow().len(), timed.get("k1", 200)), (MAX_TIMED, Some(2)));
    timed.insert("new", 3, 5_000, 200);
    assert_eq!(timed.entries.borrow().len(), MAX_TIMED - MAX_TIMED / 10 + 1, "the ended ones went first");
    for i in 0..MAX_TIMED / 10 - 1 {
        timed.insert(&format!("more{i}"), 4, 5_000, 200);
    }
    assert_eq!(timed.entries.borrow().len(), MAX_TIMED);
    timed.insert("last", 5, 5_000, 200);
    assert_eq!(timed.entries.borrow().len(), MAX_TIMED, "bounded while every entry lasts");
    assert_eq!(timed.get("k2", 200), None, "the one ending soonest (k2, at 1_002) was forgotten");
    assert_eq!((timed.get("k3", 200), timed.get("last", 200), timed.get("k1", 200)), (Some(1), Some(5), Some(2)));
}

#[test]
fn a_refused_client_is_a_configuration_problem() {
    let runtime = FakeRuntime::new(vec![Reply::json(401, serde_json::json!({"error": "invalid_client"}))]);
    assert_eq!(
        run(&runtime, &config(MsRefreshPolicy::Stale), stored("old", Some("rt"), Some(NOW + 60))),
        Outcome::Omit("invalid_client")
    );
}

#[test]
fn a_malformed_answer_is_transient() {
    // Not JSON, and JSON without an access token: both are passing errors, so with the Stale
    // policy the unexpired old token (due for refresh: within the skew) is served. A refused
    // request would omit the claim instead.
    let answers = [
        ("not JSON", Reply::raw(200, b"<html>")),
        ("no access_token", Reply::json(200, serde_json::json!({"token_type": "Bearer", "expires_in": 3599}))),
        ("empty access_token", Reply::json(200, serde_json::json!({"token_type": "Bearer", "access_token": ""}))),
    ];
    for (what, answer) in answers {
        let runtime = FakeRuntime::new(vec![answer.clone()]);
        assert_eq!(
            run(&runtime, &config(MsRefreshPolicy::Stale), stored("old", Some("rt"), Some(NOW + 60))),
            Outcome::Stale { token: "old".into(), failure: "malformed_response" },
            "{what}"
        );
        assert_eq!(runtime.sent().len(), 1, "the refresh was tried and failed");
        // With Omit the failure's code is what is noted.
        let runtime = FakeRuntime::new(vec![answer.clone()]);
        assert_eq!(
            run(&runtime, &config(MsRefreshPolicy::Omit), stored("old", Some("rt"), Some(NOW + 60))),
            Outcome::Omit("malformed_response"),
            "{what}"
        );
    }
}

#[test]
fn the_same_refresh_token_is_not_spent_twice_in_an_isolate() {
    let runtime = FakeRuntime::new(vec![granted("new", Some("rotated"))]);
    let c = config(MsRefreshPolicy::Omit);
    let refresher = refresher(&c);
    for _ in 0..3 {
        let outcome = block_on(token_claim(
            &runtime,
            refresher.as_ref(),
            &c,
            stored("old", Some("rt"), Some(NOW)),
            NOW,
            u64::MAX,
        ));
        assert!(matches!(outcome, Outcome::Token { ref token, refreshed: true, .. } if token == "new"));
    }
    assert_eq!(runtime.sent().len(), 1);
}

#[test]
fn without_refresh_settings_the_stored_token_passes_unless_known_expired() {
    let mut c = config(MsRefreshPolicy::Omit);
    c.refresh = None;
    let runtime = FakeRuntime::new(vec![]);
    assert!(matches!(run(&runtime, &c, stored("tok", Some("rt"), None)), Outcome::Token { refreshed: false, .. }));
    assert!(runtime.sent().is_empty());
    // Without refresh settings the expiry metadata is not read, but a JWT's exp still counts.
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{}}}"#, NOW - 10));
    let expired_jwt = format!("h.{payload}.s");
    assert_eq!(run(&runtime, &c, stored(&expired_jwt, None, None)), Outcome::Omit("the stored token has expired"));
}

#[test]
fn an_expiry_of_zero_means_unknown() {
    let c = config(MsRefreshPolicy::Omit);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let body = serde_json::json!({"user_metadata": [
        {"key": "microsoft_access_token", "value": b64("\"tok\"")},
        {"key": "microsoft_access_token_expires_at", "value": b64("\"0\"")}
    ]})
    .to_string();
    let info = crate::contract::payload::decode(body.as_bytes()).unwrap();
    let stored = Stored::read(&info, &c);
    assert_eq!(stored, Stored { access: Some(Ok("tok".into())), refresh: None, expires_at: None });
    // No refresh token stored (older ZITADEL): the token passes instead of counting as expired.
    assert!(matches!(run(&FakeRuntime::new(vec![]), &c, stored), Outcome::Token { refreshed: false, .. }));
}

#[test]
fn a_refresh_token_without_access_token_still_refreshes() {
    let runtime = FakeRuntime::new(vec![granted("new", None)]);
    let outcome = run(
        &runtime,
        &config(MsRefreshPolicy::Omit),
        Stored { access: None, refresh: Some("rt".into()), expires_at: None },
    );
    assert!(matches!(outcome, Outcome::Token { refreshed: true, .. }));
    assert_eq!(run(&FakeRuntime::new(vec![]), &config(MsRefreshPolicy::Omit), Stored::default()), Outcome::Absent);
}

#[test]
fn stored_values_are_read_in_both_encodings() {
    assert_eq!(decode_text(&b64(r#""eyJ0eXAi.abc""#)), Ok("eyJ0eXAi.abc".into()), "V1 appendMetadata: a JSON string");
    assert_eq!(decode_text(&b64("EwBwA8l6raw")), Ok("EwBwA8l6raw".into()), "V2 set_user_metadata: raw bytes");
    assert_eq!(decode_text(&b64("1700000000")), Ok("1700000000".into()));
    assert_eq!(decode_text(&b64(r#""unterminated"#)), Ok("\"unterminated".into()));
    assert_eq!(decode_text("%%%"), Err("the token metadata is not valid base64"));
    assert_eq!(decode_text(&b64("\u{0}")).map(|s| s.len()), Ok(1));
    assert_eq!(
        decode_text(&base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe])),
        Err("the token metadata is not UTF-8 text")
    );
    assert_eq!(decode_text(&b64(r#""""#)), Err("the token metadata is empty"));
    assert_eq!(decode_text(&b64(r#""a\"b""#)), Ok("a\"b".into()), "escapes take the JSON path");
    assert_eq!(decode_text(&b64(r#""\u00e9""#)), Ok("\u{e9}".into()));
    assert_eq!(decode_text(&b64("\"")), Ok("\"".into()), "a lone quote is raw text");

    // What the V1 action (zitadel/actions/storeMicrosoftTokens.js) stores through
    // appendMetadata, i.e. Go's json.Marshal of the string, as tests/e2e/v1-action.test.mjs
    // has it: JWTs (base64url with - and _, or with "=" padding), an opaque token with / + =,
    // a refresh token, the expiry ("0" when unknown) and garbage that looks like a JWT...
    const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJleHAiOjE3NjcyMjU2MDAsInBhZCI6IngiLCJvZGQiOiI-P35-Pj4-PyJ9.c2lnbmF0dXJl-_x";
    const PADDED_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3NjcyMjU2MDAuNzUsIm5hbWUiOiJab8OrIE3DvGxsZXIifQ==.sig";
    for token in [
        JWT,
        PADDED_JWT,
        "EwBwA8l6BAAUbDba3x2OMJElkF7gJ4z/+abc+def/ghi==",
        "M.C507_BAY.0.U.-Cl4YF0*aH!sYE7rxkY$",
        "1767225600",
        "0",
        "a.%%%.b",
        "..",
    ] {
        assert_eq!(decode_text(&b64(format!("\"{token}\""))), Ok(token.into()), "{token}");
    }
    // ... whose expiry is the one the worker reads from the JWT itself.
    assert_eq!((jwt_expiry(JWT), jwt_expiry(PADDED_JWT)), (Some(1_767_225_600), Some(1_767_225_600)));
    // json.Marshal escapes <, >, & and U+2028/U+2029 where JSON.stringify does not.
    assert_eq!(
        decode_text(&b64(r#""tok\u003cen\u003e\u0026more\u2028""#)),
        Ok("tok<en>&more\u{2028}".into()),
        "Go's escapes are undone"
    );
    assert_eq!(decode_text(&b64(r#""a\u2029\u003e""#)), Ok("a\u{2029}>".into()));
}
