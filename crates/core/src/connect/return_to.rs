//! Where the flow may send the browser back to: the allow-list `CONNECT_RETURN_URLS`, the check of
//! a `return_to` against it, and adding the flow's outcome to the URL.
//!
//! An open redirect would let anyone use the worker's origin to send a user, just signed in, to a
//! page of their choosing; so a `return_to` is refused unless its origin is an allowed entry's
//! origin and its path lies under that entry's path.
//!
//! The URL is read by a strict reader of its own rather than the `url` crate: that crate is in the
//! dependency tree through `worker` but not in the wasm (the glue reads the request URL as a
//! string), and using it costs ~175 KB of wasm, ~77 KB gzip (its IDNA tables), for hosts that are
//! ASCII here anyway. Instead the reader accepts a strict subset of RFC 3986 and refuses whatever a
//! browser's WHATWG parser would repair or read differently: whitespace and control characters
//! (WHATWG strips tabs and newlines anywhere), backslashes (WHATWG reads `\` as `/`), userinfo
//! (`user@host`), a missing `//` (WHATWG reads `https:host` as `https://host`), non-ASCII hosts
//! (give the `xn--` form), and percent-encoded dots and slashes before the query (WHATWG decodes
//! `%2e` segments as dot segments; servers disagree about `%2f` and `%5c`). The worker redirects to
//! the reader's own serialization, never to the text it was given, so what was checked is what the
//! browser follows; `tests/properties/return_to.rs` holds that against the `url` crate as the
//! browser's reading.

/// The longest `return_to` (and allow-list entry) accepted, in bytes: the worker carries it through
/// the login in its state, and no page of an application needs more.
pub const MAX_LEN: usize = 2048;

/// Why a `return_to` was refused. Neither the code nor the message repeats the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnToError {
    /// Empty, or longer than [`MAX_LEN`].
    Length,
    /// Whitespace, a control character or a backslash.
    Characters,
    /// Not `http://` or `https://` followed by a host.
    NotHttpUrl,
    /// A user name or password before the host (`user@host`).
    Userinfo,
    /// `%2e`, `%2f` or `%5c` (either case) before the query.
    EncodedDotOrSlash,
    /// A bad host (not ASCII letters, digits, `-`, `_` and `.` between non-empty labels, or a
    /// bracketed IPv6 address), a bad port, or a `%` not followed by two hex digits.
    Unparsable,
    /// A well-formed URL, but no allowed entry covers its origin and path.
    NotAllowed,
}

impl ReturnToError {
    /// The code for logs.
    pub fn code(self) -> &'static str {
        match self {
            ReturnToError::Length => "return_to_length",
            ReturnToError::Characters => "return_to_characters",
            ReturnToError::NotHttpUrl => "return_to_not_http_url",
            ReturnToError::Userinfo => "return_to_userinfo",
            ReturnToError::EncodedDotOrSlash => "return_to_encoded_dot_or_slash",
            ReturnToError::Unparsable => "return_to_unparsable",
            ReturnToError::NotAllowed => "return_to_not_allowed",
        }
    }
}

impl std::fmt::Display for ReturnToError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReturnToError::Length => "is empty or longer than 2048 bytes",
            ReturnToError::Characters => "contains whitespace, a control character or a backslash",
            ReturnToError::NotHttpUrl => "is not an absolute http:// or https:// URL with a host",
            ReturnToError::Userinfo => "has a user name or password before the host",
            ReturnToError::EncodedDotOrSlash => "has a percent-encoded dot, slash or backslash before the query",
            ReturnToError::Unparsable => "has a bad host (ASCII only: use the xn-- form), port or percent-encoding",
            ReturnToError::NotAllowed => "is not under any URL of CONNECT_RETURN_URLS",
        })
    }
}

/// An http(s) URL as read and normalized here: scheme and host lowercase, the port only when it
/// is not the scheme's default, the path without dot segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    scheme: &'static str,
    host: String,
    port: Option<u16>,
    path: String,
    query: Option<String>,
    fragment: Option<String>,
}

impl Parsed {
    fn same_origin(&self, other: &Parsed) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }

    fn serialize(&self) -> String {
        let mut out = format!("{}://{}", self.scheme, self.host);
        if let Some(port) = self.port {
            out.push_str(&format!(":{port}"));
        }
        out.push_str(&self.path);
        for (mark, part) in [('?', &self.query), ('#', &self.fragment)] {
            if let Some(part) = part {
                out.push(mark);
                out.push_str(part);
            }
        }
        out
    }
}

/// The allow-list `CONNECT_RETURN_URLS`: absolute http(s) URLs, separated by commas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnUrls {
    entries: Vec<Parsed>,
}

impl ReturnUrls {
    /// Reads the setting. Each entry is read as a `return_to` is, and must also have no query or
    /// fragment (entries are compared by origin and path only) and no `.` or `..` segment (which
    /// would silently widen it: `https://a.example/app/..` is all of `https://a.example/`). Spaces
    /// around the commas are allowed; an empty entry is an error, not skipped. The error names an
    /// entry by its position (1-based), never by its text.
    pub fn parse(value: &str) -> Result<ReturnUrls, String> {
        if value.trim().is_empty() {
            return Err("is empty: list the absolute http(s) URLs to return to, separated by commas".into());
        }
        let mut entries = Vec::new();
        for (i, item) in value.split(',').enumerate() {
            let n = i + 1;
            let item = item.trim();
            if item.is_empty() {
                return Err(format!("item {n} is empty"));
            }
            let (entry, raw_path) = read(item).map_err(|e| format!("item {n} {e}"))?;
            if entry.query.is_some() || entry.fragment.is_some() {
                return Err(format!("item {n} has a query or fragment; entries are compared by origin and path only"));
            }
            if raw_path.split('/').any(|segment| segment == "." || segment == "..") {
                return Err(format!("item {n} has a `.` or `..` path segment"));
            }
            entries.push(entry);
        }
        Ok(ReturnUrls { entries })
    }

    /// The URL to redirect to, if `return_to` is allowed: an absolute http(s) URL whose origin
    /// (scheme, host case-insensitively, port with the default ports 80 and 443 normalized) equals
    /// an entry's, and whose path, once dot segments are removed (RFC 3986 §5.2.4), is under the
    /// entry's path on a `/` boundary (entry `/app` allows `/app` and `/app/x`, not `/appx`; entry
    /// `/app/` allows `/app/` and below). Paths compare case-sensitively after RFC 3986 §6.2.2's
    /// normalization (percent-encodings in upper case, unreserved characters decoded), so `/%61pp`
    /// is `/app` and `/App` is not.
    ///
    /// The answer is the normalized URL: scheme and host lowercase, default port dropped, dot
    /// segments removed, characters outside RFC 3986's sets percent-encoded, query kept. The
    /// fragment is kept too: it never leaves the browser, cannot change the origin or path checked
    /// here, and applications with hash routing (`/#/settings`) need it to come back to the right
    /// screen.
    pub fn check(&self, return_to: &str) -> Result<String, ReturnToError> {
        let (url, _) = read(return_to)?;
        let allowed = self.entries.iter().any(|e| e.same_origin(&url) && path_is_under(&url.path, &e.path));
        if allowed {
            Ok(url.serialize())
        } else {
            Err(ReturnToError::NotAllowed)
        }
    }
}

/// Reads an absolute http(s) URL, with the checks an entry and a `return_to` share; also returns
/// the path as written (between the authority and the query or fragment).
fn read(value: &str) -> Result<(Parsed, &str), ReturnToError> {
    if value.is_empty() || value.len() > MAX_LEN {
        return Err(ReturnToError::Length);
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return Err(ReturnToError::Characters);
    }
    let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(value, "https://") {
        ("https", rest)
    } else if let Some(rest) = strip_prefix_ignore_case(value, "http://") {
        ("http", rest)
    } else {
        return Err(ReturnToError::NotHttpUrl);
    };
    // No backslash is left, so the authority ends where WHATWG ends it.
    let (authority, rest) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(ReturnToError::NotHttpUrl); // WHATWG reads `https:///host` as `https://host`
    }
    if authority.contains('@') {
        return Err(ReturnToError::Userinfo);
    }
    let (raw_path, rest) = rest.split_at(rest.find(['?', '#']).unwrap_or(rest.len()));
    if has_encoded_dot_or_slash(authority) || has_encoded_dot_or_slash(raw_path) {
        return Err(ReturnToError::EncodedDotOrSlash);
    }
    let (host, port) = host_and_port(authority, scheme)?;
    let (query, fragment) = match rest.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (rest, None),
    };
    let path = if raw_path.is_empty() { "/".to_string() } else { normalize(raw_path, Part::Path)? };
    let url = Parsed {
        scheme,
        host,
        port,
        path: remove_dot_segments(&path),
        query: query.strip_prefix('?').map(|q| normalize(q, Part::QueryOrFragment)).transpose()?,
        fragment: fragment.map(|f| normalize(f, Part::QueryOrFragment)).transpose()?,
    };
    Ok((url, raw_path))
}

fn strip_prefix_ignore_case<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &value[prefix.len()..])
}

fn has_encoded_dot_or_slash(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["%2e", "%2f", "%5c"].iter().any(|encoded| lower.contains(encoded))
}

/// The host, lowercase, and the port unless it is the scheme's default. A host is a bracketed
/// IPv6 address (hex digits, `:` and `.`) or dot-separated non-empty labels of ASCII letters,
/// digits, `-` and `_`; a port is 1 to 5 digits up to 65535.
fn host_and_port(authority: &str, scheme: &str) -> Result<(String, Option<u16>), ReturnToError> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']').ok_or(ReturnToError::Unparsable)? + 1;
        let (host, after) = authority.split_at(end);
        let inside = &host[1..end - 1];
        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err(ReturnToError::Unparsable);
        }
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or(ReturnToError::Unparsable)?)),
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let label_ok =
            |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !host.split('.').all(label_ok) {
            return Err(ReturnToError::Unparsable);
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) if (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().map_err(|_| ReturnToError::Unparsable)?)
        }
        Some(_) => return Err(ReturnToError::Unparsable),
    };
    let default = if scheme == "https" { 443 } else { 80 };
    Ok((host.to_ascii_lowercase(), port.filter(|&p| p != default)))
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Path,
    QueryOrFragment,
}

/// The part with every byte outside RFC 3986's set for it percent-encoded (non-ASCII as UTF-8);
/// a `%` must start two hex digits. In the path, percent-encodings are also brought to RFC 3986
/// §6.2.2's normal form (upper case, unreserved characters decoded), so paths compare as
/// equivalent; the query and fragment keep theirs as written, for the application to read.
fn normalize(part: &str, which: Part) -> Result<String, ReturnToError> {
    let bytes = part.as_bytes();
    let mut out = String::with_capacity(part.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = part.get(i + 1..i + 3).filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
            let hex = hex.ok_or(ReturnToError::Unparsable)?;
            let decoded = u8::from_str_radix(hex, 16).map_err(|_| ReturnToError::Unparsable)?;
            match which {
                Part::Path if is_unreserved(decoded) => out.push(char::from(decoded)),
                Part::Path => push_percent_encoded(&mut out, decoded),
                Part::QueryOrFragment => out.push_str(&part[i..i + 3]),
            }
            i += 3;
            continue;
        }
        let kept = is_unreserved(b) || b"!$&'()*+,;=:@/".contains(&b) || (which != Part::Path && b == b'?');
        if kept {
            out.push(char::from(b));
        } else {
            push_percent_encoded(&mut out, b);
        }
        i += 1;
    }
    Ok(out)
}

fn push_percent_encoded(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend(['%', char::from(HEX[usize::from(b >> 4)]), char::from(HEX[usize::from(b & 15)])]);
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// RFC 3986 §5.2.4 for a path that starts with `/`: `.` segments are dropped, `..` drops the
/// segment before it (never above the root), and a path ending in `.` or `..` keeps its final `/`.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path[1..].split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
        if last && (*segment == "." || *segment == "..") {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

/// `path` is `base`, or below it: `base` ending in `/` is a prefix; otherwise the next character
/// after it must be `/`.
fn path_is_under(path: &str, base: &str) -> bool {
    match path.strip_prefix(base) {
        None => false,
        Some(rest) => base.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

/// `url` with `pairs` form-encoded into its query, before any fragment, with `?` or `&` as needed.
/// A parameter of `url` with the same name as one of `pairs` is removed first: applications read
/// the first value (`URLSearchParams.get`), so a stale `connected` or `error` already in the
/// `return_to` would otherwise hide the outcome. Empty parameters (`a=1&&b=2`) are dropped; every
/// other parameter stays as written.
pub fn add_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let (base, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let (path, query) = match base.split_once('?') {
        Some((path, query)) => (path, query),
        None => (base, ""),
    };
    let replaced = |parameter: &str| {
        let name = form_urlencoded::parse(parameter.as_bytes()).next().map(|(name, _)| name);
        name.is_some_and(|name| pairs.iter().any(|(n, _)| *n == name))
    };
    let added = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    let kept = query.split('&').filter(|p| !p.is_empty() && !replaced(p));
    let parameters: Vec<&str> = kept.chain(Some(added.as_str()).filter(|a| !a.is_empty())).collect();
    let mut out = String::with_capacity(url.len() + added.len() + 1);
    out.push_str(path);
    if !parameters.is_empty() {
        out.push('?');
        out.push_str(&parameters.join("&"));
    }
    out.push_str(fragment);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> ReturnUrls {
        ReturnUrls::parse("https://app.example.com/app, https://other.example:8443,http://localhost:3000/cb/").unwrap()
    }

    #[test]
    fn an_allowed_return_to_comes_back_normalized() {
        let urls = list();
        for (given, expected) in [
            ("https://app.example.com/app", "https://app.example.com/app"),
            (
                "https://app.example.com/app/x?tab=1&next=%2Fhome#/settings",
                "https://app.example.com/app/x?tab=1&next=%2Fhome#/settings",
            ),
            ("HTTPS://APP.Example.COM:443/app/x", "https://app.example.com/app/x"),
            ("https://app.example.com/app/x/../y", "https://app.example.com/app/y"),
            ("https://app.example.com/other/../app/./z", "https://app.example.com/app/z"),
            ("https://app.example.com/app/x/..", "https://app.example.com/app/"),
            ("https://app.example.com/%61pp/caf%c3%a9", "https://app.example.com/app/caf%C3%A9"),
            ("https://app.example.com/app/café/<x>", "https://app.example.com/app/caf%C3%A9/%3Cx%3E"),
            ("https://app.example.com/app?q=a|b'c#a#b", "https://app.example.com/app?q=a%7Cb'c#a%23b"),
            ("https://app.example.com/app?", "https://app.example.com/app?"),
            ("https://other.example:8443", "https://other.example:8443/"),
            ("https://other.example:8443/anything/at/all", "https://other.example:8443/anything/at/all"),
            ("http://localhost:3000/cb/", "http://localhost:3000/cb/"),
            ("http://localhost:3000/cb/deeper", "http://localhost:3000/cb/deeper"),
        ] {
            assert_eq!(urls.check(given).as_deref(), Ok(expected), "{given}");
        }
    }

    #[test]
    fn a_return_to_outside_the_origins_and_paths_of_the_list_is_refused() {
        let urls = list();
        for given in [
            "https://app.example.com/appx",
            "https://app.example.com/",
            "https://app.example.com",
            "https://app.example.com/App",
            "https://app.example.com/app/../admin",
            "https://app.example.com/app/..",
            "https://app.example.com/app/x/../../admin",
            "http://app.example.com/app",
            "https://app.example.com:444/app",
            "https://app.example.com.evil.example/app",
            "https://evil.example/app",
            "https://other.example/",
            "https://other.example:443/",
            "http://other.example:8443/",
            "http://localhost:3000/cb",
            "http://localhost:3000/cbx/",
            "http://127.0.0.1:3000/cb/",
        ] {
            assert_eq!(urls.check(given), Err(ReturnToError::NotAllowed), "{given}");
        }
    }

    #[test]
    fn what_a_parser_would_repair_or_read_differently_is_refused() {
        use ReturnToError::*;
        let urls = list();
        let long = format!("https://app.example.com/app/{}", "a".repeat(MAX_LEN));
        for (given, error) in [
            ("", Length),
            (long.as_str(), Length),
            (" https://app.example.com/app", Characters),
            ("https://app.example.com/app\n", Characters),
            ("https://app.exa\tmple.com/app", Characters),
            ("https://app.example.com/a pp", Characters),
            ("https://app.example.com/app\u{2028}", Characters),
            ("https://app.example.com/app\u{7f}", Characters),
            ("https://app.example.com\\@evil.example/app", Characters),
            ("https://app.example.com/app\\..\\admin", Characters),
            ("https://user@app.example.com/app", Userinfo),
            ("https://:pw@app.example.com/app", Userinfo),
            ("https://@app.example.com/app", Userinfo),
            ("https://app.example.com@evil.example/app", Userinfo),
            ("https://app.example.com/app/%2e%2e/admin", EncodedDotOrSlash),
            ("https://app.example.com/app/%2E./admin", EncodedDotOrSlash),
            ("https://app.example.com/app%2Fx", EncodedDotOrSlash),
            ("https://app.example.com/app/%5c..", EncodedDotOrSlash),
            ("https://app%2eexample.com/app", EncodedDotOrSlash),
            ("javascript:alert(1)//https://app.example.com/app", NotHttpUrl),
            ("//app.example.com/app", NotHttpUrl),
            ("/app", NotHttpUrl),
            ("app", NotHttpUrl),
            ("ftp://app.example.com/app", NotHttpUrl),
            ("https:app.example.com/app", NotHttpUrl),
            ("https:/app.example.com/app", NotHttpUrl),
            ("https:///app.example.com/app", NotHttpUrl),
            ("https://?x", NotHttpUrl),
            ("https://app.example.com:99999/app", Unparsable),
            ("https://app.example.com:123456/app", Unparsable),
            ("https://app.example.com:/app", Unparsable),
            ("https://app.example.com:x/app", Unparsable),
            ("https://app.example.com:+1/app", Unparsable),
            ("https://app.example.com:1:2/app", Unparsable),
            ("https://app.example.com./app", Unparsable),
            ("https://app..example.com/app", Unparsable),
            ("https://.app.example.com/app", Unparsable),
            ("https://äpp.example.com/app", Unparsable),
            ("https://app.example.com%00/app", Unparsable),
            ("https://app.example!.com/app", Unparsable),
            ("https://[::1/app", Unparsable),
            ("https://[]/app", Unparsable),
            ("https://[::1]x/app", Unparsable),
            ("https://[::g]/app", Unparsable),
            ("https://app.example.com/a%zzb", Unparsable),
            ("https://app.example.com/app/%2", Unparsable),
            ("https://app.example.com/app?x=%", Unparsable),
            ("https://app.example.com/app#%g0", Unparsable),
        ] {
            assert_eq!(urls.check(given), Err(error), "{given:?}");
        }
    }

    #[test]
    fn an_entry_without_a_path_allows_its_whole_origin_and_one_ending_in_a_slash_allows_what_is_below() {
        let urls = ReturnUrls::parse("https://a.example").unwrap();
        assert!(urls.check("https://a.example/any/path").is_ok());
        let urls = ReturnUrls::parse("https://a.example/app/").unwrap();
        assert!(urls.check("https://a.example/app/").is_ok());
        assert!(urls.check("https://a.example/app/x").is_ok());
        assert_eq!(urls.check("https://a.example/app"), Err(ReturnToError::NotAllowed));
    }

    #[test]
    fn entries_are_normalized_as_return_tos_are() {
        let urls = ReturnUrls::parse("HTTP://LocalHost:80/%61pp,http://[::1]:8080/").unwrap();
        assert_eq!(urls.check("http://localhost/app/x").as_deref(), Ok("http://localhost/app/x"));
        assert_eq!(urls.check("http://[::1]:8080/x").as_deref(), Ok("http://[::1]:8080/x"));
        assert_eq!(urls.check("http://[::1]/x"), Err(ReturnToError::NotAllowed));
    }

    #[test]
    fn the_allow_list_names_a_bad_entry_by_position_and_never_repeats_it() {
        for (value, expected) in [
            ("", "is empty"),
            (" , ", "item 1 is empty"),
            ("https://a.example/,,https://b.example/", "item 2 is empty"),
            ("https://a.example/,", "item 2 is empty"),
            ("https://a.example/, https://secret@b.example/", "item 2 has a user name"),
            ("https://a.example/?secret=1", "item 1 has a query or fragment"),
            ("https://a.example/#secret", "item 1 has a query or fragment"),
            ("https://a.example/secret/..", "item 1 has a `.` or `..` path segment"),
            ("https://a.example/secret/./x", "item 1 has a `.` or `..` path segment"),
            ("https://a.example/, https://b.example/, secret.example", "item 3 is not an absolute"),
            ("https://a.example/secret%2fx", "item 1 has a percent-encoded"),
            ("https://secret.example:99999/", "item 1 has a bad host"),
        ] {
            let error = ReturnUrls::parse(value).unwrap_err();
            assert!(error.starts_with(expected), "{value}: {error}");
            assert!(!error.contains("secret"), "{value}: {error}");
        }
    }

    #[test]
    fn each_refusal_has_its_own_code_for_the_logs() {
        let codes: std::collections::BTreeSet<&str> = [
            ReturnToError::Length,
            ReturnToError::Characters,
            ReturnToError::NotHttpUrl,
            ReturnToError::Userinfo,
            ReturnToError::EncodedDotOrSlash,
            ReturnToError::Unparsable,
            ReturnToError::NotAllowed,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes.len(), 7);
        assert!(codes.iter().all(|c| c.starts_with("return_to_")), "{codes:?}");
    }

    #[test]
    fn dot_segments_are_removed_as_rfc_3986_section_5_2_4_does() {
        // RFC 3986 §5.2.4's examples, and §5.4's normal and abnormal ones as paths.
        for (path, expected) in [
            ("/a/b/c/./../../g", "/a/g"),
            ("/b/c/./g", "/b/c/g"),
            ("/b/c/.", "/b/c/"),
            ("/b/c/./", "/b/c/"),
            ("/b/c/..", "/b/"),
            ("/b/c/../", "/b/"),
            ("/b/c/../g", "/b/g"),
            ("/b/c/../..", "/"),
            ("/b/c/../../../g", "/g"),
            ("/b/c/g.", "/b/c/g."),
            ("/b/c/.g", "/b/c/.g"),
            ("/b/c/g..", "/b/c/g.."),
            ("/b/c/./../g", "/b/g"),
            ("/b/c/./g/.", "/b/c/g/"),
            ("/b/c/g/./h", "/b/c/g/h"),
            ("/b/c/g/../h", "/b/c/h"),
            ("/..", "/"),
            ("//a//../b", "//a/b"),
        ] {
            assert_eq!(remove_dot_segments(path), expected, "{path}");
        }
    }

    #[test]
    fn add_query_appends_before_the_fragment_with_the_right_separator() {
        let connected = [("connected", "microsoft")];
        for (url, expected) in [
            ("https://a.example/app", "https://a.example/app?connected=microsoft"),
            ("https://a.example/app?", "https://a.example/app?connected=microsoft"),
            ("https://a.example/app?tab=1", "https://a.example/app?tab=1&connected=microsoft"),
            ("https://a.example/app?tab=1&", "https://a.example/app?tab=1&connected=microsoft"),
            ("https://a.example/#/settings", "https://a.example/?connected=microsoft#/settings"),
            ("https://a.example/?tab=1#/s?x=1", "https://a.example/?tab=1&connected=microsoft#/s?x=1"),
        ] {
            assert_eq!(add_query(url, &connected), expected, "{url}");
        }
    }

    #[test]
    fn add_query_form_encodes_and_replaces_a_parameter_of_the_same_name() {
        assert_eq!(
            add_query(
                "https://a.example/?error=x&keep=%2F&connected=microsoft&connected",
                &[("error", "account_mismatch")]
            ),
            "https://a.example/?keep=%2F&connected=microsoft&connected&error=account_mismatch"
        );
        assert_eq!(
            add_query("https://a.example/?e%72ror=x&errors=1", &[("error", "a b&c=d/é")]),
            "https://a.example/?errors=1&error=a+b%26c%3Dd%2F%C3%A9"
        );
        assert_eq!(add_query("https://a.example/?a=1&&b=2", &[]), "https://a.example/?a=1&b=2");
    }
}
