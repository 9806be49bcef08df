//! Notation verification throughput: a full `verify_signature` (envelope parse, chain of three
//! certificates, trust policy, timestamps/expiry) for JWS and COSE with RSA-3072 and P-256 keys,
//! next to the raw signature verification of the same key over the same bytes in the same run.
//!
//! `cargo bench -p verdict-scanner --bench notation -- --warm-up-time 1 --measurement-time 3`
//! Criterion reports "thrpt" in elements per second = verifications per second.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use aws_lc_rs::signature::UnparsedPublicKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Chain, KeyKind, Opts, REFERENCE, cose, global_policy, jws, stores, subject, utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use verdict_scanner::notation::{
    MEDIA_TYPE_COSE, MEDIA_TYPE_JWS, TrustStoreType, verify_signature,
};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("notation");
    group.throughput(Throughput::Elements(1));
    let now = utc(2026, 11, 23);
    let policy = global_policy("strict", &["ca:root"], &["*"]);
    for (kind, label) in [(KeyKind::Rsa3072, "rsa3072"), (KeyKind::P256, "p256")] {
        let chain = Chain::new(kind);
        let trust = stores(&[(TrustStoreType::Ca, "root", &chain.root.der)]);
        let subject = subject();

        let jws_env = jws(&chain.leaf.key, &chain.x5c(), &subject, &Opts::default());
        let cose_env = cose(&chain.leaf.key, &chain.x5c(), &subject, &Opts::default());
        for (name, env, mt) in [
            ("jws", &jws_env, MEDIA_TYPE_JWS),
            ("cose", &cose_env, MEDIA_TYPE_COSE),
        ] {
            let out = verify_signature(env, mt, &subject, REFERENCE, &policy, &trust, now);
            assert!(out.verified, "{}", out.message);
            group.bench_function(BenchmarkId::new(format!("verify_{name}"), label), |b| {
                b.iter(|| {
                    let out = verify_signature(
                        black_box(env),
                        mt,
                        &subject,
                        REFERENCE,
                        &policy,
                        &trust,
                        now,
                    );
                    assert!(out.verified);
                    out
                })
            });
        }

        // The same key verifying the same JWS signature, nothing else.
        let doc: serde_json::Value = serde_json::from_slice(&jws_env).unwrap();
        let signing_input = format!(
            "{}.{}",
            doc["protected"].as_str().unwrap(),
            doc["payload"].as_str().unwrap()
        );
        let signature = URL_SAFE_NO_PAD
            .decode(doc["signature"].as_str().unwrap())
            .unwrap();
        let public = chain.leaf.key.public_key_raw();
        let alg = chain.leaf.key.verification_alg();
        group.bench_function(BenchmarkId::new("raw_signature", label), |b| {
            b.iter(|| {
                UnparsedPublicKey::new(alg, black_box(&public))
                    .verify(signing_input.as_bytes(), black_box(&signature))
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
