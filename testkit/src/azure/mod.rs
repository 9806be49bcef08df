//! Protocol-faithful HTTPS fakes of the Azure services Verdict talks to, for tests of workload
//! identity, ACR authentication and the Azure Key Vault KeyManagementProvider:
//!
//! - [`FakeEntra`]: the Microsoft Entra ID token endpoint (`POST /{tenant}/oauth2/v2.0/token`,
//!   client-assertion grant as the workload-identity credential sends it).
//! - [`FakeKeyVault`]: Key Vault keys, certificates and secrets with versions, paging, the 401
//!   challenge, `enabled`/`nbf`/`exp` attributes and error bodies.
//! - [`FakeAcrTokenServer`]: ACR's `/oauth2/exchange` and `/oauth2/token`, issuing access tokens
//!   that a real `docker-registry` with token auth accepts.
//!
//! All of them serve HTTPS on 127.0.0.1 with a leaf issued by a [`TestCa`]; build clients with
//! [`TestCa::client`] or trust [`TestCa::ca_pem`]. Wire shapes follow
//! `../shared/reference/protocols.md` §3–4 and `examples/{workload-identity,acr,akv}`.
//!
//! Pointing the Azure SDK at them: `AZURE_AUTHORITY_HOST` (or `CustomConfiguration::authority_host`)
//! = [`FakeEntra::authority_host`]; the Key Vault clients need `verify_challenge_resource:
//! Some(false)` (the challenge names `https://vault.azure.net`, which is not a suffix of
//! 127.0.0.1) and a transport built from a reqwest client that trusts the test CA.

mod acr;
mod entra;
mod https;
mod keyvault;
mod world;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::Value;

pub use acr::{ACR_ISSUER, FakeAcrTokenServer};
pub use entra::{EntraRequest, FakeEntra};
pub use keyvault::{CertificateVersion, FakeKeyVault, KvRequest, pem_secret_value, public_jwk};
pub use world::{ACR_SERVICE, AzureWorld, CLIENT_ID, COSIGN_SIG_TYPE, TENANT_ID, cosign_signer};

use crate::pki::{CertBuilder, TestCert};

/// Resource (token audience) of Azure Key Vault.
pub const VAULT_RESOURCE: &str = "https://vault.azure.net";
/// Resource (token audience) of Azure Container Registry.
pub const ACR_RESOURCE: &str = "https://containerregistry.azure.net";
/// `client_assertion_type` of the workload-identity (federated credential) grant.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A test CA plus an HTTPS server helper: every fake serves HTTPS on 127.0.0.1:<free port> with a
/// leaf cert for "127.0.0.1" and "localhost" issued by this CA.
pub struct TestCa {
    ca: TestCert,
    tls: Arc<ServerConfig>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("ca_sha256", &self.ca.sha256_fingerprint())
            .finish()
    }
}

impl TestCa {
    /// A fresh EC P-256 root and a TLS server leaf (SAN 127.0.0.1, localhost) shared by the fakes.
    /// Installs aws-lc-rs as the process's rustls provider if none is installed yet.
    pub fn new() -> Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let ca = CertBuilder::root_ca("O=Verdict Test, CN=Azure Fakes Test CA").self_signed()?;
        let leaf = CertBuilder::tls_server().signed_by(&ca)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key().pkcs8_der().to_vec()));
        let mut config = ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("rustls protocol versions")?
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)
        .context("TLS server certificate for the Azure fakes")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            ca,
            tls: Arc::new(config),
        })
    }

    /// PEM of the CA certificate.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// DER of the CA certificate.
    pub fn ca_der(&self) -> &[u8] {
        self.ca.der()
    }

    /// Writes [`ca_pem`](Self::ca_pem) to `path`.
    pub fn write_ca_pem(&self, path: &Path) -> Result<()> {
        self.ca.write_pem(path)
    }

    /// A reqwest client that trusts only this CA (no proxy, 30 s per request).
    pub fn client(&self) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .no_proxy()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca_pem().as_bytes())
                .context("parsing the test CA")?])
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("building an HTTPS client for the Azure fakes")
    }

    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        self.tls.clone()
    }
}

/// Unix time in seconds.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `count` random bytes as lowercase hex (a Key Vault version is 16 bytes → 32 chars).
pub(crate) fn random_hex(count: usize) -> String {
    hex::encode(crate::oci::random_bytes(count))
}

/// A random UUID-shaped string (trace, correlation and request ids, `jti`).
pub(crate) fn uuid() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// base64url without padding (JWT segments, JWK members, `x5t`).
pub(crate) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Standard base64 with padding (`cer`, `x5c`, ACR refresh-token claims).
pub(crate) fn b64std(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A JSON response with `Content-Type: application/json; charset=utf-8` and extra headers
/// (lowercase names).
pub(crate) fn json_response(
    status: u16,
    body: &Value,
    headers: &[(&'static str, String)],
) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    add_headers(&mut resp, headers);
    resp
}

/// A response without a body.
pub(crate) fn empty_response(status: u16, headers: &[(&'static str, String)]) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    add_headers(&mut resp, headers);
    resp
}

fn add_headers(resp: &mut Response, headers: &[(&'static str, String)]) {
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            resp.headers_mut()
                .append(HeaderName::from_static(name), value);
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An `application/x-www-form-urlencoded` body (or query string): pairs in order, repeats kept.
#[derive(Clone, Debug, Default)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `key`.
    pub(crate) fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Every value of `key`.
    pub(crate) fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a request body of at most 1 MiB.
pub(crate) async fn read_body(body: Body) -> Option<bytes::Bytes> {
    axum::body::to_bytes(body, 1 << 20).await.ok()
}
