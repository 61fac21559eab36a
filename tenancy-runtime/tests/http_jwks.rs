//! The production JWT path: RS256/ES256 tokens signed with real keys, verified against a JWKS
//! (`JwtVerifier::from_jwks_file` / `from_jwks_json`). Keys are the test-only fixtures in
//! `tests/fixtures/`.

#![allow(clippy::expect_used)] // test helpers panic on broken fixtures

use std::path::PathBuf;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use tenancy_runtime::http::{AuthFailure, Claims, JwtVerifier};
use tenancy_runtime::UserId;

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "rag-service";
const ES_KID: &str = "test-es256";
const RS_KID: &str = "test-rs256";

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).expect("fixture file")
}

fn verifier() -> JwtVerifier {
    JwtVerifier::from_jwks_file(&fixture_path("jwks.json"), ISSUER, AUDIENCE).expect("jwks")
}

fn es_key(name: &str) -> EncodingKey {
    EncodingKey::from_ec_pem(&fixture(name)).expect("EC key")
}

fn rs_key(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&fixture(name)).expect("RSA key")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn claims(user: uuid::Uuid) -> Claims {
    Claims {
        sub: user.to_string(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        exp: now() + 600,
        iat: None,
        nbf: None,
    }
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Claims, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).expect("sign")
}

#[test]
fn valid_es256_and_rs256_tokens_verify_to_their_user() {
    let verifier = verifier();
    let (alice, bob) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let es = sign(
        Algorithm::ES256,
        Some(ES_KID),
        &claims(alice),
        &es_key("es256_private.pem"),
    );
    let rs = sign(
        Algorithm::RS256,
        Some(RS_KID),
        &claims(bob),
        &rs_key("rs256_private.pem"),
    );
    assert_eq!(verifier.verify(&es), Ok(UserId::new(alice)));
    assert_eq!(verifier.verify(&rs), Ok(UserId::new(bob)));
}

#[test]
fn from_jwks_json_matches_from_jwks_file() {
    let json = String::from_utf8(fixture("jwks.json")).expect("utf-8");
    let verifier = JwtVerifier::from_jwks_json(&json, ISSUER, AUDIENCE).expect("jwks");
    let user = uuid::Uuid::new_v4();
    let es = sign(
        Algorithm::ES256,
        Some(ES_KID),
        &claims(user),
        &es_key("es256_private.pem"),
    );
    assert_eq!(verifier.verify(&es), Ok(UserId::new(user)));
}

#[test]
fn token_signed_by_another_key_under_a_known_kid_is_refused() {
    let verifier = verifier();
    let user = uuid::Uuid::new_v4();
    let forged_es = sign(
        Algorithm::ES256,
        Some(ES_KID),
        &claims(user),
        &es_key("es256_impostor_private.pem"),
    );
    let forged_rs = sign(
        Algorithm::RS256,
        Some(RS_KID),
        &claims(user),
        &rs_key("rs256_impostor_private.pem"),
    );
    assert_eq!(verifier.verify(&forged_es), Err(AuthFailure::BadSignature));
    assert_eq!(verifier.verify(&forged_rs), Err(AuthFailure::BadSignature));
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let verifier = verifier();
    let user = uuid::Uuid::new_v4();
    let key = es_key("es256_private.pem");
    let unknown = sign(Algorithm::ES256, Some("rotated-away"), &claims(user), &key);
    assert_eq!(verifier.verify(&unknown), Err(AuthFailure::UnknownKey));
    // Two keys in the set: a token without `kid` cannot pick one.
    let no_kid = sign(Algorithm::ES256, None, &claims(user), &key);
    assert_eq!(verifier.verify(&no_kid), Err(AuthFailure::UnknownKey));
}

#[test]
fn wrong_issuer_audience_or_expiry_is_refused_for_both_algorithms() {
    let verifier = verifier();
    let user = uuid::Uuid::new_v4();
    let signers = [
        (Algorithm::ES256, ES_KID, es_key("es256_private.pem")),
        (Algorithm::RS256, RS_KID, rs_key("rs256_private.pem")),
    ];
    for (alg, kid, key) in &signers {
        let mut wrong_issuer = claims(user);
        wrong_issuer.iss = "https://evil.test".into();
        let mut wrong_audience = claims(user);
        wrong_audience.aud = "another-service".into();
        let mut expired = claims(user);
        expired.exp = now() - 5;
        let mut bad_sub = claims(user);
        bad_sub.sub = "not-a-uuid".into();
        let cases = [
            (wrong_issuer, AuthFailure::WrongIssuer),
            (wrong_audience, AuthFailure::WrongAudience),
            (expired, AuthFailure::Expired),
            (bad_sub, AuthFailure::Malformed),
        ];
        for (claims, expected) in cases {
            let token = sign(*alg, Some(kid), &claims, key);
            assert_eq!(verifier.verify(&token), Err(expected), "{alg:?} {claims:?}");
        }
    }
}

#[test]
fn hs256_token_is_refused_by_the_jwks_verifier() {
    let verifier = verifier();
    let user = uuid::Uuid::new_v4();
    // Classic algorithm confusion: HMAC keyed with the RSA public key, under the RSA key's kid.
    let public_pem = fixture("rs256_public.pem");
    let confused = sign(
        Algorithm::HS256,
        Some(RS_KID),
        &claims(user),
        &EncodingKey::from_secret(&public_pem),
    );
    assert_eq!(verifier.verify(&confused), Err(AuthFailure::BadSignature));
    // And under the EC key's kid, keyed with an arbitrary secret.
    let hs_es = sign(
        Algorithm::HS256,
        Some(ES_KID),
        &claims(user),
        &EncodingKey::from_secret(b"rag-service-dev-secret"),
    );
    assert_eq!(verifier.verify(&hs_es), Err(AuthFailure::BadSignature));
    // An ES256 token presented under the RSA key's kid (algorithm does not match the key).
    let es_as_rs = sign(
        Algorithm::ES256,
        Some(RS_KID),
        &claims(user),
        &es_key("es256_private.pem"),
    );
    assert_eq!(verifier.verify(&es_as_rs), Err(AuthFailure::BadSignature));
}
