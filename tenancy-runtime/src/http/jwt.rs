//! Bearer JWT verification: HS256 (shared secret) or RS256/ES256 (JWKS).

use std::path::Path;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::UserId;

/// The claims the layer reads. `sub` must be the user's UUID.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// The user id (a UUID).
    pub sub: String,
    /// Issuer; must equal the configured issuer.
    pub iss: String,
    /// Audience; must equal the configured audience.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch (optional; must not be in the future beyond
    /// the leeway, and with a maximum lifetime `exp - iat` must not exceed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the Unix epoch (optional; checked with the leeway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Why a token was refused; each is answered 401 and counted by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a JWT, unparsable claims, `sub` not a UUID, or a required claim missing.
    Malformed,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// The token lives longer than the verifier's maximum lifetime (`exp - iat`, or `exp - now`
    /// without `iat`).
    LifetimeTooLong,
    /// The signature does not verify, or the algorithm is not the configured one.
    BadSignature,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` is not the configured audience.
    WrongAudience,
    /// The token names a key (`kid`) the JWKS does not hold.
    UnknownKey,
}

impl AuthFailure {
    /// The metric label and error message fragment, e.g. `expired`.
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_token",
            AuthFailure::Malformed => "malformed_token",
            AuthFailure::Expired => "expired_token",
            AuthFailure::NotYetValid => "token_not_yet_valid",
            AuthFailure::IssuedInFuture => "token_issued_in_future",
            AuthFailure::LifetimeTooLong => "token_lifetime_too_long",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::UnknownKey => "unknown_key",
        }
    }
}

/// A JWKS document that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JwtConfigError {
    /// The file could not be read.
    #[error("reading JWKS file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not a JWKS document, or a key that is neither RSA nor EC P-256.
    #[error("invalid JWKS: {0}")]
    Invalid(String),
}

/// Longest bearer token [`JwtVerifier::verify`] decodes, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Seconds since the Unix epoch (0 if the clock is before it).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One verification key with the algorithm it is used with.
struct VerificationKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies bearer tokens against one issuer and audience.
pub struct JwtVerifier {
    keys: Vec<VerificationKey>,
    issuer: String,
    audience: String,
    leeway_secs: u64,
    max_lifetime_secs: Option<u64>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("max_lifetime_secs", &self.max_lifetime_secs)
            .finish()
    }
}

impl JwtVerifier {
    /// HS256 with a shared secret (development).
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Self {
        Self {
            keys: vec![VerificationKey {
                kid: None,
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret),
            }],
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway_secs: 0,
            max_lifetime_secs: None,
        }
    }

    /// The same verifier accepting clocks that differ by up to `seconds` on `exp`, `nbf` and
    /// `iat` (default 0).
    pub fn with_leeway(mut self, seconds: u64) -> Self {
        self.leeway_secs = seconds;
        self
    }

    /// The same verifier refusing tokens that live longer than `seconds` (`exp - iat`, or
    /// `exp - now` for a token without `iat`), plus the leeway; default: no maximum.
    pub fn with_max_lifetime(mut self, seconds: u64) -> Self {
        self.max_lifetime_secs = Some(seconds);
        self
    }

    /// RS256/ES256 keys from a JWKS JSON document (production). Keys are chosen by the token's
    /// `kid`; a token without `kid` is accepted only when the set holds exactly one key.
    pub fn from_jwks_json(
        json: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, JwtConfigError> {
        let set: JwkSet =
            serde_json::from_str(json).map_err(|e| JwtConfigError::Invalid(e.to_string()))?;
        let mut keys = Vec::with_capacity(set.keys.len());
        for jwk in &set.keys {
            let algorithm = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(ec)
                    if ec.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => {
                    return Err(JwtConfigError::Invalid(
                        "only RSA (RS256) and EC P-256 (ES256) keys are supported".into(),
                    ))
                }
            };
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| JwtConfigError::Invalid(e.to_string()))?;
            keys.push(VerificationKey {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            });
        }
        if keys.is_empty() {
            return Err(JwtConfigError::Invalid("the key set is empty".into()));
        }
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway_secs: 0,
            max_lifetime_secs: None,
        })
    }

    /// [`JwtVerifier::from_jwks_json`] on the contents of a file.
    pub fn from_jwks_file(
        path: &Path,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, JwtConfigError> {
        let json = std::fs::read_to_string(path).map_err(|source| JwtConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_jwks_json(&json, issuer, audience)
    }

    /// The configured issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The configured audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Checks signature, algorithm, `iss`, `aud`, `exp`, `nbf` and `iat` (with the leeway) and
    /// the maximum lifetime, and returns the user. Tokens longer than 16 KiB are malformed.
    pub fn verify(&self, token: &str) -> Result<UserId, AuthFailure> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthFailure::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Malformed)?;
        let key = match &header.kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                .or_else(|| match self.keys.as_slice() {
                    [only] if only.kid.is_none() => Some(only),
                    _ => None,
                })
                .ok_or(AuthFailure::UnknownKey)?,
            None => match self.keys.as_slice() {
                [only] => only,
                _ => return Err(AuthFailure::UnknownKey),
            },
        };
        if header.alg != key.algorithm {
            return Err(AuthFailure::BadSignature);
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthFailure::Expired,
                    ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidAlgorithm
                    | ErrorKind::InvalidAlgorithmName
                    | ErrorKind::InvalidKeyFormat => AuthFailure::BadSignature,
                    ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
                    ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
                    _ => AuthFailure::Malformed,
                }
            })?;
        self.check_times(&data.claims, unix_now())?;
        let user = uuid::Uuid::parse_str(&data.claims.sub).map_err(|_| AuthFailure::Malformed)?;
        Ok(UserId::new(user))
    }

    /// `iat` not in the future and the lifetime within the maximum, at `now` (`exp` and `nbf`
    /// were checked by the decoder).
    fn check_times(&self, claims: &Claims, now: u64) -> Result<(), AuthFailure> {
        let leeway = self.leeway_secs;
        if let Some(iat) = claims.iat {
            if iat > now.saturating_add(leeway) {
                return Err(AuthFailure::IssuedInFuture);
            }
        }
        if let Some(max) = self.max_lifetime_secs {
            let start = claims.iat.unwrap_or(now).min(now);
            if claims.exp.saturating_sub(start) > max.saturating_add(leeway) {
                return Err(AuthFailure::LifetimeTooLong);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};

    fn token(secret: &[u8], iss: &str, aud: &str, exp: u64, sub: &str) -> String {
        let claims = Claims {
            sub: sub.into(),
            iss: iss.into(),
            aud: aud.into(),
            exp,
            iat: None,
            nbf: None,
        };
        sign(secret, &claims)
    }

    fn sign(secret: &[u8], claims: &Claims) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn hs256_accepts_good_and_classifies_bad_tokens() {
        let verifier = JwtVerifier::hs256(b"secret", "iss", "aud");
        let user = uuid::Uuid::new_v4();
        let later = now() + 600;
        let good = token(b"secret", "iss", "aud", later, &user.to_string());
        assert_eq!(verifier.verify(&good), Ok(UserId::new(user)));
        let cases = [
            (
                token(b"other", "iss", "aud", later, &user.to_string()),
                AuthFailure::BadSignature,
            ),
            (
                token(b"secret", "iss", "aud", now() - 10, &user.to_string()),
                AuthFailure::Expired,
            ),
            (
                token(b"secret", "evil", "aud", later, &user.to_string()),
                AuthFailure::WrongIssuer,
            ),
            (
                token(b"secret", "iss", "other", later, &user.to_string()),
                AuthFailure::WrongAudience,
            ),
            (
                token(b"secret", "iss", "aud", later, "not-a-uuid"),
                AuthFailure::Malformed,
            ),
            ("garbage".to_owned(), AuthFailure::Malformed),
        ];
        for (token, expected) in cases {
            assert_eq!(verifier.verify(&token), Err(expected), "{token}");
        }
    }

    #[test]
    fn nbf_iat_and_lifetime_are_enforced_with_leeway() {
        let verifier = JwtVerifier::hs256(b"secret", "iss", "aud")
            .with_leeway(30)
            .with_max_lifetime(3600);
        let user = uuid::Uuid::new_v4();
        let base = Claims {
            sub: user.to_string(),
            iss: "iss".into(),
            aud: "aud".into(),
            exp: now() + 600,
            iat: Some(now()),
            nbf: None,
        };
        let check = |claims: Claims| verifier.verify(&sign(b"secret", &claims));
        assert_eq!(check(base.clone()), Ok(UserId::new(user)));
        let cases = [
            (
                Claims {
                    nbf: Some(now() + 86_400),
                    ..base.clone()
                },
                Err(AuthFailure::NotYetValid),
            ),
            (
                Claims {
                    nbf: Some(now() + 10),
                    ..base.clone()
                },
                Ok(UserId::new(user)),
            ),
            (
                Claims {
                    iat: Some(now() + 3_600),
                    ..base.clone()
                },
                Err(AuthFailure::IssuedInFuture),
            ),
            (
                Claims {
                    iat: Some(now() + 10),
                    ..base.clone()
                },
                Ok(UserId::new(user)),
            ),
            (
                Claims {
                    exp: u64::MAX,
                    ..base.clone()
                },
                Err(AuthFailure::LifetimeTooLong),
            ),
            (
                Claims {
                    exp: now() + 7_200,
                    iat: None,
                    ..base.clone()
                },
                Err(AuthFailure::LifetimeTooLong),
            ),
            (
                Claims {
                    iat: Some(now() - 3_000),
                    exp: now() + 1_000,
                    ..base.clone()
                },
                Err(AuthFailure::LifetimeTooLong),
            ),
            (
                Claims {
                    exp: now() - 10,
                    ..base.clone()
                },
                Ok(UserId::new(user)),
            ),
            (
                Claims {
                    exp: now() - 120,
                    ..base.clone()
                },
                Err(AuthFailure::Expired),
            ),
        ];
        for (claims, expected) in cases {
            assert_eq!(check(claims.clone()), expected, "{claims:?}");
        }
        assert_eq!(
            verifier.verify(&"a".repeat(MAX_TOKEN_BYTES + 1)),
            Err(AuthFailure::Malformed)
        );
    }

    #[test]
    fn jwks_rejects_unsupported_keys() {
        let oct = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"HS256"}]}"#;
        assert!(JwtVerifier::from_jwks_json(oct, "i", "a").is_err());
        assert!(JwtVerifier::from_jwks_json(r#"{"keys":[]}"#, "i", "a").is_err());
    }
}
