//! The `ZITADEL-Signature` header: parsing and verifying (properties 1 to 6b).

use proptest::prelude::*;

use crate::support::*;

proptest! {
    #![proptest_config(cases(256))]

    /// 1. Parsing any header never panics; what it accepts is well-formed.
    #[test]
    fn parse_never_panics(header in any_header()) {
        if let Ok(parsed) = signature::parse(&header) {
            prop_assert!(header.contains(parsed.timestamp));
            prop_assert!(parsed.timestamp.parse::<i128>().is_ok(), "t={:?}", parsed.timestamp);
            prop_assert!(!parsed.signatures.is_empty());
            let lower = header.to_ascii_lowercase();
            for digest in &parsed.signatures {
                prop_assert!(lower.contains(&hex::encode(digest)));
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// 2. Verifying never panics, whatever the header, body, keys, clock and tolerance; without
    /// keys nothing verifies.
    #[test]
    fn verify_never_panics(
        header in prop::option::weighted(0.95, any_header()),
        body in prop::collection::vec(any::<u8>(), 0..256),
        keys in prop::collection::vec(".{0,20}", 0..4),
        now in any_now(),
        tolerance in any_tolerance(),
    ) {
        let keys = signing_keys(&keys);
        let result = verify(header.as_deref(), &body, &keys, now, tolerance);
        if keys.is_empty() {
            prop_assert!(result.is_err());
        }
        if let Err(e) = result {
            prop_assert!(!e.message().is_empty());
        }
    }

    /// 3. A genuine signature at any timestamp, checked at any time (i64 extremes included), never
    /// panics, and is accepted exactly when it is at most `tolerance` old and at most 60 s ahead
    /// (worked out here in i128, without the saturation the worker uses).
    #[test]
    fn genuine_signature_at_any_time(
        t in any_now(),
        now in any_now(),
        tolerance in prop_oneof![0u64..=7200, (0u64..=(i64::MAX as u64 - 1))],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let keys = [SigningKey::new(KEY)];
        let header = signature::header_for(t, &body, &keys);
        let result = verify(Some(&header), &body, &keys, now, tolerance);
        let age = i128::from(now) - i128::from(t);
        let clamp = |v: i128| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        let expected = if age > i128::from(tolerance) {
            Err(SignatureError::Stale { age_seconds: clamp(age), tolerance_seconds: tolerance })
        } else if age < -i128::from(MAX_FUTURE_SECONDS) {
            Err(SignatureError::Future { ahead_seconds: clamp(-age) })
        } else {
            Ok(())
        };
        prop_assert_eq!(result, expected, "t={} now={} tolerance={}", t, now, tolerance);
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// 4. A body signed the way ZITADEL signs it (the header computed here, with the hmac crate)
    /// verifies at any time within the window, under all the keys together and under each one
    /// alone; and `header_for` makes that same header.
    #[test]
    fn signed_body_always_verifies(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        keys in keys(),
        t in 0i64..=10_000_000_000,
        tolerance in 1u64..=3600,
        skew in any::<prop::sample::Index>(),
    ) {
        let header = zitadel_header(t, &body, &keys);
        let keys = signing_keys(&keys);
        prop_assert_eq!(verify(Some(&header), &body, &keys, t, tolerance), Ok(()));
        // Anywhere from 60 s before t to `tolerance` after it.
        let now = t - MAX_FUTURE_SECONDS + skew.index(tolerance as usize + MAX_FUTURE_SECONDS as usize + 1) as i64;
        prop_assert_eq!(verify(Some(&header), &body, &keys, now, tolerance), Ok(()));
        for key in &keys {
            prop_assert_eq!(verify(Some(&header), &body, std::slice::from_ref(key), t, tolerance), Ok(()));
        }
        prop_assert_eq!(signature::header_for(t, &body, &keys), header);
    }

    /// 5. Flipping any bit of the body, or adding or removing a byte, never verifies.
    #[test]
    fn changed_body_never_verifies(
        body in prop::collection::vec(any::<u8>(), 1..2048),
        keys in keys(),
        t in 0i64..=10_000_000_000,
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        extra in any::<u8>(),
    ) {
        let keys = signing_keys(&keys);
        let header = signature::header_for(t, &body, &keys);
        let i = at.index(body.len());
        let mut flipped = body.clone();
        flipped[i] ^= 1 << bit;
        prop_assert_eq!(verify(Some(&header), &flipped, &keys, t, 300), Err(SignatureError::Invalid));
        let mut longer = body.clone();
        longer.insert(i, extra);
        prop_assert_eq!(verify(Some(&header), &longer, &keys, t, 300), Err(SignatureError::Invalid));
        let mut shorter = body.clone();
        shorter.remove(i);
        prop_assert_eq!(verify(Some(&header), &shorter, &keys, t, 300), Err(SignatureError::Invalid));
    }

    /// 6. Changing any one hex digit of a key's digest to another hex digit (either case: the
    /// parser takes both; the same digit in the other case is the same digest, so excluded)
    /// never verifies under that key: the signature is invalid. Changing the timestamp never
    /// verifies either.
    #[test]
    fn changed_digest_or_timestamp_never_verifies(
        body in prop::collection::vec(any::<u8>(), 0..256),
        keys in keys(),
        which in any::<prop::sample::Index>(),
        at in 0usize..64,
        pick in any::<prop::sample::Index>(),
        t in 0i64..=10_000_000_000,
        dt in prop_oneof![-1000i64..=-1, 1i64..=1000],
    ) {
        let header = zitadel_header(t, &body, &keys);
        let keys = signing_keys(&keys);
        let k = which.index(keys.len());
        // Another key equal to key k would make its own digest match.
        prop_assume!(keys.iter().filter(|other| **other == keys[k]).count() == 1);
        let key = std::slice::from_ref(&keys[k]);

        let tampered = with_digest_char(&header, k, at, |digit| {
            let others: Vec<char> = HEX_DIGITS.chars().filter(|c| c.to_ascii_lowercase() != digit).collect();
            others[pick.index(others.len())]
        });
        prop_assert_eq!(
            verify(Some(&tampered), &body, key, t, 300),
            Err(SignatureError::Invalid),
            "{:?}", tampered
        );

        let moved = header.replacen(&format!("t={t}"), &format!("t={}", t + dt), 1);
        prop_assert_eq!(verify(Some(&moved), &body, &keys, t + dt, 300), Err(SignatureError::Invalid));
    }
}

proptest! {
    #![proptest_config(cases(64))]

    /// 6b. Changing one character of a key's digest to a character that is not a hex digit (nor
    /// `,` or `=`, which split the part differently) makes that entry unreadable: it is skipped,
    /// so the header is invalid when other keys' digests remain and has no signature otherwise.
    #[test]
    fn digest_with_a_non_hex_character_is_skipped(
        body in prop::collection::vec(any::<u8>(), 0..64),
        keys in keys(),
        which in any::<prop::sample::Index>(),
        at in 0usize..64,
        replacement in any::<char>().prop_filter("not a hex digit, comma or equals sign", |c| {
            !c.is_ascii_hexdigit() && *c != ',' && *c != '='
        }),
        t in 0i64..=10_000_000_000,
    ) {
        let header = zitadel_header(t, &body, &keys);
        let keys = signing_keys(&keys);
        let k = which.index(keys.len());
        prop_assume!(keys.iter().filter(|other| **other == keys[k]).count() == 1);
        let tampered = with_digest_char(&header, k, at, |_| replacement);
        let expected =
            if keys.len() > 1 { SignatureError::Invalid } else { SignatureError::Malformed(Malformed::NoSignature) };
        prop_assert_eq!(
            verify(Some(&tampered), &body, &keys[k..=k], t, 300),
            Err(expected),
            "{:?}", tampered
        );
    }
}

/// The exclusion in property 6, checked once: hex digits in upper case are the same digest
/// (README: a `v1` in upper-case hex is accepted).
#[test]
fn upper_case_digest_is_the_same_digest() {
    let keys = [SigningKey::new(KEY)];
    let header = signature::header_for(NOW, b"{}", &keys);
    let upper = format!("t={NOW},{}", header.split(',').nth(1).unwrap().to_uppercase().replace("V1=", "v1="));
    assert_eq!(verify(Some(&upper), b"{}", &keys, NOW, 300), Ok(()));
    let uppercase_name = header.replace("v1=", "V1=");
    assert_eq!(
        verify(Some(&uppercase_name), b"{}", &keys, NOW, 300),
        Err(SignatureError::Malformed(Malformed::NoSignature)),
        "entry names are case-sensitive"
    );
}
