//! Values that must never be printed: credentials and keys. Their `Debug` shows nothing of them,
//! and they have no `Display`.

use std::fmt;

/// A credential. `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One signing key of a target (its UTF-8 bytes key the MAC).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(String);

impl SigningKey {
    pub fn new(key: impl Into<String>) -> Self {
        SigningKey(key.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// One private key of the target, for encrypted payloads: its PKCS#8 DER, and the id ZITADEL
/// gave its public key when that is known. `Debug` shows the id only.
#[derive(Clone, PartialEq, Eq)]
pub struct DecryptionKey {
    kid: Option<String>,
    pkcs8: Vec<u8>,
}

impl DecryptionKey {
    pub fn new(kid: Option<String>, pkcs8: Vec<u8>) -> Self {
        DecryptionKey { kid, pkcs8 }
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }
}

impl fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}
