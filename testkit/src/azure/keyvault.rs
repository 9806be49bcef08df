//! Fake Azure Key Vault data plane: keys, certificates and secrets with versions.
//!
//! Every request needs `api-version` (any value; the Rust SDK sends `2025-07-01`) and a bearer
//! token the [`FakeEntra`] issued for `https://vault.azure.net`; without one the answer is the
//! recorded 401 challenge (`examples/akv/auth-challenge-401.txt`). Routes (GET only):
//! `/{keys|certificates|secrets}/{name}`, `…/{name}/` (latest), `…/{name}/{version}` and
//! `…/{name}/versions[?maxresults=N]`, paged by an absolute `nextLink` with `$skiptoken` (and,
//! like the recording, `api-version=7.2`), `"nextLink": null` on the last page.
//! A certificate's backing secret is `/secrets/{certificate name}/{certificate version}`.
//! `nbf`/`exp` are reported, not enforced (Key Vault lets you read an expired object; honouring
//! them is the client's job); `enabled: false` is enforced as Key Vault does (403 on reading a
//! disabled key or secret, a disabled certificate is still readable).

mod material;
mod routes;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use axum::Router;
use serde_json::{Value, json};

pub use self::material::{CertificateVersion, pem_secret_value, public_jwk};
use super::entra::EntraShared;
use super::https::{self, HttpsServer};
use super::{FakeEntra, TestCa, now, random_hex};

/// Default versions per page (Key Vault's maximum `maxresults`).
const DEFAULT_PAGE_SIZE: usize = 25;
/// Key Vault accepts `maxresults` 1..=25.
const MAX_RESULTS: usize = 25;
/// `recoveryLevel` of every object (soft delete with purge protection off).
const RECOVERY_LEVEL: &str = "Recoverable+Purgeable";
/// The `api-version` Key Vault puts into `nextLink` (quirk kept from the recording).
const NEXT_LINK_API_VERSION: &str = "7.2";
/// Second half of Key Vault's not-found messages (`{kind}`: key, certificate or secret).
const NOT_FOUND_HINT: &str = "If you recently deleted this {kind} you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182";

/// One request to the vault as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvRequest {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/keys/signer/`.
    pub path: String,
    /// Raw query string (without `?`).
    pub query: String,
    /// Whether it carried a valid bearer token.
    pub authorized: bool,
    /// The status the fake answered with.
    pub status: u16,
}

/// `enabled`, `nbf`, `exp`, `created`, `updated` of one version.
#[derive(Clone, Debug)]
struct Attributes {
    enabled: bool,
    nbf: Option<i64>,
    exp: Option<i64>,
    created: i64,
    updated: i64,
}

impl Attributes {
    fn new(enabled: bool, nbf: Option<i64>, exp: Option<i64>) -> Self {
        let t = now();
        Self {
            enabled,
            nbf,
            exp,
            created: t,
            updated: t,
        }
    }

    fn json(&self) -> Value {
        let mut v = json!({
            "enabled": self.enabled,
            "created": self.created,
            "updated": self.updated,
            "recoveryLevel": RECOVERY_LEVEL,
            "recoverableDays": 90,
        });
        if let Some(nbf) = self.nbf {
            v["nbf"] = json!(nbf);
        }
        if let Some(exp) = self.exp {
            v["exp"] = json!(exp);
        }
        v
    }
}

#[derive(Clone, Debug)]
struct KeyEntry {
    version: String,
    jwk: Value,
    attributes: Attributes,
}

#[derive(Clone, Debug)]
struct CertEntry {
    version: String,
    cert: CertificateVersion,
    attributes: Attributes,
}

#[derive(Clone, Debug)]
struct SecretEntry {
    version: String,
    value: String,
    content_type: Option<String>,
    attributes: Attributes,
}

#[derive(Clone, Debug)]
struct Fault {
    remaining: usize,
    status: u16,
    code: String,
    message: String,
}

#[derive(Debug)]
struct KvState {
    page_size: usize,
    fault: Option<Fault>,
    deny: bool,
    requests: Vec<KvRequest>,
    /// Versions oldest first; the last one is the latest.
    keys: BTreeMap<String, Vec<KeyEntry>>,
    certificates: BTreeMap<String, Vec<CertEntry>>,
    secrets: BTreeMap<String, Vec<SecretEntry>>,
}

#[derive(Debug)]
struct KvShared {
    /// `https://127.0.0.1:PORT` (no trailing slash; object ids are `{base}/keys/{name}/{version}`).
    base: String,
    entra: Arc<EntraShared>,
    state: Mutex<KvState>,
}

impl KvShared {
    fn lock(&self) -> MutexGuard<'_, KvState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Azure Key Vault over HTTPS: 401 challenge, keys, certificates, secrets, versions with nextLink
/// paging, enabled/nbf/exp attributes, error bodies.
pub struct FakeKeyVault {
    shared: Arc<KvShared>,
    server: HttpsServer,
}

impl std::fmt::Debug for FakeKeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKeyVault")
            .field("url", &self.shared.base)
            .finish()
    }
}

impl FakeKeyVault {
    /// An empty vault that accepts bearer tokens for which
    /// `entra.token_is_valid(token, "https://vault.azure.net")`; its challenge names the Entra
    /// fake's tenant.
    pub async fn start(ca: &TestCa, entra: &FakeEntra) -> Result<Self> {
        let listener = https::bind().await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(KvShared {
            base: format!("https://127.0.0.1:{port}"),
            entra: entra.shared(),
            state: Mutex::new(KvState {
                page_size: DEFAULT_PAGE_SIZE,
                fault: None,
                deny: false,
                requests: Vec::new(),
                keys: BTreeMap::new(),
                certificates: BTreeMap::new(),
                secrets: BTreeMap::new(),
            }),
        });
        let router = Router::new()
            .fallback(routes::handle)
            .with_state(shared.clone());
        let server = HttpsServer::start(listener, ca.server_config(), router)?;
        Ok(Self { shared, server })
    }

    /// `https://127.0.0.1:PORT/` (the `vaultURI`).
    pub fn url(&self) -> String {
        format!("{}/", self.shared.base)
    }

    /// Adds a version of key `name` and returns it (32 lowercase hex); it becomes the latest.
    /// `jwk` is the public JWK object WITHOUT `kid` (see [`public_jwk`]); the fake adds
    /// `kid` = `https://127.0.0.1:PORT/keys/{name}/{version}`.
    ///
    /// # Panics
    /// If `jwk` is not a JSON object.
    pub fn add_key_version(&self, name: &str, jwk: Value) -> String {
        assert!(
            jwk.is_object(),
            "add_key_version({name}): the JWK must be a JSON object"
        );
        let version = random_hex(16);
        self.shared
            .lock()
            .keys
            .entry(name.to_string())
            .or_default()
            .push(KeyEntry {
                version: version.clone(),
                jwk,
                attributes: Attributes::new(true, None, None),
            });
        version
    }

    /// Enables or disables one key version.
    ///
    /// # Panics
    /// If the key version does not exist.
    pub fn set_key_enabled(&self, name: &str, version: &str, enabled: bool) {
        self.with_key(name, version, |a| a.enabled = enabled);
    }

    /// Sets `nbf` and `exp` (unix seconds) of one key version.
    ///
    /// # Panics
    /// If the key version does not exist.
    pub fn set_key_validity(&self, name: &str, version: &str, nbf: Option<i64>, exp: Option<i64>) {
        self.with_key(name, version, |a| {
            a.nbf = nbf;
            a.exp = exp;
        });
    }

    fn with_key(&self, name: &str, version: &str, f: impl FnOnce(&mut Attributes)) {
        let mut state = self.shared.lock();
        let entry = state
            .keys
            .get_mut(name)
            .and_then(|v| v.iter_mut().find(|e| e.version == version))
            .unwrap_or_else(|| panic!("no key version {name}/{version} in the fake vault"));
        f(&mut entry.attributes);
        entry.attributes.updated = now();
    }

    /// Adds a version of certificate `name` (and of its backing secret of the same name and
    /// version) and returns the version; it becomes the latest.
    pub fn add_certificate_version(&self, name: &str, cert: CertificateVersion) -> String {
        let version = random_hex(16);
        let attributes = Attributes::new(cert.enabled, cert.nbf, cert.exp);
        self.shared
            .lock()
            .certificates
            .entry(name.to_string())
            .or_default()
            .push(CertEntry {
                version: version.clone(),
                cert,
                attributes,
            });
        version
    }

    /// Enables or disables one certificate version (and so its backing secret).
    ///
    /// # Panics
    /// If the certificate version does not exist.
    pub fn set_certificate_enabled(&self, name: &str, version: &str, enabled: bool) {
        let mut state = self.shared.lock();
        let entry = state
            .certificates
            .get_mut(name)
            .and_then(|v| v.iter_mut().find(|e| e.version == version))
            .unwrap_or_else(|| panic!("no certificate version {name}/{version} in the fake vault"));
        entry.attributes.enabled = enabled;
        entry.attributes.updated = now();
    }

    /// Adds a version of a plain (not certificate-backed) secret and returns the version.
    ///
    /// # Panics
    /// If a certificate of that name exists (Key Vault reserves its secret name).
    pub fn add_secret_version(
        &self,
        name: &str,
        value: &str,
        content_type: Option<&str>,
    ) -> String {
        let mut state = self.shared.lock();
        assert!(
            !state.certificates.contains_key(name),
            "secret name {name} is taken by a certificate"
        );
        let version = random_hex(16);
        state
            .secrets
            .entry(name.to_string())
            .or_default()
            .push(SecretEntry {
                version: version.clone(),
                value: value.to_string(),
                content_type: content_type.map(str::to_string),
                attributes: Attributes::new(true, None, None),
            });
        version
    }

    /// Versions per page (default 25); pages are chained by an absolute `nextLink` with
    /// `$skiptoken`. A request's `maxresults` lowers it further.
    pub fn set_page_size(&self, n: usize) {
        self.shared.lock().page_size = n.max(1);
    }

    /// The next `n` authenticated requests fail with `status` and
    /// `{"error":{"code":code,"message":message}}`; 429 adds `Retry-After: 1`.
    pub fn fail_next(&self, n: usize, status: u16, code: &str, message: &str) {
        self.shared.lock().fault = Some(Fault {
            remaining: n,
            status,
            code: code.to_string(),
            message: message.to_string(),
        });
    }

    /// While true, authenticated requests get 403 `Forbidden` / `ForbiddenByRbac`.
    pub fn deny_all(&self, deny: bool) {
        self.shared.lock().deny = deny;
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<KvRequest> {
        self.shared.lock().requests.clone()
    }

    /// Requests whose path contains `path_contains`.
    pub fn count(&self, path_contains: &str) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.path.contains(path_contains))
            .count()
    }

    /// Closes the listener and open connections (clients get "connection refused").
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Listens again on the same port after [`stop`](Self::stop), with the same contents.
    pub async fn restart(&mut self) -> Result<()> {
        self.server.restart().await
    }
}
