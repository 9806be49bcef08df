//! The fingerprint → subjects index and revocation.

mod store_support;

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use store_support::*;
use verdict_scanner::store::{Lookup, MissReason, SubjectKey, VerdictStore};

fn year() -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() + Duration::days(365))
}

fn set(keys: Vec<SubjectKey>) -> BTreeSet<String> {
    keys.into_iter().map(|k| k.to_string()).collect()
}

#[test]
fn revoking_a_fingerprint_removes_exactly_the_subjects_resting_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let (old_leaf, new_leaf, root) = (fp("leaf-2024"), fp("leaf-2025"), fp("root"));
    // 0..40 rest on the old leaf, 40..100 on the new one, all on the root.
    let expected: BTreeSet<String> = (0..40).map(|n| key(n).to_string()).collect();
    {
        let store = open(&path);
        let batch: Vec<_> = (0..100)
            .map(|n| {
                let leaf = if n < 40 { &old_leaf } else { &new_leaf };
                (
                    key(n),
                    allow(&key(n), &[leaf.clone(), root.clone()], year()),
                )
            })
            .collect();
        store.put_many(&batch).unwrap();
        assert_eq!(
            set(store.subjects_for_fingerprint(&old_leaf).unwrap()),
            expected
        );
        assert_eq!(store.subjects_for_fingerprint(&root).unwrap().len(), 100);

        let revoked = store.revoke_fingerprint(&old_leaf).unwrap();
        assert_eq!(set(revoked), expected);
        assert_eq!(store.len(), 60);
        assert!(
            store
                .subjects_for_fingerprint(&old_leaf)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.subjects_for_fingerprint(&root).unwrap().len(), 60);
        assert!(
            store.revoke_fingerprint(&old_leaf).unwrap().is_empty(),
            "idempotent"
        );
    }
    // Revocation is durable.
    let store = open(&path);
    assert_eq!(store.len(), 60);
    for n in 0..100 {
        let got = store.get(&key(n), TRUST, Utc::now()).unwrap();
        if n < 40 {
            assert_eq!(got, Lookup::Miss(MissReason::Absent), "key {n} was revoked");
        } else {
            assert!(matches!(got, Lookup::Hit(_)), "key {n} must survive");
        }
    }
}

#[test]
fn revocation_handles_more_subjects_than_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("v"));
    let shared = fp("shared-root");
    let batch: Vec<_> = (0..2500)
        .map(|n| {
            (
                key(n),
                allow(&key(n), std::slice::from_ref(&shared), year()),
            )
        })
        .collect();
    store.put_many(&batch).unwrap();
    store
        .put(&key(9999), &allow(&key(9999), &[fp("unrelated")], year()))
        .unwrap();
    assert_eq!(store.revoke_fingerprint(&shared).unwrap().len(), 2500);
    assert_eq!(store.len(), 1);
    assert!(matches!(
        store.get(&key(9999), TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));
}

#[test]
fn replacing_a_verdict_moves_it_in_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("v"));
    let k = key(1);
    store.put(&k, &allow(&k, &[fp("old-key")], year())).unwrap();
    // Re-verified after a rotation: now rests on the new key only.
    store.put(&k, &allow(&k, &[fp("new-key")], year())).unwrap();
    assert!(
        store
            .subjects_for_fingerprint(&fp("old-key"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.subjects_for_fingerprint(&fp("new-key")).unwrap(),
        vec![k.clone()]
    );
    // Revoking the old key no longer touches the re-verified verdict.
    assert!(store.revoke_fingerprint(&fp("old-key")).unwrap().is_empty());
    assert!(matches!(
        store.get(&k, TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));

    assert!(store.remove(&k).unwrap());
    assert!(
        store
            .subjects_for_fingerprint(&fp("new-key"))
            .unwrap()
            .is_empty()
    );
    // The same subject twice in one batch: the last one wins, in the entry and in the index.
    let k2 = key(2);
    store
        .put_many(&[
            (k2.clone(), allow(&k2, &[fp("a"), fp("b")], year())),
            (k2.clone(), allow(&k2, &[fp("b"), fp("c")], year())),
        ])
        .unwrap();
    assert_eq!(store.len(), 1);
    assert!(store.subjects_for_fingerprint(&fp("a")).unwrap().is_empty());
    assert_eq!(
        store.subjects_for_fingerprint(&fp("b")).unwrap(),
        vec![k2.clone()]
    );
    assert_eq!(store.subjects_for_fingerprint(&fp("c")).unwrap(), vec![k2]);
}

#[test]
fn revocation_also_removes_entries_whose_signature_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let k = key(1);
    {
        open(&path)
            .put(&k, &allow(&k, &[fp("leaked")], year()))
            .unwrap();
    }
    // Break only the signature (last byte); the payload still names the fingerprint.
    with_raw_db(&path, |db| {
        let raw = raw_entry_key(&k);
        let mut v = db.get(&raw).unwrap().unwrap().to_vec();
        let last = v.len() - 1;
        v[last] ^= 1;
        db.insert(raw, v).unwrap();
    });
    let store = open(&path);
    assert!(
        store
            .subjects_for_fingerprint(&fp("leaked"))
            .unwrap()
            .is_empty(),
        "not a valid subject"
    );
    assert_eq!(
        store.revoke_fingerprint(&fp("leaked")).unwrap(),
        vec![k.clone()]
    );
    assert_eq!(store.len(), 0);
}

#[test]
fn bad_fingerprints_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("v"));
    assert!(store.subjects_for_fingerprint("").is_err());
    let e = store.revoke_fingerprint("a\0b").unwrap_err();
    assert!(e.to_string().contains("without NUL"), "{e}");
    let k = key(1);
    let e = store
        .put(&k, &allow(&k, &[String::new()], year()))
        .unwrap_err();
    assert!(e.to_string().contains("fingerprint"), "{e}");
}

#[test]
fn a_damaged_index_falls_back_to_scanning_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let leaf = fp("leaf");
    {
        let store = open(&path);
        let batch: Vec<_> = (0..30)
            .map(|n| (key(n), allow(&key(n), std::slice::from_ref(&leaf), year())))
            .collect();
        store.put_many(&batch).unwrap();
    }
    // Wreck every bucket of the leaf's posting list (unreadable, not just unsigned).
    let buckets = with_raw_db(&path, |db| {
        let keys: Vec<_> = db
            .scan_prefix(raw_index_prefix(&leaf))
            .keys()
            .map(Result::unwrap)
            .collect();
        for k in &keys {
            db.insert(k, &b"\x01garbage"[..]).unwrap();
        }
        keys.len()
    });
    assert!(buckets > 0);
    let store = open(&path);
    let (subjects, bad) = counting(
        "verdict_store_bad_entries_total",
        &[("kind", "index")],
        || store.subjects_for_fingerprint(&leaf).unwrap(),
    );
    assert_eq!(bad as usize, buckets);
    assert_eq!(subjects.len(), 30, "found by scanning the entries");
    drop(store);
    // The damage is remembered across restarts, and revocation stays exact.
    let store = open(&path);
    assert_eq!(store.revoke_fingerprint(&leaf).unwrap().len(), 30);
    assert!(store.is_empty());
}

#[test]
fn an_index_bucket_with_a_bad_signature_still_revokes_its_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let leaf = fp("leaf");
    {
        let store = open(&path);
        let batch: Vec<_> = (0..30)
            .map(|n| (key(n), allow(&key(n), std::slice::from_ref(&leaf), year())))
            .collect();
        store.put_many(&batch).unwrap();
    }
    with_raw_db(&path, |db| {
        for k in db.scan_prefix(raw_index_prefix(&leaf)).keys() {
            let k = k.unwrap();
            let mut v = db.get(&k).unwrap().unwrap().to_vec();
            let last = v.len() - 1;
            v[last] ^= 1; // signature only; the ids are intact
            db.insert(k, v).unwrap();
        }
    });
    let store = open(&path);
    assert_eq!(store.revoke_fingerprint(&leaf).unwrap().len(), 30);
    assert!(store.is_empty());
}
