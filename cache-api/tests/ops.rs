//! `/healthz`, `/readyz` and `/metrics` on the plain-HTTP port; graceful shutdown.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;

#[tokio::test]
async fn health_readiness_and_metrics() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let http = reqwest::Client::new();

    let r = http.get(s.ops_url("/healthz")).send().await?;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await?, "ok\n");

    // Ready once the server accepts connections and the caller's conditions hold.
    assert!(
        eventually(Duration::from_secs(5), || async {
            http.get(s.ops_url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200)
        })
        .await
    );
    s.readiness.set("store", false);
    let r = http.get(s.ops_url("/readyz")).send().await?;
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().await?.contains("store"));
    s.readiness.set("store", true);
    assert_eq!(
        http.get(s.ops_url("/readyz"))
            .send()
            .await?
            .status()
            .as_u16(),
        200
    );

    // Traffic of every kind, then the metric names are exported.
    let hit = format!("registry.example/app@{}", digest("app"));
    s.put(None, &hit, true);
    let miss = format!("registry.example/new@{}", digest("new"));
    ask(&s.client(), &s.url(V1_VERIFY), &[&hit, &miss, "BAD"]).await?;
    post_json(&s.client(), &s.url(V2_VERIFY), b"{".to_vec()).await?;
    let r = http.get(s.ops_url("/metrics")).send().await?;
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()?
            .starts_with("text/plain")
    );
    let text = r.text().await?;
    for needle in [
        "verdict_lookup_duration_seconds_bucket{result=\"hit\"",
        "verdict_lookup_duration_seconds_bucket{result=\"miss\"",
        "verdict_requests_total{endpoint=\"v1_verify\",outcome=\"key_errors\"}",
        "verdict_requests_total{endpoint=\"v2_verify\",outcome=\"system_error\"}",
        "verdict_inline_verifications_total{result=\"allow\"}",
        "verdict_key_errors_total{code=\"INVALID_KEY\"}",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }

    // The TLS port does not serve the operations endpoints.
    let (status, _) = post_json(&s.client(), &s.url("/metrics"), b"{}".to_vec()).await?;
    assert_eq!(status, 404);
    s.stop().await
}

#[tokio::test]
async fn shutdown_closes_both_listeners() -> Result<()> {
    let s = TestServer::start(false, |c| c.shutdown_grace = Duration::from_secs(2)).await?;
    let (addr, ops_addr) = (s.addr, s.ops_addr);
    let readiness = s.readiness.clone();
    s.stop().await?;
    assert!(!readiness.is_ready(), "not ready after shutdown");
    for a in [addr, ops_addr] {
        assert!(
            tokio::net::TcpStream::connect(a).await.is_err(),
            "{a} still accepts connections"
        );
    }
    Ok(())
}
