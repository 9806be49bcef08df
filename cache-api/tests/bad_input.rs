//! Bad input gets a clear answer and the server stays up.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use futures::StreamExt;
use serde_json::json;

/// After each bad request, a good one still works.
async fn still_serving(s: &TestServer) -> Result<()> {
    let key = format!("registry.example/ok@{}", digest("ok"));
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&key]).await?;
    assert_eq!(item(&r, &key)["value"]["isSuccess"], true, "{r}");
    Ok(())
}

async fn system_error(s: &TestServer, path: &str, body: Vec<u8>) -> Result<(u16, String)> {
    let (status, v) = post_json(&s.client(), &s.url(path), body).await?;
    assert_eq!(v["kind"], "ProviderResponse", "{v}");
    assert!(v["response"].get("items").is_none(), "{v}");
    let msg = v["response"]["systemError"]
        .as_str()
        .unwrap_or_else(|| panic!("no systemError in {v}"))
        .to_owned();
    Ok((status, msg))
}

#[tokio::test]
async fn malformed_requests_get_system_errors() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "not a valid ProviderRequest"),
        (Vec::new(), "not a valid ProviderRequest"),
        (b"[1,2]".to_vec(), "not a valid ProviderRequest"),
        (
            serde_json::to_vec(
                &json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderResponse", "request": {"keys": []}}),
            )?,
            "kind is \"ProviderResponse\"",
        ),
        (
            serde_json::to_vec(
                &json!({"apiVersion": "v1", "kind": "ProviderRequest", "request": {"keys": []}}),
            )?,
            "apiVersion is \"v1\"",
        ),
        (
            serde_json::to_vec(
                &json!({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": ["a", 7]}}),
            )?,
            "request.keys[1]",
        ),
    ];
    for (body, expected) in cases {
        for path in [V1_VERIFY, V2_VERIFY, V1_MUTATE] {
            let (status, msg) = system_error(&s, path, body.clone()).await?;
            assert_eq!(status, 200, "Gatekeeper reads the body whatever the status");
            assert!(msg.contains(expected), "{path}: {msg:?} lacks {expected:?}");
        }
    }
    // The mutate answer keeps idempotent: true even for a system error.
    let (_, v) = post_json(&s.client(), &s.url(V1_MUTATE), b"{".to_vec()).await?;
    assert_eq!(v["response"]["idempotent"], true);
    still_serving(&s).await?;
    s.stop().await
}

#[tokio::test]
async fn limits_on_keys_and_body_size() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    // 10,000 keys in a body under 1 MiB: refused by the key limit.
    let keys: Vec<String> = (0..10_000).map(|i| format!("r.example/a{i}:v1")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let body = serde_json::to_vec(&request(&refs))?;
    assert!(body.len() < 1024 * 1024);
    let (status, msg) = system_error(&s, V1_VERIFY, body).await?;
    assert_eq!(status, 200);
    assert!(
        msg.contains("10000 keys") && msg.contains("limit of 1000"),
        "{msg}"
    );
    assert!(msg.contains("--max-request-keys"), "{msg}");
    assert_eq!(s.resolver.calls(), 0, "nothing was looked up");

    // A 10 MiB body: refused by the body limit, and the answer still reaches the client.
    let big = format!(
        "{{\"apiVersion\":\"externaldata.gatekeeper.sh/v1beta1\",\"kind\":\"ProviderRequest\",\"request\":{{\"keys\":[\"{}\"]}}}}",
        "a".repeat(10 * 1024 * 1024)
    );
    for client in [s.client(), s.client_http1()] {
        let (status, v) = post_json(&client, &s.url(V2_VERIFY), big.clone().into_bytes()).await?;
        assert_eq!(status, 200);
        let msg = v["response"]["systemError"].as_str().unwrap_or_default();
        assert!(msg.contains("larger than the 1048576-byte limit"), "{v}");
        assert!(msg.contains("--max-request-bytes"), "{msg}");
    }

    // Exactly the limits are accepted.
    let keys: Vec<String> = (0..1000)
        .map(|i| format!("registry.example/a@{}", digest(&i.to_string())))
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let r = ask(&s.client(), &s.url(V1_VERIFY), &refs).await?;
    assert_eq!(r["items"].as_array().unwrap().len(), 1000);
    still_serving(&s).await?;
    s.stop().await
}

#[tokio::test]
async fn malformed_keys_and_namespace_prefixes_are_per_key_errors() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let good = format!("registry.example/ok@{}", digest("ok"));
    let long = "a".repeat(5000);
    let keys = [
        good.as_str(),
        "",
        "UPPER/case:tag",
        "registry.example/app@sha256:short",
        "registry.example/app:bad tag",
        "[Team-A]nginx",
        "[team a]nginx",
        "[team/../x]nginx",
        "[naïve]nginx",
        "[-lead]nginx",
        "[team-a",
        "[team-a]",
        "[\u{0}]nginx",
        "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]nginx",
        long.as_str(),
    ];
    let r = ask(&s.client(), &s.url(V1_VERIFY), &keys).await?;
    assert_eq!(r["items"].as_array().unwrap().len(), keys.len(), "{r}");
    assert_eq!(item(&r, &good)["value"]["isSuccess"], true);
    for k in &keys[1..] {
        let it = item(&r, k);
        let e = it["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{k:?}: {it}"));
        assert!(e.starts_with("INVALID_KEY: "), "{k:?}: {e}");
        assert!(it.get("value").is_none());
    }
    for k in [
        "[Team-A]nginx",
        "[team a]nginx",
        "[team/../x]nginx",
        "[naïve]nginx",
        "[-lead]nginx",
        "[\u{0}]nginx",
    ] {
        let e = item(&r, k)["error"].as_str().unwrap();
        assert!(e.contains("DNS-1123"), "{k:?}: {e}");
    }
    assert!(
        item(&r, "[team-a")["error"]
            .as_str()
            .unwrap()
            .contains("closing ']'")
    );
    assert!(
        !item(&r, &long)["error"].as_str().unwrap().contains(&long),
        "a huge key is not echoed into its error"
    );
    still_serving(&s).await?;
    s.stop().await
}

#[tokio::test]
async fn wrong_paths_and_methods_answer_provider_responses() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let resp = s.client().get(s.url(V1_VERIFY)).send().await?;
    assert_eq!(resp.status().as_u16(), 405);
    let v: serde_json::Value = resp.json().await?;
    assert!(
        v["response"]["systemError"]
            .as_str()
            .unwrap()
            .contains("POST"),
        "{v}"
    );
    let (status, v) = post_json(&s.client(), &s.url("/verify"), b"{}".to_vec()).await?;
    assert_eq!(status, 404);
    let msg = v["response"]["systemError"].as_str().unwrap();
    assert!(msg.contains("/ratify/gatekeeper/v1/verify"), "{msg}");
    still_serving(&s).await?;
    s.stop().await
}

#[tokio::test]
async fn stalled_body_times_out() -> Result<()> {
    let s = TestServer::start(false, |c| c.body_read_timeout = Duration::from_millis(300)).await?;
    // A body that sends a first chunk and then nothing.
    let stream = futures::stream::once(async {
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"apiVersion\":"))
    })
    .chain(futures::stream::pending());
    let client = s.client();
    let started = std::time::Instant::now();
    let resp = client
        .post(s.url(V1_VERIFY))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await?;
    // The server answers with a systemError instead of waiting forever.
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().await?;
    let msg = v["response"]["systemError"].as_str().unwrap_or_default();
    assert!(msg.contains("not received within 300ms"), "{v}");
    assert!(started.elapsed() < Duration::from_secs(5));
    still_serving(&s).await?;
    s.stop().await
}
