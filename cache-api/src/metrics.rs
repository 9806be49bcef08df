//! Metric names of the cache API and the process-wide Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::Error;

/// Histogram: time to answer one key, labelled `result` = `hit` | `miss`.
pub const LOOKUP_DURATION: &str = "verdict_lookup_duration_seconds";
/// Counter: requests by `endpoint` (`v1_verify`, `v2_verify`, `v1_mutate`, `v2_mutate`) and
/// `outcome` (`ok`, `key_errors`, `system_error`).
pub const REQUESTS: &str = "verdict_requests_total";
/// Counter: inline verifications by `result` (`allow`, `deny`, `transient_error`,
/// `definitive_error`, `timeout`).
pub const INLINE_VERIFICATIONS: &str = "verdict_inline_verifications_total";
/// Counter: per-key errors answered, by `code` (`INVALID_KEY`, `VERIFY_TIMEOUT`, ...).
pub const KEY_ERRORS: &str = "verdict_key_errors_total";
/// Counter: verdict-cache backend failures, by `op` (`get`, `put`).
pub const CACHE_ERRORS: &str = "verdict_cache_errors_total";
/// Counter: TLS file reloads by `result` (`ok`, `error`).
pub const TLS_RELOADS: &str = "verdict_tls_reloads_total";
/// Gauge: 1 while the TLS files on disk fail to load (the previous configuration is served).
pub const TLS_RELOAD_FAILING: &str = "verdict_tls_reload_failing";
/// Counter: failed or timed-out TLS handshakes (includes clients refused by mTLS).
pub const TLS_HANDSHAKE_FAILURES: &str = "verdict_tls_handshake_failures_total";
/// Counter: connections closed at once because `max_connections` were open.
pub const CONNECTIONS_REJECTED: &str = "verdict_connections_rejected_total";

/// Gauge: verdicts in the persistent store.
pub const STORE_ENTRIES: &str = "verdict_store_entries";
/// Gauge: bytes the store occupies on disk.
pub const STORE_BYTES: &str = "verdict_store_bytes";
/// Counter: store entries removed by the sweep (expired, damaged, or denies of older versions).
pub const STORE_SWEPT: &str = "verdict_store_swept_total";
/// Gauge: verdicts held in memory, by `kind` (`allow`, `deny`).
pub const MEMORY_ENTRIES: &str = "verdict_memory_entries";
/// Counter: verdicts evicted from memory to stay within bounds, by `kind`.
pub const MEMORY_EVICTIONS: &str = "verdict_memory_evictions_total";
/// Counter: requests refused because `max_in_flight_requests` or `max_buffered_bytes` was reached.
pub const REQUESTS_SHED: &str = "verdict_requests_shed_total";
/// Counter: connections closed after `idle_timeout` without a request.
pub const CONNECTIONS_IDLE_CLOSED: &str = "verdict_connections_idle_closed_total";

/// Bucket bounds (seconds) for [`LOOKUP_DURATION`]: sub-millisecond hits up to the 2.8 s miss budget.
const LOOKUP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
    2.8, 5.0,
];

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder (once; later calls
/// return the same handle). Lookup durations are histograms with [`LOOKUP_BUCKETS`]. Fails when
/// another recorder was installed first.
pub fn prometheus_recorder() -> Result<PrometheusHandle, Error> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(LOOKUP_DURATION.into()), LOOKUP_BUCKETS)
                .map_err(|e| e.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|_| {
                "another metrics recorder is already installed in this process; install ours first".to_string()
            })?;
            describe();
            Ok(handle)
        })
        .clone()
        .map_err(|reason| Error::Metrics { reason })
}

fn describe() {
    metrics::describe_histogram!(
        LOOKUP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer one external-data key (hit: from the verdict cache; miss: inline verification)"
    );
    metrics::describe_counter!(REQUESTS, "External-data requests by endpoint and outcome");
    metrics::describe_counter!(
        INLINE_VERIFICATIONS,
        "Inline verifications on cache misses by result"
    );
    metrics::describe_counter!(KEY_ERRORS, "Per-key errors answered to Gatekeeper by code");
    metrics::describe_counter!(CACHE_ERRORS, "Verdict cache backend failures by operation");
    metrics::describe_counter!(
        TLS_RELOADS,
        "Reloads of the TLS certificate, key and client CA"
    );
    metrics::describe_gauge!(
        TLS_RELOAD_FAILING,
        "1 while the TLS files on disk fail to load and the previous configuration is served"
    );
    metrics::describe_counter!(TLS_HANDSHAKE_FAILURES, "Failed or timed-out TLS handshakes");
    metrics::describe_gauge!(STORE_ENTRIES, "Verdicts in the persistent store");
    metrics::describe_gauge!(
        STORE_BYTES,
        metrics::Unit::Bytes,
        "Bytes the verdict store occupies on disk"
    );
    metrics::describe_counter!(STORE_SWEPT, "Store entries removed by the background sweep");
    metrics::describe_gauge!(MEMORY_ENTRIES, "Verdicts held in memory by kind");
    metrics::describe_counter!(
        MEMORY_EVICTIONS,
        "Verdicts evicted from memory to stay within bounds"
    );
    metrics::describe_counter!(
        REQUESTS_SHED,
        "Requests refused by the in-flight or buffered-bytes limit"
    );
    metrics::describe_counter!(
        CONNECTIONS_IDLE_CLOSED,
        "Connections closed after the idle timeout"
    );
    metrics::describe_counter!(
        CONNECTIONS_REJECTED,
        "Connections closed because max_connections were open"
    );
}
