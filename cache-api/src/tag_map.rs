//! Tag → digest answers kept for a bounded time (contract 4: push events update the map at once;
//! otherwise a bounded TTL and a HEAD request), so a storm of pods naming the same tags does not
//! become a storm of HEAD requests against the registry (Ratify's throttling problem).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use verdict_scanner::registry::{Digest, ImageReference};

use crate::error::Error;
use crate::verification::TagResolver;

/// A bounded map of `registry/repository:tag` → (digest, trusted until).
///
/// Two lifetimes: an answer from a registry HEAD is reused for `ttl`; one from a push event for
/// `event_ttl` (longer: a retag sends its own event, so the bound only matters for a lost
/// webhook — `verdict scan` reconciles those).
#[derive(Debug)]
pub struct TagMap {
    entries: Mutex<HashMap<String, (Digest, Instant)>>,
    capacity: usize,
    ttl: Duration,
    event_ttl: Duration,
}

impl TagMap {
    /// At most `capacity` tags; HEAD answers trusted for `ttl`, push events for `event_ttl`
    /// (0: not kept).
    pub fn new(capacity: usize, ttl: Duration, event_ttl: Duration) -> Self {
        TagMap {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
            event_ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Digest, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The digest `reference`'s tag points to, if learned recently enough.
    pub fn get(&self, reference: &ImageReference) -> Option<Digest> {
        let key = reference.to_string();
        let mut map = self.lock();
        match map.get(&key) {
            Some((digest, until)) if Instant::now() < *until => Some(digest.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Records a registry's answer: `reference` (a tag) points to `digest` now.
    pub fn record(&self, reference: &ImageReference, digest: &Digest) {
        self.insert(reference, digest, self.ttl);
    }

    /// Records a push event: `reference` (a tag) was pushed as `digest`.
    pub fn record_push(&self, reference: &ImageReference, digest: &Digest) {
        self.insert(reference, digest, self.event_ttl);
    }

    fn insert(&self, reference: &ImageReference, digest: &Digest, ttl: Duration) {
        if reference.tag().is_none() {
            return;
        }
        let key = reference.to_string();
        let mut map = self.lock();
        if ttl.is_zero() {
            // Not kept: and an older answer must not outlive this newer fact.
            map.remove(&key);
            return;
        }
        if map.len() >= self.capacity && !map.contains_key(&key) {
            // Full: drop what has expired; still full, start over (each tag is asked again once).
            let now = Instant::now();
            map.retain(|_, (_, until)| now < *until);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, (digest.clone(), Instant::now() + ttl));
    }

    /// Forgets every tag of `reference`'s repository that points to `digest` (a deleted manifest).
    pub fn forget_digest(&self, reference: &ImageReference, digest: &Digest) {
        let prefix = format!("{}:", reference.repository());
        self.lock()
            .retain(|k, (d, _)| !(k.starts_with(&prefix) && d == digest));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A [`TagResolver`] answering from a [`TagMap`] first, then from `inner` (the registry), whose
/// answers it records.
pub struct MappedTagResolver {
    map: Arc<TagMap>,
    inner: Arc<dyn TagResolver>,
}

impl MappedTagResolver {
    pub fn new(map: Arc<TagMap>, inner: Arc<dyn TagResolver>) -> Self {
        MappedTagResolver { map, inner }
    }
}

#[async_trait]
impl TagResolver for MappedTagResolver {
    async fn resolve(
        &self,
        namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<Digest, Error> {
        if let Some(digest) = self.map.get(reference) {
            return Ok(digest);
        }
        let digest = self.inner.resolve(namespace, reference).await?;
        self.map.record(reference, &digest);
        Ok(digest)
    }

    fn known(&self, _namespace: Option<&str>, reference: &ImageReference) -> Option<Digest> {
        self.map.get(reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(tag: &str) -> ImageReference {
        ImageReference::parse(&format!("reg.example/team/app:{tag}")).unwrap()
    }

    fn digest(n: u8) -> Digest {
        Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_are_bounded_and_deleted_digests_are_forgotten() {
        let map = TagMap::new(2, Duration::from_secs(60), Duration::from_secs(600));
        map.record(&tagged("v1"), &digest(1));
        assert_eq!(map.get(&tagged("v1")), Some(digest(1)));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(map.get(&tagged("v1")), None);
        // A push event's answer lives longer.
        map.record_push(&tagged("v1"), &digest(1));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(map.get(&tagged("v1")), Some(digest(1)));

        map.record(&tagged("v2"), &digest(2));
        map.record(&tagged("v3"), &digest(3));
        assert!(map.len() <= 2);
        assert_eq!(map.get(&tagged("v3")), Some(digest(3)));

        map.forget_digest(&tagged("v3"), &digest(3));
        assert_eq!(map.get(&tagged("v3")), None);

        let off = TagMap::new(10, Duration::ZERO, Duration::ZERO);
        off.record(&tagged("v1"), &digest(1));
        assert_eq!(off.get(&tagged("v1")), None);
    }
}
