//! Opening a store that fails its checks moves it aside and starts empty; a store in use is left alone.

mod store_support;

use std::path::Path;

use chrono::Utc;
use store_support::*;
use verdict_scanner::store::{
    Lookup, MissReason, OpenOutcome, SledStore, StoreError, StoreOptions, VerdictStore,
};

fn assert_quarantined_and_usable(store: &SledStore, path: &Path, reason_part: &str) {
    let OpenOutcome::Quarantined { moved_to, reason } = store.open_outcome().clone() else {
        panic!("expected quarantine, got {:?}", store.open_outcome());
    };
    assert!(
        reason.contains(reason_part),
        "reason {reason:?} should mention {reason_part:?}"
    );
    assert!(
        moved_to.is_dir(),
        "the old store is kept for inspection at {moved_to:?}"
    );
    assert_eq!(moved_to.parent(), path.parent());
    assert!(store.is_empty());
    assert_eq!(
        store.get(&key(1), TRUST, Utc::now()).unwrap(),
        Lookup::Miss(MissReason::Absent)
    );
    store.put(&key(1), &realistic(&key(1))).unwrap();
    assert!(matches!(
        store.get(&key(1), TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));
}

fn filled(path: &Path) {
    let store = open(path);
    let batch: Vec<_> = (0..20).map(|n| (key(n), realistic(&key(n)))).collect();
    store.put_many(&batch).unwrap();
}

#[test]
fn an_unknown_schema_version_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verdicts");
    filled(&path);
    with_raw_db(&path, |db| {
        let mut meta = db.get("m:schema").unwrap().unwrap().to_vec();
        meta[0] = 99; // written by a future schema
        db.insert("m:schema", meta).unwrap();
    });
    let store = open(&path);
    assert_quarantined_and_usable(&store, &path, "unknown schema version");
    // The next start finds a healthy store.
    drop(store);
    let store = open(&path);
    assert_eq!(store.open_outcome(), &OpenOutcome::Opened { entries: 1 });
}

#[test]
fn entries_without_a_meta_record_are_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verdicts");
    filled(&path);
    with_raw_db(&path, |db| db.remove("m:schema").unwrap());
    let store = open(&path);
    assert_quarantined_and_usable(&store, &path, "no meta record");
}

#[test]
fn a_forged_meta_record_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verdicts");
    filled(&path);
    with_raw_db(&path, |db| {
        let mut meta = db.get("m:schema").unwrap().unwrap().to_vec();
        let last = meta.len() - 1;
        meta[last] ^= 0xff;
        db.insert("m:schema", meta).unwrap();
    });
    let store = open(&path);
    assert_quarantined_and_usable(&store, &path, "fails its signature");
}

#[test]
fn garbage_in_the_sled_files_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verdicts");
    filled(&path);
    // Overwrite every file sled keeps (config, log, snapshots) with garbage.
    let mut n = 0u8;
    for entry in walk(&path) {
        let len = std::fs::metadata(&entry).unwrap().len().max(64) as usize;
        let garbage: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(n))
            .collect();
        std::fs::write(&entry, garbage).unwrap();
        n = n.wrapping_add(1);
    }
    let (store, quarantined) = counting("verdict_store_quarantined_total", &[], || open(&path));
    assert_eq!(quarantined, 1);
    let OpenOutcome::Quarantined { reason, .. } = store.open_outcome().clone() else {
        panic!("expected quarantine, got {:?}", store.open_outcome());
    };
    assert!(!reason.is_empty());
    assert_quarantined_and_usable(&store, &path, "");
}

#[test]
fn a_store_in_use_is_an_error_and_is_not_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verdicts");
    let first = open(&path);
    first.put(&key(1), &realistic(&key(1))).unwrap();
    let e = SledStore::open(&path, hmac_signer(), StoreOptions::default()).unwrap_err();
    assert!(matches!(e, StoreError::Open { .. }), "{e}");
    assert!(e.to_string().contains("another verdict process"), "{e}");
    let siblings: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(siblings.len(), 1, "nothing was moved aside");
    assert!(matches!(
        first.get(&key(1), TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));
}

#[test]
fn only_the_newest_quarantined_copies_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verdicts");
    let opts = StoreOptions {
        keep_quarantined: 2,
        ..StoreOptions::default()
    };
    for round in 0..4u8 {
        filled(&path);
        with_raw_db(&path, |db| db.remove("m:schema").unwrap());
        let store = SledStore::open(&path, hmac_signer(), opts.clone()).unwrap();
        assert!(
            matches!(store.open_outcome(), OpenOutcome::Quarantined { .. }),
            "round {round}"
        );
    }
    let quarantined = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("verdicts.quarantined-")
        })
        .count();
    assert_eq!(quarantined, 2);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
