//! Verify and mutate over real HTTPS: Ratify v1/v2 value shapes for hits, misses and denies,
//! per-key errors, `[ns]` keys, dedupe, normalisation and order.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use serde_json::Value;
use verdict_cache_api::VerdictCache;

#[tokio::test]
async fn v1_verify_hit_miss_deny_shapes() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let hit = format!("registry.example/app@{}", digest("app"));
    let denied = format!("registry.example/bad@{}", digest("bad"));
    let missing = format!("registry.example/new@{}", digest("new"));
    s.put(None, &hit, true);
    s.put(None, &denied, false);

    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&hit, &denied, &missing]).await?;
    assert_eq!(r["idempotent"], false, "verify answers are not idempotent");
    assert!(r.get("systemError").is_none(), "{r}");

    let v = &item(&r, &hit)["value"];
    assert_eq!(v["version"], "0.2.0");
    assert_eq!(v["isSuccess"], true);
    let trace = v["traceID"].as_str().expect("traceID");
    assert_eq!(trace.len(), 36, "UUID trace id: {trace}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap()).is_ok(),
        "{v}"
    );
    let rep = &v["verifierReports"][0];
    assert_eq!(rep["subject"], hit);
    assert_eq!(rep["isSuccess"], true);
    assert_eq!(rep["name"], "verifier-notation");
    assert_eq!(rep["verifierType"], "notation");
    assert_eq!(rep["artifactType"], NOTATION);
    assert_eq!(rep["extensions"]["Issuer"], "CN=issuer");

    let v = &item(&r, &denied)["value"];
    assert_eq!(v["isSuccess"], false);
    assert_eq!(
        v["verifierReports"][0]["errorReason"],
        "no trusted signature"
    );
    assert_eq!(v["traceID"], trace, "one trace id per request");

    // Miss: verified inline, answered, then stored.
    let v = &item(&r, &missing)["value"];
    assert_eq!(v["isSuccess"], true, "{r}");
    assert_eq!(s.verifier.calls(&digest("new")), 1);
    assert_eq!(s.verifier.calls(&digest("app")), 0, "hits are not verified");
    assert!(
        eventually(Duration::from_secs(2), || async { s.cache.len() == 3 }).await,
        "the inline verdict was cached"
    );
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&missing]).await?;
    assert_eq!(item(&r, &missing)["value"]["isSuccess"], true);
    assert_eq!(
        s.verifier.calls(&digest("new")),
        1,
        "second lookup is a hit"
    );
    s.stop().await
}

/// A server with a key whose allow is cached and a key the verifier denies when asked (a miss).
async fn server_with_a_hit_and_a_denied_miss() -> Result<(TestServer, String, String)> {
    let s = TestServer::start(false, |_| {}).await?;
    let hit = format!("registry.example/app@{}", digest("app"));
    let denied = format!("registry.example/bad@{}", digest("bad"));
    s.put(None, &hit, true);
    s.verifier
        .set(&digest("bad"), Behaviour::Deny, Duration::ZERO);
    Ok((s, hit, denied))
}

#[tokio::test]
async fn v2_verify_shape() -> Result<()> {
    let (s, hit, denied) = server_with_a_hit_and_a_denied_miss().await?;
    let r = ask(&s.client(), &s.url(V2_VERIFY), &[&hit, &denied]).await?;
    assert_eq!(r["idempotent"], false);
    let v = &item(&r, &hit)["value"];
    assert_eq!(v["succeeded"], true);
    // v1's decision too (a v1 template pointed here still decides), not v1's version.
    assert_eq!(v["isSuccess"], true, "{v}");
    assert!(v.get("version").is_none(), "{v}");
    let ar = &v["artifactReports"][0];
    assert_eq!(ar["subject"], hit);
    assert_eq!(
        ar["artifact"],
        "sha256:57be2c1c3d9c23ef7c964bba05c7aa23b525732e9c9af9652654ccc3f4babb0e"
    );
    assert_eq!(ar["results"][0]["verifierName"], "verifier-notation");
    let detail: serde_json::Value = serde_json::from_str(
        ar["results"][0]["detail"]
            .as_str()
            .expect("detail is a string"),
    )?;
    assert_eq!(detail["SN"], "CN=signer");
    assert_eq!(item(&r, &denied)["value"]["succeeded"], false);
    s.stop().await
}

/// Ratify v2's own answer (`../shared/reference/examples/ratify-v2/07-v2-verify-response.json`,
/// from Ratify's `internal/httpserver/response.go`): Verdict's answer has every field of it, at
/// the same place and of the same JSON type, whatever the values (Verdict may add fields: v1's
/// decision, for v1 templates). A hit and a verified miss, both through the v2 endpoint.
#[tokio::test]
async fn v2_verify_answer_has_every_field_of_ratifys_example() -> Result<()> {
    let path =
        verdict_testkit::shared_file("reference/examples/ratify-v2/07-v2-verify-response.json");
    let mut example: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    example
        .as_object_mut()
        .expect("the example is an object")
        .remove("_comment");

    let (s, hit, verified) = server_with_a_hit_and_a_denied_miss().await?;
    let body = serde_json::to_vec(&request(&[&hit, &verified]))?;
    let (status, answer) = post_json(&s.client(), &s.url(V2_VERIFY), body).await?;
    assert_eq!(status, 200, "{answer}");

    let mut differences = Vec::new();
    shape_differences(&example, &answer, "$", &mut differences);
    assert!(
        differences.is_empty(),
        "Verdict's v2 answer differs from Ratify's example:\n{}\nanswer: {answer:#}",
        differences.join("\n")
    );
    // `detail` is a string holding JSON (the verifier's extensions), as in the example.
    for key in [&hit, &verified] {
        for artifact in item(&answer["response"], key)["value"]["artifactReports"]
            .as_array()
            .expect("artifactReports")
        {
            for result in artifact["results"].as_array().expect("results") {
                let detail = result["detail"].as_str().expect("detail");
                let decoded: Value = serde_json::from_str(detail)?;
                assert!(decoded.is_object(), "{key}: detail {detail}");
            }
        }
    }
    s.stop().await
}

/// Where `actual` lacks a field of `example` or has another JSON type at its place; each
/// element of an array is compared with each element of the example's.
fn shape_differences(example: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    fn type_name(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
    match (example, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => shape_differences(ev, av, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: missing")),
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if a.is_empty() && !e.is_empty() {
                out.push(format!("{path}: empty, the example's is not"));
            }
            for (i, av) in a.iter().enumerate() {
                for ev in e {
                    shape_differences(ev, av, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ if type_name(example) == type_name(actual) => {}
        _ => out.push(format!(
            "{path}: {} where the example has {}",
            type_name(actual),
            type_name(example)
        )),
    }
}

#[tokio::test]
async fn keys_order_dedupe_normalisation_and_errors() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let d = digest("nginx");
    s.put(None, &format!("docker.io/library/nginx@{d}"), true);
    let short = format!("nginx@{d}");
    let long = format!("docker.io/library/nginx@{d}");
    let other = format!("registry.example/z@{}", digest("z"));
    let keys = [
        other.as_str(),
        short.as_str(),
        "Not A Reference",
        long.as_str(),
        short.as_str(),
        "registry.example/app@sha256:abc",
    ];
    let r = ask(&s.client(), &s.url(V1_VERIFY), &keys).await?;
    let got: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        [
            other.as_str(),
            short.as_str(),
            "Not A Reference",
            long.as_str(),
            "registry.example/app@sha256:abc"
        ],
        "request order, each key once"
    );
    // `nginx@d` is normalised to docker.io/library/nginx@d and found in the cache.
    let v = &item(&r, &short)["value"];
    assert_eq!(v["isSuccess"], true);
    assert_eq!(v["verifierReports"][0]["subject"], long);
    assert_eq!(item(&r, &long)["value"]["isSuccess"], true);
    assert_eq!(s.verifier.calls(&d), 0);
    for bad in ["Not A Reference", "registry.example/app@sha256:abc"] {
        let e = item(&r, bad)["error"].as_str().expect("per-key error");
        assert!(e.starts_with("INVALID_KEY: "), "{e}");
        assert!(item(&r, bad).get("value").is_none());
    }

    // Two spellings of one uncached subject: one verification.
    let d2 = digest("busybox");
    let a = format!("busybox@{d2}");
    let b = format!("docker.io/library/busybox@{d2}");
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[&a, &b]).await?;
    assert_eq!(item(&r, &a)["value"]["isSuccess"], true);
    assert_eq!(item(&r, &b)["value"]["isSuccess"], true);
    assert_eq!(
        s.verifier.calls(&d2),
        1,
        "deduplicated by normalised subject"
    );
    s.stop().await
}

#[tokio::test]
async fn namespace_prefixed_keys() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let d = digest("team");
    let plain = format!("registry.example/app@{d}");
    s.put(Some("team-a"), &plain, true);
    s.verifier.set(&d, Behaviour::Deny, Duration::ZERO);
    let ns_key = format!("[team-a]{plain}");
    let other_ns = format!("[team-b]{plain}");
    let r = ask(
        &s.client(),
        &s.url(V1_VERIFY),
        &[&ns_key, &other_ns, &plain],
    )
    .await?;
    // The namespaced verdict is separate from the cluster-wide and other-namespace ones.
    assert_eq!(item(&r, &ns_key)["value"]["isSuccess"], true, "{r}");
    assert_eq!(
        item(&r, &ns_key)["value"]["verifierReports"][0]["subject"],
        plain
    );
    assert_eq!(item(&r, &other_ns)["value"]["isSuccess"], false);
    assert_eq!(item(&r, &plain)["value"]["isSuccess"], false);
    assert_eq!(
        s.verifier.calls(&d),
        2,
        "team-b and cluster-wide verified separately"
    );
    s.stop().await
}

#[tokio::test]
async fn tags_resolve_to_digests_before_lookup() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let d = digest("tagged");
    s.resolver.set("registry.example/app:v1", &d);
    s.put(None, &format!("registry.example/app@{d}"), true);
    let r = ask(
        &s.client(),
        &s.url(V1_VERIFY),
        &[
            "registry.example/app:v1",
            "registry.example/app:gone",
            "down.example/app:v1",
        ],
    )
    .await?;
    let v = &item(&r, "registry.example/app:v1")["value"];
    assert_eq!(v["isSuccess"], true);
    assert_eq!(
        v["verifierReports"][0]["subject"], "registry.example/app:v1",
        "the subject is shown as asked, like Ratify"
    );
    let e = item(&r, "registry.example/app:gone")["error"]
        .as_str()
        .unwrap();
    assert!(e.starts_with("TAG_NOT_FOUND: "), "{e}");
    let e = item(&r, "down.example/app:v1")["error"].as_str().unwrap();
    assert!(e.starts_with("REGISTRY_UNAVAILABLE: "), "{e}");
    assert_eq!(s.verifier.total_calls(), 0);
    s.stop().await
}

#[tokio::test]
async fn mutate_pins_tags_to_digests() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let app = digest("app-v1");
    let nginx = digest("nginx-1.25");
    s.resolver.set("registry.example/app:v1", &app);
    s.resolver.set("docker.io/library/nginx:1.25", &nginx);
    let pinned = format!("registry.example/db@{}", digest("db"));
    let keys = [
        "registry.example/app:v1",
        "nginx:1.25",
        pinned.as_str(),
        "[team-a]registry.example/app:v1",
        "registry.example/app:missing",
        "bad key",
    ];
    for path in [V1_MUTATE, V2_MUTATE] {
        let r = ask(&s.client(), &s.url(path), &keys).await?;
        assert_eq!(
            r["idempotent"], true,
            "Gatekeeper mutation requires idempotent"
        );
        assert_eq!(
            item(&r, "registry.example/app:v1")["value"],
            format!("registry.example/app@{app}")
        );
        assert_eq!(
            item(&r, "nginx:1.25")["value"],
            format!("docker.io/library/nginx@{nginx}")
        );
        assert_eq!(item(&r, &pinned)["value"], pinned, "digest keys unchanged");
        assert_eq!(
            item(&r, "[team-a]registry.example/app:v1")["value"],
            format!("registry.example/app@{app}")
        );
        let e = item(&r, "registry.example/app:missing")["error"]
            .as_str()
            .unwrap();
        assert!(e.starts_with("TAG_NOT_FOUND: "), "{e}");
        let e = item(&r, "bad key")["error"].as_str().unwrap();
        assert!(e.starts_with("INVALID_KEY: "), "{e}");
        assert_eq!(r["items"].as_array().unwrap().len(), keys.len());
    }
    assert_eq!(s.verifier.total_calls(), 0, "mutation does not verify");
    s.stop().await
}

#[tokio::test]
async fn empty_key_list_is_an_empty_answer() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let r = ask(&s.client(), &s.url(V1_VERIFY), &[]).await?;
    assert!(
        r.get("items").is_none() && r.get("systemError").is_none(),
        "{r}"
    );
    // The memory cache stays untouched.
    assert!(s.cache.is_empty());
    let key = s.put(None, &format!("r.example/a@{}", digest("a")), true);
    assert!(s.cache.get(&key, chrono::Utc::now())?.is_some());
    s.stop().await
}

#[tokio::test]
async fn http1_and_http2_clients_are_served() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let key = format!("registry.example/app@{}", digest("proto"));
    s.put(None, &key, true);
    for (client, version) in [
        (s.client_http1(), reqwest::Version::HTTP_11),
        (s.client(), reqwest::Version::HTTP_2),
    ] {
        let resp = client
            .post(s.url(V1_VERIFY))
            .body(serde_json::to_vec(&request(&[&key]))?)
            .send()
            .await?;
        assert_eq!(resp.version(), version, "ALPN picks the protocol");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let v: serde_json::Value = resp.json().await?;
        assert_eq!(item(&v["response"], &key)["value"]["isSuccess"], true);
    }
    s.stop().await
}
