//! A bounded in-memory map of verified verdicts in front of the verdict store, so a cache hit
//! skips the store read, the verdict decode and its signature check.
//!
//! Entries are only ever verdicts the store just accepted (signature, trust fingerprint and expiry
//! checked) or verdicts just written to it. An entry is never served at or past its expiry.
//! Sharded (`SHARDS` mutex-protected maps); when a shard is full a random entry is evicted
//! (O(1): keys are also kept in a vector, each entry knows its slot).
//!
//! Removals must go through [`VerdictMap::invalidate`]. A per-shard generation makes a store
//! read that raced with an invalidation or a write unable to re-insert what it read.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cache::ServedVerdict;
use chrono::{DateTime, Utc};
use verdict_scanner::subject::SubjectKey;

const SHARDS: usize = 16;

struct Entry {
    result: Arc<ServedVerdict>,
    expires_at: Option<DateTime<Utc>>,
    /// Index of this entry's key in [`Shard::keys`].
    slot: usize,
}

/// [`SubjectKey`]s carry a keyed hash already: the map uses it as is instead of hashing it again.
#[derive(Clone, Copy, Default)]
struct Prehashed;

impl BuildHasher for Prehashed {
    type Hasher = PrehashedHasher;
    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    /// Not reached (`SubjectKey` writes one u64); a plain FNV-1a keeps it correct if it were.
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

struct Shard {
    map: HashMap<SubjectKey, Entry, Prehashed>,
    keys: Vec<SubjectKey>,
    /// Bumped by every write and invalidation (see [`VerdictMap::generation`]).
    generation: u64,
    /// xorshift state for eviction.
    rng: u64,
    /// Entries evicted to stay within capacity.
    evicted: u64,
}

impl Shard {
    fn remove(&mut self, key: &SubjectKey) -> bool {
        let Some(entry) = self.map.remove(key) else {
            return false;
        };
        self.keys.swap_remove(entry.slot);
        if let Some(moved) = self.keys.get(entry.slot)
            && let Some(e) = self.map.get_mut(moved)
        {
            e.slot = entry.slot;
        }
        true
    }

    fn evict_one(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        let victim = self.keys[(x % self.keys.len() as u64) as usize].clone();
        self.remove(&victim);
        self.evicted += 1;
    }

    fn insert(
        &mut self,
        capacity: usize,
        key: SubjectKey,
        entry: (Arc<ServedVerdict>, Option<DateTime<Utc>>),
    ) {
        if let Some(e) = self.map.get_mut(&key) {
            e.result = entry.0;
            e.expires_at = entry.1;
            return;
        }
        while self.keys.len() >= capacity {
            self.evict_one();
        }
        let slot = self.keys.len();
        self.keys.push(key.clone());
        self.map.insert(
            key,
            Entry {
                result: entry.0,
                expires_at: entry.1,
                slot,
            },
        );
    }
}

/// A bounded, sharded map `SubjectKey → (verified result, expiry)`.
pub struct VerdictMap {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

/// What [`VerdictMap::generation`] returns: pass it back to [`VerdictMap::insert_if_unchanged`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl VerdictMap {
    /// Holds at most about `capacity` entries (rounded up to a multiple of the shard count);
    /// 0 disables it (every call is a no-op or a miss).
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        let hasher = RandomState::new();
        let shards = (0..SHARDS)
            .map(|i| {
                Mutex::new(Shard {
                    map: HashMap::with_hasher(Prehashed),
                    keys: Vec::new(),
                    generation: 0,
                    rng: hasher.hash_one(i) | 1,
                    evicted: 0,
                })
            })
            .collect();
        VerdictMap { shards, per_shard }
    }

    /// The most entries held.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    fn shard(&self, key: &SubjectKey) -> MutexGuard<'_, Shard> {
        // The high bits: hashbrown picks buckets with the low ones.
        let i = ((key.prehash() >> 48) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry for `key` if it may be served at `now` under the trust configuration with
    /// `fingerprint` ([`VerificationResult::servable`]); one that may not is dropped.
    ///
    /// [`VerificationResult::servable`]: verdict_scanner::report::VerificationResult::servable
    pub fn get(
        &self,
        key: &SubjectKey,
        now: DateTime<Utc>,
        fingerprint: &str,
    ) -> Option<Arc<ServedVerdict>> {
        if self.per_shard == 0 {
            return None;
        }
        let mut shard = self.shard(key);
        let entry = shard.map.get(key)?;
        if entry
            .result
            .result()
            .servable(entry.expires_at, now, fingerprint)
            .is_err()
        {
            shard.remove(key);
            return None;
        }
        Some(Arc::clone(&entry.result))
    }

    /// Read before a store lookup whose result may be inserted with [`Self::insert_if_unchanged`].
    pub fn generation(&self, key: &SubjectKey) -> Generation {
        Generation(self.shard(key).generation)
    }

    /// Inserts what a store lookup returned, unless `key`'s shard was written or invalidated since
    /// `seen` (the lookup may then have read something already replaced or removed).
    pub fn insert_if_unchanged(
        &self,
        seen: Generation,
        key: &SubjectKey,
        result: Arc<ServedVerdict>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(key);
        if shard.generation == seen.0 {
            shard.insert(self.per_shard, key.clone(), (result, expires_at));
        }
    }

    /// Inserts (or replaces) the entry for `key` after it was written to the store.
    pub fn insert(
        &self,
        key: &SubjectKey,
        result: Arc<ServedVerdict>,
        expires_at: Option<DateTime<Utc>>,
    ) {
        let mut shard = self.shard(key);
        shard.generation = shard.generation.wrapping_add(1);
        if self.per_shard > 0 {
            shard.insert(self.per_shard, key.clone(), (result, expires_at));
        }
    }

    /// Drops the entry for `key` (call it whenever the store entry is removed or replaced);
    /// true if there was one.
    pub fn invalidate(&self, key: &SubjectKey) -> bool {
        let mut shard = self.shard(key);
        shard.generation = shard.generation.wrapping_add(1);
        shard.remove(key)
    }

    /// Number of entries held (expired ones included until read).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).map.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries evicted so far to stay within capacity.
    pub fn evictions(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).evicted)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict_scanner::registry::{Digest, Repository};
    use verdict_scanner::report::{ArtifactPolicy, VerificationResult};

    fn key(n: usize) -> SubjectKey {
        let repo = Repository::new("reg.example:5000", &format!("app/n{}", n % 7)).unwrap();
        let digest = Digest::parse(&format!("sha256:{n:064x}")).unwrap();
        SubjectKey::new(None, repo, digest)
    }

    fn result(subject: &str) -> Arc<ServedVerdict> {
        Arc::new(ServedVerdict::new(VerificationResult::decide(
            subject.to_owned(),
            format!("sha256:{:064x}", 1),
            Vec::new(),
            Vec::new(),
            &ArtifactPolicy::default(),
            "fp".to_owned(),
            Utc::now(),
        )))
    }

    #[test]
    fn serves_until_expiry_and_never_after() {
        let hot = VerdictMap::new(64);
        let now = Utc::now();
        let at = now + chrono::Duration::seconds(10);
        hot.insert(&key(1), result("a"), Some(at));
        assert!(hot.get(&key(1), now, "fp").is_some());
        assert!(
            hot.get(&key(1), at - chrono::Duration::milliseconds(1), "fp")
                .is_some()
        );
        assert!(hot.get(&key(1), at, "fp").is_none(), "served at its expiry");
        assert!(hot.is_empty(), "expired entry kept");
        hot.insert(&key(2), result("b"), None);
        assert!(
            hot.get(&key(2), now + chrono::Duration::days(3650), "fp")
                .is_some()
        );
        assert!(
            hot.get(&key(2), now, "another configuration").is_none(),
            "served under another trust configuration"
        );
        assert!(hot.is_empty(), "an entry of another configuration kept");
    }

    #[test]
    fn stays_bounded_and_keeps_slots_consistent() {
        let hot = VerdictMap::new(160);
        let now = Utc::now();
        for n in 0..5_000 {
            hot.insert(&key(n), result(&n.to_string()), None);
        }
        assert!(
            hot.len() <= hot.capacity(),
            "{} > {}",
            hot.len(),
            hot.capacity()
        );
        assert!(hot.len() >= hot.capacity() - SHARDS);
        let before = hot.len();
        // Every held key answers with its own result, and invalidating all of them empties it.
        let mut held = 0;
        for n in 0..5_000 {
            if let Some(r) = hot.get(&key(n), now, "fp") {
                assert_eq!(r.result().subject, n.to_string());
                held += 1;
                assert!(hot.invalidate(&key(n)));
                assert!(hot.get(&key(n), now, "fp").is_none());
            }
        }
        assert_eq!(held, before);
        assert!(hot.is_empty());
    }

    #[test]
    fn a_store_read_racing_an_invalidation_is_not_inserted() {
        let hot = VerdictMap::new(64);
        let now = Utc::now();
        let seen = hot.generation(&key(3));
        hot.invalidate(&key(3)); // e.g. the verdict was revoked while the store read ran
        hot.insert_if_unchanged(seen, &key(3), result("stale"), None);
        assert!(
            hot.get(&key(3), now, "fp").is_none(),
            "revoked verdict re-inserted"
        );
        let seen = hot.generation(&key(3));
        hot.insert_if_unchanged(seen, &key(3), result("fresh"), None);
        assert_eq!(
            hot.get(&key(3), now, "fp").unwrap().result().subject,
            "fresh"
        );
    }

    #[test]
    fn zero_capacity_disables_it() {
        let hot = VerdictMap::new(0);
        hot.insert(&key(1), result("a"), None);
        assert!(hot.get(&key(1), Utc::now(), "fp").is_none());
    }
}
