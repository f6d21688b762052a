//! Whether the Microsoft account that just signed in is the one linked to the user in ZITADEL, so
//! the worker never stores one person's Microsoft tokens for another's ZITADEL user.
//!
//! What ZITADEL stores as the link's `userId` (`linked_user_id` here) depends on the identity
//! provider's template, in ZITADEL's source:
//! - the Microsoft (Azure AD) template (`internal/idp/providers/azuread/azuread.go`, `User.GetID`)
//!   stores Microsoft Graph's `/me` `id`, for every kind of account alike. For a work or school
//!   account that is the ID token's `oid`, a GUID. For a personal account (MSA) it is a 16-hex-digit
//!   id (the CID), and the ID token's `oid` is `00000000-0000-0000-` followed by those 16 digits:
//!   widely observed, not found in Microsoft's documentation, so it is matched only that way (the
//!   first 16 hex digits of `oid` must be zero);
//! - the generic OIDC template (`internal/idp/providers/oidc/session.go`, `User.GetID`) stores the
//!   ID token's `sub`. Microsoft's `sub` is pairwise, one per application, so it matches only when
//!   the worker signs in with the same Entra app registration as ZITADEL's identity provider.
//!
//! Either way the worker must sign in against the same tenant (`common`, `organizations` or the
//! tenant ID) as ZITADEL's provider: a guest account has a different `oid` in each tenant.

/// True if the account with this `oid` and `sub` (from Microsoft's ID token) is the one ZITADEL
/// linked as `linked_user_id`. Any of the rules matches:
/// - `linked_user_id` is a GUID (`8-4-4-4-12` hex digits) equal to `oid`, case-insensitively;
/// - `linked_user_id` is 1 to 16 hex digits and `oid` is `00000000-0000-0000-xxxx-xxxxxxxxxxxx`
///   with the same 64-bit number in its last 16 digits, case-insensitively. A shorter id is read as
///   left-padded with zeros: it is the same number written without its leading zeros (a CID is a
///   64-bit number), and since the first half of `oid` must be zero it still names one account;
/// - `linked_user_id` equals `sub` exactly (case-sensitive, as OIDC compares `sub`).
///
/// Empty values never match; nor does an `oid` that is not a GUID, or the nil GUID.
pub fn account_matches(linked_user_id: &str, oid: Option<&str>, sub: Option<&str>) -> bool {
    if linked_user_id.is_empty() {
        return false;
    }
    let by_oid = oid.and_then(guid).filter(|&oid| oid != 0).is_some_and(|oid| {
        if let Some(linked) = guid(linked_user_id) {
            linked == oid
        } else if let Some(linked) = hex_u64(linked_user_id) {
            oid >> 64 == 0 && oid as u64 == linked
        } else {
            false
        }
    });
    let by_sub = sub == Some(linked_user_id); // never empty: `linked_user_id` is not
    by_oid || by_sub
}

/// A GUID in its `8-4-4-4-12` form (either case) as a 128-bit number.
fn guid(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    let dashes_in_place = bytes.len() == 36 && [8, 13, 18, 23].iter().all(|&i| bytes[i] == b'-');
    let digits: String = text.chars().filter(|&c| c != '-').collect();
    if !dashes_in_place || digits.len() != 32 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(&digits, 16).ok()
}

/// 1 to 16 hex digits (either case) as a 64-bit number; nothing else (`from_str_radix` alone
/// would also take a leading `+`).
fn hex_u64(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORK_OID: &str = "7c1f5b2a-3d4e-4f60-8a9b-0c1d2e3f4a5b";
    const MSA_OID: &str = "00000000-0000-0000-fde9-26f844473904";
    const SUB: &str = "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ";

    #[test]
    fn the_azure_ad_template_links_a_work_account_by_its_oid_in_either_case() {
        assert!(account_matches(WORK_OID, Some(WORK_OID), None));
        assert!(account_matches(&WORK_OID.to_uppercase(), Some(WORK_OID), Some(SUB)));
        assert!(account_matches(WORK_OID, Some(&WORK_OID.to_uppercase()), None));
    }

    #[test]
    fn a_different_work_account_does_not_match() {
        assert!(!account_matches(WORK_OID, Some("7c1f5b2a-3d4e-4f60-8a9b-0c1d2e3f4a5c"), Some(SUB)));
        assert!(!account_matches(WORK_OID, None, Some(SUB)));
        // The same digits without dashes, or with dashes elsewhere, are not the GUID form.
        assert!(!account_matches("7c1f5b2a3d4e4f608a9b0c1d2e3f4a5b", Some(WORK_OID), None));
        assert!(!account_matches(WORK_OID, Some("7c1f5b2a3-d4e-4f60-8a9b-0c1d2e3f4a5b"), None));
    }

    #[test]
    fn the_azure_ad_template_links_a_personal_account_by_the_last_16_hex_digits_of_its_oid() {
        assert!(account_matches("fde926f844473904", Some(MSA_OID), None));
        assert!(account_matches("FDE926F844473904", Some(MSA_OID), None));
        assert!(account_matches("fde926f844473904", Some(&MSA_OID.to_uppercase()), None));
    }

    #[test]
    fn a_shorter_personal_id_is_read_as_left_padded_with_zeros() {
        assert!(account_matches("e926f844473904", Some("00000000-0000-0000-00e9-26f844473904"), None));
        assert!(account_matches("0e926f844473904", Some("00000000-0000-0000-00e9-26f844473904"), None));
        assert!(!account_matches("e926f844473904", Some(MSA_OID), None));
    }

    #[test]
    fn a_work_oid_that_only_shares_the_last_16_digits_does_not_match_a_personal_id() {
        assert!(!account_matches("fde926f844473904", Some("12345678-0000-0000-fde9-26f844473904"), None));
        assert!(!account_matches("fde926f844473904", Some("00000000-0000-0001-fde9-26f844473904"), None));
        assert!(!account_matches("fde926f844473904", Some("00000000-0000-0000-fde9-26f844473905"), None));
    }

    #[test]
    fn a_personal_id_is_hex_digits_and_nothing_else() {
        for linked in ["fde926f84447390g", "0fde926f844473904", " fde926f844473904", "fde926f8-44473904"] {
            assert!(!account_matches(linked, Some(MSA_OID), None), "{linked}");
        }
        // `u64::from_str_radix` alone would read `+de9…` as `de9…`.
        assert!(account_matches("de926f844473904", Some("00000000-0000-0000-0de9-26f844473904"), None));
        assert!(!account_matches("+de926f844473904", Some("00000000-0000-0000-0de9-26f844473904"), None));
    }

    #[test]
    fn the_generic_oidc_template_links_by_sub_exactly() {
        assert!(account_matches(SUB, Some(WORK_OID), Some(SUB)));
        assert!(account_matches(SUB, None, Some(SUB)));
        assert!(!account_matches(SUB, None, Some(&SUB.to_lowercase())));
        assert!(!account_matches(SUB, Some(WORK_OID), Some("AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaR")));
    }

    #[test]
    fn empty_values_never_match() {
        assert!(!account_matches("", Some(""), Some("")));
        assert!(!account_matches("", Some(WORK_OID), Some(SUB)));
        assert!(!account_matches(WORK_OID, Some(""), Some("")));
        assert!(!account_matches("0", Some(""), None));
    }

    #[test]
    fn an_oid_that_is_not_a_guid_never_matches() {
        assert!(!account_matches("fde926f844473904", Some("fde926f844473904"), None));
        assert!(!account_matches("0", Some("0"), None));
        assert!(!account_matches("0", Some("00000000-0000-0000-0000-000000000000"), None));
        let nil = "00000000-0000-0000-0000-000000000000";
        assert!(!account_matches(nil, Some(nil), None));
        assert!(!account_matches(WORK_OID, Some(&format!("{WORK_OID}0")), None));
    }
}
