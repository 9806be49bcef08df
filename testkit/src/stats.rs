//! Summaries of measured samples for the benchmark tools.

/// The `q` quantile (0–1) of `sorted` (ascending) by nearest rank; NaN when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Sorts `ms` and summarises it: count, p50, p90, p99 and max (milliseconds), as the benchmark
/// tools write them.
pub fn summary(ms: &mut [f64]) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    serde_json::json!({
        "count": ms.len(),
        "p50_ms": quantile(ms, 0.50),
        "p90_ms": quantile(ms, 0.90),
        "p99_ms": quantile(ms, 0.99),
        "max_ms": ms.last().copied().unwrap_or(f64::NAN),
    })
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn nearest_rank_quantiles() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&s, 0.5), 51.0);
        assert_eq!(quantile(&s, 0.99), 99.0);
        assert_eq!(quantile(&s, 1.0), 100.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
