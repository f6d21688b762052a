//! The key pairs of a target's payload encryption (`PAYLOAD_TYPE_JWE`): made on this machine, the
//! public key sent to ZITADEL, the private key kept in a local key file and stored as the worker's
//! secret `PAYLOAD_DECRYPTION_KEY`.
//!
//! A Worker secret cannot be read back, so the key file is the only copy of a private key besides
//! the worker: a rotation needs the old key from it to store `new,old`. Each line is
//! `<key id>:<base64 of the PKCS#8 DER>`, the form the worker reads, newest first; the file is
//! written with mode 0600 (through a new file, renamed over the old one) and refused when others
//! may read it.
//!
//! Also made here, for `--connect`: the worker's token sealing key (`TOKEN_SEALING_KEY`), 32 bytes
//! from the same random number generator. No file keeps it: the tool stores it only when the
//! worker has none, and never replaces it. And for `--exchange-client`: each back end's secret in
//! `TOKEN_EXCHANGE_CLIENTS`, 32 bytes from it too, which the tool prints once and keeps nowhere.

use std::fmt;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use getrandom::SysRng;
use p256::elliptic_curve::Generate;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

use crate::error::Error;
use crate::secret::Secret;
use crate::types::KeyType;

/// The default key file, in the current directory (the repository's root under `npm run setup`).
pub const DEFAULT_KEY_FILE: &str = ".payload-decryption-keys";
/// ZITADEL encrypts with RSA-OAEP-256 for an RSA key; 2048 bits is the usual size for it.
pub const RSA_BITS: usize = 2048;

/// A new key pair: the public key as PEM (SPKI, `BEGIN PUBLIC KEY`), the only form ZITADEL takes,
/// and the private key as the base64 of its PKCS#8 DER.
pub struct KeyPair {
    pub public_pem: String,
    pub private: Secret,
}

/// One line of the key file: a private key and the id ZITADEL gave its public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key_id: String,
    /// The base64 of the PKCS#8 DER.
    pub private: Secret,
}

impl Entry {
    /// `<key id>:<base64 DER>`, one entry of `PAYLOAD_DECRYPTION_KEY` and one line of the key file.
    pub fn to_secret(&self) -> Secret {
        Secret::new(format!("{}:{}", self.key_id, self.private.expose()))
    }
}

/// A new token sealing key: its id and the secret's value, `<key id>:<base64 of 32 random bytes>`.
pub struct SealingKey {
    pub key_id: String,
    pub value: Secret,
}

/// The number of random bytes of a token sealing key (an AES-256 key).
pub const SEALING_KEY_BYTES: usize = 32;
/// The number of random bytes of a back end's secret in `TOKEN_EXCHANGE_CLIENTS`.
pub const CLIENT_SECRET_BYTES: usize = 32;

/// Making key pairs and keeping their private keys: the real one on this machine ([`LocalKeys`]),
/// a printing one for `--dry-run`.
pub trait Keys {
    /// A new token sealing key.
    fn sealing_key(&mut self) -> Result<SealingKey, Error>;
    /// A new secret for the back end `client_id` (named for messages only).
    fn client_secret(&mut self, client_id: &str) -> Result<Secret, Error>;
    /// A new key pair of this type.
    fn generate(&mut self, key_type: KeyType) -> Result<KeyPair, Error>;
    /// The key file's entries, newest first; none when there is no key file yet.
    fn load(&mut self) -> Result<Vec<Entry>, Error>;
    /// Replaces the key file's entries.
    fn save(&mut self, entries: &[Entry]) -> Result<(), Error>;
    /// The key file's path, for messages.
    fn file(&self) -> String;
    /// The public key (SPKI PEM) of the private key of `entry`: a rotation gives it to the new
    /// target.
    fn public_pem(&mut self, entry: &Entry) -> Result<String, Error>;
}

/// Key pairs from the operating system's random number generator, the key file on disk.
pub struct LocalKeys {
    path: PathBuf,
}

impl LocalKeys {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalKeys { path: path.into() }
    }

    fn error(&self, detail: impl Into<String>) -> Error {
        Error::KeyFile { path: self.file(), detail: detail.into() }
    }
}

impl Keys for LocalKeys {
    fn sealing_key(&mut self) -> Result<SealingKey, Error> {
        sealing_key(SystemTime::now())
    }

    fn client_secret(&mut self, _client_id: &str) -> Result<Secret, Error> {
        client_secret()
    }

    fn generate(&mut self, key_type: KeyType) -> Result<KeyPair, Error> {
        generate(key_type)
    }

    fn public_pem(&mut self, entry: &Entry) -> Result<String, Error> {
        public_pem(entry).ok_or_else(|| {
            self.error(format!("holds a private key for {} that is neither RSA nor EC P-256 PKCS#8", entry.key_id))
        })
    }

    fn load(&mut self) -> Result<Vec<Entry>, Error> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.error(format!("cannot be read: {e}"))),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&self.path).map_err(|e| self.error(e.to_string()))?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(self.error(format!(
                    "holds private keys but others may read or change it (mode {:o}): run `chmod 600 {}` if no one else did, else make new keys with --rotate-encryption-key",
                    mode & 0o777,
                    self.file()
                )));
            }
        }
        parse(&text).map_err(|line| {
            self.error(format!(
                "line {line} is not \"<key id>:<base64 of a PKCS#8 private key>\" (the file is damaged)"
            ))
        })
    }

    fn save(&mut self, entries: &[Entry]) -> Result<(), Error> {
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        // A stale one from an interrupted run; `create_new` below will not write through a link.
        let _ = fs::remove_file(&temporary);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options.open(&temporary).and_then(|mut file| {
            file.write_all(render(entries).as_bytes())?;
            file.sync_all()
        });
        let result = written.and_then(|()| fs::rename(&temporary, &self.path));
        if let Err(e) = result {
            let _ = fs::remove_file(&temporary);
            return Err(self.error(format!("cannot be written: {e}")));
        }
        Ok(())
    }

    fn file(&self) -> String {
        self.path.display().to_string()
    }
}

/// A new key pair from the operating system's random number generator.
pub fn generate(key_type: KeyType) -> Result<KeyPair, Error> {
    let failed = |e: &dyn fmt::Display| Error::KeyGeneration { key_type: key_type.to_string(), detail: e.to_string() };
    let (private_der, public_pem) = match key_type {
        KeyType::Rsa => {
            let private = rsa::PrivateKey::new(&mut SysRng, RSA_BITS).map_err(|e| failed(&e))?;
            let der = private.to_pkcs8_der().map_err(|e| failed(&e))?;
            let pem = private.to_public_key().to_public_key_pem(LineEnding::LF).map_err(|e| failed(&e))?;
            (der, pem)
        }
        KeyType::P256 => {
            let private = p256::SecretKey::try_generate_from_rng(&mut SysRng).map_err(|e| failed(&e))?;
            let der = private.to_pkcs8_der().map_err(|e| failed(&e))?;
            let pem = private.public_key().to_public_key_pem(LineEnding::LF).map_err(|e| failed(&e))?;
            (der, pem)
        }
    };
    Ok(KeyPair { public_pem, private: Secret::new(STANDARD.encode(private_der.as_bytes())) })
}

/// The public key (SPKI PEM) of an entry's private key (RSA or EC P-256, PKCS#8); `None` when it is
/// neither.
pub fn public_pem(entry: &Entry) -> Option<String> {
    use rsa::pkcs8::DecodePrivateKey;
    let der = STANDARD.decode(entry.private.expose()).ok()?;
    if let Ok(private) = rsa::PrivateKey::from_pkcs8_der(&der) {
        return private.to_public_key().to_public_key_pem(LineEnding::LF).ok();
    }
    let private = p256::SecretKey::from_pkcs8_der(&der).ok()?;
    private.public_key().to_public_key_pem(LineEnding::LF).ok()
}

/// A new token sealing key from the operating system's random number generator, its id `k` and
/// the date of `now` (UTC, `k20250131`): the worker tells keys apart by it once there are several.
pub fn sealing_key(now: SystemTime) -> Result<SealingKey, Error> {
    let mut bytes = [0u8; SEALING_KEY_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| Error::SealingKey { detail: e.to_string() })?;
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::SealingKey { detail: "the system clock is before 1970".into() })?;
    let key_id = sealing_key_id(seconds.as_secs());
    let value = Secret::new(format!("{key_id}:{}", STANDARD.encode(bytes)));
    Ok(SealingKey { key_id, value })
}

/// A new back end secret from the operating system's random number generator: the base64url,
/// without padding, of 32 random bytes (43 characters, none of them `,` or `:`, which separate the
/// entries of `TOKEN_EXCHANGE_CLIENTS`, and none that HTTP Basic's form-urlencoding changes).
pub fn client_secret() -> Result<Secret, Error> {
    let mut bytes = [0u8; CLIENT_SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| Error::ClientSecret { detail: e.to_string() })?;
    Ok(Secret::new(URL_SAFE_NO_PAD.encode(bytes)))
}

/// `k` and the UTC date of `unix_seconds` as `yyyymmdd`.
pub fn sealing_key_id(unix_seconds: u64) -> String {
    let (year, month, day) = civil_date(unix_seconds / 86_400);
    format!("k{year:04}{month:02}{day:02}")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

const HEADER: &str = "\
# zitadel-claims-setup: the private keys of the target's payload encryption (PAYLOAD_TYPE_JWE),
# also stored as the worker's secret PAYLOAD_DECRYPTION_KEY. Keep this file to yourself (mode 0600)
# and out of version control: the tool needs it to rotate the key. One \"<key id>:<base64 of the
# PKCS#8 DER>\" a line, newest first.
";

/// The key file's text.
pub fn render(entries: &[Entry]) -> String {
    let mut text = HEADER.to_string();
    for entry in entries {
        text.push_str(entry.to_secret().expose());
        text.push('\n');
    }
    text
}

/// The entries of a key file's text, or the number of the first line that is none (`#` lines and
/// blank lines are skipped).
pub fn parse(text: &str) -> Result<Vec<Entry>, usize> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = line.split_once(':').and_then(|(key_id, private)| {
            let id_ok = !key_id.is_empty() && key_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            // A DER SEQUENCE; the worker and ZITADEL's public key tell the rest.
            let der_ok = STANDARD.decode(private).is_ok_and(|der| der.first() == Some(&0x30));
            (id_ok && der_ok).then(|| Entry { key_id: key_id.to_string(), private: Secret::new(private) })
        });
        entries.push(entry.ok_or(number + 1)?);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};

    fn der(pair: &KeyPair) -> Vec<u8> {
        STANDARD.decode(pair.private.expose()).unwrap()
    }

    #[test]
    fn rsa_pairs_are_2048_bit_pkcs8_and_spki_pem_of_one_key() {
        let pair = generate(KeyType::Rsa).unwrap();
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{}", pair.public_pem);
        assert!(pair.public_pem.ends_with("-----END PUBLIC KEY-----\n"));
        let private = rsa::PrivateKey::from_pkcs8_der(&der(&pair)).unwrap();
        let public = rsa::PublicKey::from_public_key_pem(&pair.public_pem).unwrap();
        assert_eq!(private.to_public_key(), public);
        assert_eq!(rsa::traits::PublicKeyParts::size(&public), RSA_BITS / 8);
        let other = generate(KeyType::Rsa).unwrap();
        assert_ne!(other.public_pem, pair.public_pem, "fresh randomness each time");
    }

    #[test]
    fn the_public_key_of_an_entry_is_the_one_made_with_it() {
        for key_type in [KeyType::Rsa, KeyType::P256] {
            let pair = generate(key_type).unwrap();
            let entry = Entry { key_id: "1".into(), private: pair.private };
            assert_eq!(public_pem(&entry).unwrap(), pair.public_pem, "{key_type}");
        }
        assert_eq!(public_pem(&Entry { key_id: "1".into(), private: Secret::new("AAAA") }), None);
    }

    #[test]
    fn p256_pairs_are_pkcs8_and_spki_pem_of_one_key() {
        let pair = generate(KeyType::P256).unwrap();
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{}", pair.public_pem);
        let private = p256::SecretKey::from_pkcs8_der(&der(&pair)).unwrap();
        let public = p256::PublicKey::from_public_key_pem(&pair.public_pem).unwrap();
        assert_eq!(private.public_key(), public);
        assert_ne!(generate(KeyType::P256).unwrap().public_pem, pair.public_pem);
    }

    #[test]
    fn a_sealing_key_is_its_id_a_colon_and_the_standard_base64_of_32_random_bytes() {
        // 2025-01-31T23:59:59Z
        let now = UNIX_EPOCH + std::time::Duration::from_secs(1_738_367_999);
        let key = sealing_key(now).unwrap();
        assert_eq!(key.key_id, "k20250131");
        let (id, encoded) = key.value.expose().split_once(':').unwrap();
        assert_eq!(id, "k20250131");
        assert_eq!(encoded.len(), 44, "standard base64 with padding");
        assert_eq!(STANDARD.decode(encoded).unwrap().len(), SEALING_KEY_BYTES);
        assert_ne!(sealing_key(now).unwrap().value, key.value, "fresh randomness each time");
        assert_eq!(format!("{:?}", key.value), "Secret(..)");
    }

    #[test]
    fn a_client_secret_is_the_unpadded_base64url_of_32_random_bytes() {
        let secret = client_secret().unwrap();
        assert_eq!(secret.expose().len(), 43);
        assert!(secret.expose().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "base64url");
        assert_eq!(URL_SAFE_NO_PAD.decode(secret.expose()).unwrap().len(), CLIENT_SECRET_BYTES);
        assert_ne!(client_secret().unwrap(), secret, "fresh randomness each time");
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }

    #[test]
    fn the_sealing_key_id_is_the_utc_date() {
        assert_eq!(sealing_key_id(0), "k19700101");
        assert_eq!(sealing_key_id(951_782_400), "k20000229", "a leap day");
        assert_eq!(sealing_key_id(951_868_799), "k20000229");
        assert_eq!(sealing_key_id(951_868_800), "k20000301");
        assert_eq!(sealing_key_id(1_735_689_600), "k20250101");
        assert_eq!(sealing_key_id(4_107_542_399), "k21000228", "2100 is no leap year");
        assert_eq!(sealing_key_id(4_107_542_400), "k21000301");
    }

    fn entry(id: &str, der: &[u8]) -> Entry {
        Entry { key_id: id.into(), private: Secret::new(STANDARD.encode(der)) }
    }

    #[test]
    fn key_file_text_round_trips_and_names_a_damaged_line() {
        let entries = vec![entry("300", &[0x30, 1, 2]), entry("200", &[0x30, 3])];
        let text = render(&entries);
        assert!(text.starts_with("# zitadel-claims-setup"), "{text}");
        assert!(text.ends_with("300:MAEC\n200:MAM=\n"), "{text}");
        assert_eq!(parse(&text).unwrap(), entries);
        assert_eq!(parse("\n  # note\n300:MAEC\n\n").unwrap(), entries[..1]);
        assert_eq!(parse("300:MAEC\nnot an entry\n"), Err(2));
        assert_eq!(parse("300:not base64!"), Err(1));
        assert_eq!(parse(":MAEC"), Err(1));
        assert_eq!(parse("300:AAEC"), Err(1), "not a DER SEQUENCE");
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("zitadel-claims-setup-keys-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_key_file_is_absent_then_saved_and_loaded_again() {
        let dir = TempDir::new("roundtrip");
        let path = dir.0.join(DEFAULT_KEY_FILE);
        let mut keys = LocalKeys::new(&path);
        assert_eq!(keys.load().unwrap(), vec![]);
        let entries = vec![entry("2", &[0x30, 9]), entry("1", &[0x30, 8])];
        keys.save(&entries).unwrap();
        assert_eq!(keys.load().unwrap(), entries);
        keys.save(&entries[..1]).unwrap();
        assert_eq!(LocalKeys::new(&path).load().unwrap(), entries[..1]);
        assert!(!dir.0.join(format!("{DEFAULT_KEY_FILE}.tmp")).exists(), "no temporary file left behind");
        assert_eq!(keys.file(), path.display().to_string());
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_written_0600_and_refused_when_others_may_read_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("mode");
        let path = dir.0.join("keys");
        let mut keys = LocalKeys::new(&path);
        keys.save(&[entry("1", &[0x30, 1])]).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        // Saving over a file someone made readable makes it private again.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = keys.load().unwrap_err().to_string();
        assert!(err.contains("mode 644") && err.contains("chmod 600"), "{err}");
        assert!(!err.contains("MAE"), "no key material in messages: {err}");
        keys.save(&[entry("1", &[0x30, 1])]).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(keys.load().unwrap().len(), 1);
    }

    #[test]
    fn a_damaged_key_file_is_named_without_its_content() {
        let dir = TempDir::new("damaged");
        let path = dir.0.join("keys");
        let mut keys = LocalKeys::new(&path);
        keys.save(&[]).unwrap();
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("1:MAE=\nsecret-looking-garbage\n");
        fs::write(&path, text).unwrap();
        let err = keys.load().unwrap_err().to_string();
        assert!(err.contains("line 6 is not"), "{err}");
        assert!(!err.contains("garbage"), "{err}");
    }
}
