//! The scanner's pieces behind the service's traits: the verification pipeline as the miss path,
//! the registry (with the store's tag map) as the tag resolver, and the signed verdict store as
//! the verdict cache.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use verdict_scanner::registry::{Digest, ImageReference, RegistryClient};
use verdict_scanner::report::VerificationResult;
use verdict_scanner::store::{Lookup, StoredVerdict, TagKey, VerdictKey, VerdictStore};
use verdict_scanner::verify::ImageVerifier;

use crate::hot::HotVerdicts;
use crate::service::{
    CacheError, InlineVerifier, ResolveError, ServedVerdict, SubjectKey, TagResolver, VerdictCache,
    VerifyError,
};

/// The scanner's pipeline as the inline (miss-path) verifier.
///
/// Namespaced configuration (`[ns]` keys) falls back to the cluster-wide configuration, as
/// Ratify does when a namespace has no resources of its own.
#[derive(Clone, Debug)]
pub struct PipelineVerifier {
    verifier: ImageVerifier,
}

impl PipelineVerifier {
    pub fn new(verifier: ImageVerifier) -> Self {
        PipelineVerifier { verifier }
    }
}

#[async_trait]
impl InlineVerifier for PipelineVerifier {
    async fn verify(
        &self,
        _namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<VerificationResult, VerifyError> {
        self.verifier
            .verify(reference, Utc::now())
            .await
            .map_err(|e| {
                if e.is_transient() {
                    VerifyError::RegistryUnavailable(e.to_string())
                } else {
                    VerifyError::Definitive(e.to_string())
                }
            })
    }
}

/// Resolves tags with the registry (HEAD) and records what it saw in the store's tag map.
/// Tags move, so the map is a record, not an answer: every resolution asks the registry
/// (contract 4: tags are resolved freshly).
#[derive(Clone)]
pub struct RegistryTagResolver {
    registry: RegistryClient,
    store: Option<Arc<dyn VerdictStore>>,
}

impl RegistryTagResolver {
    pub fn new(registry: RegistryClient, store: Option<Arc<dyn VerdictStore>>) -> Self {
        RegistryTagResolver { registry, store }
    }
}

#[async_trait]
impl TagResolver for RegistryTagResolver {
    async fn resolve(
        &self,
        _namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<Digest, ResolveError> {
        let descriptor = self.registry.resolve(reference).await?;
        if let (Some(store), Some(tag)) = (&self.store, reference.tag()) {
            let repo = reference.repository();
            match TagKey::new(repo.registry(), repo.name(), tag) {
                Ok(key) => {
                    let store = Arc::clone(store);
                    let digest = descriptor.digest.to_string();
                    // Recording is best effort: the answer is the registry's either way.
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Err(e) = store.tag_put(&key, &digest, Utc::now()) {
                            tracing::warn!(error = %e, "cannot record tag in the tag map");
                        }
                    })
                    .await;
                }
                Err(e) => tracing::debug!(error = %e, "tag not recordable"),
            }
        }
        Ok(descriptor.digest)
    }
}

/// The signed sled store as the verdict cache: a lookup is a hit only for an entry whose
/// signature checks, that has not expired, and that was computed under the current trust
/// configuration. Expiry (evidence validity, the deny TTL) is decided by the service.
///
/// A bounded [`HotVerdicts`] map sits in front of the store: filled on every put and on every
/// store hit (already checked), consulted first, never served at or past the entry's expiry.
/// The trust fingerprint is fixed for the life of this value (a trust-configuration change
/// restarts `verdict serve`); a memory entry is still only served when its result carries that
/// fingerprint. Removing a verdict from the store must go through [`Self::remove`] (or call
/// [`Self::invalidate`]) so memory forgets it too.
pub struct StoreVerdictCache {
    store: Arc<dyn VerdictStore>,
    trust_fingerprint: String,
    hot: HotVerdicts,
}

/// Default number of verdicts kept decoded and rendered in memory in front of the store: room for
/// every image a large cluster runs, at a few KiB each (benches/README.md, "Memory").
pub const DEFAULT_MEMORY_ENTRIES: usize = 4_096;

impl StoreVerdictCache {
    /// With [`DEFAULT_MEMORY_ENTRIES`] verdicts held in memory.
    pub fn new(store: Arc<dyn VerdictStore>, trust_fingerprint: String) -> Self {
        Self::with_memory_entries(store, trust_fingerprint, DEFAULT_MEMORY_ENTRIES)
    }

    /// With at most about `memory_entries` verdicts held in memory (0: every lookup reads the store).
    pub fn with_memory_entries(
        store: Arc<dyn VerdictStore>,
        trust_fingerprint: String,
        memory_entries: usize,
    ) -> Self {
        StoreVerdictCache {
            store,
            trust_fingerprint,
            hot: HotVerdicts::new(memory_entries),
        }
    }

    fn key(key: &SubjectKey) -> Result<VerdictKey, CacheError> {
        VerdictKey::new(
            key.namespace(),
            key.repository().registry(),
            key.repository().name(),
            &key.digest().to_string(),
        )
        .map_err(|e| CacheError::Backend(e.to_string()))
    }

    /// Forgets the in-memory copy of `key`'s verdict (the store entry is untouched).
    pub fn invalidate(&self, key: &SubjectKey) -> bool {
        self.hot.invalidate(key)
    }

    /// Removes `key`'s verdict from the store and from memory; true if the store had one.
    pub fn remove(&self, key: &SubjectKey) -> Result<bool, CacheError> {
        let store_key = Self::key(key)?;
        // Before and after: a lookup that read the store before the removal cannot re-insert
        // (generation check), and none can find the memory entry afterwards.
        self.hot.invalidate(key);
        let removed = self
            .store
            .remove(&store_key)
            .map_err(|e| CacheError::Backend(e.to_string()));
        self.hot.invalidate(key);
        removed
    }

    /// Verdicts currently held in memory.
    pub fn memory_len(&self) -> usize {
        self.hot.len()
    }
}

impl VerdictCache for StoreVerdictCache {
    fn get(
        &self,
        key: &SubjectKey,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<ServedVerdict>>, CacheError> {
        if let Some(hit) = self.hot.get(key, now)
            && hit.result().trust_config_fingerprint == self.trust_fingerprint
        {
            return Ok(Some(hit));
        }
        let seen = self.hot.generation(key);
        let store_key = Self::key(key)?;
        match self
            .store
            .get(&store_key, &self.trust_fingerprint, now)
            .map_err(|e| CacheError::Backend(e.to_string()))?
        {
            Lookup::Hit(v) => {
                let verdict = Arc::new(ServedVerdict::new(v.result));
                self.hot
                    .insert_if_unchanged(seen, key, Arc::clone(&verdict), v.expires_at);
                Ok(Some(verdict))
            }
            Lookup::Miss(reason) => {
                tracing::debug!(key = %store_key.canonical(), reason = reason.as_str(), "store miss");
                Ok(None)
            }
        }
    }

    fn put(
        &self,
        key: &SubjectKey,
        verdict: &Arc<ServedVerdict>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), CacheError> {
        let store_key = Self::key(key)?;
        let mut stored = StoredVerdict::new(verdict.result().clone());
        if let Some(at) = expires_at {
            stored.expires_at = Some(stored.expires_at.map_or(at, |e| e.min(at)));
        }
        match self.store.put(&store_key, &stored) {
            Ok(()) => {
                self.hot.insert(key, Arc::clone(verdict), stored.expires_at);
                Ok(())
            }
            Err(e) => {
                // The store may hold the old verdict or none: memory must not claim either.
                self.hot.invalidate(key);
                Err(CacheError::Backend(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict_scanner::registry::Repository;
    use verdict_scanner::report::ArtifactPolicy;
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
        let cache = StoreVerdictCache::with_memory_entries(Arc::clone(&store), FP.into(), 100);
        let key = subject(1);
        let expected = result(&key, FP);
        store
            .put(
                &StoreVerdictCache::key(&key).unwrap(),
                &StoredVerdict::new(expected.clone()),
            )
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
        store
            .remove(&StoreVerdictCache::key(&key).unwrap())
            .unwrap();
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
        let cache = StoreVerdictCache::with_memory_entries(open(dir.path()), FP.into(), 100);
        let key = subject(2);
        let now = Utc::now();
        let at = now + chrono::Duration::seconds(30);
        cache
            .put(&key, &served(result(&key, FP)), Some(at))
            .unwrap();
        assert!(got(&cache, &key, at - chrono::Duration::seconds(1)).is_some());
        assert_eq!(got(&cache, &key, at), None, "served at its expiry");

        let other = subject(3);
        cache
            .put(&other, &served(result(&other, "fp-old")), None)
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
        let cache = StoreVerdictCache::with_memory_entries(Arc::clone(&store), FP.into(), 0);
        let key = subject(4);
        cache.put(&key, &served(result(&key, FP)), None).unwrap();
        assert_eq!(cache.memory_len(), 0);
        assert!(got(&cache, &key, Utc::now()).is_some());
        store
            .remove(&StoreVerdictCache::key(&key).unwrap())
            .unwrap();
        assert_eq!(got(&cache, &key, Utc::now()), None);
    }
}
