//! Verdict store micro-benchmarks: a signed cache hit (HMAC-SHA256 and Ed25519 verdict keys) and
//! durable writes (one verdict per fsync, and 64 per batch).
//!
//! `cargo bench -p verdict-scanner --bench store`

#[path = "../tests/store_support/mod.rs"]
mod store_support;

use std::hint::black_box;

use chrono::Utc;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use store_support::{TRUST, key, realistic};
use verdict_scanner::store::{
    Lookup, SignerKind, SledStore, StoreOptions, VerdictSigner, VerdictStore,
};

const PRELOADED: u64 = 10_000;

fn store(dir: &std::path::Path, kind: SignerKind) -> SledStore {
    let s = SledStore::open(
        dir,
        VerdictSigner::generate(kind).unwrap(),
        StoreOptions::default(),
    )
    .unwrap();
    let batch: Vec<_> = (0..PRELOADED)
        .map(|n| (key(n), realistic(&key(n))))
        .collect();
    for chunk in batch.chunks(1000) {
        s.put_many(chunk).unwrap();
    }
    s
}

fn get_hit(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_get_hit");
    g.throughput(Throughput::Elements(1));
    for (name, kind) in [
        ("hmac_sha256", SignerKind::HmacSha256),
        ("ed25519", SignerKind::Ed25519),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), kind);
        let keys: Vec<_> = (0..PRELOADED).map(key).collect();
        let now = Utc::now();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 7919) % keys.len();
                let got = s.get(black_box(&keys[i]), TRUST, now).unwrap();
                assert!(matches!(got, Lookup::Hit(_)));
                got
            })
        });
    }
    g.finish();
}

fn put(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), SignerKind::HmacSha256);
    let mut next = 1_000_000u64;
    let mut g = c.benchmark_group("store_put_durable");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    g.bench_function("single", |b| {
        b.iter_batched(
            || {
                next += 1;
                (key(next), realistic(&key(next)))
            },
            |(k, v)| s.put(&k, &v).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("batch_of_64", |b| {
        b.iter_batched(
            || {
                (0..64)
                    .map(|_| {
                        next += 1;
                        (key(next), realistic(&key(next)))
                    })
                    .collect::<Vec<_>>()
            },
            |batch| s.put_many(&batch).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, get_hit, put);
criterion_main!(benches);
