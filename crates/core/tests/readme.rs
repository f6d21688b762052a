//! The README is the newcomer's guide and docs/reference.md the lookup: every setting, log field
//! and upstream code is documented once, in the reference; the README stays readable (short
//! lines, six steps, one troubleshooting entry per known symptom), and neither says anything twice.

use zitadel_claims_core::config;
use zitadel_claims_core::trace::{LogLine, Omitted, Trace};
use zitadel_claims_core::upstream::UpstreamError;

fn read(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn readme() -> String {
    read("README.md")
}

fn reference() -> String {
    read("docs/reference.md")
}

/// A section given twice is an edit that added a new version beside the old one.
fn assert_no_heading_twice(name: &str, text: &str) {
    let mut seen = std::collections::HashSet::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            assert!(seen.insert(line), "{name} has the heading {line:?} twice");
        }
    }
}

#[test]
fn no_heading_appears_twice() {
    assert_no_heading_twice("README.md", &readme());
    assert_no_heading_twice("docs/reference.md", &reference());
}

/// The README is read on screens of every width and in terminals: no line, code blocks included,
/// is longer than 100 characters (characters, not bytes: `→` counts once).
#[test]
fn no_readme_line_is_longer_than_100_characters() {
    let long: Vec<String> = readme()
        .lines()
        .enumerate()
        .filter(|(_, line)| line.chars().count() > 100)
        .map(|(i, line)| format!("line {}: {} characters", i + 1, line.chars().count()))
        .collect();
    assert!(long.is_empty(), "README.md lines over 100 characters: {long:?}");
}

/// The Quick start is exactly six numbered steps (`1. ` to `6. ` at the start of a line, outside
/// code blocks), in order.
#[test]
fn the_quick_start_has_six_numbered_steps() {
    let quick_start = section(&readme(), "## Quick start");
    let mut in_code = false;
    let mut steps = Vec::new();
    for line in quick_start.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let digits: String = line.chars().take_while(char::is_ascii_digit).collect();
        if !in_code && !digits.is_empty() && line[digits.len()..].starts_with(". ") {
            steps.push(digits.parse::<u32>().expect("a step number"));
        }
    }
    assert_eq!(steps, [1, 2, 3, 4, 5, 6], "the Quick start's numbered steps");
}

/// The Troubleshooting section names each known symptom in a bold line, and every symptom is
/// followed by exactly one `- Cause:` line and one `- Fix:` line.
#[test]
fn troubleshooting_names_every_known_symptom() {
    let section = section(&readme(), "## Troubleshooting");
    let lines: Vec<&str> = section.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut symptoms = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("**") {
            let next: Vec<&str> = lines[i + 1..].iter().take(3).copied().collect();
            assert!(
                next.len() >= 2 && next[0].starts_with("- Cause: ") && next[1].starts_with("- Fix: "),
                "the symptom {line:?} is not followed by one `- Cause:` and one `- Fix:` line"
            );
            assert!(next.get(2).is_none_or(|l| l.starts_with("**")), "more than a cause and a fix after {line:?}");
            symptoms.push(*line);
        }
    }
    let known = ["permissions", "Microsoft", "invalid_signature", "misconfigured", "empty", "already exists", "12185"];
    let missing: Vec<_> = known.iter().filter(|k| !symptoms.iter().any(|s| s.contains(*k))).collect();
    assert!(missing.is_empty(), "symptoms not in the README's Troubleshooting: {missing:?}");
    assert_eq!(symptoms.len(), known.len(), "one entry per known symptom: {symptoms:?}");
}

/// Every setting `src/config.rs` names (its `pub const NAME: &str = "SETTING";` lines, read from
/// the source so that a new one cannot be forgotten here) is in the reference's Settings section.
#[test]
fn every_setting_is_in_the_settings_section() {
    let section = section(&reference(), "## Settings");
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config.rs")).expect("config.rs");
    let settings: Vec<&str> = source
        .lines()
        .filter(|l| l.starts_with("pub const ") && l.contains(": &str = \""))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(settings.len() >= 30 && settings.contains(&config::ZITADEL_SIGNING_KEY), "read {settings:?}");
    let missing: Vec<_> = settings.iter().filter(|s| !section.contains(&format!("`{s}`"))).collect();
    assert!(missing.is_empty(), "not in the Settings section of docs/reference.md: {missing:?}");
}

/// The lines under `heading` (a whole heading line) up to the next heading of the same or a
/// higher level, its subsections included; `#` lines in code blocks are not headings.
fn section(text: &str, heading: &str) -> String {
    let level = |line: &str| line.len() - line.trim_start_matches('#').len();
    let mut lines = text.lines().skip_while(|l| *l != heading);
    assert!(lines.next().is_some(), "no {heading:?} section");
    let mut in_code = false;
    let mut body = String::new();
    for line in lines {
        in_code ^= line.starts_with("```");
        if !in_code && line.starts_with('#') && level(line) <= level(heading) {
            break;
        }
        body.push_str(line);
        body.push('\n');
    }
    body
}

/// Every field the log line can carry is named in the reference's Logs section, in the sample
/// line or in the text. The trace's literal sets every field (no `..Default::default()`), so a new
/// field does not compile until it is added here, and the test then asks for it in the reference.
#[test]
fn every_log_field_is_in_the_logs_section() {
    let trace = Trace {
        function: Some("function/preaccesstoken"),
        payload: Some("jwe"),
        api_method: Some("/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent".into()),
        user_id: Some("u".into()),
        org_id: Some("o".into()),
        client_id: Some("c".into()),
        outcome: "ok",
        status: 200,
        claims: vec!["permissions".into()],
        roles: 1,
        cache: Some("hit"),
        upstream_error: Some("timeout"),
        skipped_metadata_keys: vec!["k (reason)".into()],
        ms_token: Some("passed"),
        earlier_entries: 2,
        notes: vec!["a note".into()],
        // The log claims' source, not a field of the line.
        omitted: vec![Omitted { claim: "permissions".into(), why: "a reason".into() }],
        metadata_written: Some(true),
    };
    let log = LogLine::new("POST", "/", &trace, 1, 1);
    let line: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&log.to_json()).expect("a JSON object");
    assert_eq!(line.len(), 21, "a field of the log line was not serialized: {:?}", line.keys());
    let logs = section(&reference(), "## Logs");
    let missing: Vec<_> =
        line.keys().filter(|k| !logs.contains(&format!("\"{k}\":")) && !logs.contains(&format!("`{k}`"))).collect();
    assert!(missing.is_empty(), "log fields not in the Logs section of docs/reference.md: {missing:?}");
}

/// Every code `upstream_error` can hold is listed in the reference's Logs section. The match is exhaustive,
/// so a new variant does not compile until it is listed here.
#[test]
fn every_upstream_error_code_is_in_the_logs_section() {
    let all = [
        UpstreamError::Timeout,
        UpstreamError::Network,
        UpstreamError::TooLarge,
        UpstreamError::Unauthorized(401),
        UpstreamError::RateLimited,
        UpstreamError::MissingApi,
        UpstreamError::Status(500),
        UpstreamError::Malformed,
        UpstreamError::InvalidId,
        UpstreamError::MappingTooLarge,
    ];
    for e in all {
        match e {
            UpstreamError::Timeout
            | UpstreamError::Network
            | UpstreamError::TooLarge
            | UpstreamError::Unauthorized(_)
            | UpstreamError::RateLimited
            | UpstreamError::MissingApi
            | UpstreamError::Status(_)
            | UpstreamError::Malformed
            | UpstreamError::InvalidId
            | UpstreamError::MappingTooLarge => {}
        }
    }
    let logs = section(&reference(), "## Logs");
    let missing: Vec<_> = all.iter().map(|e| e.code()).filter(|c| !logs.contains(&format!("`{c}`"))).collect();
    assert!(missing.is_empty(), "upstream_error codes not in the Logs section of docs/reference.md: {missing:?}");
}
