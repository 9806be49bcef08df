//! Registry request and retry counters (own test binary: it installs the global metrics recorder).

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use verdict_scanner::registry::{
    Digest, METRIC_REQUESTS, METRIC_RETRIES, RegistryClient, RegistryConfig, Repository,
    RetryPolicy,
};
use verdict_testkit::inproc_registry::InprocRegistry;
use verdict_testkit::oci::OciClient;

/// (name, labels, value) of one counter.
type Counter = (String, Vec<(String, String)>, u64);

fn counter(snapshot: &[Counter], name: &str, labels: &[(&str, &str)]) -> u64 {
    snapshot
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v)
        .sum()
}

#[tokio::test]
async fn requests_and_retries_are_counted_per_registry_and_status() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let reg = InprocRegistry::start().await.unwrap();
    let image = OciClient::new(&reg.host_port())
        .push_image("app", "v1")
        .await
        .unwrap();
    let c = RegistryClient::anonymous(RegistryConfig {
        plain_http_registries: vec![reg.host_port()],
        retry: RetryPolicy {
            max_retries: 3,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
        },
        ..RegistryConfig::default()
    })
    .unwrap();
    let repo = Repository::new(&reg.host_port(), "app").unwrap();
    reg.fail_next(2, 429, Some("0"));
    c.fetch_manifest(&repo, &Digest::parse(&image.digest).unwrap())
        .await
        .unwrap();

    let snapshot: Vec<Counter> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(v) => {
                let k = key.key();
                let labels = k
                    .labels()
                    .map(|l| (l.key().to_string(), l.value().to_string()))
                    .collect();
                Some((k.name().to_string(), labels, v))
            }
            _ => None,
        })
        .collect();
    let host = reg.host_port();
    assert_eq!(
        counter(
            &snapshot,
            METRIC_REQUESTS,
            &[("registry", &host), ("status", "429")]
        ),
        2,
        "{snapshot:?}"
    );
    assert_eq!(
        counter(
            &snapshot,
            METRIC_REQUESTS,
            &[("registry", &host), ("status", "200")]
        ),
        1
    );
    assert_eq!(
        counter(
            &snapshot,
            METRIC_RETRIES,
            &[("registry", &host), ("reason", "throttled")]
        ),
        2
    );
}
