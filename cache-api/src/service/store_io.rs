//! The persistent layer from async code: store reads and writes run on the blocking pool,
//! bounded in number (`max_store_operations`) and in time (`store_timeout`), so a stalled disk
//! fails requests closed instead of hanging them or tying up threads without bound.

use std::sync::Arc;

use tokio::time::Instant;
use tracing::warn;
use verdict_scanner::subject::SubjectKey;

use super::{Deadline, Inner};
use crate::cache::ServedVerdict;
use crate::error::Error;
use crate::metrics as m;

impl Inner {
    /// The earlier of the request's deadline and `store_timeout` from now.
    pub(super) fn store_deadline(&self, deadline: Deadline) -> Instant {
        (Instant::now() + self.config.store_timeout).min(deadline.at)
    }

    /// A store slot, waited for until `until`; `None` when the store stays saturated.
    pub(super) async fn store_slot(
        &self,
        until: Instant,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match tokio::time::timeout_at(until, Arc::clone(&self.store_ops).acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => None,
        }
    }

    /// Reads `keys` from the persistent layer, on the blocking pool, within the store deadline.
    /// A backend error is a miss (the subject is verified inline); a store that does not answer
    /// in time fails every key closed (`STORE_UNAVAILABLE`), so a stalled store cannot hang
    /// requests or tie up threads without bound.
    pub(super) async fn read_store(
        &self,
        keys: Vec<SubjectKey>,
        deadline: Deadline,
    ) -> Result<Vec<Option<Arc<ServedVerdict>>>, Error> {
        let until = self.store_deadline(deadline);
        let stalled = || {
            metrics::counter!(m::CACHE_ERRORS, "op" => "get_timeout").increment(1);
            Error::StoreUnavailable(format!(
                "the verdict store did not answer within {:?}; denied rather than answered unchecked. Check the data directory's disk, or raise --store-timeout-ms",
                self.config.store_timeout.min(deadline.budget)
            ))
        };
        let Some(permit) = self.store_slot(until).await else {
            return Err(stalled());
        };
        let cache = Arc::clone(&self.cache);
        let now = deadline.now;
        let read = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            keys.iter()
                .map(|k| (cache.get_stored(k, now), k.clone()))
                .collect::<Vec<_>>()
        });
        match tokio::time::timeout_at(until, read).await {
            Err(_) => Err(stalled()),
            Ok(Err(e)) => Err(Error::Internal(format!("the store read task failed: {e}"))),
            Ok(Ok(results)) => Ok(results
                .into_iter()
                .map(|(r, key)| {
                    r.unwrap_or_else(|e| {
                        warn!(subject = %key, error = %e, "verdict cache read failed; verifying inline");
                        metrics::counter!(m::CACHE_ERRORS, "op" => "get").increment(1);
                        None
                    })
                })
                .collect()),
        }
    }
}
