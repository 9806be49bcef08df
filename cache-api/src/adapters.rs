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

use crate::service::{
    CacheError, InlineVerifier, ResolveError, SubjectKey, TagResolver, VerdictCache, VerifyError,
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
pub struct StoreVerdictCache {
    store: Arc<dyn VerdictStore>,
    trust_fingerprint: String,
}

impl StoreVerdictCache {
    pub fn new(store: Arc<dyn VerdictStore>, trust_fingerprint: String) -> Self {
        StoreVerdictCache {
            store,
            trust_fingerprint,
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
}

impl VerdictCache for StoreVerdictCache {
    fn get(
        &self,
        key: &SubjectKey,
        now: DateTime<Utc>,
    ) -> Result<Option<VerificationResult>, CacheError> {
        let key = Self::key(key)?;
        match self
            .store
            .get(&key, &self.trust_fingerprint, now)
            .map_err(|e| CacheError::Backend(e.to_string()))?
        {
            Lookup::Hit(v) => Ok(Some(v.result)),
            Lookup::Miss(reason) => {
                tracing::debug!(key = %key.canonical(), reason = reason.as_str(), "store miss");
                Ok(None)
            }
        }
    }

    fn put(
        &self,
        key: &SubjectKey,
        result: &VerificationResult,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), CacheError> {
        let key = Self::key(key)?;
        let mut stored = StoredVerdict::new(result.clone());
        if let Some(at) = expires_at {
            stored.expires_at = Some(stored.expires_at.map_or(at, |e| e.min(at)));
        }
        self.store
            .put(&key, &stored)
            .map_err(|e| CacheError::Backend(e.to_string()))
    }
}
