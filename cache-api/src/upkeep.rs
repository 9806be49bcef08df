//! Background upkeep of the verdict cache: removing store entries that can never be served
//! again, and publishing the store's and memory's sizes as metrics.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::metrics as m;
use crate::store_cache::StoreVerdictCache;

/// How often sizes are published.
const METRICS_EVERY: Duration = Duration::from_secs(15);

/// Publishes sizes every [`METRICS_EVERY`] and sweeps the store every `sweep_every` (zero: never)
/// until `cancel`. The sweep runs on the blocking pool.
pub async fn run(cache: Arc<StoreVerdictCache>, sweep_every: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(METRICS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !sweep_every.is_zero() && last_sweep.elapsed() >= sweep_every {
            last_sweep = tokio::time::Instant::now();
            let c = Arc::clone(&cache);
            match tokio::task::spawn_blocking(move || c.sweep(Utc::now())).await {
                Ok(Ok(report)) => {
                    debug!(
                        examined = report.examined,
                        removed = report.removed,
                        "store swept"
                    );
                    metrics::counter!(m::STORE_SWEPT).increment(report.removed);
                }
                Ok(Err(e)) => warn!(error = %e, "sweeping the verdict store failed"),
                Err(e) => warn!(error = %e, "the store sweep task failed"),
            }
        }
        publish(&cache);
    }
}

/// Sets the size gauges and eviction counters from `cache` now.
pub fn publish(cache: &StoreVerdictCache) {
    let store = cache.store();
    metrics::gauge!(m::STORE_ENTRIES).set(store.len() as f64);
    if let Some(bytes) = store.size_on_disk() {
        metrics::gauge!(m::STORE_BYTES).set(bytes as f64);
    }
    metrics::gauge!(m::MEMORY_ENTRIES, "kind" => "allow").set(cache.memory_len() as f64);
    metrics::gauge!(m::MEMORY_ENTRIES, "kind" => "deny").set(cache.deny_len() as f64);
    let (allows, denies) = cache.evictions();
    metrics::counter!(m::MEMORY_EVICTIONS, "kind" => "allow").absolute(allows);
    metrics::counter!(m::MEMORY_EVICTIONS, "kind" => "deny").absolute(denies);
}
