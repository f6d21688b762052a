//! Roles to permissions, through organization metadata.
//!
//! An organization keeps one metadata entry per role: key = role name (optionally behind a prefix
//! such as `permissions:`), value = the role's permissions. Values are read as ZITADEL's reference
//! worker reads them, minus its surprises: a JSON array of strings, a single JSON string (one
//! permission), or plain text holding a comma-separated list. Anything else is skipped and
//! reported by key, never failing the whole mapping.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::contract::payload::UserGrant;
use crate::contract::response::StrList;

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

/// The roles of all grants (of `project` only, when given): deduplicated, first seen first.
pub fn roles<'a>(grants: &'a [UserGrant<'a>], project: Option<&str>) -> Vec<&'a str> {
    let mut seen = FirstSeen::default();
    grants
        .iter()
        .filter(|g| project.is_none_or(|p| g.project_id.as_deref() == Some(p)))
        .flat_map(|g| g.roles.iter().flatten())
        .map(|role| role.as_ref())
        .filter(|role| !role.is_empty() && seen.insert(*role))
        .collect()
}

/// The most text the flat roles claim may hold: as much as the largest call. Each role repeats its
/// project id, so a signed payload with a long id and many roles could otherwise ask for a claim
/// of hundreds of MB (and run the isolate out of memory).
pub const MAX_FLAT_ROLES_BYTES: usize = crate::contract::limits::MAX_BODY_BYTES;

/// `{project_id}:{role}` for every role of every grant that names its project, deduplicated;
/// `None` if that is more than [`MAX_FLAT_ROLES_BYTES`] of text.
pub fn flat_roles(grants: &[UserGrant<'_>]) -> Option<StrList> {
    let mut seen = FirstSeen::default();
    let mut out = StrList::default();
    for grant in grants {
        let Some(project) = grant.project_id.as_deref().filter(|p| !p.is_empty()) else { continue };
        for role in grant.roles.iter().flatten().filter(|r| !r.is_empty()) {
            // Role first: it tells items apart sooner than the project, shared by a grant's roles.
            if seen.insert((role.as_ref(), project)) {
                if out.text_len() + project.len() + 1 + role.len() > MAX_FLAT_ROLES_BYTES {
                    return None;
                }
                out.push(&[project, ":", role]);
            }
        }
    }
    Some(out)
}

/// Remembers what was seen, to keep only the first of equal items. Tokens carry short lists, for
/// which a linear scan beats hashing; past `LINEAR` items a hash set takes over, so that a payload
/// with thousands of roles stays linear-time.
struct FirstSeen<T> {
    few: Vec<T>,
    many: Option<HashSet<T>>,
}

impl<T> Default for FirstSeen<T> {
    fn default() -> Self {
        FirstSeen { few: Vec::new(), many: None }
    }
}

impl<T: Copy + Eq + std::hash::Hash> FirstSeen<T> {
    const LINEAR: usize = 32;

    /// True the first time `item` is offered.
    fn insert(&mut self, item: T) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(item);
        }
        if self.few.contains(&item) {
            return false;
        }
        self.few.push(item);
        if self.few.len() > Self::LINEAR {
            self.many = Some(self.few.drain(..).collect());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn grant<'a>(project: &'a str, roles: &[&'a str]) -> UserGrant<'a> {
        UserGrant {
            project_id: Some(Cow::Borrowed(project)),
            roles: Some(roles.iter().map(|r| Cow::Borrowed(*r)).collect()),
        }
    }

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

    #[test]
    fn roles_are_the_union_of_all_grants_deduplicated() {
        let grants = [grant("p1", &["admin", "editor"]), grant("p2", &["editor", "viewer"])];
        assert_eq!(roles(&grants, None), ["admin", "editor", "viewer"]);
    }

    #[test]
    fn project_filter_keeps_only_that_projects_grants() {
        let grants = [grant("p1", &["admin"]), grant("p2", &["viewer"])];
        assert_eq!(roles(&grants, Some("p2")), ["viewer"]);
        assert_eq!(roles(&grants, Some("p3")), Vec::<&str>::new());
        let no_project = [UserGrant { project_id: None, roles: Some(vec![Cow::Borrowed("x")]) }];
        assert_eq!(roles(&no_project, Some("p1")), Vec::<&str>::new());
        assert_eq!(roles(&no_project, None), ["x"]);
    }

    #[test]
    fn long_lists_are_deduplicated_past_the_linear_limit() {
        let names: Vec<String> = (0..200).map(|i| format!("r{}", i % 150)).collect();
        let grant =
            UserGrant { project_id: None, roles: Some(names.iter().map(|n| Cow::Borrowed(n.as_str())).collect()) };
        let grants = [grant];
        let found = roles(&grants, None);
        assert_eq!(found.len(), 150);
        assert_eq!(found[..3], ["r0", "r1", "r2"]);
        assert_eq!(found[149], "r149");
    }

    #[test]
    fn flat_roles_are_project_colon_role_deduplicated() {
        let grants = [grant("p1", &["admin", "editor"]), grant("p2", &["editor"]), grant("p1", &["admin"])];
        assert_eq!(flat_roles(&grants).unwrap().iter().collect::<Vec<_>>(), ["p1:admin", "p1:editor", "p2:editor"]);
        let nameless = [UserGrant { project_id: None, roles: Some(vec![Cow::Borrowed("x")]) }];
        assert!(flat_roles(&nameless).unwrap().is_empty());
    }

    #[test]
    fn flat_roles_stop_at_the_size_limit() {
        // 1000 one-letter roles on a 2 KiB project id: 2 MB of claim from a 4 KB payload.
        let project = "p".repeat(2048);
        let names: Vec<String> = (0..1000).map(|i| format!("{i}")).collect();
        let many = |n: usize| UserGrant {
            project_id: Some(Cow::Borrowed(project.as_str())),
            roles: Some(names[..n].iter().map(|r| Cow::Borrowed(r.as_str())).collect()),
        };
        assert_eq!(flat_roles(&[many(1000)]), None);
        let fits = MAX_FLAT_ROLES_BYTES / (project.len() + 4);
        assert_eq!(flat_roles(&[many(fits)]).map(|l| l.len()), Some(fits));
    }
}
