//! Settings: read once per isolate from the Worker's vars and secrets into a typed [`Config`].
//!
//! [`Config::from_lookup`] takes a function from setting name to value, so it is tested without a
//! runtime. Every problem is collected, named by its setting, and described without its value.

use crate::signature::SigningKey;

/// One setting that is missing or invalid. `problem` never contains the setting's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub setting: &'static str,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Every key that may have signed a call: several during a rotation.
    pub signing_keys: Vec<SigningKey>,
    pub signature_tolerance_seconds: u64,
}

pub const SIGNING_KEY: &str = "ZITADEL_SIGNING_KEY";
/// The name ZITADEL's reference worker uses, read when [`SIGNING_KEY`] is not set.
pub const SIGNING_KEY_ALIAS: &str = "AUTHORIZATION_SIGNING_KEY";
pub const SIGNATURE_TOLERANCE: &str = "SIGNATURE_TOLERANCE_SECONDS";

impl Config {
    /// Reads every setting through `get` (name → raw value). Values are trimmed; an empty value
    /// counts as not set.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Vec<Problem>> {
        let mut settings = Settings { get: &get, problems: Vec::new() };

        let keys = settings
            .text(SIGNING_KEY)
            .or_else(|| settings.text(SIGNING_KEY_ALIAS))
            .map(|list| signing_keys(&list))
            .unwrap_or_default();
        if keys.is_empty() {
            settings.problem(
                SIGNING_KEY,
                format!("is not set (also read as {SIGNING_KEY_ALIAS}): set it to the target's signing key with `wrangler secret put {SIGNING_KEY}`"),
            );
        }
        let signature_tolerance_seconds = settings.number(SIGNATURE_TOLERANCE, 300, 1, 3600);

        if settings.problems.is_empty() {
            Ok(Config { signing_keys: keys, signature_tolerance_seconds })
        } else {
            Err(settings.problems)
        }
    }
}

/// A comma-separated list of keys; blanks around and between entries are dropped. ZITADEL's keys
/// are letters and digits, so a comma never occurs inside one.
fn signing_keys(list: &str) -> Vec<SigningKey> {
    list.split(',').map(str::trim).filter(|k| !k.is_empty()).map(SigningKey::new).collect()
}

struct Settings<'a, F> {
    get: &'a F,
    problems: Vec<Problem>,
}

impl<F: Fn(&str) -> Option<String>> Settings<'_, F> {
    fn problem(&mut self, setting: &'static str, problem: String) {
        self.problems.push(Problem { setting, problem });
    }

    fn text(&self, name: &str) -> Option<String> {
        (self.get)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// A whole number in `min..=max`, or `default` when not set.
    fn number(&mut self, name: &'static str, default: u64, min: u64, max: u64) -> u64 {
        let Some(raw) = self.text(name) else { return default };
        match raw.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                self.problem(name, format!("must be a whole number from {min} to {max}"));
                default
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, Vec<Problem>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    fn settings_named(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.setting).collect()
    }

    #[test]
    fn signing_key_alone_is_a_valid_config_with_defaults() {
        let c = config(&[(SIGNING_KEY, "abc")]).unwrap();
        assert_eq!(c.signing_keys, vec![SigningKey::new("abc")]);
        assert_eq!(c.signature_tolerance_seconds, 300);
    }

    #[test]
    fn several_keys_are_separated_by_commas_and_blanks_dropped() {
        let c = config(&[(SIGNING_KEY, " new-key , old-key ,, ")]).unwrap();
        assert_eq!(c.signing_keys, vec![SigningKey::new("new-key"), SigningKey::new("old-key")]);
    }

    #[test]
    fn reference_worker_name_is_read_when_ours_is_absent() {
        let c = config(&[(SIGNING_KEY_ALIAS, "legacy")]).unwrap();
        assert_eq!(c.signing_keys, vec![SigningKey::new("legacy")]);
        let both = config(&[(SIGNING_KEY, "ours"), (SIGNING_KEY_ALIAS, "legacy")]).unwrap();
        assert_eq!(both.signing_keys, vec![SigningKey::new("ours")]);
    }

    #[test]
    fn missing_signing_key_is_a_problem_naming_the_setting() {
        for pairs in [&[][..], &[(SIGNING_KEY, "  ")], &[(SIGNING_KEY, ",,")]] {
            let problems = config(pairs).unwrap_err();
            assert_eq!(settings_named(&problems), [SIGNING_KEY]);
            assert!(problems[0].problem.contains("is not set"));
        }
    }

    #[test]
    fn tolerance_is_a_whole_number_in_range() {
        assert_eq!(config(&[(SIGNING_KEY, "k"), (SIGNATURE_TOLERANCE, "60")]).unwrap().signature_tolerance_seconds, 60);
        for bad in ["0", "3601", "-5", "5m", "1.5"] {
            let problems = config(&[(SIGNING_KEY, "k"), (SIGNATURE_TOLERANCE, bad)]).unwrap_err();
            assert_eq!(settings_named(&problems), [SIGNATURE_TOLERANCE], "{bad}");
        }
    }

    #[test]
    fn all_problems_are_reported_together() {
        let problems = config(&[(SIGNATURE_TOLERANCE, "x")]).unwrap_err();
        assert_eq!(settings_named(&problems), [SIGNING_KEY, SIGNATURE_TOLERANCE]);
    }

    #[test]
    fn problems_never_contain_a_key() {
        let problems = config(&[(SIGNATURE_TOLERANCE, "supersecret")]).unwrap_err();
        assert!(problems.iter().all(|p| !p.problem.contains("supersecret")));
    }
}
