//! How large the things ZITADEL sends may be.

/// The largest body accepted. ZITADEL's payloads are a few KiB; metadata values are capped well
/// below this by ZITADEL itself.
pub const MAX_BODY_BYTES: usize = 1 << 20;
