//! Crash safety of `verdict serve`'s verdict store, at the server level. A stream of verify
//! requests for distinct images runs against a real server; the server is SIGKILLed in the middle
//! of it and restarted on the same data dir with the registry stopped, so every verdict it serves
//! comes from the store. Every verdict acknowledged before the kill must still be served, and
//! nothing may be served wrongly. Then one stored entry gets a flipped byte: that key becomes a
//! miss (with the registry down: a per-key error, never an allow) and
//! `verdict_store_bad_entries_total` counts it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use sha2::Digest as _;
use verdict_scanner::store::SubjectKey;
use verdict_testkit::DockerRegistry;
use verdict_testkit::demo::{SIGNER_SUBJECT, ratify_config};
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::pki::{CertBuilder, KeyAlg};
use verdict_testkit::serve::{ServeOptions, VERIFY_V1, VerdictServer, provider_request};

/// Images pushed; every third one is unsigned.
const IMAGES: usize = 30;
/// Verdicts acknowledged before the SIGKILL.
const KILL_AFTER: usize = 12;
/// Concurrent clients, so requests are in flight when the kill lands.
const CLIENTS: usize = 4;
const BAD_ENTRIES: &str = "verdict_store_bad_entries_total";

struct Image {
    key: String,
    signed: bool,
}

/// What the server answered for one key.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Allowed,
    Denied,
    /// A per-key error (no verdict).
    Error(String),
}

fn answer(response: &Value, key: &str) -> Result<Answer> {
    let r = &response["response"];
    if let Some(e) = r["systemError"].as_str().filter(|e| !e.is_empty()) {
        bail!("system error for {key}: {e}");
    }
    let item = r["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["key"] == key))
        .with_context(|| format!("no item for {key} in {response}"))?;
    if let Some(e) = item["error"].as_str().filter(|e| !e.is_empty()) {
        return Ok(Answer::Error(e.to_string()));
    }
    match item["value"]["isSuccess"].as_bool() {
        Some(true) => Ok(Answer::Allowed),
        Some(false) => Ok(Answer::Denied),
        None => bail!("item for {key} has neither an error nor isSuccess: {item}"),
    }
}

/// Answers for `keys` in one request.
async fn ask(server: &VerdictServer, keys: &[&str]) -> Result<BTreeMap<String, Answer>> {
    let response = server
        .post_keys(VERIFY_V1, keys)
        .await
        .with_context(|| format!("verdict log tail:\n{}", server.log_tail()))?;
    keys.iter()
        .map(|k| Ok((k.to_string(), answer(&response, k)?)))
        .collect()
}

/// Sum of `verdict_store_bad_entries_total` samples for verdict entries failing their signature.
fn bad_signature_count(metrics: &str) -> f64 {
    verdict_testkit::serve::metric_sum(
        metrics,
        BAD_ENTRIES,
        &[r#"kind="verdict""#, r#"reason="bad_signature""#],
    )
}

/// Flips one byte in the middle of the stored value of `key` (the store must be closed; layout
/// in scanner/src/store/codec.rs: entry key `e` + first 16 bytes of SHA-256 of the canonical key).
fn flip_stored_byte(store_dir: &Path, key: &str) -> Result<()> {
    let canonical = SubjectKey::parse(key)?.to_string();
    let mut raw_key = b"e".to_vec();
    raw_key.extend_from_slice(&sha2::Sha256::digest(canonical.as_bytes())[..16]);
    {
        let db = sled::Config::new()
            .path(store_dir)
            .open()
            .with_context(|| {
                format!("opening the stopped server's store {}", store_dir.display())
            })?;
        let mut value = db
            .get(&raw_key)?
            .with_context(|| format!("no stored entry for {canonical}"))?
            .to_vec();
        let at = value.len() / 2;
        value[at] ^= 0x01;
        db.insert(&raw_key, value)?;
        db.flush()?;
    }
    // sled drops its file lock only when its background threads end: wait for it, so the server
    // does not find the store locked.
    let db_file = store_dir.join("db");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let file = std::fs::File::open(&db_file)
            .with_context(|| format!("opening {}", db_file.display()))?;
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                bail!("{} stayed locked after the edit: {e}", db_file.display())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_verdict_and_tampering_is_a_miss() -> Result<()> {
    let mut registry = DockerRegistry::start().await?;
    let host = registry.host_port();
    let client = registry.client();
    let cert = CertBuilder::code_signing(SIGNER_SUBJECT)
        .key_alg(KeyAlg::EcP256)
        .self_signed()?;
    let mut images = Vec::new();
    for i in 0..IMAGES {
        let repo = format!("crash/app-{i:02}");
        let pushed = client.push_image(&repo, "v1").await?;
        let signed = i % 3 != 2;
        if signed {
            push_notation_signature(&client, &repo, &pushed, &cert).await?;
        }
        images.push(Image {
            key: format!("{host}/{repo}@{}", pushed.digest),
            signed,
        });
    }

    let data = tempfile::Builder::new()
        .prefix("verdict-crash-")
        .tempdir()?;
    let mut server = VerdictServer::start(
        ServeOptions::new(env!("CARGO_BIN_EXE_verdict"), ratify_config(&cert))
            .plain_http(&host)
            .data_dir(data.path())
            .args([
                // Denies stay stored for the whole test, so they must survive the crash too.
                "--deny-ttl-secs",
                "3600",
                // A stopped registry fails fast; a loaded machine still verifies in time.
                "--registry-timeout-secs",
                "2",
                "--verify-deadline-ms",
                "10000",
            ]),
    )
    .await?;

    // The stream: each answered request is an acknowledged verdict.
    let images = Arc::new(images);
    let next = Arc::new(AtomicUsize::new(0));
    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel::<(usize, Answer)>();
    let url = server.url(VERIFY_V1);
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (images, next, acks, url) = (images.clone(), next.clone(), acks.clone(), url.clone());
        let https = server.https_client().clone();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(image) = images.get(i) else { break };
                // After the kill requests fail: that key was never acknowledged.
                let Ok(response) = provider_request(&https, &url, &[&image.key]).await else {
                    break;
                };
                if let Ok(a) = answer(&response, &image.key) {
                    let _ = acks.send((i, a));
                }
            }
        }));
    }
    drop(acks);
    let mut before_kill = BTreeMap::new();
    while let Some((i, a)) = acked.recv().await {
        before_kill.insert(i, a);
        if before_kill.len() == KILL_AFTER {
            server.kill();
            break;
        }
    }
    for w in workers {
        w.await?;
    }
    while let Some((i, a)) = acked.recv().await {
        before_kill.insert(i, a);
    }
    ensure!(
        before_kill.len() >= KILL_AFTER,
        "only {} answers before the stream ended: {before_kill:?}\n{}",
        before_kill.len(),
        server.log_tail()
    );
    ensure!(
        before_kill.len() < IMAGES,
        "the kill landed after the whole stream was answered"
    );
    for (i, a) in &before_kill {
        let expected = if images[*i].signed {
            Answer::Allowed
        } else {
            Answer::Denied
        };
        assert_eq!(
            *a, expected,
            "before the kill, {} was answered wrongly",
            images[*i].key
        );
    }

    // Restart on the same data dir with the registry stopped: only the store can answer.
    registry.stop();
    server.restart().await?;
    let keys: Vec<&str> = images.iter().map(|i| i.key.as_str()).collect();
    let after = ask(&server, &keys).await?;
    for (i, image) in images.iter().enumerate() {
        let got = &after[&image.key];
        // Acknowledged allows are stored durably and must survive; denies are kept in memory
        // only (so lookups cannot grow the disk): after the restart they are verified again,
        // which with the registry down is a registry error, never an allow.
        if let Some(acknowledged @ Answer::Allowed) = before_kill.get(&i) {
            assert_eq!(
                got,
                acknowledged,
                "{} was acknowledged as {acknowledged:?} before the SIGKILL; after the restart: {got:?}\n{}",
                image.key,
                server.log_tail()
            );
        }
        match got {
            Answer::Allowed => assert!(image.signed, "unsigned {} allowed", image.key),
            Answer::Denied => assert!(!image.signed, "signed {} denied", image.key),
            Answer::Error(e) => assert!(
                e.starts_with("REGISTRY_UNAVAILABLE") || e.starts_with("VERIFY_TIMEOUT"),
                "{}: a miss with the registry down must be a registry error, got {e}",
                image.key
            ),
        }
    }

    // Tamper with one allowed entry while the server is stopped.
    let (flipped, _) = before_kill
        .iter()
        .find(|(_, a)| **a == Answer::Allowed)
        .context("no image was acknowledged as allowed before the kill")?;
    let flipped = images[*flipped].key.clone();
    server.terminate(Duration::from_secs(5));
    flip_stored_byte(&data.path().join("store"), &flipped)?;
    server.restart().await?;

    let others: Vec<&str> = before_kill
        .iter()
        .filter(|(i, a)| **a == Answer::Allowed && images[**i].key != flipped)
        .map(|(i, _)| images[*i].key.as_str())
        .collect();
    for (key, got) in ask(&server, &others).await? {
        assert_eq!(
            got,
            Answer::Allowed,
            "{key} after the restart with a flipped byte elsewhere"
        );
    }
    let metrics = server.metrics().await?;
    assert_eq!(
        bad_signature_count(&metrics),
        0.0,
        "bad entries before the tampered one was read:\n{metrics}"
    );
    let got = ask(&server, &[&flipped]).await?.remove(&flipped);
    match &got {
        Some(Answer::Error(e))
            if e.starts_with("REGISTRY_UNAVAILABLE") || e.starts_with("VERIFY_TIMEOUT") => {}
        other => panic!(
            "the tampered entry of {flipped} must be a miss (a registry error with the registry \
             down), got {other:?}\n{}",
            server.log_tail()
        ),
    }
    let metrics = server.metrics().await?;
    assert!(
        bad_signature_count(&metrics) >= 1.0,
        "{BAD_ENTRIES}{{kind=\"verdict\",reason=\"bad_signature\"}} missing after reading the \
         tampered entry:\n{metrics}"
    );
    server.terminate(Duration::from_secs(5));
    Ok(())
}
