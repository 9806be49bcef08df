//! Shared test harness: test PKI on disk, fake verifier and tag resolver with call counters, a
//! server on free ports, and HTTPS clients trusting the test CA (TLS 1.3).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use verdict_cache_api::tls::TlsReloader;
use verdict_cache_api::{
    CacheApi, Config, Error, InlineVerifier, MemoryVerdictCache, Ops, Readiness, ServedVerdict,
    SubjectKey, TagResolver, VerdictCache, VerdictService,
};
use verdict_scanner::registry::{Digest, DigestAlgorithm, ImageReference};
use verdict_scanner::report::{ArtifactPolicy, Evidence, VerificationResult, VerifierReport};
use verdict_scanner::subject::Namespace;
use verdict_testkit::pki::{CertBuilder, Eku, TestCert};

pub const NOTATION: &str = "application/vnd.cncf.notary.signature";

/// A digest made from a label, e.g. `digest("app")`.
pub fn digest(label: &str) -> Digest {
    DigestAlgorithm::Sha256.digest(label.as_bytes())
}

/// The cache key of `reference` (which must carry a digest).
pub fn subject_key(namespace: Option<&str>, reference: &str) -> SubjectKey {
    let r = ImageReference::parse(reference).expect("reference");
    let namespace = namespace.map(|ns| Namespace::parse(ns).expect("namespace"));
    SubjectKey::of_reference(namespace, &r).expect("digest")
}

/// A verification result with one Notation report.
pub fn result_for(subject: &str, digest: &Digest, success: bool) -> VerificationResult {
    let report = VerifierReport {
        subject: subject.to_owned(),
        is_success: success,
        verifier_name: "verifier-notation".into(),
        verifier_type: "notation".into(),
        reference_digest: "sha256:57be2c1c3d9c23ef7c964bba05c7aa23b525732e9c9af9652654ccc3f4babb0e"
            .into(),
        artifact_type: NOTATION.into(),
        message: if success {
            "Notation signature verification success".into()
        } else {
            "signature verification failed".into()
        },
        error_reason: if success {
            String::new()
        } else {
            "no trusted signature".into()
        },
        remediation: String::new(),
        extensions: Some(json!({"Issuer": "CN=issuer", "SN": "CN=signer"})),
        nested_results: vec![],
    };
    VerificationResult::decide(
        subject.to_owned(),
        digest.to_string(),
        vec![report],
        Vec::<Evidence>::new(),
        &ArtifactPolicy::default(),
        "trust-config-1".into(),
        Utc::now(),
    )
}

/// What the fake verifier does for a digest.
#[derive(Clone, Debug)]
pub enum Behaviour {
    Allow,
    Deny,
    RegistryDown,
    Definitive,
}

/// Holds the verifications of the digests it is given to (see [`FakeVerifier::hold`]) until the
/// test lets them finish: one per [`Gate::release`], all after [`Gate::open`]. A test that must
/// see a verification still running holds it here instead of guessing how long it takes.
#[derive(Clone)]
pub struct Gate(Arc<Semaphore>);

impl Gate {
    pub fn closed() -> Self {
        Gate(Arc::new(Semaphore::new(0)))
    }

    /// Lets `n` held verifications finish.
    pub fn release(&self, n: usize) {
        self.0.add_permits(n);
    }

    /// Lets every held verification finish, and no longer holds later ones.
    pub fn open(&self) {
        self.0.close();
    }

    async fn pass(&self) {
        // Closed: open for good. Otherwise one permit per verification.
        if let Ok(permit) = self.0.acquire().await {
            permit.forget();
        }
    }
}

/// An [`InlineVerifier`] with programmable answers, delays and gates, counting calls per digest
/// and the verifications running at once (now, and the most seen).
#[derive(Default)]
pub struct FakeVerifier {
    plan: Mutex<HashMap<String, (Behaviour, Duration)>>,
    gates: Mutex<HashMap<String, Gate>>,
    calls: Mutex<HashMap<String, usize>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl FakeVerifier {
    pub fn set(&self, digest: &Digest, behaviour: Behaviour, delay: Duration) {
        self.plan
            .lock()
            .unwrap()
            .insert(digest.to_string(), (behaviour, delay));
    }

    /// Verifications of `digest` wait at `gate` (counted as called and running meanwhile).
    pub fn hold(&self, digest: &Digest, gate: &Gate) {
        self.gates
            .lock()
            .unwrap()
            .insert(digest.to_string(), gate.clone());
    }

    pub fn calls(&self, digest: &Digest) -> usize {
        self.calls
            .lock()
            .unwrap()
            .get(&digest.to_string())
            .copied()
            .unwrap_or(0)
    }

    pub fn total_calls(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }

    /// Verifications running now (started and neither finished nor cancelled).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most verifications that ever ran at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

/// Counts one running verification until dropped (finished, or cancelled by the service).
struct Running<'a>(&'a FakeVerifier);

impl<'a> Running<'a> {
    fn start(v: &'a FakeVerifier) -> Self {
        let now = v.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        v.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Running(v)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl InlineVerifier for FakeVerifier {
    async fn verify(
        &self,
        _namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<VerificationResult, Error> {
        let d = reference
            .digest()
            .expect("the service passes digest references")
            .clone();
        *self.calls.lock().unwrap().entry(d.to_string()).or_default() += 1;
        let _running = Running::start(self);
        let (behaviour, delay) = self
            .plan
            .lock()
            .unwrap()
            .get(&d.to_string())
            .cloned()
            .unwrap_or((Behaviour::Allow, Duration::ZERO));
        let gate = self.gates.lock().unwrap().get(&d.to_string()).cloned();
        if let Some(gate) = gate {
            gate.pass().await;
        }
        tokio::time::sleep(delay).await;
        let subject = reference.to_string();
        match behaviour {
            Behaviour::Allow => Ok(result_for(&subject, &d, true)),
            Behaviour::Deny => Ok(result_for(&subject, &d, false)),
            Behaviour::RegistryDown => Err(Error::RegistryUnavailable(
                "registry registry.example is unavailable (HTTP 503): try later".into(),
            )),
            Behaviour::Definitive => Err(Error::VerifyFailed(
                "manifest not found in registry registry.example".into(),
            )),
        }
    }
}

/// A [`TagResolver`] over a fixed tag map (`registry/repository:tag` → digest).
#[derive(Default)]
pub struct FakeResolver {
    tags: Mutex<HashMap<String, Digest>>,
    calls: Mutex<usize>,
}

impl FakeResolver {
    pub fn set(&self, tag_ref: &str, digest: &Digest) {
        self.tags
            .lock()
            .unwrap()
            .insert(tag_ref.to_owned(), digest.clone());
    }

    pub fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
}

#[async_trait]
impl TagResolver for FakeResolver {
    async fn resolve(
        &self,
        _namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<Digest, Error> {
        *self.calls.lock().unwrap() += 1;
        if reference.repository().registry() == "down.example" {
            return Err(Error::RegistryUnavailable(
                "registry down.example is unavailable: connection refused".into(),
            ));
        }
        self.tags
            .lock()
            .unwrap()
            .get(&reference.to_string())
            .cloned()
            .ok_or_else(|| Error::TagNotFound(format!("tag {reference} not found")))
    }
}

/// CA, server certificate, and a Gatekeeper-like client CA with a client certificate.
pub struct Pki {
    pub ca: TestCert,
    pub server: TestCert,
    pub client_ca: TestCert,
    pub client: TestCert,
}

impl Pki {
    pub fn new() -> Result<Self> {
        let ca = CertBuilder::root_ca("O=Verdict Test, CN=cache-api test CA").self_signed()?;
        let server = CertBuilder::tls_server().signed_by(&ca)?;
        let client_ca = CertBuilder::root_ca("O=gatekeeper, CN=gatekeeper-ca").self_signed()?;
        let client = gatekeeper_client_cert(&client_ca)?;
        Ok(Pki {
            ca,
            server,
            client_ca,
            client,
        })
    }
}

/// A client certificate like Gatekeeper's webhook cert (serverAuth + clientAuth).
pub fn gatekeeper_client_cert(ca: &TestCert) -> Result<TestCert> {
    CertBuilder::tls_server()
        .ekus(vec![Eku::ServerAuth, Eku::ClientAuth])
        .san_dns("gatekeeper-webhook-service.gatekeeper-system.svc")?
        .signed_by(ca)
}

pub struct Paths {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

pub fn write_server_files(dir: &Path, cert: &TestCert) -> Result<()> {
    write_atomic(&dir.join("tls.crt"), cert.pem().as_bytes())?;
    write_atomic(&dir.join("tls.key"), cert.key().pkcs8_pem().as_bytes())
}

/// Writes via a temporary file and rename, as a kubelet secret update appears to readers.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// A running server with its fakes.
pub struct TestServer {
    pub addr: SocketAddr,
    pub ops_addr: SocketAddr,
    pub pki: Pki,
    pub paths: Paths,
    pub cache: Arc<MemoryVerdictCache>,
    pub verifier: Arc<FakeVerifier>,
    pub resolver: Arc<FakeResolver>,
    pub readiness: Readiness,
    pub tls: Arc<TlsReloader>,
    pub cancel: CancellationToken,
    pub task: Option<JoinHandle<Result<(), verdict_cache_api::Error>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server with defaults adjusted by `tweak`; `mtls` configures the client CA.
    pub async fn start(mtls: bool, tweak: impl FnOnce(&mut Config)) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let pki = Pki::new()?;
        write_server_files(dir.path(), &pki.server)?;
        let paths = Paths {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
            client_ca: dir.path().join("ca.crt"),
        };
        write_atomic(&paths.client_ca, pki.client_ca.pem().as_bytes())?;
        let mut config = Config::new(&paths.cert, &paths.key);
        config.listen = "127.0.0.1:0".parse()?;
        config.ops_listen = "127.0.0.1:0".parse()?;
        config.tls.reload_interval = Duration::from_millis(100);
        if mtls {
            config.tls.client_ca_path = Some(paths.client_ca.clone());
        }
        tweak(&mut config);
        let cache = Arc::new(MemoryVerdictCache::new());
        let verifier = Arc::new(FakeVerifier::default());
        let resolver = Arc::new(FakeResolver::default());
        let service = VerdictService::new(
            config.service.clone(),
            cache.clone(),
            verifier.clone(),
            resolver.clone(),
        )?;
        let readiness = Readiness::new(&["store"]);
        readiness.set("store", true);
        let metrics = verdict_cache_api::metrics::prometheus_recorder()?;
        let api = CacheApi::bind(config, service, Ops::new(readiness.clone(), metrics)).await?;
        let (addr, ops_addr, tls) = (api.local_addr(), api.ops_addr(), api.tls());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(api.run(cancel.clone()));
        Ok(TestServer {
            addr,
            ops_addr,
            pki,
            paths,
            cache,
            verifier,
            resolver,
            readiness,
            tls,
            cancel,
            task: Some(task),
            _dir: dir,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn ops_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ops_addr.port())
    }

    /// A client trusting only the test CA, TLS 1.3, without a client certificate.
    pub fn client(&self) -> reqwest::Client {
        client_with(&self.pki.ca, None).expect("client")
    }

    /// Like [`TestServer::client`] but speaking HTTP/1.1 only, as Gatekeeper's Go client does.
    pub fn client_http1(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only([
                reqwest::Certificate::from_pem(self.pki.ca.pem().as_bytes()).expect("CA PEM")
            ])
            .tls_version_min(reqwest::tls::Version::TLS_1_3)
            .http1_only()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    /// A client presenting `cert` (with its key).
    pub fn client_as(&self, cert: &TestCert) -> reqwest::Client {
        client_with(&self.pki.ca, Some(cert)).expect("client")
    }

    /// Stores a verdict for `reference` (must have a digest) in the cache.
    pub fn put(&self, namespace: Option<&str>, reference: &str, success: bool) -> SubjectKey {
        let key = subject_key(namespace, reference);
        let subject = ImageReference::parse(reference)
            .expect("reference")
            .to_string();
        self.cache
            .put(
                &key,
                &Arc::new(ServedVerdict::new(result_for(
                    &subject,
                    key.digest(),
                    success,
                ))),
                None,
            )
            .expect("put");
        key
    }

    pub async fn stop(mut self) -> Result<()> {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .context("server did not stop within 10 s")???;
        }
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub fn client_with(ca: &TestCert, identity: Option<&TestCert>) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem().as_bytes())?])
        .tls_version_min(reqwest::tls::Version::TLS_1_3)
        .tls_info(true)
        .timeout(Duration::from_secs(20));
    if let Some(cert) = identity {
        let pem = format!("{}{}", cert.key().pkcs8_pem(), cert.pem());
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes())?);
    }
    Ok(b.build()?)
}

/// A Gatekeeper `ProviderRequest` body.
pub fn request(keys: &[&str]) -> Value {
    json!({
        "apiVersion": "externaldata.gatekeeper.sh/v1beta1",
        "kind": "ProviderRequest",
        "request": {"keys": keys},
    })
}

/// POSTs `body` and returns the status and parsed JSON answer.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> Result<(u16, Value)> {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!(
            "answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok((status, v))
}

/// POSTs a request with `keys` and checks the envelope; returns `response`.
pub async fn ask(client: &reqwest::Client, url: &str, keys: &[&str]) -> Result<Value> {
    let (status, v) = post_json(client, url, serde_json::to_vec(&request(keys))?).await?;
    anyhow::ensure!(status == 200, "status {status}: {v}");
    anyhow::ensure!(
        v["apiVersion"] == "externaldata.gatekeeper.sh/v1beta1" && v["kind"] == "ProviderResponse",
        "not a ProviderResponse: {v}"
    );
    Ok(v["response"].clone())
}

/// The item for `key` in a response.
pub fn item<'a>(response: &'a Value, key: &str) -> &'a Value {
    response["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["key"] == key))
        .unwrap_or_else(|| panic!("no item for {key:?} in {response}"))
}

pub const V1_VERIFY: &str = "/ratify/gatekeeper/v1/verify";
pub const V2_VERIFY: &str = "/ratify/gatekeeper/v2/verify";
pub const V1_MUTATE: &str = "/ratify/gatekeeper/v1/mutate";
pub const V2_MUTATE: &str = "/ratify/gatekeeper/v2/mutate";

/// Polls `check` every 50 ms until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
