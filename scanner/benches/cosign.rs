//! Cosign verification throughput with a P-256 key: a full `verify_layers` of one `.sig` layer
//! (trust-policy lookup, base64, signature, simple-signing payload and digest claim, report and
//! evidence) and the same with a Rekor bundle checked offline (SET + entry body), next to the
//! raw ECDSA P-256 verification of the same signature over the same payload in the same run —
//! once with the key parsed per call (`UnparsedPublicKey`), once pre-parsed (`ParsedPublicKey`,
//! what the verifier holds).
//!
//! `cargo bench -p verdict-scanner --bench cosign -- --warm-up-time 1 --measurement-time 3`
//! Criterion reports "thrpt" in elements per second = verifications per second.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ParsedPublicKey, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use verdict_crds::model::CosignParameters;
use verdict_scanner::cosign::{
    CosignVerifier, KeyResolver, ProviderKey, SignatureLayer, SigstoreTrustRoot, Subject,
};
use verdict_testkit::oci::cosign_payload;
use verdict_testkit::pki::{KeyAlg, SignAlg, TestKey};

const DIGEST: &str = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

struct Inline(String);

impl KeyResolver for Inline {
    fn provider_keys(&self, _: &str) -> Option<Vec<ProviderKey>> {
        Some(vec![ProviderKey {
            name: String::new(),
            version: String::new(),
            pem: self.0.clone(),
        }])
    }
    fn read_key_file(&self, _: &str) -> Result<String, String> {
        Err("no files".into())
    }
}

fn verifier(key: &TestKey, root: SigstoreTrustRoot) -> CosignVerifier {
    let params: CosignParameters = serde_json::from_value(json!({
        "trustPolicies": [{"name": "default", "scopes": ["*"], "keys": [{"provider": "kmp"}]}]
    }))
    .unwrap();
    CosignVerifier::from_parameters(&params, &Inline(key.public_key_pem()), Arc::new(root)).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("cosign");
    group.throughput(Throughput::Elements(1));
    let key = TestKey::generate(KeyAlg::EcP256).unwrap();
    let rekor = TestKey::generate(KeyAlg::EcP256).unwrap();
    let payload = cosign_payload("registry.example/app", DIGEST);
    let signature = key.sign(SignAlg::Es256Der, &payload).unwrap();
    let layer_digest = format!("sha256:{}", hex::encode(Sha256::digest(&payload)));
    let subject = Subject {
        reference: "registry.example/app:v1",
        repository: "registry.example/app",
        digest: DIGEST,
    };
    let now = Utc::now();

    let plain = BTreeMap::from([(
        "dev.cosignproject.cosign/signature".to_owned(),
        STANDARD.encode(&signature),
    )]);
    let v = verifier(&key, SigstoreTrustRoot::new());
    let layers = [SignatureLayer {
        media_type: SIMPLE_SIGNING,
        digest: &layer_digest,
        payload: &payload,
        annotations: &plain,
    }];
    assert!(v.verify_layers(&subject, &layers, now).is_success);
    group.bench_function("verify_layers_p256", |b| {
        b.iter(|| {
            let o = v.verify_layers(black_box(&subject), black_box(&layers), now);
            assert!(o.is_success);
            o
        })
    });

    // The same signature with a Rekor bundle (hashedrekord body + SET) verified offline.
    let body = STANDARD.encode(
        serde_json::to_vec(&json!({
            "apiVersion": "0.0.1", "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(&payload))}},
                "signature": {"content": STANDARD.encode(&signature),
                              "publicKey": {"content": STANDARD.encode(key.public_key_pem())}},
            },
        }))
        .unwrap(),
    );
    let log_id = hex::encode(Sha256::digest(rekor.public_key_der()));
    let t = now.timestamp() - 60;
    let set_msg = format!(
        "{{\"body\":\"{body}\",\"integratedTime\":{t},\"logID\":\"{log_id}\",\"logIndex\":1}}"
    );
    let set = rekor.sign(SignAlg::Es256Der, set_msg.as_bytes()).unwrap();
    let mut with_bundle = plain.clone();
    with_bundle.insert(
        "dev.sigstore.cosign/bundle".to_owned(),
        json!({"SignedEntryTimestamp": STANDARD.encode(&set),
               "Payload": {"body": body, "integratedTime": t, "logIndex": 1, "logID": log_id}})
        .to_string(),
    );
    let v_rekor = verifier(
        &key,
        SigstoreTrustRoot::new()
            .with_rekor_key_pem(&rekor.public_key_pem())
            .unwrap(),
    );
    let layers_rekor = [SignatureLayer {
        annotations: &with_bundle,
        ..layers[0]
    }];
    let o = v_rekor.verify_layers(&subject, &layers_rekor, now);
    assert!(o.is_success && o.signatures[0].verifications[0].bundle_verified);
    group.bench_function("verify_layers_p256_with_rekor_set", |b| {
        b.iter(|| {
            let o = v_rekor.verify_layers(black_box(&subject), black_box(&layers_rekor), now);
            assert!(o.is_success);
            o
        })
    });

    // The bare signature check, same key, same bytes.
    let raw = key.public_key_raw().to_vec();
    group.bench_function("raw_ecdsa_p256_unparsed_key", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, black_box(&raw))
                .verify(black_box(&payload), black_box(&signature))
                .unwrap()
        })
    });
    let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &raw).unwrap();
    group.bench_function("raw_ecdsa_p256_parsed_key", |b| {
        b.iter(|| {
            parsed
                .verify_sig(black_box(&payload), black_box(&signature))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
