//! Whole calls through `Target::handle` (properties 9 to 11).

use proptest::prelude::*;

use crate::support::*;

proptest! {
    #![proptest_config(cases(256))]

    /// 9. A call with every claim off, for any body and any header: never a panic, never 5xx.
    #[test]
    fn handle_call_with_claims_off(body in any_body(), signed in signed()) {
        check_call(&Target::new(claims_off()), &unreachable_upstream(), &signed, &body).ok();
    }

    /// 10. A call with every claim on (permissions, flat roles, groups, the Microsoft token with
    /// refresh) while ZITADEL and Microsoft are unreachable: never a panic, never 5xx.
    #[test]
    fn handle_call_with_claims_on_and_no_upstream(
        body in any_body(),
        signed in signed(),
        client_credentials in any::<bool>(),
        stale in any::<bool>(),
    ) {
        let config = claims_on(client_credentials, stale);
        check_call(&Target::new(config), &unreachable_upstream(), &signed, &body).ok();
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// 11. Every claim on, and ZITADEL, Microsoft and the shared cache answer anything (any
    /// status, any body, extreme token lifetimes, any Retry-After, junk in KV): still never a
    /// panic and never 5xx, for two calls in a row on one isolate (the second meets what the
    /// first cached).
    #[test]
    fn handle_call_with_hostile_upstream(
        first in claims_payload(),
        second in claims_payload(),
        replies in prop::collection::vec(upstream_reply(), 0..8),
        kv in kv_junk(),
        client_credentials in any::<bool>(),
        stale in any::<bool>(),
    ) {
        let config = claims_on(client_credentials, stale);
        let target = Target::new(config);
        let runtime = answering(replies, kv);
        let valid = Signed::Valid { offset: 0, old_key: false };
        check_call(&target, &runtime, &valid, first.to_string().as_bytes()).ok();
        check_call(&target, &runtime, &valid, second.to_string().as_bytes()).ok();
    }
}
