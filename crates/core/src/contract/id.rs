//! What a ZITADEL resource id looks like: letters, digits, `_` and `-`, at most 200 (the API's own
//! `max_len` for user and organization ids). ZITADEL makes numeric ids, and accepts custom ones of
//! those characters. An id from a payload or a setting is put into a URL path or a header only
//! when it looks so: percent-encoding alone lets `..` through.

/// The most characters of a ZITADEL resource id.
pub const MAX_ID_CHARS: usize = 200;

/// True when `id` looks as ZITADEL's ids do.
pub fn is_zitadel_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
