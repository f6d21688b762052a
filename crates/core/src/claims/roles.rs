//! The roles of a call's grants, as the permissions claim counts them, and the flat roles claim
//! (`{projectId}:{role}`); both from the payload alone.

use std::collections::HashSet;

use crate::contract::limits::MAX_BODY_BYTES;
use crate::contract::payload::UserGrant;
use crate::contract::response::StrList;

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
pub const MAX_FLAT_ROLES_BYTES: usize = MAX_BODY_BYTES;

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
