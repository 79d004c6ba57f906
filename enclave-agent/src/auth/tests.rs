//! Unit tests.
// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use ed25519_dalek::{Signer, SigningKey};
use tonic::metadata::MetadataValue;

use super::*;

fn cfg(extra: &str) -> crate::config::AuthConfig {
    crate::config::Config::from_toml(extra).unwrap().auth
}

fn signed(key: &SigningKey, msg: &[u8]) -> v1::BuyerSignature {
    v1::BuyerSignature {
        public_key: key.verifying_key().to_bytes().to_vec(),
        signature: key.sign(msg).to_bytes().to_vec(),
    }
}

fn bearer(t: &str) -> MetadataMap {
    let mut md = MetadataMap::new();
    md.insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {t}")).unwrap(),
    );
    md
}

#[tokio::test]
async fn submit_signature_works() {
    let a = Authenticator::new(&cfg(""), Default::default()).unwrap();
    let k = SigningKey::from_bytes(&[1; 32]);
    let spec = b"spec bytes";
    let p = a
        .submit(
            &MetadataMap::new(),
            spec,
            Some(&signed(&k, &submit_message(spec))),
        )
        .await
        .unwrap();
    assert_eq!(p, Principal::Buyer(k.verifying_key().to_bytes()));
}

#[tokio::test]
async fn submit_rejects() {
    let a = Authenticator::new(&cfg(""), Default::default()).unwrap();
    let k = SigningKey::from_bytes(&[1; 32]);
    let spec = b"spec bytes";
    let md = MetadataMap::new();
    assert_eq!(a.submit(&md, spec, None).await, Err(AuthError::Missing));
    // Signature over other bytes.
    let s = signed(&k, &submit_message(b"other"));
    assert_eq!(
        a.submit(&md, spec, Some(&s)).await,
        Err(AuthError::BadSignature)
    );
    let mut short = signed(&k, &submit_message(spec));
    short.signature.pop();
    assert_eq!(
        a.submit(&md, spec, Some(&short)).await,
        Err(AuthError::MalformedSignature)
    );
    let mut badkey = signed(&k, &submit_message(spec));
    badkey.public_key = vec![1; 31];
    assert_eq!(
        a.submit(&md, spec, Some(&badkey)).await,
        Err(AuthError::MalformedKey)
    );
    // No token configured: any bearer token is refused.
    assert_eq!(
        a.submit(&bearer("x"), spec, None).await,
        Err(AuthError::BadToken)
    );
}

#[tokio::test]
async fn allow_list_rejects() {
    let allowed = SigningKey::from_bytes(&[2; 32]);
    let a = Authenticator::new(
        &cfg(&format!(
            "[auth]\nbuyer_keys = [\"{}\"]",
            hex::encode(allowed.verifying_key().to_bytes())
        )),
        Default::default(),
    )
    .unwrap();
    let other = SigningKey::from_bytes(&[3; 32]);
    let spec = b"s";
    let md = MetadataMap::new();
    assert!(
        a.submit(&md, spec, Some(&signed(&allowed, &submit_message(spec))))
            .await
            .is_ok()
    );
    assert!(matches!(
        a.submit(&md, spec, Some(&signed(&other, &submit_message(spec))))
            .await,
        Err(AuthError::NotAllowed(_))
    ));
}

#[tokio::test]
async fn token_works() {
    let a = Authenticator::new(&cfg("[auth]\ntoken = \"t0ken\""), Default::default()).unwrap();
    assert_eq!(
        a.submit(&bearer("t0ken"), b"s", None).await,
        Ok(Principal::Token)
    );
    assert_eq!(
        a.submit(&bearer("t0ken2"), b"s", None).await,
        Err(AuthError::BadToken)
    );
    let mut md = MetadataMap::new();
    md.insert(
        "authorization",
        MetadataValue::from_static("Basic dDBrZW4="),
    );
    assert_eq!(a.submit(&md, b"s", None).await, Err(AuthError::BadToken));
}

#[tokio::test]
async fn job_request_works_and_rejects() {
    let a = Authenticator::new(&cfg(""), Default::default()).unwrap();
    let owner = SigningKey::from_bytes(&[4; 32]);
    let other = SigningKey::from_bytes(&[5; 32]);
    let job = [8u8; 32];
    let now = 1_700_000_000_000u64;
    let req = |k: &SigningKey, at: u64, domain: &[u8]| v1::RequestAuth {
        signature: Some(signed(k, &request_message(domain, &job, at))),
        issued_at_ms: at,
    };
    let md = MetadataMap::new();
    let own = Some(owner.verifying_key().to_bytes());
    let d = sigil_proto::CANCEL_DOMAIN;
    assert!(
        a.job_request(&md, d, &job, Some(&req(&owner, now, d)), own, now)
            .await
            .is_ok()
    );
    assert_eq!(
        a.job_request(&md, d, &job, Some(&req(&other, now, d)), own, now)
            .await,
        Err(AuthError::NotOwner)
    );
    // Signed for another purpose.
    assert_eq!(
        a.job_request(
            &md,
            d,
            &job,
            Some(&req(&owner, now, sigil_proto::OUTPUT_DOMAIN)),
            own,
            now
        )
        .await,
        Err(AuthError::BadSignature)
    );
    assert!(matches!(
        a.job_request(&md, d, &job, Some(&req(&owner, now - 301_000, d)), own, now)
            .await,
        Err(AuthError::Stale { .. })
    ));
    // A job submitted with the token: no buyer key may act on it.
    assert_eq!(
        a.job_request(&md, d, &job, Some(&req(&owner, now, d)), None, now)
            .await,
        Err(AuthError::NotOwner)
    );
    assert_eq!(
        a.job_request(&md, d, &job, None, own, now).await,
        Err(AuthError::Missing)
    );
}
