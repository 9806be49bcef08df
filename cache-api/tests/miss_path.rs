//! Cache misses: single-flight, the request deadline, transient failures, deny TTL, bounds.
//!
//! No test here guesses how long something takes: a verification that must still be running is
//! held at a [`Gate`] until the test releases it, concurrency is counted by the fake verifier,
//! and whatever happens in the background is waited for as a condition (generously bounded).

mod common;

use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use common::*;
use verdict_cache_api::VerdictCache;

/// Bound on waiting for something that takes milliseconds when the code works.
const WAIT: Duration = Duration::from_secs(10);

/// Whether `key` is answered with an allow now.
async fn allowed(s: &TestServer, key: &str) -> bool {
    ask(&s.client(), &s.url(V1_VERIFY), &[key])
        .await
        .is_ok_and(|r| item(&r, key)["value"]["isSuccess"] == true)
}

/// `n` concurrent requests for `key`, answered.
async fn ask_concurrently(s: &TestServer, key: &str, n: usize) -> Result<Vec<serde_json::Value>> {
    let (client, url) = (s.client(), s.url(V1_VERIFY));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, url, key) = (client.clone(), url.clone(), key.to_owned());
            tokio::spawn(async move { ask(&client, &url, &[&key]).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await??);
    }
    Ok(answers)
}

#[tokio::test]
async fn concurrent_misses_share_one_verification() -> Result<()> {
    let s = TestServer::start(false, |c| {
        c.service.verify_deadline = Duration::from_millis(500);
    })
    .await?;
    let d = digest("popular");
    let gate = Gate::closed();
    s.verifier.hold(&d, &gate);
    let key = format!("registry.example/popular@{d}");

    // The verification cannot finish until every request is answered, so each of the 10 misses
    // meets it running, however late it arrives: all wait on that one verification.
    for r in ask_concurrently(&s, &key, 10).await? {
        let e = item(&r, &key)["error"].as_str().expect("per-key error");
        assert!(e.starts_with("VERIFY_TIMEOUT: "), "{e}");
    }
    assert_eq!(
        s.verifier.calls(&d),
        1,
        "10 concurrent misses → 1 verification"
    );

    // Its verdict answers them all once it is there; still one verification.
    gate.open();
    assert!(
        eventually(WAIT, || allowed(&s, &key)).await,
        "the shared verification's verdict is served"
    );
    for r in ask_concurrently(&s, &key, 10).await? {
        assert_eq!(item(&r, &key)["value"]["isSuccess"], true, "{r}");
    }
    assert_eq!(s.verifier.calls(&d), 1);
    s.stop().await
}

#[tokio::test]
async fn deadline_exceeded_is_a_per_key_error_and_the_verdict_arrives_later() -> Result<()> {
    let s = TestServer::start(false, |c| {
        c.service.verify_deadline = Duration::from_millis(200);
    })
    .await?;
    let slow = digest("slow");
    let gate = Gate::closed();
    s.verifier.hold(&slow, &gate);
    let slow_key = format!("registry.example/slow@{slow}");
    let fast_key = format!("registry.example/fast@{}", digest("fast"));

    // Answered although the verification cannot finish: at the deadline, not after it.
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&slow_key, &fast_key]).await?;
    assert_eq!(s.verifier.in_flight(), 1, "the verification goes on");
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

    // The verification finishes in the background; a later request finds its verdict.
    gate.open();
    assert!(
        eventually(WAIT, || allowed(&s, &slow_key)).await,
        "the background verdict is served"
    );
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
    // Long enough that the next request certainly comes within it; the test waits it out.
    let deny_ttl = Duration::from_secs(3);
    let s = TestServer::start(false, |c| c.service.deny_ttl = deny_ttl).await?;
    let d = digest("unsigned");
    s.verifier.set(&d, Behaviour::Deny, Duration::ZERO);
    let key = format!("registry.example/unsigned@{d}");
    let before = Utc::now();
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
    assert_eq!(item(&r, &key)["value"]["isSuccess"], false);
    assert_eq!(s.verifier.calls(&d), 1);
    let subject = subject_key(None, &key);
    // The verdict is stored right after it is answered.
    assert!(eventually(WAIT, || async { s.cache.len() == 1 }).await);
    let after = Utc::now();
    let expiry = s
        .cache
        .expiry(&subject)
        .expect("deny cached")
        .expect("deny has an expiry");
    // Stored between `before` and `after`, for exactly deny_ttl.
    let ttl = chrono::Duration::from_std(deny_ttl)?;
    assert!(
        before + ttl <= expiry && expiry <= after + ttl,
        "deny expiry {expiry} is not {ttl:?} after the verdict ({before} .. {after})"
    );

    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
    assert_eq!(item(&r, &key)["value"]["isSuccess"], false);
    assert_eq!(
        s.verifier.calls(&d),
        1,
        "served from the cache within the TTL"
    );

    assert!(
        eventually(deny_ttl + WAIT, || async {
            s.cache.get(&subject, Utc::now()).is_ok_and(|v| v.is_none())
        })
        .await,
        "the deny expires"
    );
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
        c.service.verify_deadline = Duration::from_millis(300);
    })
    .await?;
    let (a, b) = (digest("a-slow"), digest("b-slow"));
    let gate = Gate::closed();
    s.verifier.hold(&a, &gate);
    s.verifier.hold(&b, &gate);
    let ka = format!("registry.example/a@{a}");
    let kb = format!("registry.example/b@{b}");
    // Neither verification can finish during the request: one subject is pending, the other
    // is refused at once rather than queued.
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&ka, &kb]).await?;
    let error = |k: &str| item(&r, k)["error"].as_str().unwrap_or_default().to_owned();
    let (verified, refused) = if error(&ka).starts_with("VERIFIER_BUSY: ") {
        (kb.as_str(), ka.as_str())
    } else {
        (ka.as_str(), kb.as_str())
    };
    assert!(error(refused).starts_with("VERIFIER_BUSY: "), "{r}");
    assert!(error(verified).starts_with("VERIFY_TIMEOUT: "), "{r}");
    assert_eq!(
        s.verifier.total_calls(),
        1,
        "the refused key is not verified"
    );

    // The pending one is verified; once it is done, the refused one can be verified too.
    gate.open();
    assert!(
        eventually(WAIT, || allowed(&s, verified)).await,
        "the pending subject's verdict is served"
    );
    assert!(
        eventually(WAIT, || allowed(&s, refused)).await,
        "the refused subject is verified once there is room"
    );
    assert_eq!(s.verifier.total_calls(), 2);
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
    // Never released: the verification is stuck.
    let gate = Gate::closed();
    s.verifier.hold(&d, &gate);
    let key = format!("registry.example/stuck@{d}");
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
    assert!(
        item(&r, &key)["error"]
            .as_str()
            .unwrap()
            .starts_with("VERIFY_TIMEOUT")
    );
    // The stuck verification is cancelled at verification_timeout, not left running.
    assert!(
        eventually(WAIT, || async { s.verifier.in_flight() == 0 }).await,
        "the stuck verification was not abandoned"
    );
    // Nothing was cached: a later request starts a new verification, and is denied meanwhile.
    let answers = std::sync::Mutex::new(Vec::new());
    let restarted = eventually(WAIT, || async {
        let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await;
        answers.lock().unwrap().push(r);
        s.verifier.calls(&d) == 2
    })
    .await;
    let answers = answers.into_inner().unwrap();
    assert!(restarted, "no new verification: {answers:?}");
    let answers = answers.into_iter().collect::<Result<Vec<_>>>()?;
    for r in &answers {
        assert!(item(r, &key).get("value").is_none(), "fail closed: {r}");
    }
    let last = answers.last().expect("asked");
    assert!(
        item(last, &key)["error"]
            .as_str()
            .unwrap()
            .starts_with("VERIFY_TIMEOUT"),
        "{last}"
    );
    assert!(s.cache.is_empty());
    s.stop().await
}

#[tokio::test]
async fn concurrency_is_bounded() -> Result<()> {
    // The deadline only bounds the test: the verifications are released one by one below.
    let s = TestServer::start(false, |c| {
        c.service.max_concurrent_verifications = 2;
        c.service.verify_deadline = Duration::from_secs(30);
        c.service.verification_timeout = Duration::from_secs(60);
    })
    .await?;
    let gate = Gate::closed();
    let keys: Vec<String> = (0..6)
        .map(|i| {
            let d = digest(&format!("bounded-{i}"));
            s.verifier.hold(&d, &gate);
            format!("registry.example/b{i}@{d}")
        })
        .collect();
    let (client, url) = (s.client(), s.url(V1_VERIFY));
    let request = tokio::spawn({
        let keys = keys.clone();
        async move {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            ask(&client, &url, &refs).await
        }
    });
    // 6 misses, 2 slots: two verifications run, and each one finished lets the next start.
    for finished in 0..6 {
        let running = (6 - finished).min(2);
        let v = &s.verifier;
        assert!(
            eventually(WAIT, || async {
                v.in_flight() == running && v.total_calls() == finished + running
            })
            .await,
            "{finished} finished: expected {running} running, got {} running of {} started",
            v.in_flight(),
            v.total_calls()
        );
        assert!(v.max_in_flight() <= 2, "ran {} at once", v.max_in_flight());
        gate.release(1);
    }
    let r = request.await??;
    for k in &keys {
        assert_eq!(item(&r, k)["value"]["isSuccess"], true, "{r}");
    }
    assert_eq!(s.verifier.max_in_flight(), 2, "2 at once, never more");
    s.stop().await
}
