//! Prometheus series of the event pipeline.

/// Events received, by `format` (acr, eventgrid, cloudevents, registry) and `outcome`
/// (`accepted`, `ignored`, `rejected`, `unauthorized`, `unavailable`).
pub const RECEIVED: &str = "verdict_events_received_total";
/// Events applied by workers, by `result` (`verified`, `subject_verified`, `removed`, `retried`,
/// `dead_lettered`, …).
pub const PROCESSED: &str = "verdict_events_processed_total";

pub(crate) fn received(format: &'static str, outcome: &'static str, n: usize) {
    metrics::counter!(RECEIVED, "format" => format, "outcome" => outcome).increment(n as u64);
}

pub(crate) fn processed(result: &'static str) {
    metrics::counter!(PROCESSED, "result" => result).increment(1);
}
