//! Cache misses: single-flight, the request deadline, transient failures, deny TTL, bounds.

mod common;

use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use common::*;
use verdict_cache_api::VerdictCache;

#[tokio::test]
async fn concurrent_misses_share_one_verification() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let d = digest("popular");
    s.verifier
        .set(&d, Behaviour::Allow, Duration::from_millis(300));
    let key = format!("registry.example/popular@{d}");
    let client = s.client();
    let url = s.url(V1_VERIFY);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        tasks.push(tokio::spawn(
            async move { ask(&client, &url, &[&key]).await },
        ));
    }
    for t in tasks {
        let r = t.await??;
        assert_eq!(item(&r, &key)["value"]["isSuccess"], true, "{r}");
    }
    assert_eq!(
        s.verifier.calls(&d),
        1,
        "10 concurrent misses → 1 verification"
    );
    s.stop().await
}

#[tokio::test]
async fn deadline_exceeded_is_a_per_key_error_and_the_verdict_arrives_later() -> Result<()> {
    let s = TestServer::start(false, |c| {
        c.service.verify_deadline = Duration::from_millis(200);
    })
    .await?;
    let slow = digest("slow");
    s.verifier
        .set(&slow, Behaviour::Allow, Duration::from_millis(1000));
    let slow_key = format!("registry.example/slow@{slow}");
    let fast_key = format!("registry.example/fast@{}", digest("fast"));

    let started = std::time::Instant::now();
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&slow_key, &fast_key]).await?;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "answered at the deadline"
    );
    let e = item(&r, &slow_key)["error"]
        .as_str()
        .expect("per-key error");
    assert!(e.starts_with("VERIFY_TIMEOUT: "), "{e}");
    assert!(e.contains("200ms"), "{e}");
    assert_eq!(
        item(&r, &fast_key)["value"]["isSuccess"],
        true,
        "other keys of the batch are answered"
    );
    assert!(r.get("systemError").is_none());

    // Asked again while it runs: the timeout was not cached and no second verification starts.
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&slow_key]).await?;
    assert!(
        item(&r, &slow_key)["error"]
            .as_str()
            .unwrap()
            .starts_with("VERIFY_TIMEOUT")
    );
    assert_eq!(s.verifier.calls(&slow), 1);

    // The verification finished in the background and stored its verdict.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&slow_key]).await?;
    assert_eq!(item(&r, &slow_key)["value"]["isSuccess"], true, "{r}");
    assert_eq!(s.verifier.calls(&slow), 1);
    s.stop().await
}

#[tokio::test]
async fn transient_failures_are_never_cached() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let d = digest("flaky");
    s.verifier.set(&d, Behaviour::RegistryDown, Duration::ZERO);
    let key = format!("registry.example/flaky@{d}");
    for round in 1..=2 {
        let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
        let e = item(&r, &key)["error"].as_str().expect("per-key error");
        assert!(e.starts_with("REGISTRY_UNAVAILABLE: "), "{e}");
        assert!(
            item(&r, &key).get("value").is_none(),
            "fail closed: no allow"
        );
        assert_eq!(s.verifier.calls(&d), round, "every request retries");
    }
    assert!(s.cache.is_empty());

    // A definitive error is answered but not cached either (only deny results are).
    let d2 = digest("gone");
    s.verifier.set(&d2, Behaviour::Definitive, Duration::ZERO);
    let key2 = format!("registry.example/gone@{d2}");
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key2]).await?;
    assert!(
        item(&r, &key2)["error"]
            .as_str()
            .unwrap()
            .starts_with("VERIFY_FAILED: ")
    );
    assert!(s.cache.is_empty());

    // The registry recovers: the next request verifies and caches.
    s.verifier.set(&d, Behaviour::Allow, Duration::ZERO);
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
    assert_eq!(item(&r, &key)["value"]["isSuccess"], true);
    assert!(eventually(Duration::from_secs(2), || async { s.cache.len() == 1 }).await);
    s.stop().await
}

#[tokio::test]
async fn definitive_deny_is_cached_until_its_ttl() -> Result<()> {
    let s = TestServer::start(false, |c| c.service.deny_ttl = Duration::from_millis(600)).await?;
    let d = digest("unsigned");
    s.verifier.set(&d, Behaviour::Deny, Duration::ZERO);
    let key = format!("registry.example/unsigned@{d}");
    let before = Utc::now();
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
    assert_eq!(item(&r, &key)["value"]["isSuccess"], false);
    assert_eq!(s.verifier.calls(&d), 1);
    let subject = subject_key(None, &key);
    // The verdict is stored right after it is answered.
    assert!(eventually(Duration::from_secs(2), || async { s.cache.len() == 1 }).await);
    let expiry = s
        .cache
        .expiry(&subject)
        .expect("deny cached")
        .expect("deny has an expiry");
    let ttl = expiry - before;
    assert!(
        ttl > chrono::Duration::milliseconds(500) && ttl < chrono::Duration::seconds(2),
        "deny expiry {ttl:?} after the request"
    );

    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
    assert_eq!(item(&r, &key)["value"]["isSuccess"], false);
    assert_eq!(
        s.verifier.calls(&d),
        1,
        "served from the cache within the TTL"
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(s.cache.get(&subject, Utc::now())?.is_none(), "expired");
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
    assert_eq!(item(&r, &key)["value"]["isSuccess"], false);
    assert_eq!(s.verifier.calls(&d), 2, "verified again after the TTL");
    s.stop().await
}

#[tokio::test]
async fn zero_deny_ttl_never_caches_denies() -> Result<()> {
    let s = TestServer::start(false, |c| c.service.deny_ttl = Duration::ZERO).await?;
    let d = digest("unsigned0");
    s.verifier.set(&d, Behaviour::Deny, Duration::ZERO);
    let key = format!("registry.example/unsigned0@{d}");
    for _ in 0..2 {
        let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
        assert_eq!(item(&r, &key)["value"]["isSuccess"], false);
    }
    assert_eq!(s.verifier.calls(&d), 2);
    assert!(s.cache.is_empty());
    s.stop().await
}

#[tokio::test]
async fn pending_verifications_are_bounded() -> Result<()> {
    let s = TestServer::start(false, |c| {
        c.service.max_pending_verifications = 1;
        c.service.verify_deadline = Duration::from_millis(400);
    })
    .await?;
    let (a, b) = (digest("a-slow"), digest("b-slow"));
    s.verifier
        .set(&a, Behaviour::Allow, Duration::from_millis(200));
    s.verifier
        .set(&b, Behaviour::Allow, Duration::from_millis(200));
    let ka = format!("registry.example/a@{a}");
    let kb = format!("registry.example/b@{b}");
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&ka, &kb]).await?;
    let answers: Vec<&serde_json::Value> = vec![item(&r, &ka), item(&r, &kb)];
    let busy = answers
        .iter()
        .filter(|i| {
            i["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("VERIFIER_BUSY: "))
        })
        .count();
    let ok = answers
        .iter()
        .filter(|i| i["value"]["isSuccess"] == true)
        .count();
    assert_eq!((busy, ok), (1, 1), "{r}");
    s.stop().await
}

#[tokio::test]
async fn verification_timeout_bounds_background_work() -> Result<()> {
    let s = TestServer::start(false, |c| {
        c.service.verify_deadline = Duration::from_millis(150);
        c.service.verification_timeout = Duration::from_millis(250);
    })
    .await?;
    let d = digest("stuck");
    s.verifier.set(&d, Behaviour::Allow, Duration::from_secs(5));
    let key = format!("registry.example/stuck@{d}");
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
    assert!(
        item(&r, &key)["error"]
            .as_str()
            .unwrap()
            .starts_with("VERIFY_TIMEOUT")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The stuck verification was abandoned (not cached); a new request starts a new one.
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
    assert!(
        item(&r, &key)["error"]
            .as_str()
            .unwrap()
            .starts_with("VERIFY_TIMEOUT")
    );
    assert_eq!(s.verifier.calls(&d), 2);
    assert!(s.cache.is_empty());
    s.stop().await
}

#[tokio::test]
async fn concurrency_is_bounded() -> Result<()> {
    let s = TestServer::start(false, |c| {
        c.service.max_concurrent_verifications = 2;
        c.service.verify_deadline = Duration::from_secs(3);
    })
    .await?;
    let keys: Vec<String> = (0..6)
        .map(|i| {
            let d = digest(&format!("bounded-{i}"));
            s.verifier
                .set(&d, Behaviour::Allow, Duration::from_millis(200));
            format!("registry.example/b{i}@{d}")
        })
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let r = ask(&s.client(), &s.url(V1_VERIFY), &refs).await?;
    for k in &refs {
        assert_eq!(item(&r, k)["value"]["isSuccess"], true, "{r}");
    }
    // 6 verifications of 200 ms, 2 at a time: at least 3 rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(590),
        "ran more than 2 at once: {:?}",
        started.elapsed()
    );
    s.stop().await
}
