//! Round trips, expiry, trust-configuration matching, removal, persistence and the tag map.

mod store_support;

use chrono::{Duration, Utc};
use store_support::*;
use verdict_scanner::report::{DenyLifetimes, Retention};
use verdict_scanner::store::{
    Lookup, MissReason, OpenOutcome, SignerKind, StoreError, SubjectKey, TagKey, VerdictStore,
};

#[test]
fn put_then_get_returns_the_same_verdict_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verdicts");
    let k = key(1);
    let v = realistic(&k);
    {
        let store = open(&path);
        assert_eq!(store.open_outcome(), &OpenOutcome::Created);
        assert!(store.is_empty());
        store.put(&k, &v).unwrap();
        assert_eq!(
            store.get(&k, TRUST, Utc::now()).unwrap(),
            Lookup::Hit(v.clone())
        );
        assert_eq!(store.len(), 1);
    }
    let store = open(&path);
    assert_eq!(store.open_outcome(), &OpenOutcome::Opened { entries: 1 });
    let Lookup::Hit(got) = store.get(&k, TRUST, Utc::now()).unwrap() else {
        panic!("expected a hit after reopening");
    };
    assert_eq!(got, v);
    assert_eq!(
        store.get(&key(2), TRUST, Utc::now()).unwrap(),
        Lookup::Miss(MissReason::Absent)
    );
}

#[test]
fn ed25519_signed_store_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&dir.path().join("v"), SignerKind::Ed25519);
    let k = key(9);
    store.put(&k, &realistic(&k)).unwrap();
    assert!(matches!(
        store.get(&k, TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));
}

#[test]
fn namespaced_and_plain_keys_are_separate_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("v"));
    let plain = key(3);
    let ns = SubjectKey::parse(&format!("[team-a]{plain}")).unwrap();
    store.put(&ns, &realistic(&ns)).unwrap();
    assert!(matches!(
        store.get(&ns, TRUST, Utc::now()).unwrap(),
        Lookup::Hit(_)
    ));
    assert_eq!(
        store.get(&plain, TRUST, Utc::now()).unwrap(),
        Lookup::Miss(MissReason::Absent)
    );
}

#[test]
fn expiry_comes_from_evidence_validity_and_from_a_caller_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("v"));
    let now = Utc::now();

    let k = key(1);
    let v = allow(&k, &[fp("leaf")], Some(now + Duration::hours(1)));
    assert_eq!(v.expires_at, Some(now + Duration::hours(1)));
    store.put(&k, &v).unwrap();
    assert!(matches!(store.get(&k, TRUST, now).unwrap(), Lookup::Hit(_)));
    assert_eq!(
        store.get(&k, TRUST, now + Duration::hours(1)).unwrap(),
        Lookup::Miss(MissReason::Expired)
    );

    // A deny with no bounded evidence, kept for its 30 s lifetime.
    let d = key(2);
    let mut deny = allow(&d, &[], None);
    deny.result.is_success = false;
    let lifetimes = DenyLifetimes {
        definitive: std::time::Duration::from_secs(30),
        provisional: std::time::Duration::from_secs(30),
    };
    let Retention::Keep { expires_at } = deny.result.retention(now, &lifetimes) else {
        panic!("a deny with a lifetime is kept");
    };
    deny.expires_at = expires_at;
    assert_eq!(deny.expires_at, Some(now + Duration::seconds(30)));
    store.put(&d, &deny).unwrap();
    assert!(
        matches!(store.get(&d, TRUST, now + Duration::seconds(29)).unwrap(), Lookup::Hit(h) if !h.result.is_success)
    );
    assert_eq!(
        store.get(&d, TRUST, now + Duration::seconds(30)).unwrap(),
        Lookup::Miss(MissReason::Expired)
    );
}

#[test]
fn a_verdict_under_another_trust_configuration_is_never_a_hit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("v"));
    let k = key(1);
    store.put(&k, &realistic(&k)).unwrap();
    let other = sha256(b"rotated trust config");
    assert_eq!(
        store.get(&k, &other, Utc::now()).unwrap(),
        Lookup::Miss(MissReason::OtherTrustConfig)
    );
    assert_eq!(
        store.get(&k, "", Utc::now()).unwrap(),
        Lookup::Miss(MissReason::OtherTrustConfig)
    );
}

/// A verdict carried over to a new configuration: `get_any` finds it under its old one, the
/// rewrite serves it under the new one, and the evidence index still finds (and revokes) it.
#[test]
fn a_carried_over_verdict_keeps_its_index_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("v"));
    let k = key(1);
    let v = realistic(&k);
    store.put(&k, &v).unwrap();
    let now = Utc::now();
    assert_eq!(store.get_any(&k, now).unwrap(), Some(v.clone()));
    let new_config = sha256(b"rotated trust config");
    let mut carried = v.clone();
    carried.result.trust_config_fingerprint = new_config.clone();
    store
        .rewrite_same_evidence(&[(k.clone(), carried.clone())])
        .unwrap();
    assert_eq!(
        store.get(&k, &new_config, now).unwrap(),
        Lookup::Hit(carried)
    );
    assert_eq!(
        store.get(&k, TRUST, now).unwrap(),
        Lookup::Miss(MissReason::OtherTrustConfig)
    );
    assert_eq!(store.len(), 1);
    let fp = v.fingerprints().into_iter().next().unwrap();
    assert_eq!(
        store.subjects_for_fingerprint(&fp).unwrap(),
        vec![k.clone()]
    );
    assert_eq!(store.revoke_fingerprint(&fp).unwrap(), vec![k.clone()]);
    assert_eq!(store.get_any(&k, now).unwrap(), None);
}

#[test]
fn invalid_verdicts_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("v"));
    let k = key(1);
    let wrong_digest = realistic(&key(2));
    let e = store.put(&k, &wrong_digest).unwrap_err();
    assert!(matches!(e, StoreError::InvalidVerdict { .. }), "{e}");
    assert!(e.to_string().contains("the key names"), "{e}");
    assert!(!e.is_transient());

    let mut no_trust = realistic(&k);
    no_trust.result.trust_config_fingerprint.clear();
    let e = store.put(&k, &no_trust).unwrap_err();
    assert!(
        e.to_string().contains("trust-configuration fingerprint"),
        "{e}"
    );
    assert!(store.is_empty());
}

#[test]
fn overwrite_remove_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    {
        let store = open(&path);
        let batch: Vec<_> = (0..50).map(|n| (key(n), realistic(&key(n)))).collect();
        store.put_many(&batch).unwrap();
        assert_eq!(store.len(), 50);
        // Overwriting keeps the count and serves the new value.
        let mut newer = realistic(&key(7));
        newer.result.reports[0].message = "re-verified".into();
        store.put(&key(7), &newer).unwrap();
        assert_eq!(store.len(), 50);
        let Lookup::Hit(got) = store.get(&key(7), TRUST, Utc::now()).unwrap() else {
            panic!("expected a hit")
        };
        assert_eq!(got.result.reports[0].message, "re-verified");

        assert!(store.remove(&key(8)).unwrap());
        assert!(!store.remove(&key(8)).unwrap());
        assert_eq!(store.len(), 49);
        assert_eq!(
            store.get(&key(8), TRUST, Utc::now()).unwrap(),
            Lookup::Miss(MissReason::Absent)
        );
    }
    let store = open(&path);
    assert_eq!(store.len(), 49, "the count survives a restart");
    let all: Vec<_> = store.iter_all().map(Result::unwrap).collect();
    assert_eq!(all.len(), 49);
    assert!(all.iter().all(|e| e.verdict.is_ok()));
    assert!(!all.iter().any(|e| e.key == Some(key(8))));
    assert!(all.iter().any(|e| e.key == Some(key(7))));
}

#[test]
fn tag_map_records_the_latest_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v");
    let tag = TagKey::parse("myregistry.azurecr.io/app/web:v1").unwrap();
    let t0 = Utc::now();
    {
        let store = open(&path);
        assert_eq!(store.tag_get(&tag).unwrap(), None);
        store.tag_put(&tag, key(1).digest(), t0).unwrap();
        store
            .tag_put(&tag, key(2).digest(), t0 + Duration::seconds(5))
            .unwrap();
    }
    let store = open(&path);
    let got = store.tag_get(&tag).unwrap().unwrap();
    assert_eq!(&got.digest, key(2).digest());
    assert_eq!(got.seen_at, t0 + Duration::seconds(5));
    let other = TagKey::parse("myregistry.azurecr.io/app/web:v2").unwrap();
    assert_eq!(store.tag_get(&other).unwrap(), None);
    // Tags are not verdicts.
    assert_eq!(store.len(), 0);
}
