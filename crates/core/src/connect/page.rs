//! The flow's outcomes, and the page shown for one when there is no trusted `return_to` to redirect
//! to (it was missing, refused, or lost with the flow's state). With a trusted `return_to` the
//! worker redirects instead, adding `connected=microsoft` or `error=<code>` (`return_to::add_query`).
//!
//! The page is static text: no script, no external resource, every piece of text HTML-escaped, and
//! a Content-Security-Policy that allows only its own inline style, so nothing on it can run or
//! load even if a message ever carried input.

/// The page's only style, inline; [`CONTENT_SECURITY_POLICY`] allows exactly this text by hash.
const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;\
color:#1b1b1b;background:#fff}h1{font-size:1.4rem}.status{color:#595959;font-size:.875rem}";

/// The policy to send with the page: nothing loads or runs but the inline style above (by its
/// SHA-256), no form posts, no framing (clickjacking), no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'sha256-rrU7YW8TII4GTpfzJ273T188BKiGRAgfH8Ci2/h+h5c='; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The headers to send with the page. `no-store`: the page answers a callback whose URL holds a
/// one-time code; `no-referrer`: that URL must not travel further.
pub const PAGE_HEADERS: [(&str, &str); 5] = [
    ("content-type", "text/html; charset=utf-8"),
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("cache-control", "no-store"),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
];

/// A small HTML page: the title, what happened, what to do, and the status in small print. All text
/// is HTML-escaped; `<meta name="viewport">` makes it readable on a phone.
pub fn page(status: u16, title: &str, message: &str, what_to_do: &str) -> String {
    let (title, message, what_to_do) = (escape(title), escape(message), escape(what_to_do));
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"robots\" content=\"noindex\">\n\
<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n<p>{message}</p>\n\
<p>{what_to_do}</p>\n<p class=\"status\">HTTP {status}</p>\n</main>\n</body>\n</html>\n"
    )
}

/// Text made safe in HTML element content and in quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How the flow ended when it did not connect: the `error` code of the redirect to `return_to`,
/// and the page shown when there is nowhere to redirect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user cancelled a sign-in or did not consent (ZITADEL or Microsoft answered
    /// `error=access_denied`).
    AccessDenied,
    /// The Microsoft account that signed in is not the one linked to the user in ZITADEL.
    AccountMismatch,
    /// ZITADEL or Microsoft failed or did not answer in time.
    UpstreamUnavailable,
    /// The request was malformed, or its state missing, expired or already used.
    InvalidRequest,
}

impl Refusal {
    /// Every outcome, for tests and documentation.
    pub const ALL: [Refusal; 4] =
        [Refusal::AccessDenied, Refusal::AccountMismatch, Refusal::UpstreamUnavailable, Refusal::InvalidRequest];

    /// The `error` parameter of the redirect, and the code for logs.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::AccessDenied => "access_denied",
            Refusal::AccountMismatch => "account_mismatch",
            Refusal::UpstreamUnavailable => "upstream_unavailable",
            Refusal::InvalidRequest => "invalid_request",
        }
    }

    /// The status of the page.
    pub fn status(self) -> u16 {
        match self {
            Refusal::AccessDenied | Refusal::AccountMismatch => 403,
            Refusal::UpstreamUnavailable => 502,
            Refusal::InvalidRequest => 400,
        }
    }

    /// The page's title, what happened and what to do, in words for the person at the browser.
    pub fn text(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Refusal::AccessDenied => (
                "Microsoft account not connected",
                "The sign-in was cancelled, or permission was not given.",
                "Go back to the application and try again. If your organization has to approve the app, \
                 ask your administrator.",
            ),
            Refusal::AccountMismatch => (
                "Wrong Microsoft account",
                "The Microsoft account you signed in with is not the one linked to your account.",
                "Go back to the application and try again, signing in to Microsoft with the account linked \
                 to your account.",
            ),
            Refusal::UpstreamUnavailable => (
                "Sign-in service unavailable",
                "A sign-in service did not answer in time, so your Microsoft account was not connected.",
                "Wait a few minutes, then go back to the application and try again.",
            ),
            Refusal::InvalidRequest => (
                "This link cannot be used",
                "The request was incomplete, has expired, or was already used.",
                "Go back to the application and start connecting your Microsoft account again.",
            ),
        }
    }

    /// The page for this outcome.
    pub fn page(self) -> String {
        let (title, message, what_to_do) = self.text();
        page(self.status(), title, message, what_to_do)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn injected_markup_is_escaped_everywhere() {
        let html = page(400, "<script>alert(1)</script>", "a & b \"quoted\" 'single'", "<img src=x onerror=alert(1)>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"), "{html}");
        assert!(html.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>"), "{html}");
        assert!(html.contains("<p>a &amp; b &quot;quoted&quot; &#39;single&#39;</p>"), "{html}");
        assert!(html.contains("<p>&lt;img src=x onerror=alert(1)&gt;</p>"), "{html}");
    }

    #[test]
    fn the_page_is_for_phones_and_loads_nothing() {
        let html = page(502, "t", "m", "w");
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
        assert!(html.contains("<p class=\"status\">HTTP 502</p>"));
        for loads in ["<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import"] {
            assert!(!html.contains(loads), "{loads}");
        }
    }

    #[test]
    fn the_content_security_policy_allows_exactly_the_inline_style() {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        assert!(CONTENT_SECURITY_POLICY.contains(&format!("style-src 'sha256-{hash}';")), "{hash}");
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none';"));
        assert!(page(400, "t", "m", "w").contains(&format!("<style>{STYLE}</style>")));
        assert!(PAGE_HEADERS.contains(&("content-security-policy", CONTENT_SECURITY_POLICY)));
    }

    #[test]
    fn each_outcome_has_its_code_status_and_words() {
        let codes: Vec<&str> = Refusal::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes, ["access_denied", "account_mismatch", "upstream_unavailable", "invalid_request"]);
        let statuses: Vec<u16> = Refusal::ALL.iter().map(|r| r.status()).collect();
        assert_eq!(statuses, [403, 403, 502, 400]);
        let titles: std::collections::BTreeSet<&str> = Refusal::ALL.iter().map(|r| r.text().0).collect();
        assert_eq!(titles.len(), 4, "one title per outcome");
        let html = Refusal::AccountMismatch.page();
        assert!(html.contains("<h1>Wrong Microsoft account</h1>"), "{html}");
        assert!(html.contains("HTTP 403"), "{html}");
    }
}
