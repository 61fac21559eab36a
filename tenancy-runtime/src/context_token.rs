//! The signed context (docs/context.md, contract v3): the key the runtime signs with and the
//! tokens it mints for `install_context`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::Error;

/// The environment variable holding the context key as `<kid>:<hex secret>`.
pub const CONTEXT_KEY_ENV: &str = "TENANCY_CONTEXT_KEY";
/// The environment variable naming a file that holds the context key as `<kid>:<hex secret>`.
pub const CONTEXT_KEY_FILE_ENV: &str = "TENANCY_CONTEXT_KEY_FILE";

/// The secret the runtime signs context tokens with, and its id in the database's key table
/// (`tenancy key install`). Its `Debug` output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ContextKey {
    kid: String,
    secret: Vec<u8>,
}

impl ContextKey {
    /// A key from its id (`[A-Za-z0-9_-]{1,64}`) and secret (at least 32 bytes).
    pub fn new(kid: impl Into<String>, secret: Vec<u8>) -> Result<Self, Error> {
        let kid = kid.into();
        let kid_ok = !kid.is_empty()
            && kid.len() <= 64
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !kid_ok {
            return Err(Error::Misconfigured(format!(
                "context key id {kid:?} does not match [A-Za-z0-9_-]{{1,64}}"
            )));
        }
        if secret.len() < 32 {
            return Err(Error::Misconfigured(format!(
                "context key {kid:?} has {} bytes of secret; at least 32 are needed",
                secret.len()
            )));
        }
        Ok(Self { kid, secret })
    }

    /// Parses `<kid>:<hex secret>` (what `tenancy key install --generate` writes).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        let (kid, hex) = text.split_once(':').ok_or_else(|| {
            Error::Misconfigured("a context key must be written as <kid>:<hex secret>".to_owned())
        })?;
        let secret = decode_hex(hex).ok_or_else(|| {
            Error::Misconfigured(format!(
                "the secret of context key {kid:?} is not an even number of hex digits"
            ))
        })?;
        Self::new(kid, secret)
    }

    /// The key from `TENANCY_CONTEXT_KEY` or, when that is unset, from the file named by
    /// `TENANCY_CONTEXT_KEY_FILE`; `Ok(None)` when neither is set.
    pub fn from_env() -> Result<Option<Self>, Error> {
        let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(text) = set(CONTEXT_KEY_ENV) {
            return Self::parse(&text).map(Some).map_err(|err| {
                Error::Misconfigured(format!("{CONTEXT_KEY_ENV}: {}", message(err)))
            });
        }
        if let Some(path) = set(CONTEXT_KEY_FILE_ENV) {
            let text = std::fs::read_to_string(&path).map_err(|err| {
                Error::Misconfigured(format!("{CONTEXT_KEY_FILE_ENV}: cannot read {path}: {err}"))
            })?;
            return Self::parse(&text).map(Some).map_err(|err| {
                Error::Misconfigured(format!("{CONTEXT_KEY_FILE_ENV} ({path}): {}", message(err)))
            });
        }
        Ok(None)
    }

    /// The key's id, as recorded in the database's key table.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Lower-case hex HMAC-SHA256 of `<domain>;<body>`.
    fn sign(&self, domain: &str, body: &str) -> Result<String, Error> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .map_err(|_| Error::Misconfigured("unusable context key".to_owned()))?;
        mac.update(domain.as_bytes());
        mac.update(b";");
        mac.update(body.as_bytes());
        Ok(encode_hex(&mac.finalize().into_bytes()))
    }

    /// A token carrying `claims` (docs/context.md: `tenant;user;{..};..`), valid until
    /// `now + lifetime` on any backend: `<hmac>.<kid>;<expires>;*;<claims>`.
    pub(crate) fn mint(&self, claims: &str, lifetime: Duration) -> Result<String, Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Misconfigured("the system clock is before 1970".to_owned()))?;
        self.mint_until(claims, (now + lifetime).as_secs())
    }

    /// The token [`Tenancy::begin`](crate::Tenancy::begin) mints, for a fixed expiry
    /// (`expires`, unix seconds): `<hmac>.<kid>;<expires>;*;<claims>`. A pure function, so
    /// other runtimes can be checked against it byte for byte
    /// (`tests/python/context_vectors.json`, docs/python.md). The token is a live credential
    /// until it expires: never log it.
    pub fn mint_until(&self, claims: &str, expires: u64) -> Result<String, Error> {
        let body = format!("{};{expires};*;{claims}", self.kid);
        let mac = self.sign("token", &body)?;
        Ok(format!("{mac}.{body}"))
    }
}

impl fmt::Debug for ContextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextKey")
            .field("kid", &self.kid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The sentence inside a configuration error, without the error's own prefix.
pub(crate) fn message(error: Error) -> String {
    match error {
        Error::Misconfigured(message) => message,
        other => other.to_string(),
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let key = ContextKey::new("k1", vec![0xab; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(
            shown.contains("k1") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("abab"));
    }

    #[test]
    fn parse_and_reject() {
        let key = ContextKey::parse(&format!("k-1:{}", "0b".repeat(32))).unwrap();
        assert_eq!(key.kid(), "k-1");
        assert!(ContextKey::parse("nocolon").is_err());
        assert!(ContextKey::parse(&format!("k1:{}", "0b".repeat(31))).is_err());
        assert!(ContextKey::parse("k1:zz").is_err());
        assert!(ContextKey::parse(&format!("bad kid:{}", "0b".repeat(32))).is_err());
    }

    /// RFC 4231 test case 2 ("Jefe"), through the same code path as `sign` but with a short key
    /// allowed: checks the HMAC and the hex encoding against published values.
    #[test]
    fn hmac_matches_rfc_4231() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            encode_hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn token_layout() {
        let key = ContextKey::new("k1", vec![0x0b; 32]).unwrap();
        let token = key.mint("t;u;{p}", Duration::from_secs(10)).unwrap();
        let (mac, body) = token.split_once('.').unwrap();
        assert_eq!(mac.len(), 64);
        assert!(
            body.starts_with("k1;") && body.ends_with(";*;t;u;{p}"),
            "{body}"
        );
        assert_eq!(mac, key.sign("token", body).unwrap());
    }
}
