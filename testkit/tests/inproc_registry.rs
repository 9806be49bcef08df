//! The in-process registry's ACR-like throttling, which the headline benchmark relies on.

use std::time::Duration;

use verdict_testkit::inproc_registry::InprocRegistry;

#[tokio::test]
async fn beyond_the_rate_limit_requests_get_429_with_retry_after() {
    let registry = InprocRegistry::start().await.unwrap();
    registry.set_rate_limit(Some(5));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/v2/", registry.url());
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let resp = client.get(&url).send().await.unwrap();
        statuses.push((
            resp.status().as_u16(),
            resp.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or("").to_owned()),
        ));
    }
    assert_eq!(
        statuses.iter().filter(|(s, _)| *s == 429).count(),
        3,
        "{statuses:?}"
    );
    assert!(statuses[5..].iter().all(|(_, r)| r.as_deref() == Some("1")));
    assert_eq!(registry.count_status(429), 3);
    // The next second serves again; no limit serves everything.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        client.get(&url).send().await.unwrap().status().as_u16(),
        200
    );
    registry.set_rate_limit(None);
    for _ in 0..10 {
        assert_eq!(
            client.get(&url).send().await.unwrap().status().as_u16(),
            200
        );
    }
}
