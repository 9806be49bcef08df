//! Load and failure limits: a stalled store fails requests closed, a slow registry cannot take
//! every verification slot, idle connections are closed, and overload is answered, not queued.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use verdict_cache_api::{
    Endpoint, Error, MemoryVerdictCache, ServedVerdict, ServiceConfig, SubjectKey, VerdictCache,
    VerdictService,
};

/// A store that can be made to hang: reads and writes block while it is stalled.
#[derive(Default)]
struct StallableStore {
    memory: MemoryVerdictCache,
    stall_reads: AtomicBool,
    stall_writes: AtomicBool,
    /// Released (set to true) to let blocked calls go.
    gate: (Mutex<bool>, Condvar),
}

impl StallableStore {
    fn wait_while(&self, stalled: &AtomicBool) {
        let (lock, cv) = &self.gate;
        let mut released = lock.lock().unwrap();
        while stalled.load(Ordering::SeqCst) && !*released {
            released = cv.wait(released).unwrap();
        }
    }

    fn release(&self) {
        self.stall_reads.store(false, Ordering::SeqCst);
        self.stall_writes.store(false, Ordering::SeqCst);
        let (lock, cv) = &self.gate;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
}

impl VerdictCache for StallableStore {
    fn get_memory(&self, _key: &SubjectKey, _now: DateTime<Utc>) -> Option<Arc<ServedVerdict>> {
        None
    }

    fn get_stored(
        &self,
        key: &SubjectKey,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<ServedVerdict>>, Error> {
        self.wait_while(&self.stall_reads);
        Ok(self.memory.get_memory(key, now))
    }

    fn put(
        &self,
        key: &SubjectKey,
        verdict: &Arc<ServedVerdict>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), Error> {
        self.wait_while(&self.stall_writes);
        self.memory.put(key, verdict, expires_at)
    }

    fn remove(&self, key: &SubjectKey) -> Result<bool, Error> {
        self.wait_while(&self.stall_writes);
        Ok(self.memory.remove(key))
    }
}

fn body(keys: &[&str]) -> Result<Bytes> {
    Ok(Bytes::from(serde_json::to_vec(&request(keys))?))
}

/// The `error` of `key`'s item in a response serialised by the service.
fn error_of(response: &verdict_cache_api::wire::ProviderResponse, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&response.to_json()).ok()?;
    item(&v["response"], key)["error"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn a_stalled_store_fails_requests_closed_instead_of_hanging_them() -> Result<()> {
    let store = Arc::new(StallableStore::default());
    let verifier = Arc::new(FakeVerifier::default());
    let config = ServiceConfig {
        store_timeout: Duration::from_millis(200),
        max_store_operations: 2,
        ..ServiceConfig::default()
    };
    let service = VerdictService::new(
        config,
        store.clone(),
        verifier.clone(),
        Arc::new(FakeResolver::default()),
    )?;
    // Bounded only so a regression fails instead of hanging the suite.
    let answer = |keys: Vec<String>| {
        let service = service.clone();
        async move {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            tokio::time::timeout(
                Duration::from_secs(10),
                service.handle(Endpoint::VerifyV1, Ok(body(&keys)?)),
            )
            .await
            .context("the request hung on the stalled store")
        }
    };

    // Reads stall: every key fails closed, more requests than store slots included.
    store.stall_reads.store(true, Ordering::SeqCst);
    let keys: Vec<String> = (0..5)
        .map(|i| format!("registry.example/app@{}", digest(&format!("read-{i}"))))
        .collect();
    let answers = futures::future::join_all(keys.iter().map(|k| answer(vec![k.clone()]))).await;
    for (key, a) in keys.iter().zip(answers) {
        let e = error_of(&a?, key).context("an answer without an error")?;
        assert!(e.starts_with("STORE_UNAVAILABLE"), "{key}: {e}");
    }
    assert_eq!(
        verifier.total_calls(),
        0,
        "verified past a store that never answered"
    );

    // Writes stall: the verification runs, but its verdict is not answered unrecorded, and the
    // single flight ends (a second request gets an answer too, not a wait on a dead flight).
    store.stall_reads.store(false, Ordering::SeqCst);
    store.stall_writes.store(true, Ordering::SeqCst);
    let key = format!("registry.example/app@{}", digest("write"));
    for _ in 0..2 {
        let e = error_of(&answer(vec![key.clone()]).await?, &key).context("no error")?;
        assert!(e.starts_with("STORE_UNAVAILABLE"), "{e}");
    }

    // The store recovers: the same subject is answered.
    store.release();
    let fresh = format!("registry.example/app@{}", digest("after"));
    let a = answer(vec![fresh.clone()]).await?;
    assert_eq!(error_of(&a, &fresh), None, "after recovery");
    Ok(())
}

#[tokio::test]
async fn a_slow_registry_cannot_take_every_verification_slot() -> Result<()> {
    let s = TestServer::start(false, |c| {
        c.service.max_concurrent_verifications = 4;
        c.service.max_verifications_per_registry = 2;
        c.service.verify_deadline = Duration::from_secs(2);
    })
    .await?;
    let client = s.client();
    let url = s.url(V1_VERIFY);
    // Six images of a registry that takes 20 s per verification.
    let slow: Vec<String> = (0..6)
        .map(|i| {
            let d = digest(&format!("slow-{i}"));
            s.verifier
                .set(&d, Behaviour::Allow, Duration::from_secs(20));
            format!("slow.example/app@{d}")
        })
        .collect();
    let keys: Vec<&str> = slow.iter().map(String::as_str).collect();
    let r = ask(&client, &url, &keys).await?;
    for k in &keys {
        assert!(
            item(&r, k)["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("VERIFY_TIMEOUT")),
            "{r}"
        );
    }
    // Another registry is still answered within the deadline.
    let fast = format!("fast.example/app@{}", digest("fast"));
    let r = ask(&client, &url, &[&fast]).await?;
    assert_eq!(item(&r, &fast)["value"]["isSuccess"], true, "{r}");
    s.stop().await
}

/// A TLS 1.3 connection to the test server, trusting its CA.
async fn tls_connect(
    s: &TestServer,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(
        s.pki.ca.der().to_vec(),
    ))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(s.addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}

#[tokio::test]
async fn idle_connections_are_closed_and_busy_ones_are_not() -> Result<()> {
    let s = TestServer::start(false, |c| {
        c.limits.idle_timeout = Duration::from_millis(300);
        // Longer than the test: only the idle timeout may close the connection.
        c.header_read_timeout = Duration::from_secs(60);
    })
    .await?;
    // A request that takes longer than the idle timeout is answered on its connection.
    let d = digest("takes-a-second");
    s.verifier
        .set(&d, Behaviour::Allow, Duration::from_millis(1000));
    let key = format!("registry.example/app@{d}");
    let payload = serde_json::to_vec(&request(&[&key]))?;
    let mut conn = tls_connect(&s).await?;
    let head = format!(
        "POST {V1_VERIFY} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        payload.len()
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(&payload).await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("isSuccess") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await??;
        assert!(n > 0, "connection closed while a request was in flight");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    // Then nothing is sent: the server closes the connection (EOF or a TLS close/reset).
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle connection stayed open");
    s.stop().await
}

#[tokio::test]
async fn requests_past_the_in_flight_limit_are_answered_with_a_system_error() -> Result<()> {
    let s = TestServer::start(false, |c| {
        c.limits.max_in_flight_requests = 1;
    })
    .await?;
    let d = digest("holds-the-slot");
    s.verifier
        .set(&d, Behaviour::Allow, Duration::from_millis(1500));
    let slow = format!("registry.example/app@{d}");
    let (client, url) = (s.client(), s.url(V1_VERIFY));
    let first = {
        let (client, url, slow) = (client.clone(), url.clone(), slow.clone());
        tokio::spawn(async move { ask(&client, &url, &[&slow]).await })
    };
    // Wait until the first request is being verified (it holds the only slot).
    assert!(
        eventually(Duration::from_secs(5), || async {
            s.verifier.calls(&d) == 1
        })
        .await
    );
    let other = format!("registry.example/app@{}", digest("other"));
    let (status, v) = post_json(&client, &url, serde_json::to_vec(&request(&[&other]))?).await?;
    assert_eq!(status, 200);
    let e = v["response"]["systemError"].as_str().unwrap_or_default();
    assert!(
        e.contains("overloaded") && e.contains("max-in-flight-requests"),
        "{v}"
    );
    let r = first.await??;
    assert_eq!(item(&r, &slow)["value"]["isSuccess"], true, "{r}");
    s.stop().await
}

#[tokio::test]
async fn large_bodies_past_the_buffer_budget_are_refused_and_small_ones_answered() -> Result<()> {
    let s = TestServer::start(false, |c| {
        c.max_body_bytes = 1024 * 1024;
        c.limits.max_buffered_bytes = 1024;
    })
    .await?;
    let key = format!("registry.example/app@{}", digest("small"));
    let (client, url) = (s.client(), s.url(V1_VERIFY));
    // A Gatekeeper-sized body is within every request's own allowance.
    let r = ask(&client, &url, &[&key]).await?;
    assert_eq!(item(&r, &key)["value"]["isSuccess"], true, "{r}");
    // 200 KiB of JSON (padded with spaces) passes the body limit but not the shared budget.
    let mut big = serde_json::to_vec(&request(&[&key]))?;
    big.extend(std::iter::repeat_n(b' ', 200 * 1024));
    let (status, v) = post_json(&client, &url, big).await?;
    assert_eq!(status, 200);
    let e = v["response"]["systemError"].as_str().unwrap_or_default();
    assert!(e.contains("max-buffered-mib"), "{v}");
    s.stop().await
}
