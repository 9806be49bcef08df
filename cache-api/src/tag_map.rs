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

/// A bounded map of `registry/repository:tag` → (digest, learned at).
#[derive(Debug)]
pub struct TagMap {
    entries: Mutex<HashMap<String, (Digest, Instant)>>,
    capacity: usize,
    ttl: Duration,
}

impl TagMap {
    /// At most `capacity` tags, each trusted for `ttl` after it was learned (0: never).
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        TagMap {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Digest, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The digest `reference`'s tag pointed to, if learned within the TTL.
    pub fn get(&self, reference: &ImageReference) -> Option<Digest> {
        if self.ttl.is_zero() {
            return None;
        }
        let key = reference.to_string();
        let mut map = self.lock();
        match map.get(&key) {
            Some((digest, at)) if at.elapsed() < self.ttl => Some(digest.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Records that `reference` (a tag) points to `digest` now (a push event, or a HEAD answer).
    pub fn record(&self, reference: &ImageReference, digest: &Digest) {
        if self.ttl.is_zero() || reference.tag().is_none() {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.capacity {
            // Full: drop what has expired, then (still full) everything older than half the TTL.
            let (ttl, half) = (self.ttl, self.ttl / 2);
            map.retain(|_, (_, at)| at.elapsed() < ttl);
            if map.len() >= self.capacity {
                map.retain(|_, (_, at)| at.elapsed() < half);
            }
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(reference.to_string(), (digest.clone(), Instant::now()));
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
        let map = TagMap::new(2, Duration::from_secs(60));
        map.record(&tagged("v1"), &digest(1));
        assert_eq!(map.get(&tagged("v1")), Some(digest(1)));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(map.get(&tagged("v1")), None);

        map.record(&tagged("v1"), &digest(1));
        map.record(&tagged("v2"), &digest(2));
        map.record(&tagged("v3"), &digest(3));
        assert!(map.len() <= 2);
        assert_eq!(map.get(&tagged("v3")), Some(digest(3)));

        map.forget_digest(&tagged("v3"), &digest(3));
        assert_eq!(map.get(&tagged("v3")), None);

        let off = TagMap::new(10, Duration::ZERO);
        off.record(&tagged("v1"), &digest(1));
        assert_eq!(off.get(&tagged("v1")), None);
    }
}
