//! Secrets the tool handles: the personal access token, the target's signing keys and the
//! private keys of its payload encryption.
//!
//! A `Secret` has no `Display` and its `Debug` prints nothing of the value, so neither a
//! `format!` nor an error message can leak one by accident; the value is reached only through
//! `expose`, at the places that must send or keep it (the Authorization header, wrangler's stdin,
//! the key file).

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `first,second`: the worker accepts a comma-separated key list, which is how a rotation
    /// keeps the old key valid for calls signed just before the switch.
    pub fn joined(first: &Secret, second: &Secret) -> Secret {
        Secret(format!("{},{}", first.0, second.0))
    }

    /// The values in order, comma-separated (the key lists the worker reads).
    pub fn list<'a>(items: impl IntoIterator<Item = &'a Secret>) -> Secret {
        Secret(items.into_iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join(","))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("very-secret-key");
        assert_eq!(format!("{s:?}"), "Secret(..)");
        assert!(!format!("{:?}", Some(&s)).contains("very-secret"));
    }

    #[test]
    fn joined_puts_the_first_key_first() {
        let joined = Secret::joined(&Secret::new("new"), &Secret::new("old"));
        assert_eq!(joined.expose(), "new,old");
        let three = [Secret::new("a"), Secret::new("b"), Secret::new("c")];
        assert_eq!(Secret::list(&three).expose(), "a,b,c");
        assert_eq!(Secret::list(&three[..1]).expose(), "a");
    }
}
