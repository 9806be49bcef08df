//! The signed verdict store as the service's [`VerdictCache`], with bounded memory in front.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use verdict_scanner::store::{Lookup, StoredVerdict, VerdictStore};
use verdict_scanner::subject::SubjectKey;

use crate::cache::{ServedVerdict, VerdictCache};
use crate::error::Error;
use crate::verdict_map::VerdictMap;
use crate::verification::TrustScopes;

/// The signed sled store as the verdict cache, with two bounded maps in memory in front of it.
///
/// - Allows go to the store (signed, flushed) and to a bounded [`VerdictMap`] map, filled on
///   every put and every store hit (already checked) and consulted first.
/// - Denies never reach the store: they live only in their own bounded map (with the short
///   lifetimes the service gives them), so lookups of random digests or namespaces cannot grow
///   the disk, and cannot evict allows from memory.
///
/// A store lookup is a hit only for an entry whose signature checks, that has not expired, and
/// that was computed under the current configuration of the key's scope ([`TrustScopes`]); a
/// memory entry is still only served when its result carries that fingerprint. Removing a
/// verdict from the store must go through [`Self::remove`] (or call [`Self::invalidate`]) so
/// memory forgets it too.
pub struct StoreVerdictCache {
    store: Arc<dyn VerdictStore>,
    scopes: Arc<dyn TrustScopes>,
    hot: VerdictMap,
    denies: VerdictMap,
    /// How verdicts of earlier configurations are carried over to the current one.
    carry: RwLock<Arc<Vec<CarryOver>>>,
    /// Held shared by every store write and exclusively by a carry-over pass while it writes a
    /// batch, so a pass never overwrites a verdict stored after it read the old one.
    write_guard: RwLock<()>,
    /// While a pass runs: the subjects written since it started (it leaves them alone).
    written_during_pass: Mutex<Option<HashSet<SubjectKey>>>,
}

/// A change of trust configuration that only moved key material (the resources' specs are the
/// same): a verdict computed under `from` whose evidence names none of `removed` is what the
/// configuration `to` gives too — its signatures verified with keys and anchors `to` still
/// trusts, under the same policies. It is re-signed under `to` at its next lookup or by
/// [`StoreVerdictCache::carry_over_pass`], without a registry round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarryOver {
    pub from: Arc<str>,
    pub to: Arc<str>,
    /// Fingerprints (certificates, keys, `kmp:` names) that left between `from` and `to`.
    pub removed: BTreeSet<String>,
}

/// Counter: verdicts carried over to a new configuration, by `path` (`lookup`, `pass`).
pub const METRIC_CARRIED: &str = "verdict_verdicts_carried_over_total";

/// What [`StoreVerdictCache::carry_over_pass`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CarryReport {
    pub examined: u64,
    /// Re-signed under the new configuration.
    pub carried: u64,
    /// Under an earlier configuration but not carried (its evidence names removed material, or
    /// the change was more than material): re-verified at lookup or by a revalidation run.
    pub left: u64,
}

/// Default number of verdicts kept decoded and rendered in memory in front of the store: room for
/// every image a large cluster runs, at a few KiB each (benches/README.md, "Memory").
pub const DEFAULT_MEMORY_ENTRIES: usize = 4_096;

/// Default number of denies held (in memory only); when full, a random one is forgotten (it is
/// then verified again on its next lookup).
pub const DEFAULT_DENY_ENTRIES: usize = 4_096;

/// What [`StoreVerdictCache::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Entries examined.
    pub examined: u64,
    /// Expired, undecodable or deny entries removed.
    pub removed: u64,
}

/// A store failure, its source kept.
fn store_error(context: String, source: verdict_scanner::store::StoreError) -> Error {
    Error::Store {
        context,
        source: Arc::new(source.into()),
    }
}

impl StoreVerdictCache {
    /// With [`DEFAULT_MEMORY_ENTRIES`] allows and [`DEFAULT_DENY_ENTRIES`] denies in memory.
    pub fn new(store: Arc<dyn VerdictStore>, scopes: Arc<dyn TrustScopes>) -> Self {
        Self::with_memory_entries(store, scopes, DEFAULT_MEMORY_ENTRIES, DEFAULT_DENY_ENTRIES)
    }

    /// With at most about `memory_entries` allows held in memory (0: every lookup reads the
    /// store) and `deny_entries` denies (0: denies are not kept at all).
    pub fn with_memory_entries(
        store: Arc<dyn VerdictStore>,
        scopes: Arc<dyn TrustScopes>,
        memory_entries: usize,
        deny_entries: usize,
    ) -> Self {
        StoreVerdictCache {
            store,
            scopes,
            hot: VerdictMap::new(memory_entries),
            denies: VerdictMap::new(deny_entries),
            carry: RwLock::new(Arc::new(Vec::new())),
            write_guard: RwLock::new(()),
            written_during_pass: Mutex::new(None),
        }
    }

    /// Notes a store write of `store_key` for a running pass; hold the returned guard while
    /// writing.
    fn writing(&self, store_key: &SubjectKey) -> std::sync::RwLockReadGuard<'_, ()> {
        let guard = self.write_guard.read().unwrap_or_else(|e| e.into_inner());
        if let Some(written) = self
            .written_during_pass
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            written.insert(store_key.clone());
        }
        guard
    }

    /// Replaces the carry-over rules (after a change of trust configuration).
    pub fn set_carry_over(&self, rules: Vec<CarryOver>) {
        *self.carry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    /// The carry-over rules in force.
    pub fn carry_over(&self) -> Arc<Vec<CarryOver>> {
        Arc::clone(&self.carry.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// `v` as the configuration `to` would give it, if a rule carries it there.
    fn carried(rules: &[CarryOver], v: &StoredVerdict, to: &str) -> Option<StoredVerdict> {
        if !v.result.is_success {
            return None;
        }
        let from = v.result.trust_config_fingerprint.as_str();
        let rule = rules.iter().find(|r| &*r.from == from && &*r.to == to)?;
        if v.fingerprints().iter().any(|f| rule.removed.contains(f)) {
            return None;
        }
        let mut carried = v.clone();
        carried.result.trust_config_fingerprint = to.to_owned();
        Some(carried)
    }

    /// While carry-over rules are in force: one read, served as is under `fingerprint` or
    /// carried over to it when a rule allows.
    fn get_or_carry(
        &self,
        key: &SubjectKey,
        store_key: &SubjectKey,
        fingerprint: &str,
        seen: crate::verdict_map::Generation,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<ServedVerdict>>, Error> {
        let Some(v) = self
            .store
            .get_any(store_key, now)
            .map_err(|e| store_error(format!("reading the verdict for {key}"), e))?
        else {
            return Ok(None);
        };
        let v = if v.result.trust_config_fingerprint == fingerprint {
            v
        } else {
            match Self::carried(&self.carry_over(), &v, fingerprint) {
                Some(c) => {
                    metrics::counter!(METRIC_CARRIED, "path" => "lookup").increment(1);
                    c
                }
                None => return Ok(None),
            }
        };
        if !v.result.is_success {
            return Ok(None);
        }
        let verdict = Arc::new(ServedVerdict::new(v.result));
        self.hot
            .insert_if_unchanged(seen, key, Arc::clone(&verdict), v.expires_at);
        Ok(Some(verdict))
    }

    /// Carries every stored verdict a rule covers over to its new configuration (blocking: run
    /// it on the blocking pool). A verdict stored or removed after the pass read it is left as
    /// that write made it.
    pub fn carry_over_pass(&self, now: DateTime<Utc>) -> Result<CarryReport, Error> {
        // Small durable batches: each write burst (and its flush) stays short next to lookups.
        const BATCH: usize = 512;
        let rules = self.carry_over();
        let mut report = CarryReport::default();
        if rules.is_empty() {
            return Ok(report);
        }
        *self
            .written_during_pass
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(HashSet::new());
        let result = self.carry_over_entries(&rules, now, BATCH, &mut report);
        *self
            .written_during_pass
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        result.map(|()| report)
    }

    fn carry_over_entries(
        &self,
        rules: &[CarryOver],
        now: DateTime<Utc>,
        batch_size: usize,
        report: &mut CarryReport,
    ) -> Result<(), Error> {
        let current: BTreeSet<&str> = rules.iter().map(|r| &*r.to).collect();
        let mut batch: Vec<(SubjectKey, StoredVerdict)> = Vec::with_capacity(batch_size);
        let flush = |batch: &mut Vec<(SubjectKey, StoredVerdict)>,
                     report: &mut CarryReport|
         -> Result<(), Error> {
            let _exclusive = self.write_guard.write().unwrap_or_else(|e| e.into_inner());
            if let Some(written) = self
                .written_during_pass
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            {
                batch.retain(|(k, _)| !written.contains(k));
            }
            if !batch.is_empty() {
                self.store
                    .rewrite_same_evidence(batch)
                    .map_err(|e| store_error("re-storing carried-over verdicts".into(), e))?;
                metrics::counter!(METRIC_CARRIED, "path" => "pass").increment(batch.len() as u64);
                report.carried += batch.len() as u64;
            }
            batch.clear();
            Ok(())
        };
        for entry in self.store.iter_all() {
            let entry = entry
                .map_err(|e| store_error("reading the store to carry verdicts over".into(), e))?;
            report.examined += 1;
            let (Some(key), Ok(v)) = (entry.key, entry.verdict) else {
                continue;
            };
            let fp = v.result.trust_config_fingerprint.as_str();
            if current.contains(fp) || v.is_expired(now) {
                continue;
            }
            let carried = rules
                .iter()
                .find(|r| &*r.from == fp)
                .and_then(|rule| Self::carried(rules, &v, &rule.to));
            match carried {
                Some(carried) => {
                    batch.push((key, carried));
                    if batch.len() >= batch_size {
                        flush(&mut batch, report)?;
                    }
                }
                None => report.left += 1,
            }
        }
        flush(&mut batch, report)
    }

    /// The store key of `key` (its scope's namespace, not the request's) and the fingerprint of
    /// its scope's configuration. A scope is the key's own namespace or the cluster's.
    fn key(&self, key: &SubjectKey) -> (SubjectKey, Arc<str>) {
        let (scope, fingerprint) = self.scopes.scope(key.namespace());
        let store_key = match scope {
            None => key.without_namespace(),
            Some(_) => key.clone(),
        };
        (store_key, fingerprint)
    }

    /// Forgets the in-memory copies of `key`'s verdict (the store entry is untouched).
    pub fn invalidate(&self, key: &SubjectKey) -> bool {
        let allow = self.hot.invalidate(key);
        self.denies.invalidate(key) || allow
    }

    /// Removes `key`'s verdict from the store and from memory; true if the store had one.
    pub fn remove(&self, key: &SubjectKey) -> Result<bool, Error> {
        let (store_key, _) = self.key(key);
        // Before and after: a lookup that read the store before the removal cannot re-insert
        // (generation check), and none can find the memory entry afterwards.
        self.invalidate(key);
        let removed = {
            let _writing = self.writing(&store_key);
            self.store
                .remove(&store_key)
                .map_err(|e| store_error(format!("removing the verdict for {key}"), e))
        };
        self.invalidate(key);
        removed
    }

    /// Allows currently held in memory.
    pub fn memory_len(&self) -> usize {
        self.hot.len()
    }

    /// Denies currently held in memory.
    pub fn deny_len(&self) -> usize {
        self.denies.len()
    }

    /// Entries evicted from memory to stay within bounds: `(allows, denies)`.
    pub fn evictions(&self) -> (u64, u64) {
        (self.hot.evictions(), self.denies.evictions())
    }

    /// Removes from the store every entry that can never be served again: expired at `now`,
    /// undecodable or badly signed, and denies (written by earlier versions). Blocking; run it on
    /// the blocking pool.
    pub fn sweep(&self, now: DateTime<Utc>) -> Result<SweepReport, Error> {
        let mut report = SweepReport::default();
        let mut doomed = Vec::new();
        for entry in self.store.iter_all() {
            let entry =
                entry.map_err(|e| store_error("reading the store for a sweep".into(), e))?;
            report.examined += 1;
            let dead = match &entry.verdict {
                Ok(v) => v.is_expired(now) || !v.result.is_success,
                Err(_) => true,
            };
            if let (true, Some(key)) = (dead, entry.key) {
                doomed.push(key);
            }
        }
        for key in doomed {
            if self
                .store
                .remove(&key)
                .map_err(|e| store_error(format!("removing {key}"), e))?
            {
                report.removed += 1;
            }
        }
        Ok(report)
    }

    /// The store behind the cache (for metrics: size, entry count).
    pub fn store(&self) -> &Arc<dyn VerdictStore> {
        &self.store
    }
}

impl VerdictCache for StoreVerdictCache {
    fn get_memory(&self, key: &SubjectKey, now: DateTime<Utc>) -> Option<Arc<ServedVerdict>> {
        let (_, fingerprint) = self.scopes.scope(key.namespace());
        self.hot
            .get(key, now, &fingerprint)
            .or_else(|| self.denies.get(key, now, &fingerprint))
    }

    fn get_stored(
        &self,
        key: &SubjectKey,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<ServedVerdict>>, Error> {
        let seen = self.hot.generation(key);
        let (store_key, fingerprint) = self.key(key);
        if !self.carry_over().is_empty() {
            return self.get_or_carry(key, &store_key, &fingerprint, seen, now);
        }
        match self
            .store
            .get(&store_key, &fingerprint, now)
            .map_err(|e| store_error(format!("reading the verdict for {key}"), e))?
        {
            Lookup::Hit(v) if v.result.is_success => {
                let verdict = Arc::new(ServedVerdict::new(v.result));
                self.hot
                    .insert_if_unchanged(seen, key, Arc::clone(&verdict), v.expires_at);
                Ok(Some(verdict))
            }
            // A deny left by an earlier version: denies are kept in memory only, with their
            // short lifetimes; verify again.
            Lookup::Hit(_) => Ok(None),
            Lookup::Miss(reason) => {
                tracing::debug!(key = %store_key, reason = reason.as_str(), "store miss");
                Ok(None)
            }
        }
    }

    fn put(
        &self,
        key: &SubjectKey,
        verdict: &Arc<ServedVerdict>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), Error> {
        let result = verdict.result();
        if !result.is_success {
            self.hot.invalidate(key);
            self.denies.insert(key, Arc::clone(verdict), expires_at);
            return Ok(());
        }
        let (store_key, _) = self.key(key);
        self.denies.invalidate(key);
        let stored = StoredVerdict {
            result: result.clone(),
            expires_at,
        };
        let written = {
            let _writing = self.writing(&store_key);
            self.store.put(&store_key, &stored)
        };
        match written {
            Ok(()) => {
                self.hot.insert(key, Arc::clone(verdict), expires_at);
                Ok(())
            }
            Err(e) => {
                // The store may hold the old verdict or none: memory must not claim either.
                self.hot.invalidate(key);
                Err(store_error(format!("storing the verdict for {key}"), e))
            }
        }
    }

    fn remove(&self, key: &SubjectKey) -> Result<bool, Error> {
        StoreVerdictCache::remove(self, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::SingleScope;
    use verdict_scanner::registry::{Digest, Repository};
    use verdict_scanner::report::{ArtifactPolicy, VerificationResult};
    use verdict_scanner::store::{SignerKind, SledStore, StoreOptions, VerdictSigner};

    const FP: &str = "fp-current";

    fn open(dir: &std::path::Path) -> Arc<dyn VerdictStore> {
        let signer = VerdictSigner::generate(SignerKind::HmacSha256).unwrap();
        Arc::new(SledStore::open(dir, signer, StoreOptions::default()).unwrap())
    }

    fn subject(n: u8) -> SubjectKey {
        SubjectKey::new(
            None,
            Repository::new("reg.example:5000", "team/app").unwrap(),
            Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap(),
        )
    }

    fn result(key: &SubjectKey, fingerprint: &str) -> VerificationResult {
        VerificationResult::decide(
            key.reference().to_string(),
            key.digest().to_string(),
            Vec::new(),
            Vec::new(),
            &ArtifactPolicy::default(),
            fingerprint.to_owned(),
            Utc::now(),
        )
    }

    /// An allow (what the store keeps) for `key`.
    fn allow(key: &SubjectKey, fingerprint: &str) -> VerificationResult {
        let mut r = result(key, fingerprint);
        r.is_success = true;
        r
    }

    fn scopes() -> Arc<dyn TrustScopes> {
        Arc::new(SingleScope(FP.into()))
    }

    fn served(result: VerificationResult) -> Arc<ServedVerdict> {
        Arc::new(ServedVerdict::new(result))
    }

    /// What `cache` serves for `key` at `now`.
    fn got(
        cache: &StoreVerdictCache,
        key: &SubjectKey,
        now: DateTime<Utc>,
    ) -> Option<VerificationResult> {
        cache.get(key, now).unwrap().map(|v| v.result().clone())
    }

    #[test]
    fn memory_serves_store_hits_and_forgets_on_invalidate_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let cache = StoreVerdictCache::with_memory_entries(Arc::clone(&store), scopes(), 100, 100);
        let key = subject(1);
        let expected = allow(&key, FP);
        store
            .put(&cache.key(&key).0, &StoredVerdict::new(expected.clone()))
            .unwrap();
        let now = Utc::now();
        assert_eq!(got(&cache, &key, now), Some(expected.clone()));
        assert_eq!(
            cache.memory_len(),
            1,
            "a verified store hit is kept in memory"
        );
        // Removed behind the adapter's back: memory still answers, which is why removals
        // must invalidate.
        store.remove(&cache.key(&key).0).unwrap();
        assert_eq!(got(&cache, &key, now), Some(expected.clone()));
        assert!(cache.invalidate(&key));
        assert_eq!(got(&cache, &key, now), None);

        // Through the adapter: put fills memory, remove empties store and memory.
        cache.put(&key, &served(expected), None).unwrap();
        assert_eq!(cache.memory_len(), 1);
        assert!(cache.remove(&key).unwrap());
        assert_eq!(cache.memory_len(), 0);
        assert_eq!(got(&cache, &key, now), None);
    }

    #[test]
    fn memory_never_serves_past_expiry_or_another_trust_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StoreVerdictCache::with_memory_entries(open(dir.path()), scopes(), 100, 100);
        let key = subject(2);
        let now = Utc::now();
        let at = now + chrono::Duration::seconds(30);
        cache.put(&key, &served(allow(&key, FP)), Some(at)).unwrap();
        assert!(got(&cache, &key, at - chrono::Duration::seconds(1)).is_some());
        assert_eq!(got(&cache, &key, at), None, "served at its expiry");

        let other = subject(3);
        cache
            .put(&other, &served(allow(&other, "fp-old")), None)
            .unwrap();
        assert_eq!(cache.memory_len(), 1);
        assert_eq!(
            got(&cache, &other, now),
            None,
            "a verdict of another trust configuration was served"
        );
    }

    #[test]
    fn zero_memory_entries_reads_the_store_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let cache = StoreVerdictCache::with_memory_entries(Arc::clone(&store), scopes(), 0, 0);
        let key = subject(4);
        cache.put(&key, &served(allow(&key, FP)), None).unwrap();
        assert_eq!(cache.memory_len(), 0);
        assert!(got(&cache, &key, Utc::now()).is_some());
        store.remove(&cache.key(&key).0).unwrap();
        assert_eq!(got(&cache, &key, Utc::now()), None);
    }

    #[test]
    fn denies_stay_in_bounded_memory_and_never_reach_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let cache = StoreVerdictCache::with_memory_entries(Arc::clone(&store), scopes(), 64, 64);
        let now = Utc::now();
        let signed = subject(200);
        cache
            .put(&signed, &served(allow(&signed, FP)), None)
            .unwrap();
        for n in 0..200u8 {
            let key = subject(n);
            cache.put(&key, &served(result(&key, FP)), None).unwrap();
        }
        assert_eq!(store.len(), 1, "a deny was written to the store");
        assert!(cache.deny_len() <= 64, "{} denies held", cache.deny_len());
        assert!(cache.evictions().1 > 0);
        assert_eq!(cache.evictions().0, 0, "denies evicted an allow");
        assert!(got(&cache, &signed, now).is_some_and(|r| r.is_success));
        // A recent deny is served from memory; an allow for the same subject replaces it.
        let key = subject(199);
        assert!(got(&cache, &key, now).is_some_and(|r| !r.is_success));
        cache.put(&key, &served(allow(&key, FP)), None).unwrap();
        assert!(got(&cache, &key, now).is_some_and(|r| r.is_success));
    }

    #[test]
    fn sweep_removes_what_can_never_be_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let cache = StoreVerdictCache::with_memory_entries(Arc::clone(&store), scopes(), 0, 0);
        let now = Utc::now();
        let (live, expired, old_deny) = (subject(1), subject(2), subject(3));
        cache.put(&live, &served(allow(&live, FP)), None).unwrap();
        cache
            .put(
                &expired,
                &served(allow(&expired, FP)),
                Some(now + chrono::Duration::seconds(1)),
            )
            .unwrap();
        // What an earlier version wrote for a deny.
        store
            .put(
                &cache.key(&old_deny).0,
                &StoredVerdict::new(result(&old_deny, FP)),
            )
            .unwrap();
        assert_eq!(store.len(), 3);
        let report = cache.sweep(now + chrono::Duration::seconds(2)).unwrap();
        assert_eq!(
            report,
            SweepReport {
                examined: 3,
                removed: 2
            }
        );
        assert_eq!(store.len(), 1);
        assert!(got(&cache, &live, now).is_some());
    }
}
