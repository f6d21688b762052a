//! Bugs the properties found, kept as plain tests.

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Regressions: bugs the properties found
// ---------------------------------------------------------------------------------------------

/// The claims of a call signed now with KEY.
fn claims_of(config: &Config, runtime: &FakeRuntime, body: Value) -> Vec<(String, Value)> {
    let valid = Signed::Valid { offset: 0, old_key: false };
    match check_call(&Target::new(config.clone()), runtime, &valid, body.to_string().as_bytes()) {
        Ok(Answer::Claims(response)) => {
            let answer: Value = serde_json::from_str(&response.to_json()).unwrap();
            let claims = answer["append_claims"].as_array().cloned().unwrap_or_default();
            claims.iter().map(|c| (c["key"].as_str().unwrap().to_string(), c["value"].clone())).collect()
        }
        Ok(Answer::Message(_)) => panic!("expected claims, got a message"),
        Err(e) => panic!("expected claims, got {e:?}"),
    }
}

fn answer(status: u16, body: Value) -> Reply {
    Reply::Answer { status, body: body.to_string().into_bytes(), retry_after: None }
}

/// A stored Microsoft token that is a JWT with `exp` of -1e300 (or anything at or below
/// i64::MIN + MS_REFRESH_SKEW_SECONDS), with a refresh token and no stored expiry:
/// `jwt_expiry` saturates it to i64::MIN and `token_claim` computes `expiry - skew`
/// (claims/microsoft.rs, `if expiry - skew > now`), which overflows: a panic in a debug build; in
/// the release wasm (no overflow checks) it wraps to a huge positive number and the long-expired
/// token is passed on as fresh, without a refresh.
#[test]
fn regression_jwt_exp_far_in_the_past_overflowed() {
    let jwt = format!("eyJhbGciOiJub25lIn0.{}.c2ln", URL_SAFE_NO_PAD.encode(r#"{"exp":-1e300}"#));
    let body = json!({
        "function": "function/preaccesstoken",
        "user": { "id": "u1" },
        "user_metadata": [
            { "key": "microsoft_access_token", "value": STANDARD.encode(format!("\"{jwt}\"")) },
            { "key": "microsoft_refresh_token", "value": STANDARD.encode("refresh-token") },
        ],
    });
    // Expired, so a refresh is tried; Microsoft is unreachable, so the claim is omitted.
    let claims = claims_of(&claims_on(false, false), &unreachable_upstream(), body);
    assert!(claims.iter().all(|(k, _)| k != "urn:custom:ms_access_token"), "{claims:?}");
}

/// ZITADEL's client-credentials token answer with `expires_in` above about 1.8e16 s (u64::MAX
/// here): `bearer` computes `runtime.now_ms() + lifetime_ms - margin` (upstream/zitadel.rs) where
/// `lifetime_ms` saturated at u64::MAX, which overflows: a panic in a debug build; in the
/// release wasm it wraps to a time in the past, so the token is fetched again on every call.
#[test]
fn regression_zitadel_token_lifetime_overflowed() {
    let replies = vec![
        answer(200, json!({ "access_token": "issued", "token_type": "Bearer", "expires_in": u64::MAX })),
        answer(
            200,
            json!({
                "pagination": { "totalResult": "1" },
                "metadata": [{ "key": "admin", "value": STANDARD.encode(r#"["posts:read"]"#) }],
            }),
        ),
    ];
    let body = json!({
        "function": "function/preaccesstoken",
        "org": { "id": "o1" },
        "user_grants": [{ "project_id": "p1", "roles": ["admin"] }],
    });
    let claims = claims_of(&claims_on(true, false), &answering(replies, None), body);
    assert!(claims.contains(&("permissions".to_string(), json!(["posts:read"]))), "{claims:?}");
}

/// Microsoft's refresh answer with `expires_in` near i64::MAX (a number, or a string such as
/// "9223372036854775807"): `MicrosoftClient::refresh` computes `now + expires_in` (upstream/microsoft.rs),
/// which overflows: a panic in a debug build; in the release wasm it wraps to a negative expiry,
/// which is written back to the user's metadata.
#[test]
fn regression_microsoft_refresh_lifetime_overflowed() {
    for expires_in in [json!(i64::MAX), json!(i64::MAX.to_string())] {
        let replies = vec![answer(200, json!({ "access_token": "new-token", "expires_in": expires_in }))];
        let body = json!({
            "function": "function/preaccesstoken",
            "user": { "id": "u1" },
            "user_metadata": [{ "key": "microsoft_refresh_token", "value": STANDARD.encode("refresh-token") }],
        });
        let claims = claims_of(&claims_on(false, false), &answering(replies, None), body);
        assert!(claims.contains(&("urn:custom:ms_access_token".to_string(), json!("new-token"))), "{claims:?}");
    }
}
