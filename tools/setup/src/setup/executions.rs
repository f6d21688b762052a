//! The executions that call the target: the conditions it is bound to (`preaccesstoken`, and on
//! request `preuserinfo`, `presamlresponse` and the response of `RetrieveIdentityProviderIntent`),
//! each keeping the targets already bound there, before ours.

use std::io::Write;

use crate::api::{merge_targets, Condition, Zitadel};
use crate::error::Error;
use crate::types::Options;

/// The API method whose response carries the identity provider's tokens after an external login.
const IDP_INTENT_METHOD: &str = "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent";

/// The conditions the target is bound to.
fn conditions(options: &Options) -> Vec<Condition> {
    let mut conditions = vec![Condition::Function("preaccesstoken")];
    if options.userinfo {
        conditions.push(Condition::Function("preuserinfo"));
    }
    if options.saml {
        conditions.push(Condition::Function("presamlresponse"));
    }
    if options.capture_idp_tokens {
        conditions.push(Condition::Response(IDP_INTENT_METHOD));
    }
    conditions
}

/// Binds the target `id` to each condition that does not call it yet.
pub(super) fn bind(options: &Options, api: &mut Zitadel, id: &str, out: &mut dyn Write) -> Result<(), Error> {
    for condition in conditions(options) {
        let bound = api.execution_targets(condition)?;
        match merge_targets(&bound, id) {
            None => {
                say!(out, "The {} already calls the target; left as is", condition.describe());
            }
            Some(targets) => {
                api.set_execution(condition, &targets)?;
                say!(
                    out,
                    "Bound the target to the {} (targets, in order: {})",
                    condition.describe(),
                    targets.join(", ")
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::fakes::{run_with, Fake, Stored, BASE};
    use serde_json::{json, Value};

    #[test]
    fn other_targets_stay_bound_before_ours() {
        let mut fake = Fake::default();
        fake.executions.push((json!({"function":{"name":"preaccesstoken"}}), vec!["7".into()]));
        run_with(&mut fake, &mut Stored::default(), &format!("{BASE} --userinfo --saml --capture-idp-tokens")).unwrap();
        assert_eq!(fake.executions[0].1, ["7", "100"]);
        let conditions: Vec<&Value> = fake.executions.iter().map(|(c, _)| c).collect();
        assert_eq!(
            conditions,
            [
                &json!({"function":{"name":"preaccesstoken"}}),
                &json!({"function":{"name":"preuserinfo"}}),
                &json!({"function":{"name":"presamlresponse"}}),
                &json!({"response":{"method":IDP_INTENT_METHOD}})
            ]
        );
    }
}
