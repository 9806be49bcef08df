//! The Azure fakes speak the recorded wire shapes: Entra's client-assertion grant and its AADSTS
//! errors, Key Vault's challenge, objects, versions, paging and errors, and ACR's token exchange
//! in front of a real docker-registry. Plain reqwest clients trusting only the test CA.

use base64::Engine as _;
use serde_json::{Value, json};
use verdict_testkit::DockerRegistry;
use verdict_testkit::azure::{
    ACR_RESOURCE, CertificateVersion, FakeAcrTokenServer, FakeEntra, FakeKeyVault,
    JWT_BEARER_ASSERTION, TestCa, VAULT_RESOURCE, public_jwk,
};
use verdict_testkit::pki::{KeyAlg, SignAlg, TestChain, TestKey};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID: &str = "0b2c3d4e-5f60-4718-89a0-b1c2d3e4f506";
const ASSERTION: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJhcGk6Ly9BenVyZUFEVG9rZW5FeGNoYW5nZSJ9.c2ln";
const SERVICE: &str = "verdictfake.azurecr.io";

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// POSTs a form; returns status, headers and the body as JSON (`Null` if empty or not JSON).
async fn post_form(
    http: &reqwest::Client,
    url: &str,
    pairs: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form(pairs))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

async fn get(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = http.get(url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn entra_form<'a>(
    assertion: &'a str,
    client_id: &'a str,
    scope: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_assertion", assertion),
        ("client_assertion_type", JWT_BEARER_ASSERTION),
        ("client_id", client_id),
        ("grant_type", "client_credentials"),
        ("scope", scope),
    ]
}

/// A token from the Entra fake over HTTP, for `resource`.
async fn entra_token(http: &reqwest::Client, entra: &FakeEntra, resource: &str) -> String {
    let scope = format!("{resource}/.default");
    let (status, _, body) = post_form(
        http,
        &entra.token_url(),
        &entra_form(ASSERTION, CLIENT_ID, &scope),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn assert_aad_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {body}"
        );
    }
    assert_eq!(
        body["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
}

#[tokio::test]
async fn entra_issues_tokens_for_the_expected_assertion_only() {
    let ca = TestCa::new().unwrap();
    let http = ca.client().unwrap();
    let mut entra = FakeEntra::start(&ca, TENANT, CLIENT_ID).await.unwrap();
    entra.set_expected_assertion(ASSERTION);
    let authority = entra.authority_host();
    assert!(authority.starts_with("https://127.0.0.1:") && authority.ends_with('/'));
    let url = format!("{authority}{TENANT}/oauth2/v2.0/token");
    assert_eq!(url, entra.token_url());

    let vault_scope = format!("{VAULT_RESOURCE}/.default");
    let (status, headers, body) =
        post_form(&http, &url, &entra_form(ASSERTION, CLIENT_ID, &vault_scope)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["ext_expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    let claims = jwt_claims(token);
    assert_eq!(claims["aud"], VAULT_RESOURCE);
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["appid"], CLIENT_ID);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() == 3600);
    assert!(entra.token_is_valid(token, VAULT_RESOURCE));
    assert!(entra.token_is_valid(token, "https://vault.azure.net/"));
    assert!(!entra.token_is_valid(token, ACR_RESOURCE));
    assert!(!entra.token_is_valid("not-a-token", VAULT_RESOURCE));

    // A stale (rotated-away) assertion.
    let (status, _, body) = post_form(
        &http,
        &url,
        &entra_form("old-token", CLIENT_ID, &vault_scope),
    )
    .await;
    assert_eq!(status, 401);
    assert_aad_error(&body, "invalid_client", 700024);

    // Wrong tenant, client, grant, scope; a missing field.
    let other_tenant = format!("{authority}00000000-0000-0000-0000-000000000000/oauth2/v2.0/token");
    let (status, _, body) = post_form(
        &http,
        &other_tenant,
        &entra_form(ASSERTION, CLIENT_ID, &vault_scope),
    )
    .await;
    assert_eq!(status, 400);
    assert_aad_error(&body, "invalid_request", 90002);
    let (status, _, body) = post_form(
        &http,
        &url,
        &entra_form(ASSERTION, "someone-else", &vault_scope),
    )
    .await;
    assert_eq!(status, 400);
    assert_aad_error(&body, "unauthorized_client", 700016);
    let (status, _, body) = post_form(
        &http,
        &url,
        &entra_form(ASSERTION, CLIENT_ID, VAULT_RESOURCE),
    )
    .await;
    assert_eq!(status, 400);
    assert_aad_error(&body, "invalid_scope", 1002012);
    let mut wrong_grant = entra_form(ASSERTION, CLIENT_ID, &vault_scope);
    wrong_grant[3].1 = "password";
    let (status, _, body) = post_form(&http, &url, &wrong_grant).await;
    assert_eq!(status, 400);
    assert_aad_error(&body, "unsupported_grant_type", 70003);
    let (status, _, body) = post_form(
        &http,
        &url,
        &entra_form(ASSERTION, CLIENT_ID, &vault_scope)[1..],
    )
    .await;
    assert_eq!(status, 400);
    assert_aad_error(&body, "invalid_request", 900144);
    let status = http.get(&url).send().await.unwrap().status();
    assert_eq!(status, 405);

    let requests = entra.requests();
    assert_eq!(requests.len(), 7, "{requests:?}");
    assert_eq!(requests[0].tenant, TENANT);
    assert_eq!(requests[0].client_id, CLIENT_ID);
    assert_eq!(requests[0].scope, vault_scope);
    assert_eq!(requests[0].assertion, ASSERTION);
    assert_eq!(requests[0].grant_type, "client_credentials");
    assert_eq!(requests[0].client_assertion_type, JWT_BEARER_ASSERTION);
    assert_eq!(requests[0].status, 200);
    assert_eq!(requests[1].status, 401);
    assert_eq!(entra.tokens_issued(), 1);

    // Injected faults.
    entra.fail_with(
        400,
        70021,
        "No matching federated identity record found for presented assertion.",
    );
    let good = entra_form(ASSERTION, CLIENT_ID, &vault_scope);
    let (status, _, body) = post_form(&http, &url, &good).await;
    assert_eq!(status, 400);
    assert_aad_error(&body, "invalid_request", 70021);
    entra.clear_faults();
    entra.set_down(true);
    let resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&good))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.bytes().await.unwrap().is_empty());
    entra.clear_faults();

    // Short lifetimes expire.
    entra.set_token_lifetime(1);
    let (status, _, body) = post_form(&http, &url, &good).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 1);
    let short = body["access_token"].as_str().unwrap().to_string();
    assert!(entra.token_is_valid(&short, VAULT_RESOURCE));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(!entra.token_is_valid(&short, VAULT_RESOURCE));

    // Down for real, then back on the same port.
    entra.stop().await;
    assert!(http.post(&url).body(form(&good)).send().await.is_err());
    entra.restart().await.unwrap();
    let (status, _, _) = post_form(&http, &url, &good).await;
    assert_eq!(status, 200);
}

fn kv_url(kv: &FakeKeyVault, path: &str) -> String {
    format!("{}{path}?api-version=2025-07-01", kv.url())
}

#[tokio::test]
async fn key_vault_challenges_pages_and_enforces_enabled() {
    let ca = TestCa::new().unwrap();
    let http = ca.client().unwrap();
    let entra = FakeEntra::start(&ca, TENANT, CLIENT_ID).await.unwrap();
    let kv = FakeKeyVault::start(&ca, &entra).await.unwrap();
    assert!(kv.url().starts_with("https://127.0.0.1:") && kv.url().ends_with('/'));
    let base = kv.url().trim_end_matches('/').to_string();

    // The challenge, exactly as recorded.
    let (status, headers, body) = get(&http, &kv_url(&kv, "keys/signer/"), None).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        format!(
            "Bearer authorization=\"https://login.windows.net/{TENANT}\", resource=\"https://vault.azure.net\""
        )
        .as_str()
    );
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert!(headers.contains_key("x-ms-request-id"));
    assert_eq!(
        body,
        json!({"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}})
    );
    // A token for another resource is no better.
    let acr_token = entra_token(&http, &entra, ACR_RESOURCE).await;
    let (status, _, _) = get(&http, &kv_url(&kv, "keys/signer/"), Some(&acr_token)).await;
    assert_eq!(status, 401);

    let token = entra_token(&http, &entra, VAULT_RESOURCE).await;
    let t = Some(token.as_str());
    let (status, _, body) = get(&http, &format!("{}keys/signer/", kv.url()), t).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadParameter");

    // Three key versions: P-256, P-384, RSA.
    let keys = [
        TestKey::generate(KeyAlg::EcP256).unwrap(),
        TestKey::generate(KeyAlg::EcP384).unwrap(),
        TestKey::generate(KeyAlg::Rsa2048).unwrap(),
    ];
    let versions: Vec<String> = keys
        .iter()
        .map(|k| kv.add_key_version("signer", public_jwk(k).unwrap()))
        .collect();
    for v in &versions {
        assert_eq!(v.len(), 32);
        assert!(
            v.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    // Latest, with and without the trailing slash; a given version.
    for path in ["keys/signer/", "keys/signer"] {
        let (status, _, body) = get(&http, &kv_url(&kv, path), t).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["key"]["kid"],
            format!("{base}/keys/signer/{}", versions[2])
        );
        assert_eq!(body["key"]["kty"], "RSA");
        assert_eq!(body["key"]["e"], "AQAB");
        assert_eq!(body["attributes"]["enabled"], true);
        assert_eq!(body["attributes"]["recoveryLevel"], "Recoverable+Purgeable");
        assert!(body["attributes"]["created"].is_i64());
        assert!(body["attributes"]["updated"].is_i64());
    }
    let (status, _, body) = get(
        &http,
        &kv_url(&kv, &format!("keys/signer/{}", versions[0])),
        t,
    )
    .await;
    assert_eq!(status, 200);
    let jwk = &body["key"];
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    // The JWK is the public half of the key: a signature made with it verifies.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut point = vec![4u8];
    point.extend(b64.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(b64.decode(jwk["y"].as_str().unwrap()).unwrap());
    let signature = keys[0].sign(SignAlg::Es256, b"payload").unwrap();
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        &point,
    )
    .verify(b"payload", &signature)
    .unwrap();
    let p384 = public_jwk(&keys[1]).unwrap();
    assert_eq!(b64.decode(p384["x"].as_str().unwrap()).unwrap().len(), 48);
    let rsa = public_jwk(&keys[2]).unwrap();
    assert_eq!(b64.decode(rsa["n"].as_str().unwrap()).unwrap().len(), 256);
    let p521 = public_jwk(&TestKey::generate(KeyAlg::EcP521).unwrap()).unwrap();
    assert_eq!(p521["x"].as_str().unwrap().len(), 88);

    // Paging: 2 per page → two pages linked by an absolute nextLink.
    kv.set_page_size(2);
    let (status, _, page1) = get(&http, &kv_url(&kv, "keys/signer/versions"), t).await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(page1["value"].as_array().unwrap().len(), 2);
    let next = page1["nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "{base}/keys/signer/versions?api-version=7.2&$skiptoken="
        )),
        "{next}"
    );
    let (status, _, page2) = get(&http, next, t).await;
    assert_eq!(status, 200, "{page2}");
    assert_eq!(page2["value"].as_array().unwrap().len(), 1);
    assert!(page2["nextLink"].is_null());
    assert!(page2.as_object().unwrap().contains_key("nextLink"));
    let kids: Vec<&str> = page1["value"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["value"].as_array().unwrap())
        .map(|i| i["kid"].as_str().unwrap())
        .collect();
    let want: Vec<String> = versions
        .iter()
        .map(|v| format!("{base}/keys/signer/{v}"))
        .collect();
    assert_eq!(kids, want);
    // maxresults lowers the page size; out-of-range values are refused.
    let url = format!("{}&maxresults=1", kv_url(&kv, "keys/signer/versions"));
    let (_, _, one) = get(&http, &url, t).await;
    assert_eq!(one["value"].as_array().unwrap().len(), 1);
    assert!(one["nextLink"].as_str().unwrap().ends_with("&maxresults=1"));
    let url = format!("{}&maxresults=26", kv_url(&kv, "keys/signer/versions"));
    assert_eq!(get(&http, &url, t).await.0, 400);
    let url = format!("{}&$skiptoken=garbage", kv_url(&kv, "keys/signer/versions"));
    assert_eq!(get(&http, &url, t).await.0, 400);

    // A disabled version: 403 on GET, enabled:false in the listing; validity attributes.
    kv.set_key_enabled("signer", &versions[1], false);
    kv.set_key_validity(
        "signer",
        &versions[0],
        Some(1_700_000_000),
        Some(2_000_000_000),
    );
    let (status, _, body) = get(
        &http,
        &kv_url(&kv, &format!("keys/signer/{}", versions[1])),
        t,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled key.","innererror":{"code":"KeyDisabled"}}})
    );
    kv.set_page_size(25);
    let (_, _, list) = get(&http, &kv_url(&kv, "keys/signer/versions"), t).await;
    let items = list["value"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["attributes"]["enabled"], false);
    assert_eq!(items[0]["attributes"]["nbf"], 1_700_000_000);
    assert_eq!(items[0]["attributes"]["exp"], 2_000_000_000);
    assert!(items[2]["attributes"].get("nbf").is_none());
    assert!(list["nextLink"].is_null());

    // 404s.
    for (path, code) in [
        ("keys/nope/", "KeyNotFound"),
        ("keys/nope/versions", "KeyNotFound"),
        (
            "keys/signer/0123456789abcdef0123456789abcdef",
            "KeyNotFound",
        ),
        ("certificates/nope/", "CertificateNotFound"),
        ("certificates/nope/versions", "CertificateNotFound"),
        ("secrets/nope/", "SecretNotFound"),
    ] {
        let (status, _, body) = get(&http, &kv_url(&kv, path), t).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("was not found in this key vault"),
            "{body}"
        );
    }

    // A certificate with two versions and its backing secret.
    let chain = TestChain::new(KeyAlg::EcP256).unwrap();
    let v1 = kv.add_certificate_version(
        "notation",
        CertificateVersion::pem(&chain.leaf.key().pkcs8_pem(), &chain.x5c()),
    );
    let chain2 = TestChain::new(KeyAlg::EcP256).unwrap();
    let v2 = kv.add_certificate_version("notation", CertificateVersion::pem("", &chain2.x5c()));
    let (status, _, cert) = get(
        &http,
        &kv_url(&kv, &format!("certificates/notation/{v1}")),
        t,
    )
    .await;
    assert_eq!(status, 200, "{cert}");
    assert_eq!(cert["id"], format!("{base}/certificates/notation/{v1}"));
    assert_eq!(cert["kid"], format!("{base}/keys/notation/{v1}"));
    let sid = cert["sid"].as_str().unwrap();
    assert_eq!(sid, format!("{base}/secrets/notation/{v1}"));
    let std64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        std64.decode(cert["cer"].as_str().unwrap()).unwrap(),
        chain.leaf.der()
    );
    let sha1 = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        chain.leaf.der(),
    );
    assert_eq!(cert["x5t"], b64.encode(sha1.as_ref()));
    assert_eq!(
        cert["policy"]["secret_props"]["contentType"],
        "application/x-pem-file"
    );
    assert_eq!(cert["policy"]["key_props"]["kty"], "EC");
    let (status, _, latest) = get(&http, &kv_url(&kv, "certificates/notation/"), t).await;
    assert_eq!(status, 200);
    assert_eq!(latest["id"], format!("{base}/certificates/notation/{v2}"));

    let (status, _, secret) = get(&http, &format!("{sid}?api-version=2025-07-01"), t).await;
    assert_eq!(status, 200, "{secret}");
    assert_eq!(secret["contentType"], "application/x-pem-file");
    assert_eq!(secret["managed"], true);
    assert_eq!(secret["id"], sid);
    assert_eq!(secret["kid"], format!("{base}/keys/notation/{v1}"));
    let value = secret["value"].as_str().unwrap();
    assert!(
        value.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{value}"
    );
    assert_eq!(value.matches("-----BEGIN CERTIFICATE-----").count(), 3);
    assert!(value.ends_with("-----END CERTIFICATE-----\n"));
    assert_eq!(
        value,
        format!("{}{}", chain.leaf.key().pkcs8_pem(), chain.chain_pem())
    );
    let (_, _, secret2) = get(&http, &kv_url(&kv, &format!("secrets/notation/{v2}")), t).await;
    assert!(
        secret2["value"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    // Disabling a certificate version: the certificate reads as disabled, its secret is refused.
    kv.set_certificate_enabled("notation", &v2, false);
    let (status, _, cert2) = get(
        &http,
        &kv_url(&kv, &format!("certificates/notation/{v2}")),
        t,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(cert2["attributes"]["enabled"], false);
    let (status, _, body) = get(&http, &kv_url(&kv, &format!("secrets/notation/{v2}")), t).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled secret.","innererror":{"code":"SecretDisabled"}}})
    );
    let (_, _, list) = get(&http, &kv_url(&kv, "certificates/notation/versions"), t).await;
    let items = list["value"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], format!("{base}/certificates/notation/{v1}"));
    assert_eq!(items[0]["x5t"], cert["x5t"]);
    assert_eq!(items[1]["attributes"]["enabled"], false);
    let (_, _, list) = get(&http, &kv_url(&kv, "secrets/notation/versions"), t).await;
    assert_eq!(
        list["value"][1]["id"],
        format!("{base}/secrets/notation/{v2}")
    );
    assert_eq!(list["value"][1]["managed"], true);

    // A plain secret.
    let sv = kv.add_secret_version("plain", "mysecretvalue", None);
    let (status, _, secret) = get(&http, &kv_url(&kv, "secrets/plain/"), t).await;
    assert_eq!(status, 200);
    assert_eq!(secret["value"], "mysecretvalue");
    assert_eq!(secret["id"], format!("{base}/secrets/plain/{sv}"));
    assert!(secret.get("managed").is_none());

    // Faults: throttling with Retry-After, then RBAC denial.
    kv.fail_next(
        2,
        429,
        "Throttled",
        "Request was not processed because too many requests were received.",
    );
    for _ in 0..2 {
        let (status, headers, body) = get(&http, &kv_url(&kv, "keys/signer/"), t).await;
        assert_eq!(status, 429);
        assert_eq!(headers["retry-after"], "1");
        assert_eq!(body["error"]["code"], "Throttled");
    }
    assert_eq!(get(&http, &kv_url(&kv, "keys/signer/"), t).await.0, 200);
    kv.fail_next(1, 503, "ServiceUnavailable", "The service is unavailable.");
    let (status, headers, _) = get(&http, &kv_url(&kv, "keys/signer/"), t).await;
    assert_eq!(status, 503);
    assert!(!headers.contains_key("retry-after"));
    kv.deny_all(true);
    let (status, _, body) = get(&http, &kv_url(&kv, "keys/signer/versions"), t).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "Forbidden");
    assert_eq!(body["error"]["innererror"]["code"], "ForbiddenByRbac");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not have keys list permission")
    );
    kv.deny_all(false);
    assert_eq!(get(&http, &kv_url(&kv, "keys/signer/"), t).await.0, 200);

    // The request log.
    let requests = kv.requests();
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].path, "/keys/signer/");
    assert_eq!(requests[0].query, "api-version=2025-07-01");
    assert!(!requests[0].authorized);
    assert_eq!(requests[0].status, 401);
    assert!(requests.iter().skip(2).all(|r| r.authorized));
    assert_eq!(kv.count("/certificates/notation"), 4);
}

#[tokio::test]
async fn acr_token_server_feeds_a_real_registry() {
    let ca = TestCa::new().unwrap();
    let http = ca.client().unwrap();
    let entra = FakeEntra::start(&ca, TENANT, CLIENT_ID).await.unwrap();
    let acr = FakeAcrTokenServer::start(&ca, &entra, SERVICE)
        .await
        .unwrap();
    acr.set_permissions(&["read", "write"]);
    let dir = tempfile::tempdir().unwrap();
    let auth = acr.token_auth(dir.path()).unwrap();
    assert_eq!(auth.realm, acr.realm());
    assert_eq!(auth.issuer, "Azure Container Registry");
    assert!(
        acr.realm().starts_with("https://127.0.0.1:") && acr.realm().ends_with("/oauth2/token")
    );
    let reg = DockerRegistry::builder()
        .token_auth(auth)
        .start()
        .await
        .unwrap();

    // The registry challenges with the fake's realm.
    let plain = reqwest::Client::new();
    let resp = plain
        .get(format!("{}/v2/", reg.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains(&format!("realm=\"{}\"", acr.realm())),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("service=\"{SERVICE}\"")),
        "{challenge}"
    );

    // Entra → exchange → refresh token shaped like the recording.
    let aad = entra_token(&http, &entra, ACR_RESOURCE).await;
    let exchange = format!("{}?api-version=2021-07-01", acr.exchange_url());
    let (status, _, body) = post_form(
        &http,
        &exchange,
        &[
            ("access_token", &aad),
            ("grant_type", "access_token"),
            ("service", SERVICE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1);
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    assert!(rt.starts_with('.') && rt.ends_with('.'), "{rt}");
    let payload = &rt[1..rt.len() - 1];
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "Azure Container Registry");
    assert_eq!(claims["aud"], SERVICE);
    assert_eq!(claims["grant_type"], "refresh_token");
    assert_eq!(claims["version"], "1.0");
    assert_eq!(claims["tenant"], TENANT);
    assert_eq!(
        claims["permissions"],
        json!({"Actions": ["read", "write"], "NotActions": null})
    );
    assert_eq!(claims["roles"], json!([]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        10_800
    );
    assert_eq!(acr.exchanges(), 1);

    // Refresh token → access token (no expires_in; extra fields ignored; scope repeatable).
    let (status, _, body) = post_form(
        &http,
        &acr.realm(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("scope", "repository:acr/app:pull,push"),
            ("scope", "repository:acr/other:pull"),
            ("service", SERVICE),
            ("client_id", "verdict"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let at = body["access_token"].as_str().unwrap().to_string();
    let claims = jwt_claims(&at);
    assert_eq!(claims["iss"], "Azure Container Registry");
    assert_eq!(claims["aud"], SERVICE);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(
        claims["access"],
        json!([
            {"type": "repository", "name": "acr/app", "actions": ["pull", "push"]},
            {"type": "repository", "name": "acr/other", "actions": ["pull"]},
        ])
    );
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(at.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["x5c"].as_array().unwrap().len(), 1);

    // docker-registry accepts it: push, then pull back.
    let client = reg.client().with_bearer_token(&at);
    let image = client.push_image("acr/app", "v1").await.unwrap();
    assert_eq!(
        client.get_manifest("acr/app", "v1").await.unwrap().digest,
        image.digest
    );

    // A pull-only token pulls but cannot push; AcrPull refresh tokens never grant push.
    acr.set_permissions(&["read"]);
    let (_, _, body) = post_form(
        &http,
        &exchange,
        &[
            ("access_token", &aad),
            ("grant_type", "access_token"),
            ("service", SERVICE),
        ],
    )
    .await;
    let pull_rt = body["refresh_token"].as_str().unwrap().to_string();
    let (status, _, body) = post_form(
        &http,
        &acr.realm(),
        &[
            ("grant_type", "refresh_token"),
            ("service", SERVICE),
            ("scope", "repository:acr/app:pull,push"),
            ("refresh_token", &pull_rt),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let pull_at = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        jwt_claims(&pull_at)["access"][0]["actions"],
        json!(["pull"])
    );
    let pull_client = reg.client().with_bearer_token(&pull_at);
    assert_eq!(
        pull_client
            .get_manifest("acr/app", "v1")
            .await
            .unwrap()
            .digest,
        image.digest
    );
    assert!(pull_client.push_image("acr/app", "v2").await.is_err());
    assert_eq!(acr.token_requests(), 2);
    assert_eq!(
        acr.token_scopes()[1],
        vec!["repository:acr/app:pull,push".to_string()]
    );

    // Bad exchanges: a vault token, another service, an injected fault.
    let vault = entra_token(&http, &entra, VAULT_RESOURCE).await;
    let (status, _, body) = post_form(
        &http,
        &exchange,
        &[
            ("access_token", &vault),
            ("grant_type", "access_token"),
            ("service", SERVICE),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    let (status, _, _) = post_form(
        &http,
        &exchange,
        &[
            ("access_token", &aad),
            ("grant_type", "access_token"),
            ("service", "other.azurecr.io"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    acr.fail_exchange(401);
    let good = [
        ("access_token", aad.as_str()),
        ("grant_type", "access_token"),
        ("service", SERVICE),
    ];
    let (status, _, body) = post_form(&http, &exchange, &good).await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    acr.clear_faults();
    assert_eq!(post_form(&http, &exchange, &good).await.0, 200);
    assert_eq!(acr.exchanges(), 3);

    // Revoked refresh tokens get 401.
    acr.revoke_refresh_tokens();
    let (status, _, body) = post_form(
        &http,
        &acr.realm(),
        &[
            ("grant_type", "refresh_token"),
            ("service", SERVICE),
            ("scope", "repository:acr/app:pull"),
            ("refresh_token", &rt),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("authentication required")
    );
    assert_eq!(acr.token_requests(), 2);
}
