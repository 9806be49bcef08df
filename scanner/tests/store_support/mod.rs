//! Shared helpers of the store tests: realistic verdicts, keys, raw access to the sled files,
//! and metric capture.
#![allow(dead_code)]

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde_json::json;
use sha2::Digest as _;
use verdict_scanner::report::{ArtifactPolicy, Evidence, VerificationResult, VerifierReport};
use verdict_scanner::store::{
    SignerKind, SledStore, StoreOptions, StoredVerdict, SubjectKey, VerdictSigner,
};

pub const TRUST: &str = "sha256:7f1c0000000000000000000000000000000000000000000000000000000000aa";
pub const NOTATION_SIG: &str = "application/vnd.cncf.notary.signature";

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A distinct subject per `n`.
pub fn key(n: u64) -> SubjectKey {
    SubjectKey::from_parts(
        None,
        "myregistry.azurecr.io",
        &format!("team{}/service-{n}", n % 7),
        &sha256(&n.to_be_bytes()),
    )
    .unwrap()
}

/// A certificate fingerprint by name.
pub fn fp(name: &str) -> String {
    sha256(name.as_bytes())
}

/// A successful Notation verdict for `key` resting on `fingerprints`, as the scanner would store it.
pub fn allow(
    key: &SubjectKey,
    fingerprints: &[String],
    valid_until: Option<DateTime<Utc>>,
) -> StoredVerdict {
    let subject = format!("{}/{}:v1.2.3", key.registry(), key.repository());
    let sig_digest = sha256(format!("sig of {key}").as_bytes());
    let report = VerifierReport {
        subject: subject.clone(),
        is_success: true,
        verifier_name: "verifier-notation".into(),
        verifier_type: "notation".into(),
        reference_digest: sig_digest.clone(),
        artifact_type: NOTATION_SIG.into(),
        message: "Signature verification success".into(),
        error_reason: String::new(),
        remediation: String::new(),
        extensions: Some(json!({
            "Issuer": "CN=Verdict Test CA,O=Contoso,L=Seattle,ST=WA,C=US",
            "SN": "CN=build.contoso.example,O=Contoso,L=Seattle,ST=WA,C=US"
        })),
        nested_results: vec![],
    };
    let evidence = Evidence {
        verifier_name: "verifier-notation".into(),
        artifact_type: NOTATION_SIG.into(),
        reference_digest: sig_digest,
        envelope_digest: sha256(format!("envelope of {key}").as_bytes()),
        fingerprints: fingerprints.iter().cloned().collect(),
        valid_until,
    };
    let result = VerificationResult::decide(
        subject,
        key.digest().to_string(),
        vec![report],
        vec![evidence],
        &ArtifactPolicy::default(),
        TRUST.to_owned(),
        Utc::now(),
    );
    assert!(result.is_success);
    StoredVerdict::new(result)
}

/// The default realistic verdict: leaf, intermediate and root fingerprints, valid for a year.
pub fn realistic(key: &SubjectKey) -> StoredVerdict {
    allow(
        key,
        &[fp("leaf"), fp("intermediate"), fp("root")],
        Some(Utc::now() + Duration::days(365)),
    )
}

pub fn hmac_signer() -> VerdictSigner {
    VerdictSigner::from_hmac_key(&[7u8; 32]).unwrap()
}

pub fn open(dir: &Path) -> SledStore {
    SledStore::open(dir, hmac_signer(), StoreOptions::default()).unwrap()
}

pub fn open_with(dir: &Path, kind: SignerKind) -> SledStore {
    let signer = match kind {
        SignerKind::HmacSha256 => hmac_signer(),
        SignerKind::Ed25519 => VerdictSigner::generate(SignerKind::Ed25519).unwrap(),
    };
    SledStore::open(dir, signer, StoreOptions::default()).unwrap()
}

/// The raw sled key of a verdict entry (layout documented in store/codec.rs:
/// `e` + first 16 bytes of SHA-256 of the canonical key).
pub fn raw_entry_key(key: &SubjectKey) -> Vec<u8> {
    let mut k = b"e".to_vec();
    k.extend_from_slice(&sha2::Sha256::digest(key.to_string().as_bytes())[..16]);
    k
}

/// The raw sled key prefix of a fingerprint's index buckets (`i` + 16 bytes of its SHA-256).
pub fn raw_index_prefix(fingerprint: &str) -> Vec<u8> {
    let mut k = b"i".to_vec();
    k.extend_from_slice(&sha2::Sha256::digest(fingerprint.as_bytes())[..16]);
    k
}

/// Runs `f` on the store's sled database directly (the store must be closed). sled releases its
/// file lock only when its background threads finish, so opening right after a close is retried.
pub fn with_raw_db<T>(dir: &Path, f: impl FnOnce(&sled::Db) -> T) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let db = loop {
        match sled::Config::new().path(dir).open() {
            Ok(db) => break db,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!(
                "cannot open the store's sled database {}: {e}",
                dir.display()
            ),
        }
    };
    let out = f(&db);
    db.flush().unwrap();
    out
}

/// Runs `f` with a local metrics recorder and returns the value of the counter `name` whose labels
/// include all of `labels`.
pub fn counting<T>(name: &str, labels: &[(&str, &str)], f: impl FnOnce() -> T) -> (T, u64) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let out = metrics::with_local_recorder(&recorder, f);
    let mut total = 0;
    for (ck, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = ck.key();
        if key.name() != name {
            continue;
        }
        let matches = labels
            .iter()
            .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v));
        if let (true, DebugValue::Counter(n)) = (matches, value) {
            total += n;
        }
    }
    (out, total)
}
