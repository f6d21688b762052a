//! Sealed values, the token vault's format (properties 16 to 21): a value opens where it was
//! sealed and nowhere else, no changed character of it ever opens, rotation keeps old values
//! readable, and the keys' setting is read without panics or echoes.

use proptest::prelude::*;

use crate::support::*;
use zitadel_claims_core::seal::{self, Aad, OpenError, SealingKeys};

/// 1 to 4 keys with distinct ids, as `(id, key)`.
fn key_list() -> BoxedStrategy<Vec<(String, [u8; 32])>> {
    prop::collection::vec(("[A-Za-z0-9_-]{1,64}", any::<[u8; 32]>()), 1..5)
        .prop_filter("distinct ids", |keys| {
            keys.iter().enumerate().all(|(at, (id, _))| keys[..at].iter().all(|(other, _)| other != id))
        })
        .boxed()
}

/// `TOKEN_SEALING_KEY` for `keys`, in their order.
fn setting(keys: &[(String, [u8; 32])]) -> String {
    keys.iter().map(|(id, key)| format!("{id}:{}", STANDARD.encode(key))).collect::<Vec<_>>().join(",")
}

fn parsed(keys: &[(String, [u8; 32])]) -> SealingKeys {
    SealingKeys::parse(&setting(keys)).expect("valid keys")
}

/// Where a value may belong: a user's metadata or a flow's state cookie, any strings.
fn any_aad() -> BoxedStrategy<(u8, String, String)> {
    (0..2u8, any::<String>(), any::<String>()).boxed()
}

fn aad((purpose, a, b): &(u8, String, String)) -> Aad {
    if *purpose == 0 {
        Aad::metadata(a, b)
    } else {
        Aad::connect_state(a)
    }
}

fn sealed(seed: u64, keys: &SealingKeys, aad: &Aad, plaintext: &[u8]) -> String {
    let runtime = FakeRuntime::new(Vec::new()).with_random_seed(seed);
    block_on(seal::seal(&runtime, keys, aad, plaintext)).expect("the fake seals")
}

fn opened(keys: &SealingKeys, aad: &Aad, value: &str) -> Result<Vec<u8>, OpenError> {
    block_on(seal::open(&FakeRuntime::new(Vec::new()), keys, aad, value))
}

/// Unpadded base64url's alphabet.
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

proptest! {
    #![proptest_config(cases(256))]

    /// 16. Any plaintext sealed for any user and metadata key (or any flow) opens to itself there,
    /// under any list of keys; the sealed value is one ASCII line of the documented shape, naming
    /// the first key.
    #[test]
    fn a_value_opens_where_it_was_sealed(
        keys in key_list(),
        place in any_aad(),
        plaintext in prop::collection::vec(any::<u8>(), 0..300),
        seed in any::<u64>(),
    ) {
        let (keys_, aad) = (parsed(&keys), aad(&place));
        let value = sealed(seed, &keys_, &aad, &plaintext);
        prop_assert!(seal::is_sealed(&value));
        prop_assert!(value.bytes().all(|b| b.is_ascii_graphic()), "{}", value);
        let parts: Vec<&str> = value.split(':').collect();
        prop_assert_eq!(parts.len(), 5);
        prop_assert_eq!(parts[2], keys[0].0.as_str());
        prop_assert_eq!(opened(&keys_, &aad, &value), Ok(plaintext));
    }

    /// 17. Changing any one character after the prefix never opens. A change of the IV or the
    /// ciphertext to another base64url character is refused by the tag, or is malformed when it
    /// only touches the last character's unused bits.
    #[test]
    fn a_changed_character_never_opens(
        place in any_aad(),
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        seed in any::<u64>(),
        at in any::<prop::sample::Index>(),
        to in any::<char>(),
        to_base64url in select(BASE64URL.to_vec()),
    ) {
        let keys = parsed(&[("k1".to_string(), [7; 32]), ("k2".to_string(), [8; 32])]);
        let aad = aad(&place);
        let value = sealed(seed, &keys, &aad, &plaintext);
        let at = seal::PREFIX.len() + at.index(value.len() - seal::PREFIX.len());
        let original = value.as_bytes()[at] as char;
        for to in [to, to_base64url as char] {
            if to == original {
                continue;
            }
            let changed = format!("{}{to}{}", &value[..at], &value[at + 1..]);
            let result = opened(&keys, &aad, &changed);
            prop_assert!(result.is_err(), "{:?} at {} opened", to, at);
            let iv_starts = value.match_indices(':').nth(2).unwrap().0 + 1;
            if at >= iv_starts && original != ':' && BASE64URL.contains(&(to as u8)) && to.is_ascii() {
                prop_assert!(
                    matches!(result, Err(OpenError::Refused) | Err(OpenError::Malformed)),
                    "{:?} at {}: {:?}", to, at, result
                );
            }
        }
    }

    /// 18. A value never opens in another place: another user, another metadata key, the same
    /// characters split otherwise between the two, or a state cookie for a metadata value and the
    /// other way round.
    #[test]
    fn a_value_never_opens_in_another_place(
        sealed_for in any_aad(),
        opened_for in any_aad(),
        joined in any::<String>(),
        split in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
        seed in any::<u64>(),
    ) {
        let keys = parsed(&[("k1".to_string(), [7; 32])]);
        let (here, there) = (aad(&sealed_for), aad(&opened_for));
        let value = sealed(seed, &keys, &here, b"token");
        if here != there {
            prop_assert_eq!(opened(&keys, &there, &value), Err(OpenError::Refused));
        }
        // "ab" + "c" is not "a" + "bc".
        let bounds: Vec<usize> = (0..=joined.len()).filter(|&i| joined.is_char_boundary(i)).collect();
        let (i, j) = (bounds[split.0.index(bounds.len())], bounds[split.1.index(bounds.len())]);
        let value = sealed(seed, &keys, &Aad::metadata(&joined[..i], &joined[i..]), b"token");
        let other = Aad::metadata(&joined[..j], &joined[j..]);
        prop_assert_eq!(opened(&keys, &other, &value).is_ok(), i == j);
        prop_assert_eq!(opened(&keys, &Aad::connect_state(&joined), &value), Err(OpenError::Refused));
    }

    /// 19. Rotation: a value sealed while any key of the list was first still opens once newer
    /// keys are put before it, and a value sealed by the new first key opens too.
    #[test]
    fn a_value_sealed_by_an_old_key_opens_after_rotation(
        keys in key_list(),
        sealing in any::<prop::sample::Index>(),
        place in any_aad(),
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        seed in any::<u64>(),
    ) {
        let (all, aad) = (parsed(&keys), aad(&place));
        let sealing = sealing.index(keys.len());
        let before = sealed(seed, &parsed(&keys[sealing..]), &aad, &plaintext);
        prop_assert_eq!(opened(&all, &aad, &before), Ok(plaintext.clone()));
        let after = sealed(seed, &all, &aad, &plaintext);
        prop_assert!(after.starts_with(&format!("sealed:v1:{}:", keys[0].0)), "{}", after);
        prop_assert_eq!(opened(&all, &aad, &after), Ok(plaintext));
    }

    /// 20. A value whose key id is not among the keys is unknown; a key of the same id but other
    /// bytes refuses it.
    #[test]
    fn a_value_under_an_unknown_key_is_refused(
        keys in key_list(),
        place in any_aad(),
        other_bytes in any::<[u8; 32]>(),
        seed in any::<u64>(),
    ) {
        let aad = aad(&place);
        let (first, rest) = keys.split_first().unwrap();
        let value = sealed(seed, &parsed(std::slice::from_ref(first)), &aad, b"token");
        if !rest.is_empty() {
            prop_assert_eq!(opened(&parsed(rest), &aad, &value), Err(OpenError::UnknownKey));
        }
        if other_bytes != first.1 {
            let same_id = parsed(&[(first.0.clone(), other_bytes)]);
            prop_assert_eq!(opened(&same_id, &aad, &value), Err(OpenError::Refused));
        }
    }

    /// 21. Reading `TOKEN_SEALING_KEY` never panics; valid keys in any base64 spelling, with blanks
    /// and empty items, read as themselves in order; an error never repeats a key's base64.
    #[test]
    fn the_keys_setting_reads_without_panics_or_echoes(
        text in any::<String>(),
        keys in key_list(),
        spelling in prop::collection::vec(0..4usize, 4),
        blanks in prop::collection::vec(select(vec!["", " ", "\t", " , "]), 8),
        broken in any::<prop::sample::Index>(),
        cut in 1..43usize,
    ) {
        let _ = SealingKeys::parse(&text);
        let encode = |key: &[u8; 32], at: usize| match spelling[at % 4] {
            0 => STANDARD.encode(key),
            1 => STANDARD.encode(key).trim_end_matches('=').to_string(),
            2 => URL_SAFE_NO_PAD.encode(key),
            _ => format!("{}=", URL_SAFE_NO_PAD.encode(key)),
        };
        let items: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(at, (id, key))| format!("{}{id}:{}{}", blanks[2 * at], encode(key, at), blanks[2 * at + 1]))
            .collect();
        let read = SealingKeys::parse(&items.join(",")).expect("valid keys");
        prop_assert!(read.ids().eq(keys.iter().map(|(id, _)| id.as_str())));
        prop_assert_eq!(&read, &parsed(&keys));
        // One key cut short: refused, and by its position, without any key's text.
        let broken = broken.index(keys.len());
        let mut items: Vec<String> = keys.iter().map(|(id, key)| format!("{id}:{}", STANDARD.encode(key))).collect();
        let (id, key) = &keys[broken];
        items[broken] = format!("{id}:{}", &STANDARD.encode(key)[..cut]);
        let error = SealingKeys::parse(&items.join(",")).expect_err("a key cut short");
        let nth = ["1st", "2nd", "3rd", "4th"][broken];
        prop_assert!(error.starts_with(&format!("the {nth} key ")), "{}", error);
        for (_, key) in &keys {
            let text = STANDARD.encode(key);
            prop_assert!(!error.contains(&text[..8]), "{}", error);
        }
    }
}
