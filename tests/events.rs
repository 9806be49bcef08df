//! Verify on push, end to end against a real nats-server and docker-registry: registry events
//! reach `verdict serve`'s receivers, go through JetStream (or the in-process queue) to workers
//! that verify, and the first Gatekeeper lookup of a pushed image is a cache hit.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use verdict_testkit::demo::{SIGNER_SUBJECT, ratify_config};
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::oci::Descriptor;
use verdict_testkit::pki::{CertBuilder, KeyAlg, TestCert};
use verdict_testkit::process::free_port;
use verdict_testkit::ratify::{NotationVerifier, inline_kmp_yaml};
use verdict_testkit::registry::NotificationEndpoint;
use verdict_testkit::serve::{ServeOptions, VerdictServer};
use verdict_testkit::{DockerRegistry, NatsServer};

const SECRET: &str = "3f6c1a0e9b2d4c8f7a6e5d4c3b2a1908";

/// `verdict serve` with event receivers on a free port (HTTPS unless `plain`), optionally on NATS.
struct Setup {
    server: VerdictServer,
    events: String,
    /// The registry the server reaches (`host:port`), named in the events it receives.
    registry: String,
    _secret_dir: tempfile::TempDir,
}

impl Setup {
    async fn start(
        registry: &str,
        cert: &TestCert,
        nats: Option<&NatsServer>,
        events_port: u16,
        plain: bool,
    ) -> Result<Self> {
        Self::start_with(registry, cert, nats, events_port, plain, &[]).await
    }

    async fn start_with(
        registry: &str,
        cert: &TestCert,
        nats: Option<&NatsServer>,
        events_port: u16,
        plain: bool,
        extra: &[&str],
    ) -> Result<Self> {
        Self::start_config(
            registry,
            ratify_config(cert),
            nats,
            events_port,
            plain,
            extra,
        )
        .await
    }

    async fn start_config(
        registry: &str,
        config: String,
        nats: Option<&NatsServer>,
        events_port: u16,
        plain: bool,
        extra: &[&str],
    ) -> Result<Self> {
        let secret_dir = tempfile::tempdir()?;
        let secret_file = secret_dir.path().join("webhook.secret");
        std::fs::write(&secret_file, format!("{SECRET}\n"))?;
        let events_addr = format!("127.0.0.1:{events_port}");
        let mut opts = ServeOptions::new(env!("CARGO_BIN_EXE_verdict"), config)
            .plain_http(registry)
            .args(["--events-listen", &events_addr, "--webhook-secret-file"])
            .args([secret_file.as_os_str()]);
        if plain {
            opts = opts.args(["--events-plain-http"]);
        }
        if let Some(nats) = nats {
            opts = opts.args(["--nats-url", &nats.url()]);
        }
        opts = opts
            .args(["--log", "info,verdict_events=debug"])
            .args(extra);
        let server = VerdictServer::start(opts).await?;
        let scheme = if plain { "http" } else { "https" };
        Ok(Setup {
            server,
            events: format!("{scheme}://{events_addr}"),
            registry: registry.to_owned(),
            _secret_dir: secret_dir,
        })
    }

    /// POSTs `body` to `/events/<path>` with `auth` as the Authorization header.
    async fn post(&self, path: &str, body: Vec<u8>, auth: Option<&str>) -> Result<(u16, Value)> {
        let mut req = self
            .server
            .https_client()
            .post(format!("{}/events/{path}", self.events))
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.context("POST to the event receiver")?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// An authenticated ACR webhook (`push` or `delete`) about `repo@digest` on the registry.
    async fn acr(
        &self,
        action: &str,
        repo: &str,
        digest: &str,
        tag: Option<&str>,
    ) -> Result<(u16, Value)> {
        let body = acr_event(action, &self.registry, repo, digest, tag);
        self.post("acr", body, Some(&bearer())).await
    }

    async fn counter(&self, name: &str, label: &str) -> Result<f64> {
        counter(&self.server, name, label).await
    }

    async fn wait_counter(&self, name: &str, label: &str, at_least: f64) -> Result<()> {
        wait_counter(&self.server, name, label, at_least).await
    }

    async fn allowed(&self, reference: &str) -> Result<bool> {
        match self.server.verify_one(reference).await? {
            Ok(b) => Ok(b),
            Err(e) => bail!("no verdict for {reference}: {e}"),
        }
    }
}

/// The sum of `name`'s series whose labels contain `label`.
async fn counter(server: &VerdictServer, name: &str, label: &str) -> Result<f64> {
    server.metric(name, &[label]).await
}

/// Waits until `name{…label…}` reaches `at_least`.
async fn wait_counter(
    server: &VerdictServer,
    name: &str,
    label: &str,
    at_least: f64,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = counter(server, name, label).await?;
        if v >= at_least {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{name}{{{label}}} stayed at {v} (wanted {at_least}); server log:\n{}",
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn bearer() -> String {
    format!("Bearer {SECRET}")
}

/// The ACR push webhook of `../shared/reference/examples/acr/webhook-push.json`, about `digest`
/// in `repo` on `host`.
fn acr_event(action: &str, host: &str, repo: &str, digest: &str, tag: Option<&str>) -> Vec<u8> {
    let mut target = json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 524,
        "digest": digest,
        "length": 524,
        "repository": repo,
    });
    if let Some(t) = tag {
        target["tag"] = json!(t);
    }
    serde_json::to_vec(&json!({
        "id": format!("{action}-{host}/{repo}@{digest}-{}", tag.unwrap_or("")),
        "timestamp": "2026-12-07T16:52:01.343145347Z",
        "action": action,
        "target": target,
        "request": {"id": "r", "host": host, "method": "PUT", "useragent": "test"},
    }))
    .unwrap_or_default()
}

fn cert() -> Result<TestCert> {
    CertBuilder::code_signing(SIGNER_SUBJECT)
        .key_alg(KeyAlg::EcP256)
        .self_signed()
}

async fn push_signed(
    registry: &DockerRegistry,
    repo: &str,
    cert: &TestCert,
) -> Result<(Descriptor, Descriptor)> {
    let client = registry.client();
    let image = client.push_image(repo, "v1").await?;
    let signature = push_notation_signature(&client, repo, &image, cert).await?;
    Ok((image, signature))
}

#[tokio::test]
async fn an_acr_push_webhook_over_jetstream_makes_the_first_lookup_a_hit() -> Result<()> {
    let registry = DockerRegistry::start().await?;
    let nats = NatsServer::start().await?;
    let cert = cert()?;
    let host = registry.host_port();
    let setup = Setup::start(&host, &cert, Some(&nats), free_port()?, false).await?;

    // Signed before the push event arrives: the image's own push event verifies it.
    let (image, _) = push_signed(&registry, "events/signed", &cert).await?;
    let (status, body) = setup
        .acr("push", "events/signed", &image.digest, Some("v1"))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 1, "{body}");
    setup
        .wait_counter("verdict_push_verifications_total", "result=\"allow\"", 1.0)
        .await?;
    let reference = format!("{host}/events/signed@{}", image.digest);
    assert!(setup.allowed(&reference).await?);
    assert_eq!(
        setup
            .counter("verdict_inline_verifications_total", "")
            .await?,
        0.0,
        "the first lookup was answered from the verdict stored on push"
    );

    // Sign after push: the image's event finds no signature (deny); the signature's own push
    // event (no tag; the manifest names its subject) re-verifies the image.
    let client = registry.client();
    let late = client.push_image("events/late", "v1").await?;
    setup
        .acr("push", "events/late", &late.digest, Some("v1"))
        .await?;
    setup
        .wait_counter("verdict_push_verifications_total", "result=\"deny\"", 1.0)
        .await?;
    let late_ref = format!("{host}/events/late@{}", late.digest);
    assert!(!setup.allowed(&late_ref).await?);
    let signature = push_notation_signature(&client, "events/late", &late, &cert).await?;
    setup
        .acr("push", "events/late", &signature.digest, None)
        .await?;
    setup
        .wait_counter(
            "verdict_events_processed_total",
            "result=\"subject_verified\"",
            1.0,
        )
        .await?;
    assert!(
        setup.allowed(&late_ref).await?,
        "the signature's push event re-verified its subject"
    );

    // The same event delivered twice has one effect (JetStream deduplicates by Nats-Msg-Id).
    let before = setup
        .counter("verdict_push_verifications_total", "")
        .await?;
    for _ in 0..2 {
        let (status, _) = setup
            .acr("push", "events/signed", &image.digest, Some("again"))
            .await?;
        assert_eq!(status, 200);
    }
    setup
        .wait_counter("verdict_push_verifications_total", "", before + 1.0)
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        setup
            .counter("verdict_push_verifications_total", "")
            .await?,
        before + 1.0,
        "a duplicate event id was applied once"
    );

    // A tag moved by a push: the event updates the tag map at once, so a lookup by tag follows
    // it immediately instead of reusing the earlier answer for --tag-ttl-secs.
    let by_tag = format!("{host}/events/moving:v1");
    let first = client.push_image("events/moving", "v1").await?;
    push_notation_signature(&client, "events/moving", &first, &cert).await?;
    setup
        .acr("push", "events/moving", &first.digest, Some("v1"))
        .await?;
    setup
        .wait_counter("verdict_push_verifications_total", "result=\"allow\"", 3.0)
        .await?;
    assert!(setup.allowed(&by_tag).await?, "v1 is the signed image");
    let moved = client.push_image("events/moving", "v1").await?;
    assert_ne!(moved.digest, first.digest);
    setup
        .acr("push", "events/moving", &moved.digest, Some("v1"))
        .await?;
    setup
        .wait_counter("verdict_push_verifications_total", "result=\"deny\"", 2.0)
        .await?;
    assert!(
        !setup.allowed(&by_tag).await?,
        "v1 now names the unsigned image, and the lookup follows it"
    );

    // A delete event forgets the verdict: the next lookup verifies inline again.
    let inline_before = setup
        .counter("verdict_inline_verifications_total", "")
        .await?;
    let (status, _) = setup
        .acr("delete", "events/signed", &image.digest, None)
        .await?;
    assert_eq!(status, 200);
    setup
        .wait_counter("verdict_events_processed_total", "result=\"removed\"", 1.0)
        .await?;
    assert!(setup.allowed(&reference).await?);
    assert_eq!(
        setup
            .counter("verdict_inline_verifications_total", "")
            .await?,
        inline_before + 1.0,
        "after the delete event the verdict was gone"
    );
    Ok(())
}

#[tokio::test]
async fn unauthenticated_or_malformed_webhooks_are_refused_and_change_nothing() -> Result<()> {
    let registry = DockerRegistry::start().await?;
    let cert = cert()?;
    let host = registry.host_port();
    // In-process bus (no NATS), HTTPS receivers.
    let setup = Setup::start(&host, &cert, None, free_port()?, false).await?;
    let (image, _) = push_signed(&registry, "events/guarded", &cert).await?;
    let push = acr_event("push", &host, "events/guarded", &image.digest, Some("v1"));

    for auth in [None, Some("Bearer wrong-secret"), Some(SECRET)] {
        let (status, body) = setup.post("acr", push.clone(), auth).await?;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .contains("--webhook-secret-file"),
            "{body}"
        );
    }
    let truncated = push[..push.len() / 2].to_vec();
    let unknown = serde_json::to_vec(&json!({"id": "x", "action": "retag"}))?;
    let oversized = vec![b' '; 2 * 1024 * 1024];
    for (body, says) in [
        (truncated, "not JSON"),
        (unknown, "unknown action \"retag\""),
        (oversized, "byte limit"),
    ] {
        let (status, answer) = setup.post("acr", body, Some(&bearer())).await?;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(says),
            "{answer}"
        );
    }
    // The secret in the Event Grid endpoint URL's query string also authenticates.
    let (status, body) = setup
        .post(
            &format!("acr?secret={SECRET}"),
            br#"{"id":"p","action":"ping"}"#.to_vec(),
            None,
        )
        .await?;
    assert_eq!((status, &body["ignored"]), (200, &json!(1)), "{body}");

    // Event Grid's subscription validation handshake.
    let shared = verdict_testkit::shared_file(
        "reference/examples/acr/eventgrid-subscription-validation-request.json",
    );
    let (status, body) = setup
        .post("eventgrid", std::fs::read(&shared)?, Some(&bearer()))
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["validationResponse"], "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
        "{body}"
    );
    // CloudEvents' OPTIONS handshake.
    let resp = setup
        .server
        .https_client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/events/eventgrid?secret={SECRET}", setup.events),
        )
        .header("WebHook-Request-Origin", "eventgrid.azure.net")
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("webhook-allowed-origin")
            .and_then(|v| v.to_str().ok()),
        Some("eventgrid.azure.net")
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        setup
            .counter("verdict_push_verifications_total", "")
            .await?,
        0.0,
        "nothing refused was published"
    );

    // An Event Grid push and a CloudEvents push of the same image are both accepted.
    for (file, kind) in [
        ("eventgrid-image-pushed.eventgrid-schema.json", "eventgrid"),
        (
            "eventgrid-image-pushed.cloudevents-schema.json",
            "cloudevents",
        ),
    ] {
        let path = verdict_testkit::shared_file(&format!("reference/examples/acr/{file}"));
        let mut event: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        event["id"] = json!(format!("{kind}-1"));
        event["data"]["request"]["host"] = json!(host);
        event["data"]["target"]["repository"] = json!("events/guarded");
        event["data"]["target"]["digest"] = json!(image.digest);
        let body = if kind == "eventgrid" {
            json!([event])
        } else {
            event
        };
        let (status, answer) = setup
            .post("eventgrid", serde_json::to_vec(&body)?, Some(&bearer()))
            .await?;
        assert_eq!(
            (status, &answer["accepted"]),
            (200, &json!(1)),
            "{kind}: {answer}"
        );
    }
    setup
        .wait_counter("verdict_push_verifications_total", "result=\"allow\"", 2.0)
        .await?;
    Ok(())
}

#[tokio::test]
async fn docker_registry_notifications_drive_verification_on_push() -> Result<()> {
    let nats = NatsServer::start().await?;
    let cert = cert()?;
    let events_port = free_port()?;
    // The registry notifies Verdict's plain-HTTP receiver (TLS ending at an ingress).
    let registry = DockerRegistry::builder()
        .notification(
            NotificationEndpoint::new(
                "verdict",
                &format!("http://127.0.0.1:{events_port}/events/registry"),
            )
            .header("Authorization", &bearer()),
        )
        .start()
        .await?;
    let host = registry.host_port();
    let setup = Setup::start(&host, &cert, Some(&nats), events_port, true).await?;
    let (image, _) = push_signed(&registry, "events/notified", &cert).await?;
    // Three manifest pushes: the image (verified, maybe before its signature landed: deny), the
    // signature manifest and the tag-schema index `sha256-<hex>` docker-registry needs (each
    // re-verifies the subject; the first may run before the index exists). One refresh runs at a
    // time per subject and the last one starts after the last push: the image ends allowed.
    setup
        .wait_counter(
            "verdict_events_processed_total",
            "result=\"subject_verified\"",
            2.0,
        )
        .await?;
    setup
        .wait_counter("verdict_events_processed_total", "result=\"verified\"", 1.0)
        .await?;
    let reference = format!("{host}/events/notified@{}", image.digest);
    if !setup.allowed(&reference).await? {
        let r = setup
            .server
            .post_keys(verdict_testkit::serve::VERIFY_V1, &[&reference])
            .await?;
        panic!("denied: {r}\n{}", setup.server.log_tail());
    }
    assert_eq!(
        setup
            .counter("verdict_inline_verifications_total", "")
            .await?,
        0.0,
        "answered from the verdict stored on push"
    );
    Ok(())
}

#[tokio::test]
async fn two_replicas_on_one_nats_answer_a_pushed_image_from_their_own_stores() -> Result<()> {
    let registry = DockerRegistry::start().await?;
    let nats = NatsServer::start().await?;
    let cert = cert()?;
    let host = registry.host_port();
    // One verdict key for both (in a cluster: one Secret), outside either data directory.
    let key_dir = tempfile::tempdir()?;
    let key = key_dir.path().join("verdict.key");
    let key_arg = key.display().to_string();
    let a = Setup::start_with(
        &host,
        &cert,
        Some(&nats),
        free_port()?,
        false,
        &["--verdict-key", &key_arg],
    )
    .await?;
    // Replica B: an API replica only (--roles api): it follows the verdict stream, takes no work.
    let mut b = VerdictServer::start(
        ServeOptions::new(env!("CARGO_BIN_EXE_verdict"), ratify_config(&cert))
            .plain_http(&host)
            .args(["--nats-url", &nats.url(), "--verdict-key", &key_arg])
            .args(["--roles", "api"]),
    )
    .await?;
    let (image, _) = push_signed(&registry, "replicas/app", &cert).await?;
    let (status, _) = a
        .acr("push", "replicas/app", &image.digest, Some("v1"))
        .await?;
    assert_eq!(status, 200);
    a.wait_counter("verdict_replica_messages_total", "result=\"applied\"", 1.0)
        .await?;
    wait_counter(
        &b,
        "verdict_replica_messages_total",
        "result=\"applied\"",
        1.0,
    )
    .await?;
    let reference = format!("{host}/replicas/app@{}", image.digest);
    assert!(a.allowed(&reference).await?);
    assert_eq!(b.verify_one(&reference).await?, Ok(true));
    assert_eq!(
        counter(&b, "verdict_events_processed_total", "").await?,
        0.0,
        "an api-only replica takes no work"
    );
    for (name, server) in [("A", &a.server), ("B", &b)] {
        assert_eq!(
            counter(server, "verdict_inline_verifications_total", "").await?,
            0.0,
            "replica {name} answered from its own store"
        );
    }

    // B is down while another image is pushed; on restart it resumes after the last message it
    // applied and answers the new image from its store.
    b.kill();
    let (second, _) = push_signed(&registry, "replicas/second", &cert).await?;
    a.acr("push", "replicas/second", &second.digest, Some("v1"))
        .await?;
    a.wait_counter("verdict_replica_messages_total", "result=\"applied\"", 2.0)
        .await?;
    b.restart().await?;
    wait_counter(
        &b,
        "verdict_replica_messages_total",
        "result=\"applied\"",
        1.0,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        (
            counter(&b, "verdict_replica_messages_total", "result=\"applied\"").await?,
            counter(&b, "verdict_replica_messages_total", "").await?
        ),
        (1.0, 2.0),
        "after the restart B applied only what it had missed: the verdict and the tag"
    );
    let second_ref = format!("{host}/replicas/second@{}", second.digest);
    assert_eq!(b.verify_one(&second_ref).await?, Ok(true));
    assert_eq!(b.verify_one(&reference).await?, Ok(true));
    assert_eq!(
        counter(&b, "verdict_inline_verifications_total", "").await?,
        0.0,
        "B caught up from the verdict stream"
    );
    Ok(())
}

/// Messages stored in JetStream stream `name`, from the server's monitoring endpoint.
async fn stream_messages(nats: &NatsServer, name: &str) -> Result<u64> {
    let url = format!("{}/jsz?streams=true", nats.monitor_url());
    let v: Value = reqwest::get(&url).await?.json().await?;
    let streams = v["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten());
    Ok(streams
        .filter(|s| s["name"] == name)
        .map(|s| s["state"]["messages"].as_u64().unwrap_or(0))
        .sum())
}

#[tokio::test]
async fn nats_and_registry_outages_are_retried_and_hopeless_events_dead_lettered() -> Result<()> {
    let mut registry = DockerRegistry::start().await?;
    let mut nats = NatsServer::start().await?;
    let cert = cert()?;
    let host = registry.host_port();
    let setup = Setup::start_with(
        &host,
        &cert,
        Some(&nats),
        free_port()?,
        false,
        &["--event-max-deliver", "3", "--registry-timeout-secs", "1"],
    )
    .await?;
    let (image, _) = push_signed(&registry, "faults/app", &cert).await?;
    let push = acr_event("push", &host, "faults/app", &image.digest, Some("v1"));

    // NATS down: the receiver cannot store the event and says so (ACR / Event Grid retry).
    nats.kill();
    let (status, body) = setup.post("acr", push.clone(), Some(&bearer())).await?;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("JetStream"),
        "{body}"
    );
    // Back up: the sender's retry is accepted and applied.
    nats.restart().await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = setup.post("acr", push.clone(), Some(&bearer())).await?;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} after NATS came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    setup
        .wait_counter("verdict_push_verifications_total", "result=\"allow\"", 1.0)
        .await?;

    // Registry down while an event is processed: Nak with backoff, success once it is back.
    let (second, _) = push_signed(&registry, "faults/second", &cert).await?;
    registry.stop();
    let (status, _) = setup
        .acr("push", "faults/second", &second.digest, Some("v1"))
        .await?;
    assert_eq!(status, 200);
    setup
        .wait_counter("verdict_events_processed_total", "result=\"retried\"", 1.0)
        .await?;
    registry.restart().await?;
    setup
        .wait_counter("verdict_push_verifications_total", "result=\"allow\"", 2.0)
        .await?;
    let reference = format!("{host}/faults/second@{}", second.digest);
    assert!(setup.allowed(&reference).await?);

    // A manifest that does not exist: a definitive failure, dead-lettered at once.
    let missing = format!("sha256:{}", "0".repeat(64));
    setup
        .acr("push", "faults/app", &missing, Some("v9"))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stream_messages(&nats, "VERDICT_DEAD_LETTERS").await? < 1 {
        assert!(Instant::now() < deadline, "{}", setup.server.log_tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A registry that never answers: after max_deliver (3) deliveries the event goes to the
    // dead-letter stream, with its reason, and leaves the work queue.
    let gone = format!("127.0.0.1:{}", free_port()?);
    setup
        .post(
            "acr",
            acr_event("push", &gone, "faults/gone", &image.digest, Some("v1")),
            Some(&bearer()),
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream_messages(&nats, "VERDICT_DEAD_LETTERS").await? < 2 {
        assert!(
            Instant::now() < deadline,
            "no dead letter; log:\n{}",
            setup.server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stream_messages(&nats, "VERDICT_EVENTS").await?, 0);
    assert!(
        setup
            .server
            .log_tail()
            .contains("gave up after 3 deliveries"),
        "{}",
        setup.server.log_tail()
    );
    Ok(())
}

#[tokio::test]
async fn scan_verifies_every_tag_here_or_hands_them_to_the_servers() -> Result<()> {
    let registry = DockerRegistry::start().await?;
    let nats = NatsServer::start().await?;
    let cert = cert()?;
    let host = registry.host_port();
    let client = registry.client();
    for tag in ["v1", "v2"] {
        let image = client.push_image("scan/app", tag).await?;
        push_notation_signature(&client, "scan/app", &image, &cert).await?;
    }
    let unsigned = client.push_image("scan/app", "unsigned").await?;
    let config = tempfile::tempdir()?;
    std::fs::write(config.path().join("ratify.yaml"), ratify_config(&cert))?;
    let config_dir = config.path().display().to_string();
    let target = format!("{host}/scan/app");

    // Here: every tag verified, the unsigned one denied (exit 1); the sha256-… tag-schema
    // indexes are not images.
    let (code, out, err) = verdict_testkit::process::run_to_end(
        env!("CARGO_BIN_EXE_verdict"),
        &[
            "scan",
            &target,
            "--config",
            &config_dir,
            "--plain-http",
            &host,
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("3 image(s)"), "{err}");
    assert!(
        out.contains("allowed: 2") && out.contains("denied:  1"),
        "{out}"
    );
    assert!(out.contains(&format!("{host}/scan/app:unsigned")), "{out}");

    // The whole registry (its catalog): the same three images.
    let (code, out, err) = verdict_testkit::process::run_to_end(
        env!("CARGO_BIN_EXE_verdict"),
        &[
            "scan",
            &host,
            "--config",
            &config_dir,
            "--plain-http",
            &host,
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("3 image(s)"), "{err}");

    // Through NATS: the running server's workers verify and store; its lookups are hits.
    let setup = Setup::start(&host, &cert, Some(&nats), free_port()?, false).await?;
    let (code, out, err) = verdict_testkit::process::run_to_end(
        env!("CARGO_BIN_EXE_verdict"),
        &[
            "scan",
            &target,
            "--config",
            &config_dir,
            "--plain-http",
            &host,
            "--nats-url",
            &nats.url(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("queued:  3"), "{out}");
    setup
        .wait_counter("verdict_push_verifications_total", "", 3.0)
        .await?;
    assert!(setup.allowed(&format!("{target}:v1")).await?);
    assert!(
        !setup
            .allowed(&format!("{target}@{}", unsigned.digest))
            .await?
    );
    assert_eq!(
        setup
            .counter("verdict_inline_verifications_total", "")
            .await?,
        0.0
    );
    Ok(())
}

#[tokio::test]
async fn a_worker_killed_mid_verification_leaves_the_event_to_be_redelivered_once() -> Result<()> {
    let mut registry = DockerRegistry::start().await?;
    let nats = NatsServer::start().await?;
    let cert = cert()?;
    let host = registry.host_port();
    let mut setup = Setup::start_with(
        &host,
        &cert,
        Some(&nats),
        free_port()?,
        false,
        &["--event-ack-wait-secs", "2"],
    )
    .await?;
    let (image, _) = push_signed(&registry, "killed/app", &cert).await?;
    // The registry is down, so the worker is stuck retrying when the process is killed.
    registry.stop();
    let (status, _) = setup
        .acr("push", "killed/app", &image.digest, Some("v1"))
        .await?;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !setup.server.log_tail().contains("killed/app") {
        assert!(Instant::now() < deadline, "{}", setup.server.log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    setup.server.kill();
    registry.restart().await?;
    setup.server.restart().await?;
    // JetStream redelivers after ack_wait (2 s); the restarted worker stores it once.
    setup
        .wait_counter("verdict_push_verifications_total", "result=\"allow\"", 1.0)
        .await?;
    let reference = format!("{host}/killed/app@{}", image.digest);
    assert!(setup.allowed(&reference).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        setup
            .counter("verdict_push_verifications_total", "")
            .await?,
        1.0
    );
    assert_eq!(setup.counter("verdict_store_entries", "").await?, 1.0);
    assert_eq!(
        setup
            .counter("verdict_inline_verifications_total", "")
            .await?,
        0.0
    );
    Ok(())
}

#[test]
fn split_roles_need_nats_and_the_receivers_need_the_events_role() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ratify.yaml");
    std::fs::write(&config, ratify_config(&cert().unwrap())).unwrap();
    let config = config.display().to_string();
    let data = dir.path().join("data").display().to_string();
    let listen = format!("127.0.0.1:{}", free_port().unwrap());
    let ops = format!("127.0.0.1:{}", free_port().unwrap());
    let base = [
        "serve",
        "--config",
        &config,
        "--data-dir",
        &data,
        "--listen",
        &listen,
        "--ops-listen",
        &ops,
    ];
    for (extra, says) in [
        (vec!["--roles", "worker"], "add --nats-url"),
        (
            vec![
                "--roles",
                "api,worker",
                "--events-listen",
                "127.0.0.1:1",
                "--nats-url",
                "nats://127.0.0.1:1",
            ],
            "does not include `events`",
        ),
        (vec!["--roles", "gatekeeper"], "invalid value 'gatekeeper'"),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        let (code, out, err) =
            verdict_testkit::process::run_to_end(env!("CARGO_BIN_EXE_verdict"), &args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn push_events_for_repositories_no_trust_policy_covers_are_acknowledged_and_counted()
-> Result<()> {
    let registry = DockerRegistry::start().await?;
    let cert = cert()?;
    let host = registry.host_port();
    let kmp = inline_kmp_yaml("kmp", None, "certificate", &cert.pem());
    let verifier = NotationVerifier::new("verifier-notation", "kmp")
        .registry_scopes(&[&format!("{host}/covered/app")])
        .yaml();
    let setup = Setup::start_config(
        &host,
        format!("{kmp}---\n{verifier}"),
        None,
        free_port()?,
        false,
        &[],
    )
    .await?;
    let (covered, _) = push_signed(&registry, "covered/app", &cert).await?;
    let (other, _) = push_signed(&registry, "other/app", &cert).await?;
    for (repo, image) in [("other/app", &other), ("covered/app", &covered)] {
        let (status, _) = setup.acr("push", repo, &image.digest, Some("v1")).await?;
        assert_eq!(status, 200);
    }
    setup
        .wait_counter("verdict_events_processed_total", "result=\"verified\"", 1.0)
        .await?;
    setup
        .wait_counter(
            "verdict_events_processed_total",
            "result=\"not_covered\"",
            1.0,
        )
        .await?;
    assert_eq!(
        setup
            .counter("verdict_push_verifications_total", "")
            .await?,
        1.0,
        "only the covered repository was verified"
    );
    Ok(())
}

#[tokio::test]
async fn an_accepted_event_survives_a_nats_restart_before_any_worker_took_it() -> Result<()> {
    let registry = DockerRegistry::start().await?;
    let mut nats = NatsServer::start().await?;
    let cert = cert()?;
    let host = registry.host_port();
    // A receiver-only process: it stores events in JetStream and verifies nothing itself.
    let receiver = Setup::start_with(
        &host,
        &cert,
        Some(&nats),
        free_port()?,
        false,
        &["--roles", "events"],
    )
    .await?;
    let (image, _) = push_signed(&registry, "durable/app", &cert).await?;
    let (status, _) = receiver
        .acr("push", "durable/app", &image.digest, Some("v1"))
        .await?;
    assert_eq!(status, 200, "accepted: stored by JetStream");
    // NATS stops and comes back; only then does a worker start.
    nats.stop();
    nats.restart().await?;
    let worker = VerdictServer::start(
        ServeOptions::new(env!("CARGO_BIN_EXE_verdict"), ratify_config(&cert))
            .plain_http(&host)
            .args(["--nats-url", &nats.url()]),
    )
    .await?;
    wait_counter(
        &worker,
        "verdict_push_verifications_total",
        "result=\"allow\"",
        1.0,
    )
    .await?;
    let reference = format!("{host}/durable/app@{}", image.digest);
    assert_eq!(worker.verify_one(&reference).await?, Ok(true));
    assert_eq!(
        counter(&receiver.server, "verdict_push_verifications_total", "").await?,
        0.0,
        "the receiver-only process verified nothing"
    );
    Ok(())
}
