//! TLS 1.3 only, mTLS against the configured client CA, and hot reload of the server
//! certificate and of the client CA (a bad new file keeps the old configuration).

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use verdict_cache_api::tls::ReloadOutcome;
use verdict_testkit::pki::CertBuilder;

/// Serial number of the certificate the server presented on a fresh connection.
async fn served_serial(s: &TestServer) -> Result<Vec<u8>> {
    let key = format!("registry.example/ok@{}", digest("ok"));
    let resp = s
        .client()
        .post(s.url(V1_VERIFY))
        .body(serde_json::to_vec(&request(&[&key]))?)
        .send()
        .await?;
    let info = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .context("no TLS info")?;
    let der = info.peer_certificate().context("no peer certificate")?;
    serial_of(der)
}

fn serial_of(der: &[u8]) -> Result<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)?;
    Ok(cert.tbs_certificate.raw_serial().to_vec())
}

async fn verify_ok(client: &reqwest::Client, s: &TestServer) -> Result<()> {
    let key = format!("registry.example/ok@{}", digest("ok"));
    let r = ask(client, &s.url(V1_VERIFY), &[&key]).await?;
    anyhow::ensure!(item(&r, &key)["value"]["isSuccess"] == true, "{r}");
    Ok(())
}

#[tokio::test]
async fn only_tls_1_3_is_spoken() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let tls12 = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(s.pki.ca.pem().as_bytes())?])
        .tls_version_max(reqwest::tls::Version::TLS_1_2)
        .build()?;
    let err = tls12
        .post(s.url(V1_VERIFY))
        .body("{}")
        .send()
        .await
        .expect_err("a TLS 1.2 client must be refused");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    verify_ok(&s.client(), &s).await?;
    s.stop().await
}

#[tokio::test]
async fn mtls_requires_a_certificate_from_the_client_ca() -> Result<()> {
    let s = TestServer::start(true, |_| {}).await?;
    // No client certificate: refused during the handshake.
    let no_cert = verify_ok(&s.client(), &s).await;
    assert!(
        no_cert.is_err(),
        "a client without a certificate was served"
    );

    // A certificate from another CA: refused.
    let rogue_ca = CertBuilder::root_ca("O=gatekeeper, CN=gatekeeper-ca").self_signed()?;
    let rogue = gatekeeper_client_cert(&rogue_ca)?;
    assert!(
        verify_ok(&s.client_as(&rogue), &s).await.is_err(),
        "a certificate from an untrusted CA was accepted"
    );

    // Gatekeeper's certificate: served.
    verify_ok(&s.client_as(&s.pki.client), &s).await?;
    // The server survived the refused handshakes.
    verify_ok(&s.client_as(&s.pki.client), &s).await?;
    s.stop().await
}

#[tokio::test]
async fn server_certificate_is_hot_reloaded() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let old = serial_of(s.pki.server.der())?;
    assert_eq!(served_serial(&s).await?, old);

    let renewed = CertBuilder::tls_server().signed_by(&s.pki.ca)?;
    let new = serial_of(renewed.der())?;
    assert_ne!(old, new);
    write_server_files(s.paths.cert.parent().unwrap(), &renewed)?;
    let reloaded = eventually(Duration::from_secs(5), || async {
        served_serial(&s).await.ok().as_ref() == Some(&new)
    })
    .await;
    let seen = served_serial(&s).await?;
    assert!(
        reloaded,
        "still serving serial {seen:02x?}, expected {new:02x?}"
    );
    s.stop().await
}

#[tokio::test]
async fn bad_new_files_keep_the_previous_configuration() -> Result<()> {
    let s = TestServer::start(false, |_| {}).await?;
    let dir = s.paths.cert.parent().unwrap().to_owned();
    let old = serial_of(s.pki.server.der())?;

    // Garbage instead of a certificate.
    write_atomic(&s.paths.cert, b"not a certificate")?;
    match s.tls.check() {
        ReloadOutcome::Failed(e) => assert!(e.to_string().contains("no CERTIFICATE block"), "{e}"),
        other => panic!("garbage loaded: {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        served_serial(&s).await?,
        old,
        "old certificate still served"
    );

    // A certificate with someone else's key (a half-finished rotation).
    let renewed = CertBuilder::tls_server().signed_by(&s.pki.ca)?;
    write_atomic(&s.paths.cert, renewed.pem().as_bytes())?;
    match s.tls.check() {
        ReloadOutcome::Failed(e) => assert!(e.to_string().contains("does not belong"), "{e}"),
        other => panic!("mismatched key loaded: {other:?}"),
    }
    assert_eq!(served_serial(&s).await?, old);

    // A missing key file.
    std::fs::remove_file(&s.paths.key)?;
    assert!(matches!(s.tls.check(), ReloadOutcome::Failed(_)));
    assert_eq!(served_serial(&s).await?, old);

    // The rotation completes: the new certificate is served.
    write_server_files(&dir, &renewed)?;
    let new = serial_of(renewed.der())?;
    assert!(
        eventually(Duration::from_secs(5), || async {
            served_serial(&s).await.ok().as_ref() == Some(&new)
        })
        .await
    );
    assert!(matches!(s.tls.check(), ReloadOutcome::Unchanged));
    s.stop().await
}

#[tokio::test]
async fn client_ca_is_hot_reloaded() -> Result<()> {
    let s = TestServer::start(true, |_| {}).await?;
    verify_ok(&s.client_as(&s.pki.client), &s).await?;

    // cert-controller rotated Gatekeeper's CA and leaf.
    let next_ca = CertBuilder::root_ca("O=gatekeeper, CN=gatekeeper-ca").self_signed()?;
    let next_client = gatekeeper_client_cert(&next_ca)?;
    assert!(verify_ok(&s.client_as(&next_client), &s).await.is_err());
    write_atomic(&s.paths.client_ca, next_ca.pem().as_bytes())?;
    assert!(
        eventually(Duration::from_secs(5), || async {
            verify_ok(&s.client_as(&next_client), &s).await.is_ok()
        })
        .await,
        "the new client CA was not picked up"
    );
    assert!(
        verify_ok(&s.client_as(&s.pki.client), &s).await.is_err(),
        "the old CA must no longer be trusted"
    );

    // An empty CA file (bad rotation) keeps the current CA.
    write_atomic(&s.paths.client_ca, b"")?;
    assert!(matches!(s.tls.check(), ReloadOutcome::Failed(_)));
    verify_ok(&s.client_as(&next_client), &s).await?;
    s.stop().await
}
