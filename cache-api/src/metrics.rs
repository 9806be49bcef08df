//! Metric names of the cache API and the process-wide Prometheus recorder.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error::Error;

/// Histogram: time to answer one key, labelled `result` = `hit` | `miss` ([`LOOKUPS`]).
pub const LOOKUP_DURATION: &str = "verdict_lookup_duration_seconds";
/// Counter: requests by `endpoint` (`v1_verify`, `v2_verify`, `v1_mutate`, `v2_mutate`) and
/// `outcome` (`ok`, `key_errors`, `system_error`).
pub const REQUESTS: &str = "verdict_requests_total";
/// Counter: inline verifications by `result` (`allow`, `deny`, `transient_error`,
/// `definitive_error`, `timeout`).
pub const INLINE_VERIFICATIONS: &str = "verdict_inline_verifications_total";
/// Counter: verifications triggered by registry push events, by `result` (`allow`, `deny`,
/// `transient_error`, `definitive_error`).
pub const PUSH_VERIFICATIONS: &str = "verdict_push_verifications_total";
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
/// return the same handle). Fails when another recorder was installed first. The lookup-duration
/// histograms are not the recorder's: see [`LOOKUPS`] and [`render`].
pub fn prometheus_recorder() -> Result<PrometheusHandle, Error> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
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

/// The exposition text: the recorder's metrics and [`LOOKUPS`].
pub fn render(handle: &PrometheusHandle) -> String {
    let mut out = handle.render();
    LOOKUPS.render(&mut out);
    out
}

/// A histogram with fixed buckets updated by three atomic additions however many samples a
/// call records. The exporter's histograms queue every sample with a timestamp and sort them
/// into buckets later; with ten keys a request that was 600 k queued samples a second, pushed
/// by both cores onto one queue (benches/README.md, issue 12).
pub struct FixedHistogram {
    /// Per bucket of [`LOOKUP_BUCKETS`], then `+Inf` (not cumulative; rendering sums them).
    buckets: [AtomicU64; LOOKUP_BUCKETS.len() + 1],
    count: AtomicU64,
    /// Sum of samples in nanoseconds.
    sum_nanos: AtomicU64,
}

impl FixedHistogram {
    const fn new() -> Self {
        FixedHistogram {
            buckets: [const { AtomicU64::new(0) }; LOOKUP_BUCKETS.len() + 1],
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records `n` samples of `seconds` each.
    pub fn record_many(&self, seconds: f64, n: u64) {
        if n == 0 {
            return;
        }
        let i = LOOKUP_BUCKETS.partition_point(|&bound| bound < seconds);
        self.buckets[i].fetch_add(n, Ordering::Relaxed);
        self.count.fetch_add(n, Ordering::Relaxed);
        // Saturating float-to-int: a negative or NaN sample adds nothing to the sum.
        let nanos = (seconds * 1e9) as u64;
        self.sum_nanos
            .fetch_add(nanos.saturating_mul(n), Ordering::Relaxed);
    }

    /// Appends this histogram's lines for `result` in Prometheus' text format.
    fn render_lines(&self, name: &str, result: &str, out: &mut String) {
        let mut cumulative = 0u64;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = LOOKUP_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), f64::to_string);
            let _ = writeln!(
                out,
                "{name}_bucket{{result=\"{result}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{result=\"{result}\"}} {sum}");
        let _ = writeln!(
            out,
            "{name}_count{{result=\"{result}\"}} {}",
            self.count.load(Ordering::Relaxed)
        );
    }
}

/// [`LOOKUP_DURATION`]'s two series.
pub struct Lookups {
    pub hit: FixedHistogram,
    pub miss: FixedHistogram,
}

impl Lookups {
    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {LOOKUP_DURATION} Time to answer one external-data key (hit: from the verdict cache; miss: inline verification)"
        );
        let _ = writeln!(out, "# TYPE {LOOKUP_DURATION} histogram");
        self.hit.render_lines(LOOKUP_DURATION, "hit", out);
        self.miss.render_lines(LOOKUP_DURATION, "miss", out);
    }
}

/// The process's lookup-duration histograms.
pub static LOOKUPS: Lookups = Lookups {
    hit: FixedHistogram::new(),
    miss: FixedHistogram::new(),
};

fn describe() {
    metrics::describe_counter!(REQUESTS, "External-data requests by endpoint and outcome");
    metrics::describe_counter!(
        INLINE_VERIFICATIONS,
        "Inline verifications on cache misses by result"
    );
    metrics::describe_counter!(
        PUSH_VERIFICATIONS,
        "Verifications triggered by registry push events by result"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_histogram_renders_cumulative_buckets_sum_and_count() {
        let h = FixedHistogram::new();
        h.record_many(0.00005, 10); // first bucket
        h.record_many(0.003, 2); // le 0.005
        h.record_many(60.0, 1); // +Inf only
        h.record_many(0.001, 0); // nothing
        let mut out = String::new();
        h.render_lines("x", "hit", &mut out);
        assert!(
            out.contains("x_bucket{result=\"hit\",le=\"0.0001\"} 10\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{result=\"hit\",le=\"0.0025\"} 10\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{result=\"hit\",le=\"0.005\"} 12\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{result=\"hit\",le=\"5\"} 12\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{result=\"hit\",le=\"+Inf\"} 13\n"),
            "{out}"
        );
        assert!(out.contains("x_count{result=\"hit\"} 13\n"), "{out}");
        let sum: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("x_sum{result=\"hit\"} "))
            .and_then(|v| v.parse().ok())
            .expect("sum line");
        assert!((sum - (0.0005 + 0.006 + 60.0)).abs() < 1e-6, "{sum}");
    }
}
