//! Roles to permissions, through organization metadata.
//!
//! An organization keeps one metadata entry per role: key = role name (optionally behind a prefix
//! such as `permissions:`), value = the role's permissions. Values are read as ZITADEL's reference
//! worker reads them, minus its surprises: a JSON array of strings, a single JSON string (one
//! permission), or plain text holding a comma-separated list. Anything else is skipped and
//! reported by key, never failing the whole mapping.

use std::collections::HashMap;
use std::rc::Rc;

/// role → permissions of one organization, ready to use. Each distinct permission is stored once
/// and numbered, so that combining the roles of a call deduplicates with a bitset: this runs on
/// every call, the map is built once per cache fill.
#[cfg_attr(test, derive(Debug))]
#[derive(Default, Clone, PartialEq, Eq)]
pub struct PermissionMap {
    by_role: HashMap<String, Vec<u32>>,
    names: Vec<Rc<str>>,
}

/// A metadata entry that looked like a mapping but could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub key: String,
    pub reason: &'static str,
}

impl PermissionMap {
    /// Builds the map from raw metadata entries (key, decoded bytes). Only keys starting with
    /// `prefix` count, and the prefix is removed to get the role name.
    pub fn from_metadata<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        prefix: &str,
    ) -> (PermissionMap, Vec<Skipped>) {
        let mut by_role = HashMap::new();
        let mut skipped = Vec::new();
        for (key, value) in entries {
            let Some(role) = key.strip_prefix(prefix).filter(|r| !r.is_empty()) else { continue };
            match parse_value(value) {
                Ok(permissions) => {
                    by_role.insert(role.to_string(), permissions);
                }
                Err(reason) => skipped.push(Skipped { key: key.to_string(), reason }),
            }
        }
        (PermissionMap::from_roles(by_role), skipped)
    }

    pub fn from_roles(by_role: HashMap<String, Vec<String>>) -> Self {
        let mut names: Vec<Rc<str>> = Vec::new();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let by_role = by_role
            .into_iter()
            .map(|(role, permissions)| {
                let numbered = permissions
                    .into_iter()
                    .map(|p| {
                        *ids.entry(p).or_insert_with_key(|p| {
                            names.push(Rc::from(p.as_str()));
                            (names.len() - 1) as u32
                        })
                    })
                    .collect();
                (role, numbered)
            })
            .collect();
        PermissionMap { by_role, names }
    }

    /// role → permissions, as stored in the shared cache.
    pub fn roles(&self) -> HashMap<String, Vec<String>> {
        let name = |id: &u32| self.names[*id as usize].to_string();
        self.by_role.iter().map(|(role, ids)| (role.clone(), ids.iter().map(name).collect())).collect()
    }

    pub fn len(&self) -> usize {
        self.by_role.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_role.is_empty()
    }

    /// About what the map holds in memory, in bytes: its strings, its numbers, and a fixed
    /// overhead per role and per permission (hash table slots, string headers). What the isolate
    /// cache's budget counts.
    pub fn bytes(&self) -> usize {
        const PER_ROLE: usize = 64;
        const PER_NAME: usize = 32;
        let roles: usize = self.by_role.iter().map(|(role, ids)| role.len() + 4 * ids.len() + PER_ROLE).sum();
        let names: usize = self.names.iter().map(|n| n.len() + PER_NAME).sum();
        roles + names
    }

    /// The permissions of `roles`: deduplicated, in the order first seen.
    pub fn permissions(&self, roles: &[&str]) -> Vec<Rc<str>> {
        let mut seen = vec![0u64; self.names.len().div_ceil(64)];
        let mut out = Vec::with_capacity(self.names.len().min(64));
        for id in roles.iter().filter_map(|role| self.by_role.get(*role)).flatten() {
            let (word, bit) = (*id as usize / 64, 1u64 << (id % 64));
            if seen[word] & bit == 0 {
                seen[word] |= bit;
                out.push(self.names[*id as usize].clone());
            }
        }
        out
    }
}

/// Reads one metadata value (already base64-decoded).
pub fn parse_value(bytes: &[u8]) -> Result<Vec<String>, &'static str> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the value is not UTF-8 text")?;
    let trimmed = text.trim();
    let is_json = |text: &str| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
    let list = match trimmed.as_bytes().first() {
        Some(b'[') => match serde_json::from_str::<Vec<String>>(trimmed) {
            Ok(items) => items,
            Err(_) if is_json(trimmed) => return Err("the JSON array holds something other than strings"),
            Err(_) => return Err("the value starts like a JSON array but is not one"),
        },
        Some(b'"') => match serde_json::from_str::<String>(trimmed) {
            Ok(one) => vec![one],
            Err(_) => split_list(trimmed),
        },
        Some(b'{') if is_json(trimmed) => return Err("the value is a JSON object, not a list"),
        _ if trimmed.parse::<f64>().is_ok() || matches!(trimmed, "true" | "false" | "null") => {
            return Err("the value is a JSON number, boolean or null, not a list");
        }
        _ => split_list(trimmed),
    };
    Ok(list.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[Rc<str>]) -> Vec<&str> {
        list.iter().map(|p| &**p).collect()
    }

    fn map(entries: &[(&str, &str)], prefix: &str) -> (PermissionMap, Vec<Skipped>) {
        PermissionMap::from_metadata(entries.iter().map(|(k, v)| (*k, v.as_bytes())), prefix)
    }

    #[test]
    fn json_array_of_strings_is_a_list() {
        assert_eq!(
            parse_value(br#"["posts:read", "posts:write"]"#),
            Ok(vec!["posts:read".into(), "posts:write".into()])
        );
        assert_eq!(parse_value(b" [ ] "), Ok(vec![]));
    }

    #[test]
    fn single_json_string_is_one_permission() {
        // As the reference worker: JSON.parse gives a string, which becomes a one-element list.
        assert_eq!(parse_value(br#""posts:read""#), Ok(vec!["posts:read".into()]));
        assert_eq!(parse_value(br#""a,b""#), Ok(vec!["a,b".into()]));
    }

    #[test]
    fn plain_text_is_a_comma_separated_list() {
        assert_eq!(
            parse_value(b"posts:read, posts:write ,,users:manage"),
            Ok(vec!["posts:read".into(), "posts:write".into(), "users:manage".into()])
        );
        assert_eq!(parse_value(b"posts:read"), Ok(vec!["posts:read".into()]));
    }

    #[test]
    fn objects_numbers_and_mixed_arrays_are_refused() {
        assert!(parse_value(br#"{"a":1}"#).is_err());
        assert!(parse_value(br#"["a", 1]"#).is_err());
        assert!(parse_value(br#"["a", null]"#).is_err());
        assert!(parse_value(b"42").is_err());
        assert!(parse_value(b"true").is_err());
        assert!(parse_value(b"null").is_err());
        assert!(parse_value(b"[unclosed").is_err());
    }

    #[test]
    fn non_utf8_is_refused() {
        assert_eq!(parse_value(&[0xff, 0xfe, b'a']), Err("the value is not UTF-8 text"));
    }

    #[test]
    fn empty_entries_are_dropped() {
        assert_eq!(parse_value(br#"["", " a "]"#), Ok(vec!["a".into()]));
        assert_eq!(parse_value(b""), Ok(vec![]));
    }

    #[test]
    fn map_skips_unreadable_entries_by_key_and_keeps_the_rest() {
        let (m, skipped) = map(&[("admin", r#"["p1","p2"]"#), ("theme", r#"{"dark":true}"#), ("viewer", "p1")], "");
        assert_eq!(m.len(), 2);
        assert_eq!(skipped, vec![Skipped { key: "theme".into(), reason: "the value is a JSON object, not a list" }]);
        assert_eq!(names(&m.permissions(&["admin", "viewer"])), ["p1", "p2"]);
    }

    #[test]
    fn prefix_selects_and_is_stripped() {
        let (m, skipped) = map(
            &[("permissions:admin", "p1"), ("admin", "other"), ("theme", "{}"), ("permissions:", "x")],
            "permissions:",
        );
        assert_eq!(names(&m.permissions(&["admin"])), ["p1"]);
        assert!(skipped.is_empty(), "entries outside the prefix are not even read");
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn permissions_are_deduplicated_in_first_seen_order() {
        let (m, _) = map(&[("admin", r#"["c","a","b"]"#), ("editor", r#"["b","d","a"]"#)], "");
        assert_eq!(names(&m.permissions(&["editor", "admin"])), ["b", "d", "a", "c"]);
        assert_eq!(names(&m.permissions(&["unknown"])), Vec::<&str>::new());
        assert_eq!(names(&m.permissions(&[])), Vec::<&str>::new());
    }
}
