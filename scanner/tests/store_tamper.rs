//! Tampered entries are misses (and counted); a store signed by another verdict key is quarantined.

mod store_support;

use chrono::Utc;
use store_support::*;
use verdict_scanner::store::{
    Lookup, MissReason, OpenOutcome, SledStore, StoreOptions, TagKey, VerdictSigner, VerdictStore,
};

const BAD: &str = "verdict_store_bad_entries_total";

#[test]
fn a_flipped_byte_makes_that_key_a_miss_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    {
        let store = open(&path);
        for n in 0..3 {
            store.put(&key(n), &realistic(&key(n))).unwrap();
        }
    }
    // Flip one bit in the middle of key(1)'s stored value.
    with_raw_db(&path, |db| {
        let raw = raw_entry_key(&key(1));
        let mut value = db.get(&raw).unwrap().unwrap().to_vec();
        let mid = value.len() / 2;
        value[mid] ^= 0x01;
        db.insert(raw, value).unwrap();
    });
    let store = open(&path);
    assert!(matches!(
        store.open_outcome(),
        OpenOutcome::Opened { entries: 3 }
    ));
    let (lookup, bad) = counting(
        BAD,
        &[("reason", "bad_signature"), ("kind", "verdict")],
        || store.get(&key(1), TRUST, Utc::now()).unwrap(),
    );
    assert_eq!(lookup, Lookup::Miss(MissReason::BadSignature));
    assert_eq!(bad, 1, "the bad entry is counted");
    // Its neighbours are untouched.
    assert!(matches!(
        store.get(&key(0), TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));
    assert!(matches!(
        store.get(&key(2), TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));
    // Revalidation sees it as bad, by key, so it can be re-verified.
    let bad_entries: Vec<_> = store
        .iter_all()
        .map(Result::unwrap)
        .filter(|e| e.verdict.is_err())
        .collect();
    assert_eq!(bad_entries.len(), 1);
    assert_eq!(
        bad_entries[0].key,
        Some(key(1)),
        "the damaged entry still names its subject"
    );
    // Nor is it offered as a subject of its fingerprints.
    assert!(
        !store
            .subjects_for_fingerprint(&fp("leaf"))
            .unwrap()
            .contains(&key(1))
    );
    // Re-verifying and storing again repairs it.
    store.put(&key(1), &realistic(&key(1))).unwrap();
    assert!(matches!(
        store.get(&key(1), TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));
}

#[test]
fn flips_anywhere_in_the_value_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let k = key(5);
    {
        open(&path).put(&k, &realistic(&k)).unwrap();
    }
    let original = with_raw_db(&path, |db| {
        db.get(raw_entry_key(&k)).unwrap().unwrap().to_vec()
    });
    let signer = hmac_signer();
    let n = original.len();
    // Version byte, payload, the payload/signature boundary, the signature.
    for i in [0, 1, n / 4, n / 2, 3 * n / 4, n - 33, n - 32, n - 1] {
        let mut value = original.clone();
        value[i] ^= 0x80;
        with_raw_db(&path, |db| db.insert(raw_entry_key(&k), value).unwrap());
        let store = SledStore::open(
            &path,
            VerdictSigner::from_hmac_key(&[7u8; 32]).unwrap(),
            StoreOptions::default(),
        )
        .unwrap();
        let got = store.get(&k, TRUST, Utc::now()).unwrap();
        assert_eq!(
            got,
            Lookup::Miss(MissReason::BadSignature),
            "flip at byte {i}"
        );
    }
    // Truncation is detected too.
    with_raw_db(&path, |db| {
        db.insert(raw_entry_key(&k), &original[..10]).unwrap()
    });
    let store = SledStore::open(&path, signer, StoreOptions::default()).unwrap();
    assert_eq!(
        store.get(&k, TRUST, Utc::now()).unwrap(),
        Lookup::Miss(MissReason::Corrupt)
    );
}

#[test]
fn an_entry_copied_under_another_key_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let (signed, victim) = (key(1), key(2));
    {
        open(&path).put(&signed, &realistic(&signed)).unwrap();
    }
    with_raw_db(&path, |db| {
        let value = db.get(raw_entry_key(&signed)).unwrap().unwrap();
        db.insert(raw_entry_key(&victim), value).unwrap();
    });
    let store = open(&path);
    let (lookup, bad) = counting(BAD, &[("reason", "bad_signature")], || {
        store.get(&victim, TRUST, Utc::now()).unwrap()
    });
    assert_eq!(lookup, Lookup::Miss(MissReason::BadSignature));
    assert_eq!(bad, 1);
    assert!(matches!(
        store.get(&signed, TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));
}

#[test]
fn a_tampered_tag_entry_is_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let v1 = TagKey::parse("myregistry.azurecr.io/app:v1").unwrap();
    let v2 = TagKey::parse("myregistry.azurecr.io/app:v2").unwrap();
    {
        let store = open(&path);
        store.tag_put(&v1, key(1).digest(), Utc::now()).unwrap();
        store.tag_put(&v2, key(2).digest(), Utc::now()).unwrap();
    }
    // Point v2 at v1's (validly signed) record: the digest would change silently if unsigned.
    with_raw_db(&path, |db| {
        let value = db.get(format!("t{v1}")).unwrap().unwrap();
        db.insert(format!("t{v2}"), value).unwrap();
    });
    let store = open(&path);
    let (got, bad) = counting(BAD, &[("kind", "tag")], || store.tag_get(&v2).unwrap());
    assert_eq!(got, None);
    assert_eq!(bad, 1);
    assert_eq!(
        &store.tag_get(&v1).unwrap().unwrap().digest,
        key(1).digest()
    );
}

#[test]
fn a_store_signed_by_another_verdict_key_is_quarantined_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    {
        open(&path).put(&key(1), &realistic(&key(1))).unwrap();
    }
    let other = VerdictSigner::from_hmac_key(&[9u8; 32]).unwrap();
    let (store, quarantined) = counting("verdict_store_quarantined_total", &[], || {
        SledStore::open(&path, other, StoreOptions::default()).unwrap()
    });
    assert_eq!(quarantined, 1);
    let OpenOutcome::Quarantined { moved_to, reason } = store.open_outcome().clone() else {
        panic!("expected quarantine, got {:?}", store.open_outcome());
    };
    assert!(reason.contains("signed by verdict key"), "{reason}");
    assert!(moved_to.exists());
    assert!(
        moved_to
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("v.quarantined-")
    );
    assert!(store.is_empty());
    assert_eq!(
        store.get(&key(1), TRUST, Utc::now()).unwrap(),
        Lookup::Miss(MissReason::Absent)
    );
    // The fresh store works.
    store.put(&key(2), &realistic(&key(2))).unwrap();
    assert!(matches!(
        store.get(&key(2), TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));
}
