use super::*;
use futures::executor::block_on;

const BODY: &[u8] = br#"{"function":"function/preaccesstoken"}"#;
const T: i64 = 1_700_000_000;
const VECTOR_1: &str = "t=1700000000,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";

fn key(k: &str) -> Vec<SigningKey> {
    vec![SigningKey::new(k)]
}

fn check(header: &str, body: &[u8], keys: &[SigningKey], now: i64) -> Result<(), SignatureError> {
    block_on(verify(&RustMac, Some(header), body, keys, now, 300))
}

// Published vectors (docs/zitadel-contract.md §2), asserted literally.

#[test]
fn vector_test_signing_key_matches_zitadel() {
    assert_eq!(header_for(T, BODY, &key("test-signing-key")), VECTOR_1);
    assert_eq!(check(VECTOR_1, BODY, &key("test-signing-key"), T), Ok(()));
}

#[test]
fn vector_empty_body_at_time_zero() {
    let header = "t=0,v1=6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7";
    assert_eq!(header_for(0, b"", &key("k")), header);
    assert_eq!(check(header, b"", &key("k"), 0), Ok(()));
}

#[test]
fn vector_two_keys_gives_two_v1_entries_each_accepted() {
    let header = "t=1700000000,v1=3d7d9144ece290e9576d8cab02a7d8ea3bb1ea2cfbdd18c8b0ccc9e04ab8bd75,v1=c6fe7bea6c417dd2118ff4d9b4994515dcc8a602e09e730ccda35be00b911b3e";
    let both = [SigningKey::new("old-key"), SigningKey::new("new-key")];
    assert_eq!(header_for(T, BODY, &both), header);
    assert_eq!(check(header, BODY, &key("old-key"), T), Ok(()));
    assert_eq!(check(header, BODY, &key("new-key"), T), Ok(()));
    assert_eq!(check(header, BODY, &key("other-key"), T), Err(SignatureError::Invalid));
}

#[test]
fn any_configured_key_is_accepted_during_rotation() {
    let configured = [SigningKey::new("new-key"), SigningKey::new("test-signing-key")];
    assert_eq!(check(VECTOR_1, BODY, &configured, T), Ok(()));
}

/// A MAC that keys every MAC with `key_used`, whatever key it is asked for.
struct MacUnder {
    key_used: &'static [u8],
}

impl Mac for MacUnder {
    async fn hmac_sha256(&self, _: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        hmac_sha256(self.key_used, parts)
    }
}

#[test]
fn each_mac_comes_from_the_mac_given() {
    let on =
        |mac: &MacUnder, header: &str, keys: &[SigningKey]| block_on(verify(mac, Some(header), BODY, keys, T, 300));
    let honest = MacUnder { key_used: b"test-signing-key" };
    assert_eq!(on(&honest, VECTOR_1, &key("test-signing-key")), Ok(()));
    assert_eq!(on(&honest, VECTOR_1, &key("test-signing-key")), check(VECTOR_1, BODY, &key("test-signing-key"), T));
    // The MAC decides, not the key list: a header made with its key passes, the published vector
    // does not.
    let other = MacUnder { key_used: b"runtime-key" };
    let made_with_other = header_for(T, BODY, &key("runtime-key"));
    assert_eq!(on(&other, &made_with_other, &key("test-signing-key")), Ok(()));
    assert_eq!(on(&other, VECTOR_1, &key("test-signing-key")), Err(SignatureError::Invalid));
    // The clock is judged after the MAC.
    assert_eq!(
        block_on(verify(&honest, Some(VECTOR_1), BODY, &key("k"), T + 301, 300)),
        Err(SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 })
    );
}

// Must NOT validate.

#[test]
fn hmac_of_body_alone_is_refused() {
    // hex(HMAC(key, body)): what a receiver following the docs instead of the code computes.
    let mut mac = HmacSha256::new_from_slice(b"test-signing-key").unwrap();
    mac.update(BODY);
    let body_only = hex::encode(mac.finalize().into_bytes());
    assert!(body_only.starts_with("90af6cd7") && body_only.ends_with("be3"));
    assert_eq!(
        check(&format!("t={T},v1={body_only}"), BODY, &key("test-signing-key"), T),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        check(&body_only, BODY, &key("test-signing-key"), T),
        Err(SignatureError::Malformed(Malformed::NotNameValue))
    );
}

#[test]
fn timestamp_older_than_tolerance_is_stale() {
    let k = key("test-signing-key");
    assert_eq!(check(VECTOR_1, BODY, &k, T + 300), Ok(()));
    assert_eq!(
        check(VECTOR_1, BODY, &k, T + 301),
        Err(SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 })
    );
    assert_eq!(block_on(verify(&RustMac, Some(VECTOR_1), BODY, &k, T + 301, 301)), Ok(()));
}

#[test]
fn timestamp_from_the_future_is_bounded() {
    let k = key("test-signing-key");
    assert_eq!(check(VECTOR_1, BODY, &k, T - 60), Ok(()));
    assert_eq!(check(VECTOR_1, BODY, &k, T - 61), Err(SignatureError::Future { ahead_seconds: 61 }));
}

#[test]
fn a_body_changed_by_one_byte_is_refused() {
    let mut body = BODY.to_vec();
    body[5] ^= 1;
    assert_eq!(check(VECTOR_1, &body, &key("test-signing-key"), T), Err(SignatureError::Invalid));
    let mut longer = BODY.to_vec();
    longer.push(b' ');
    assert_eq!(check(VECTOR_1, &longer, &key("test-signing-key"), T), Err(SignatureError::Invalid));
}

#[test]
fn the_clock_is_checked_before_the_mac() {
    // A forged signature with an old timestamp is `stale`: the window is judged before the body is
    // read, so an old call costs no hash (issue 23).
    let forged = "t=1,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
    assert!(matches!(check(forged, BODY, &key("test-signing-key"), T), Err(SignatureError::Stale { .. })));
    let forged_now = format!("t={T},v1={}", "5b".repeat(32));
    assert_eq!(check(&forged_now, BODY, &key("test-signing-key"), T), Err(SignatureError::Invalid));
}

#[test]
fn the_header_and_its_window_are_judged_without_the_body() {
    assert_eq!(check_header(None, T, 300).err(), Some(SignatureError::Missing));
    assert_eq!(check_header(Some("t=x,v1=00"), T, 300).err(), Some(SignatureError::Malformed(Malformed::BadTimestamp)));
    let stale = format!("t={},v1={}", T - 301, "00".repeat(32));
    assert_eq!(
        check_header(Some(&stale), T, 300).err(),
        Some(SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 })
    );
    let ahead = format!("t={},v1={}", T + 61, "00".repeat(32));
    assert_eq!(check_header(Some(&ahead), T, 300).err(), Some(SignatureError::Future { ahead_seconds: 61 }));
    let fresh = format!("t={T},v1={}", "00".repeat(32));
    assert!(check_header(Some(&fresh), T, 300).is_ok());
}

#[test]
fn header_without_timestamp_is_malformed() {
    let header = "v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
    assert_eq!(
        check(header, BODY, &key("test-signing-key"), T),
        Err(SignatureError::Malformed(Malformed::MissingTimestamp))
    );
}

#[test]
fn non_numeric_timestamp_is_malformed() {
    for t in ["abc", "", "+1700000000", "01700000000", "1.5", "-0", "17000000000000000000000"] {
        let header = format!("t={t},v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677");
        assert_eq!(
            check(&header, BODY, &key("test-signing-key"), T),
            Err(SignatureError::Malformed(Malformed::BadTimestamp)),
            "t={t}"
        );
    }
}

#[test]
fn non_hex_v1_only_is_malformed() {
    for header in ["t=1700000000,v1=zz", "t=1700000000,v1=", "t=1700000000,v1=5bd3"] {
        assert_eq!(
            check(header, BODY, &key("test-signing-key"), T),
            Err(SignatureError::Malformed(Malformed::NoSignature)),
            "{header}"
        );
    }
}

#[test]
fn empty_or_absent_header_is_missing() {
    let k = key("test-signing-key");
    assert_eq!(check("", BODY, &k, T), Err(SignatureError::Missing));
    assert_eq!(check("  ", BODY, &k, T), Err(SignatureError::Missing));
    assert_eq!(block_on(verify(&RustMac, None, BODY, &k, T, 300)), Err(SignatureError::Missing));
}

// Header parsing edge cases.

#[test]
fn spaces_around_parts_names_and_values_are_tolerated() {
    let spaced = " t = 1700000000 ,  v1 = 5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677 ";
    assert_eq!(check(spaced, BODY, &key("test-signing-key"), T), Ok(()));
}

#[test]
fn empty_parts_are_ignored() {
    let header = ",t=1700000000,,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677,";
    assert_eq!(check(header, BODY, &key("test-signing-key"), T), Ok(()));
}

#[test]
fn upper_case_hex_digest_is_accepted() {
    let upper = VECTOR_1.replace(
        "5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677",
        "5BD3682C5CC49698CACEE157693304C40E4A986C7873A817E2A5D7E1F69E4677",
    );
    assert_eq!(check(&upper, BODY, &key("test-signing-key"), T), Ok(()));
}

#[test]
fn part_names_are_case_sensitive_as_in_zitadel() {
    // `T` and `V1` are unknown names to ZITADEL's helper and ignored; what remains has no t.
    let upper = "T=1700000000,V1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
    assert_eq!(
        check(upper, BODY, &key("test-signing-key"), T),
        Err(SignatureError::Malformed(Malformed::MissingTimestamp))
    );
    let upper_v1 = "t=1700000000,V1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
    assert_eq!(
        check(upper_v1, BODY, &key("test-signing-key"), T),
        Err(SignatureError::Malformed(Malformed::NoSignature))
    );
}

#[test]
fn repeated_timestamp_is_malformed() {
    let header = "t=1700000000,t=1700000000,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
    assert_eq!(
        check(header, BODY, &key("test-signing-key"), T),
        Err(SignatureError::Malformed(Malformed::RepeatedTimestamp))
    );
}

#[test]
fn part_with_two_equals_signs_or_none_is_malformed() {
    for header in [
        "t=1700000000,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677=",
        "t=1700000000,v1",
        "t==1700000000,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677",
    ] {
        assert_eq!(
            check(header, BODY, &key("test-signing-key"), T),
            Err(SignatureError::Malformed(Malformed::NotNameValue)),
            "{header}"
        );
    }
}

#[test]
fn unknown_schemes_are_ignored() {
    let header = "t=1700000000,v0=abc,v2=def,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
    assert_eq!(check(header, BODY, &key("test-signing-key"), T), Ok(()));
}

#[test]
fn a_hundred_v1_entries_with_the_right_one_last_is_accepted() {
    let mut header = String::from("t=1700000000");
    for i in 0..99 {
        header.push_str(&format!(",v1={:064x}", i));
    }
    header.push_str(",v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677");
    assert_eq!(parse(&header).unwrap().signatures.len(), 100);
    assert_eq!(check(&header, BODY, &key("test-signing-key"), T), Ok(()));
    let wrong_only = header.rsplit_once(',').unwrap().0;
    assert_eq!(check(wrong_only, BODY, &key("test-signing-key"), T), Err(SignatureError::Invalid));
}

#[test]
fn non_hex_entries_are_skipped_when_a_good_one_follows() {
    let header = "t=1700000000,v1=zz,v1=5bd3682c5cc49698cacee157693304c40e4a986c7873a817e2a5d7e1f69e4677";
    assert_eq!(check(header, BODY, &key("test-signing-key"), T), Ok(()));
}

#[test]
fn key_bytes_are_the_utf8_string_not_base64_decoded() {
    // "dGVzdA==" is base64 of "test"; ZITADEL uses the string's own bytes as the key. Both
    // digests computed independently:
    // printf '%s' '1700000000.{"function":"function/preaccesstoken"}' | openssl dgst -sha256 -hmac 'dGVzdA=='
    let literal = "t=1700000000,v1=7de270d7383c285254ae69658c8dcf0c87f26aec4c2c5c42dae8afdd45abd889";
    // ... and the same with -hmac 'test' (what a base64-decoding receiver would key with).
    let decoded = "t=1700000000,v1=adb216334f11a9ea4d5ea09c1cded3e78de857a35dc4d3be5d395252c16bd962";
    assert_eq!(header_for(T, BODY, &key("dGVzdA==")), literal);
    assert_eq!(SigningKey::new("dGVzdA==").as_bytes(), b"dGVzdA==");
    assert_eq!(check(literal, BODY, &key("dGVzdA=="), T), Ok(()));
    assert_eq!(check(decoded, BODY, &key("dGVzdA=="), T), Err(SignatureError::Invalid));
    assert_eq!(check(literal, BODY, &key("test"), T), Err(SignatureError::Invalid));
}

#[test]
fn messages_never_contain_the_header_or_key() {
    let errors = [
        SignatureError::Missing,
        SignatureError::Malformed(Malformed::NoSignature),
        SignatureError::Invalid,
        SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 },
        SignatureError::Future { ahead_seconds: 61 },
    ];
    for e in errors {
        let m = e.message();
        assert!(!m.contains("5bd3682c") && !m.contains("test-signing-key"), "{m}");
    }
    assert!(SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 }.message().contains("301 s old"));
    assert!(SignatureError::Stale { age_seconds: 301, tolerance_seconds: 300 }.message().contains("300 s"));
    assert_eq!(format!("{:?}", SigningKey::new("test-signing-key")), "SigningKey(..)");
}
