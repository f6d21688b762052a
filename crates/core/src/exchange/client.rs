//! Who is calling `POST /token`: a back end of `TOKEN_EXCHANGE_CLIENTS`, authenticated with HTTP
//! Basic as RFC 6749 §2.3.1 has it (the id and the secret each form-urlencoded, then joined by `:`
//! and base64-encoded; ZITADEL's client ids contain `@`).

use base64::Engine;

use crate::config::ExchangeClient;
use crate::connect::id_token::same_in_constant_time;

/// The client whose id and secret the `Authorization` header carries, if one of `clients`. The
/// secret is compared in constant time, and every client's secret is compared, so the time taken
/// says neither which id matched nor how much of a secret did.
pub fn authenticate<'c>(clients: &'c [ExchangeClient], authorization: Option<&str>) -> Option<&'c ExchangeClient> {
    let (id, secret) = basic_credentials(authorization?)?;
    let mut found = None;
    for client in clients {
        let secret_matches = same_in_constant_time(&secret, client.secret.expose());
        if secret_matches && client.id == id {
            found = Some(client);
        }
    }
    found
}

/// The id and secret of an HTTP Basic `Authorization` value, form-urldecoded.
pub fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a space).
fn form_decode(value: &str) -> String {
    form_urlencoded::parse(format!("v={value}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn clients() -> Vec<ExchangeClient> {
        vec![
            ExchangeClient { id: "312909075212468632@backend".into(), secret: Secret::new("s3cret:with+more") },
            ExchangeClient { id: "other".into(), secret: Secret::new("two") },
        ]
    }

    fn basic(raw: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }

    #[test]
    fn the_credentials_are_form_urlencoded_inside_basic() {
        let clients = clients();
        let header = basic("312909075212468632%40backend:s3cret%3Awith%2Bmore");
        assert_eq!(authenticate(&clients, Some(&header)).map(|c| c.id.as_str()), Some("312909075212468632@backend"));
        // Clients that skip the encoding still work when nothing in the pair needed it.
        assert_eq!(authenticate(&clients, Some(&basic("other:two"))).map(|c| c.id.as_str()), Some("other"));
        assert_eq!(
            authenticate(&clients, Some(&basic("other:two")).map(|h| h.replace("Basic", "basic")).as_deref())
                .map(|c| c.id.as_str()),
            Some("other")
        );
    }

    #[test]
    fn a_wrong_missing_or_crossed_secret_is_refused() {
        let clients = clients();
        for header in [
            basic("other:wrong"),
            basic("other:"),
            basic("other"),
            basic("other:s3cret:with+more"), // another client's secret
            basic("nobody:two"),
            "Bearer abc".to_string(),
            "Basic !!!".to_string(),
            String::new(),
        ] {
            assert!(authenticate(&clients, Some(&header)).is_none(), "{header}");
        }
        assert!(authenticate(&clients, None).is_none());
        assert!(authenticate(&[], Some(&basic("other:two"))).is_none());
    }
}
