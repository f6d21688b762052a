//! The hot path on the host: verify the signature, decode the payload and build every claim from a
//! warm cache, then serialize the answer and the log line, for a realistic call (5 grants × 4
//! roles, 20 organization metadata entries, a 3 KB Microsoft token, a full user object).
//!
//! The same call as a JWT (ES256) and as a JWE (ECDH-ES+A256KW on P-256, A256GCM) from a warm key
//! set: the whole request, with the host's RustCrypto in place of the runtime's WebCrypto, and the
//! JOSE decode alone (the parsing and checks that stay in the Rust core, no cryptography).
//!
//! Run: `cargo bench --bench hot_path` (or `npm run bench`, which also runs the runtime benchmark).
//! Prints the median time per request over many batches and writes `bench/results/hot_path.json`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use zitadel_claims_core::claims::Call;
use zitadel_claims_core::config::Config;
use zitadel_claims_core::contract::jose;
use zitadel_claims_core::contract::payload;
use zitadel_claims_core::contract::signature::{self, header_for, RustMac};
use zitadel_claims_core::seal::{self, Aad, SealingKeys};
use zitadel_claims_core::secret::SigningKey;
use zitadel_claims_core::target::Target;
use zitadel_claims_core::testing::{b64, b64url, FakeRuntime, Reply, Timers, START_MS as NOW_MS};
use zitadel_claims_core::trace::{LogLine, Trace};

const ORG: &str = "312909075211944344";
const USER: &str = "312909075212468632";
const SEALING_KEY: &str = "bench:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// Polls a future that never waits (all answers are ready) to completion.
fn run_ready<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The bench's call with its Microsoft token and expiry sealed for the user (TOKEN_SEALING_KEY):
/// the same bytes otherwise, so that the two paths differ only by the sealing.
fn sealed_payload(runtime: &FakeRuntime, keys: &SealingKeys) -> Vec<u8> {
    let mut body: serde_json::Value = serde_json::from_slice(&payload()).unwrap();
    for entry in body["user_metadata"].as_array_mut().unwrap() {
        let key = entry["key"].as_str().unwrap().to_string();
        if key.starts_with("microsoft_") {
            let plain = b64_decode(entry["value"].as_str().unwrap());
            let text = String::from_utf8(plain).unwrap();
            let text = serde_json::from_str::<String>(&text).unwrap_or(text);
            let sealed =
                run_ready(seal::seal_bytes(runtime, keys, &Aad::metadata(USER, &key), text.as_bytes())).unwrap();
            entry["value"] = b64(&sealed).into();
        }
    }
    body.to_string().into_bytes()
}

fn b64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

fn payload() -> Vec<u8> {
    let grants: Vec<_> = (0..5)
        .map(|g| {
            serde_json::json!({
                "id": format!("31290907521391{g:04}"), "grant_id": "", "state": 1,
                "creation_date": "2025-03-11T09:20:01.220Z", "change_date": "2025-03-11T09:20:01.220Z", "sequence": 2,
                "user_id": "312909075212468632",
                "roles": (0..4).map(|r| format!("role-{}", g * 4 + r)).collect::<Vec<_>>(),
                "resource_owner": ORG, "project_id": format!("31290907521286{g:04}"), "project_name": format!("Project {g}"),
                "org_name": "ACME", "org_primary_domain": "acme.example", "user_resource_owner": ORG
            })
        })
        .collect();
    let token = "EwB".to_string() + &"x".repeat(3 * 1024 - 3);
    serde_json::json!({
        "function": "function/preaccesstoken",
        "userinfo": {"sub": "312909075212468632", "name": "Ada Lovelace", "email": "ada@acme.example", "email_verified": true, "locale": "en"},
        "user": {
            "id": "312909075212468632", "creation_date": "2025-03-11T09:12:44.518Z", "change_date": "2026-11-20T15:02:13.901Z",
            "resource_owner": ORG, "sequence": 7, "state": 1, "username": "ada@acme.example", "preferred_login_name": "ada@acme.example",
            "human": {"first_name": "Ada", "last_name": "Lovelace", "nick_name": "ada", "display_name": "Ada Lovelace",
                      "preferred_language": "en", "gender": 1, "email": "ada@acme.example", "is_email_verified": true,
                      "phone": "+41 79 000 00 00", "is_phone_verified": false}
        },
        "user_metadata": [
            {"key": "microsoft_access_token", "value": b64(serde_json::to_string(&token).unwrap().as_bytes()), "sequence": 12},
            {"key": "microsoft_access_token_expires_at", "value": b64(b"1700003600"), "sequence": 13},
            {"key": "department", "value": b64(b"research"), "sequence": 14}
        ],
        "org": {"id": ORG, "name": "ACME", "primary_domain": "acme.example"},
        "user_grants": grants,
        "application": {"client_id": "312909075213386136"}
    })
    .to_string()
    .into_bytes()
}

fn org_metadata() -> Vec<u8> {
    let entries: Vec<_> = (0..20)
        .map(|r| serde_json::json!({"key": format!("role-{r}"), "value": b64(format!(r#"["app:read","app:write-{r}","reports:{r}"]"#).as_bytes())}))
        .collect();
    serde_json::json!({"pagination": {"totalResult": "20", "appliedLimit": "100"}, "metadata": entries})
        .to_string()
        .into_bytes()
}

/// The payload as ZITADEL's payloadJWT and payloadJWE send it, made with fixed keys: the JWT, the
/// JWE, the instance's key set and the target's private key (PKCS#8 DER).
struct Jose {
    jwt: Vec<u8>,
    jwe: Vec<u8>,
    jwks: Vec<u8>,
    target_pkcs8: Vec<u8>,
}

fn jose_payloads(json: &[u8]) -> Jose {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePrivateKey;

    let web_key = p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
    let public: p256::PublicKey = (*web_key.verifying_key()).into();
    let mut jwk: serde_json::Value = serde_json::from_str(&public.to_jwk_string()).unwrap();
    jwk["kid"] = "300000000000000001".into();
    jwk["alg"] = "ES256".into();
    jwk["use"] = "sig".into();
    let jwks = serde_json::json!({ "keys": [jwk] }).to_string().into_bytes();
    let header = b64url(br#"{"alg":"ES256","kid":"300000000000000001","typ":"JWT"}"#);
    let signing_input = format!("{header}.{}", b64url(json));
    let signature: p256::ecdsa::Signature = web_key.sign(signing_input.as_bytes());
    let jwt = format!("{signing_input}.{}", b64url(signature.to_bytes()));

    let target = p256::SecretKey::from_slice(&[5; 32]).unwrap();
    let ephemeral = p256::SecretKey::from_slice(&[7; 32]).unwrap();
    let epk: serde_json::Value = serde_json::from_str(&ephemeral.public_key().to_jwk_string()).unwrap();
    let protected = b64url(
        serde_json::json!({"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "epk": epk, "kid": "300000000000000002", "typ": "JWT", "cty": "JWT"})
            .to_string()
            .as_bytes(),
    );
    let z = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), target.public_key().as_affine());
    let kek = jose::concat_kdf(z.raw_secret_bytes(), b"", b"");
    let cek = [3u8; 32];
    let wrapped = aes_kw::KekAes256::from(kek).wrap_vec(&cek).unwrap();
    let iv = [1u8; 12];
    let sealed = aes_gcm::Aes256Gcm::new(&cek.into())
        .encrypt(&iv.into(), Payload { msg: jwt.as_bytes(), aad: protected.as_bytes() })
        .unwrap();
    let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
    let jwe = format!("{protected}.{}.{}.{}.{}", b64url(&wrapped), b64url(iv), b64url(ciphertext), b64url(tag));
    let target_pkcs8 = target.to_pkcs8_der().unwrap().as_bytes().to_vec();
    Jose { jwt: jwt.into_bytes(), jwe: jwe.into_bytes(), jwks, target_pkcs8 }
}

const BATCH: usize = 200;
const BATCHES: usize = 300;

/// Median, 10th and 90th percentile of the time per call, in ns, over `BATCHES` batches.
fn measure<T>(f: &dyn Fn() -> T) -> (f64, f64, f64) {
    for _ in 0..50 {
        black_box(f());
    }
    let mut per_call: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..BATCH {
                black_box(f());
            }
            started.elapsed().as_nanos() as f64 / BATCH as f64
        })
        .collect();
    per_call.sort_by(|a, b| a.total_cmp(b));
    (per_call[BATCHES / 2], per_call[BATCHES / 10], per_call[BATCHES * 9 / 10])
}

/// The request's log line, as the worker writes it.
fn log_line(trace: &Trace) -> String {
    LogLine::new("POST", "/", trace, 0, 0).to_json()
}

fn main() {
    let settings = [
        ("ZITADEL_SIGNING_KEY", "bench-signing-key"),
        ("ZITADEL_DOMAIN", "zitadel.example"),
        ("ZITADEL_ACCESS_TOKEN", "bench-pat"),
        ("GROUPS_CLAIM", "groups"),
        ("MS_TOKEN_CLIENT_IDS", "*"),
        ("MS_CLIENT_ID", "app"),
        ("MS_CLIENT_SECRET", "secret"),
    ];
    let config = Config::from_lookup(|n| settings.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())).unwrap();
    let body = payload();
    let header = header_for((NOW_MS / 1000) as i64, &body, &[SigningKey::new("bench-signing-key")]);
    let target = Target::new(config);
    // Serves the organization's metadata (once, to warm the cache); the clock stands still and no
    // timer ends, so every measured request runs to its end on the warm path.
    let runtime =
        FakeRuntime::repeating(Reply::raw(200, &org_metadata())).with_timers(Timers::Never).without_recording();

    let once = || {
        let (response, trace) = run_ready(target.handle(&runtime, Some(&header), &body));
        (response.unwrap().to_json(), log_line(&trace))
    };
    let (answer, _) = once(); // warms the cache
    assert_eq!(runtime.sends(), 1);
    let parsed: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let claims = parsed["append_claims"].as_array().unwrap();
    assert_eq!(claims.len(), 4, "permissions, flat roles, groups, Microsoft token: {answer}");

    let info = payload::decode(&body).unwrap();
    let claims_once = || {
        let call = Call { function: payload::Function::PreAccessToken, info: &info, earlier: Default::default() };
        run_ready(target.claims(&runtime, call)).0.unwrap()
    };
    // The same call with the Microsoft token sealed (TOKEN_SEALING_KEY), side by side with the
    // cleartext path in this run: the sealed path, then the cleartext one again.
    let sealed_settings = [("TOKEN_SEALING_KEY", SEALING_KEY)];
    let sealed_config = Config::from_lookup(|n| {
        sealed_settings.iter().chain(settings.iter()).find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
    })
    .unwrap();
    let sealed_target = Target::new(sealed_config);
    let sealed_runtime =
        FakeRuntime::repeating(Reply::raw(200, &org_metadata())).with_timers(Timers::Never).without_recording();
    let sealed_body = sealed_payload(&sealed_runtime, &SealingKeys::parse(SEALING_KEY).unwrap());
    let sealed_header = header_for((NOW_MS / 1000) as i64, &sealed_body, &[SigningKey::new("bench-signing-key")]);
    let sealed_once = || {
        let (response, trace) = run_ready(sealed_target.handle(&sealed_runtime, Some(&sealed_header), &sealed_body));
        (response.unwrap().to_json(), log_line(&trace))
    };
    assert_eq!(sealed_once().0, answer, "the same answer from the sealed token");
    let sealed_info = payload::decode(&sealed_body).unwrap();
    let sealed_claims_once = || {
        let call =
            Call { function: payload::Function::PreAccessToken, info: &sealed_info, earlier: Default::default() };
        run_ready(sealed_target.claims(&sealed_runtime, call)).0.unwrap()
    };
    // For profilers (valgrind --tool=callgrind, perf): BENCH_ONLY=request runs the whole request
    // 20,000 times, BENCH_ONLY=claims just the claims (sealed_request, sealed_claims: the same with
    // the token sealed), and nothing is measured or written.
    match std::env::var("BENCH_ONLY").as_deref() {
        Ok("request") => return (0..20_000).for_each(|_| drop(black_box(once()))),
        Ok("claims") => return (0..20_000).for_each(|_| drop(black_box(claims_once()))),
        Ok("sealed_request") => return (0..20_000).for_each(|_| drop(black_box(sealed_once()))),
        Ok("sealed_claims") => return (0..20_000).for_each(|_| drop(black_box(sealed_claims_once()))),
        _ => {}
    }
    let (median, p10, p90) = measure(&once);
    assert_eq!(runtime.sends(), 1, "every measured request was served from the warm cache");
    let keys = [SigningKey::new("bench-signing-key")];
    let parts = [
        (
            "signature check",
            measure(&|| {
                run_ready(signature::verify(&RustMac, Some(&header), &body, &keys, (NOW_MS / 1000) as i64, 300))
            })
            .0,
        ),
        ("payload decode", measure(&|| payload::decode(&body).map(|i| i.user_id().map(str::len))).0),
        ("claims from the warm cache", measure(&claims_once).0),
        ("serializing the answer and the log line", {
            let (response, trace) = (claims_once(), Trace::default());
            measure(&|| (response.to_json(), log_line(&trace))).0
        }),
    ];
    for (name, ns) in parts {
        println!("  of which {name}: median {:.1} µs", ns / 1000.0);
    }
    println!(
        "hot path (verify + decode + claims from warm cache + serialize), body {} bytes: median {:.1} µs/request (p10 {:.1}, p90 {:.1}) over {} batches of {}",
        body.len(),
        median / 1000.0,
        p10 / 1000.0,
        p90 / 1000.0,
        BATCHES,
        BATCH
    );

    let sealed_median = measure(&sealed_once).0;
    let clear_again = measure(&once).0;
    let (sealed_claims, clear_claims) = (measure(&sealed_claims_once).0, measure(&claims_once).0);
    println!(
        "  the claims alone: sealed {:.1} µs, cleartext {:.1} µs ({:+.1}%)",
        sealed_claims / 1000.0,
        clear_claims / 1000.0,
        (sealed_claims / clear_claims - 1.0) * 100.0
    );
    println!(
        "hot path with the Microsoft token sealed (AES-256-GCM by RustCrypto), body {} bytes: median {:.1} µs/request; the cleartext path in the same run {:.1} and {:.1} µs ({:+.1}%)",
        sealed_body.len(),
        sealed_median / 1000.0,
        median / 1000.0,
        clear_again / 1000.0,
        (sealed_median / median.min(clear_again) - 1.0) * 100.0
    );

    // The same call as a JWT and as a JWE, from a warm key set (fetched once, like the metadata).
    let jose_made = jose_payloads(&body);
    let jose_settings = [("PAYLOAD_DECRYPTION_KEY", format!("300000000000000002:{}", b64(&jose_made.target_pkcs8)))];
    let jose_config = Config::from_lookup(|n| {
        jose_settings
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.clone())
            .or_else(|| settings.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()))
    })
    .unwrap();
    let jose_target = Target::new(jose_config);
    let jose_platform = FakeRuntime::new(vec![Reply::raw(200, &jose_made.jwks), Reply::raw(200, &org_metadata())])
        .with_timers(Timers::Never)
        .without_recording();
    let signed = |bytes: &[u8]| header_for((NOW_MS / 1000) as i64, bytes, &[SigningKey::new("bench-signing-key")]);
    let (jwt_header, jwe_header) = (signed(&jose_made.jwt), signed(&jose_made.jwe));
    let jose_once = |bytes: &[u8], header: &str| {
        let (response, trace) = run_ready(jose_target.handle(&jose_platform, Some(header), bytes));
        (response.unwrap().to_json(), log_line(&trace))
    };
    for (bytes, header) in [(&jose_made.jwt, &jwt_header), (&jose_made.jwe, &jwe_header)] {
        assert_eq!(jose_once(bytes, header).0, answer, "the same answer as the JSON payload");
    }
    assert_eq!(jose_platform.sends(), 2, "the key set and the metadata, once");
    let jwt_text = std::str::from_utf8(&jose_made.jwt).unwrap();
    let jwe_text = std::str::from_utf8(&jose_made.jwe).unwrap();
    let key_set = jose::Jwks::parse(&jose_made.jwks).unwrap();
    let jws_decode = |text: &str| {
        let jws = jose::parse_jws(text).unwrap();
        let key = key_set.find(&jws.kid).unwrap();
        jose::check_key(key, jws.alg).unwrap();
        jose::check_signature_shape(jws.alg, &jws.signature).unwrap();
        jws.payload.len()
    };
    let jose_parts = [
        ("JWT request (ES256 verified by RustCrypto)", measure(&|| jose_once(&jose_made.jwt, &jwt_header)).0),
        (
            "JWE request (ECDH-ES+A256KW, A256GCM and ES256 by RustCrypto)",
            measure(&|| jose_once(&jose_made.jwe, &jwe_header)).0,
        ),
        ("JWT decode without the cryptography (parse, key lookup, checks)", measure(&|| jws_decode(jwt_text)).0),
        (
            "JWE decode without the cryptography (its header and parts)",
            measure(&|| jose::parse_jwe(jwe_text).map(|j| j.iv.len())).0,
        ),
    ];
    assert_eq!(jose_platform.sends(), 2, "every measured JOSE request was served from the warm caches");
    for (name, ns) in jose_parts {
        println!("{name}: median {:.1} µs", ns / 1000.0);
    }

    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/results");
    std::fs::create_dir_all(&out).unwrap();
    let result = serde_json::json!({
        "signature_check_median_ns": parts[0].1.round(),
        "payload_decode_median_ns": parts[1].1.round(),
        "claims_median_ns": parts[2].1.round(),
        "serialize_median_ns": parts[3].1.round(),
        "benchmark": "hot_path",
        "body_bytes": body.len(),
        "median_ns_per_request": median.round(),
        "p10_ns": p10.round(),
        "p90_ns": p90.round(),
        "batches": BATCHES,
        "batch_size": BATCH,
        "target_ns": 25_000,
        "sealed": {
            "body_bytes": sealed_body.len(),
            "median_ns_per_request_rustcrypto": sealed_median.round(),
            "cleartext_median_ns_same_run": [median.round(), clear_again.round()],
            "claims_median_ns_sealed": sealed_claims.round(),
            "claims_median_ns_cleartext_same_run": clear_claims.round(),
            "target_ratio_to_cleartext": 1.10,
        },
        "jose": {
            "jwt_body_bytes": jose_made.jwt.len(),
            "jwe_body_bytes": jose_made.jwe.len(),
            "jwt_request_median_ns_rustcrypto": jose_parts[0].1.round(),
            "jwe_request_median_ns_rustcrypto": jose_parts[1].1.round(),
            "jwt_decode_without_crypto_median_ns": jose_parts[2].1.round(),
            "jwe_decode_without_crypto_median_ns": jose_parts[3].1.round(),
        },
    });
    std::fs::write(out.join("hot_path.json"), serde_json::to_string_pretty(&result).unwrap() + "\n").unwrap();
}
