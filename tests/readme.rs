//! The README is the user's manual: it documents every setting once, and says nothing twice.

use zitadel_claims_worker::config;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// A section given twice is an edit that added a new version beside the old one.
#[test]
fn no_heading_appears_twice() {
    let text = readme();
    let mut seen = std::collections::HashSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            assert!(seen.insert(line), "README.md has the heading {line:?} twice");
        }
    }
}

#[test]
fn every_setting_is_in_the_settings_section() {
    let text = readme();
    let start = text.find("\n## Settings").expect("a Settings section");
    let end = text[start + 1..].find("\n## ").map_or(text.len(), |e| start + 1 + e);
    let section = &text[start..end];
    let settings = [
        config::SIGNING_KEY,
        config::SIGNING_KEY_ALIAS,
        config::SIGNATURE_TOLERANCE,
        config::ZITADEL_DOMAIN,
        config::ACCESS_TOKEN,
        config::ACCESS_TOKEN_ALIAS,
        config::CLIENT_ID,
        config::CLIENT_SECRET,
        config::PERMISSIONS_CLAIM,
        config::PERMISSIONS_PROJECT_ID,
        config::PERMISSIONS_ORG_ID,
        config::PERMISSIONS_METADATA_PREFIX,
        config::FLAT_ROLES_CLAIM,
        config::GROUPS_CLAIM,
        config::MS_TOKEN_METADATA_KEY,
        config::MS_TOKEN_CLAIM,
        config::MS_TOKEN_IN_USERINFO,
        config::MS_IDP_ID,
        config::MS_CLIENT_ID,
        config::MS_CLIENT_SECRET,
        config::MS_TENANT,
        config::MS_SCOPES,
        config::MS_TOKEN_URL,
        config::MS_REFRESH_TOKEN_METADATA_KEY,
        config::MS_TOKEN_EXPIRES_AT_METADATA_KEY,
        config::MS_REFRESH_SKEW,
        config::MS_ON_REFRESH_ERROR,
        config::CACHE_TTL,
        config::STALE_IF_ERROR,
        config::UPSTREAM_TIMEOUT,
        config::ON_UPSTREAM_ERROR,
        config::LOG_CLAIMS,
    ];
    let missing: Vec<_> = settings.iter().filter(|s| !section.contains(&format!("`{s}`"))).collect();
    assert!(missing.is_empty(), "not in the README's Settings section: {missing:?}");
}
