//! The verdict cache layer the service reads and writes: [`ServedVerdict`] (a verdict with its
//! Ratify values rendered once), the [`VerdictCache`] trait (memory first, then the store), and
//! [`MemoryVerdictCache`] (in-process only, for tests and tools).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use verdict_scanner::report::VerificationResult;
use verdict_scanner::subject::SubjectKey;

use crate::error::Error;
use crate::wire::ratify::{self, RenderedVerdict};

/// A verdict as the service serves it: the result and its Ratify values rendered once (see
/// [`RenderedVerdict`]), shared by every answer that uses it.
#[derive(Debug)]
pub struct ServedVerdict {
    result: VerificationResult,
    rendered: Result<Arc<RenderedVerdict>, String>,
}

impl ServedVerdict {
    pub fn new(result: VerificationResult) -> Self {
        let rendered = ratify::render(&result)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        ServedVerdict { result, rendered }
    }

    pub fn result(&self) -> &VerificationResult {
        &self.result
    }

    /// Its Ratify values, rendered once (the error should rendering have failed).
    pub(crate) fn rendered(&self) -> Result<&Arc<RenderedVerdict>, &str> {
        self.rendered.as_ref().map_err(String::as_str)
    }
}

/// Where verdicts are looked up and stored. Implementations must only return verdicts valid at
/// `now` under the current trust configuration (the sled store's adapter checks signatures and
/// the trust-configuration fingerprint).
///
/// Two layers: [`Self::get_memory`] never blocks and is asked first, on the request's task;
/// [`Self::get_stored`] and [`Self::put`] may block on I/O, so the service runs them on the
/// blocking pool, bounded in number and in time (a stalled store fails requests closed instead
/// of hanging them).
pub trait VerdictCache: Send + Sync {
    /// What memory holds for `key`; no I/O.
    fn get_memory(&self, key: &SubjectKey, now: DateTime<Utc>) -> Option<Arc<ServedVerdict>>;

    /// The persistent layer behind memory (may block). Default: there is none.
    fn get_stored(
        &self,
        _key: &SubjectKey,
        _now: DateTime<Utc>,
    ) -> Result<Option<Arc<ServedVerdict>>, Error> {
        Ok(None)
    }

    /// Stores `verdict`, to be served until `expires_at` (`None`: no bound from this crate).
    fn put(
        &self,
        key: &SubjectKey,
        verdict: &Arc<ServedVerdict>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), Error>;

    /// Forgets `key`'s verdict in every layer (may block); true if a layer had one.
    fn remove(&self, key: &SubjectKey) -> Result<bool, Error>;

    /// Memory, then the store (blocking).
    fn get(
        &self,
        key: &SubjectKey,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<ServedVerdict>>, Error> {
        match self.get_memory(key, now) {
            Some(hit) => Ok(Some(hit)),
            None => self.get_stored(key, now),
        }
    }
}

type MemoryEntries = HashMap<SubjectKey, (Arc<ServedVerdict>, Option<DateTime<Utc>>)>;

/// An in-process [`VerdictCache`] (tests, and single-node use without a persistent store).
/// Expired entries are dropped when read.
#[derive(Default)]
pub struct MemoryVerdictCache {
    entries: Mutex<MemoryEntries>,
}

impl MemoryVerdictCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryEntries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of stored entries (expired ones included until read).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the entry for `key`; true if there was one.
    pub fn remove(&self, key: &SubjectKey) -> bool {
        self.lock().remove(key).is_some()
    }

    /// The stored expiry of `key`, if it has an entry.
    pub fn expiry(&self, key: &SubjectKey) -> Option<Option<DateTime<Utc>>> {
        self.lock().get(key).map(|(_, e)| *e)
    }
}

impl VerdictCache for MemoryVerdictCache {
    fn get_memory(&self, key: &SubjectKey, now: DateTime<Utc>) -> Option<Arc<ServedVerdict>> {
        let mut entries = self.lock();
        let (verdict, expires_at) = entries.get(key)?;
        // No trust configuration here: a verdict is served under the one it was computed under.
        let own = &verdict.result().trust_config_fingerprint;
        if verdict.result().servable(*expires_at, now, own).is_err() {
            entries.remove(key);
            return None;
        }
        Some(Arc::clone(verdict))
    }

    fn put(
        &self,
        key: &SubjectKey,
        verdict: &Arc<ServedVerdict>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), Error> {
        self.lock()
            .insert(key.clone(), (Arc::clone(verdict), expires_at));
        Ok(())
    }

    fn remove(&self, key: &SubjectKey) -> Result<bool, Error> {
        Ok(MemoryVerdictCache::remove(self, key))
    }
}
