//! The registry client: configuration, tag resolution, manifest and blob fetches.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use url::Url;

use super::auth::{Anonymous, AuthProvider};
use super::media::{bare_media_type, embedded_media_type};
use super::token::AuthState;
use super::transport::{Call, Transport, read_capped};
use super::{Descriptor, Digest, ImageReference, Manifest, RegistryError, Repository, media_type};

/// Bounded retries of idempotent requests on `Throttled`/`Unavailable`, always within the call's
/// deadline. A 429's `Retry-After` replaces the backoff when present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// First backoff; doubles per retry up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Ratify's ORAS store values: 5 retries, 200 ms to 1.75 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_millis(1750),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Self::default()
        }
    }

    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        self.min_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Registry client settings.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Registries reached over plain HTTP: `host:port` (exact) or `host` (any port); `"*"` means
    /// every registry (Ratify's Store `useHttp: true`). Everything else uses HTTPS.
    pub plain_http_registries: Vec<String>,
    /// Deadline of each public call, covering auth, retries and reading the body.
    pub request_timeout: Duration,
    /// TCP/TLS connect timeout per connection.
    pub connect_timeout: Duration,
    /// Largest manifest, index or referrers page accepted (4 MiB, the distribution limit).
    pub max_manifest_bytes: u64,
    /// Largest blob accepted (signature envelopes, payloads).
    pub max_blob_bytes: u64,
    /// At most this many referrers are returned; more set [`super::Referrers::truncated`].
    pub max_referrers: usize,
    /// At most this many referrers pages are followed.
    pub max_referrer_pages: usize,
    pub retry: RetryPolicy,
    pub user_agent: String,
    /// Extra PEM CA certificates trusted for registries (in addition to the platform roots).
    pub extra_root_certificates_pem: Vec<Vec<u8>>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            plain_http_registries: Vec::new(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_manifest_bytes: 4 * 1024 * 1024,
            max_blob_bytes: 1024 * 1024,
            max_referrers: 256,
            max_referrer_pages: 64,
            retry: RetryPolicy::default(),
            user_agent: concat!("verdict/", env!("CARGO_PKG_VERSION")).to_string(),
            extra_root_certificates_pem: Vec::new(),
        }
    }
}

impl RegistryConfig {
    /// True when `registry` (`host` or `host:port`) may be reached over plain HTTP.
    pub fn allows_plain_http(&self, registry: &str) -> bool {
        let registry = registry.to_ascii_lowercase();
        let host = host_of(&registry);
        self.plain_http_registries.iter().any(|e| {
            let e = e.trim().to_ascii_lowercase();
            e == "*" || e == registry || (!has_port(&e) && e == host)
        })
    }

    fn validate(&self) -> Result<(), RegistryError> {
        let bad = |reason: String| Err(RegistryError::Config { reason });
        for e in &self.plain_http_registries {
            let e = e.trim();
            if e == "*" {
                continue;
            }
            if e.is_empty() || e.contains("://") || e.contains('/') {
                return bad(format!(
                    "plain_http_registries entry {e:?} must be host or host:port without scheme or path (or \"*\")"
                ));
            }
        }
        if self.request_timeout.is_zero() {
            return bad("request_timeout must be greater than zero".into());
        }
        if self.max_manifest_bytes == 0 || self.max_blob_bytes == 0 || self.max_referrers == 0 {
            return bad(
                "max_manifest_bytes, max_blob_bytes and max_referrers must be greater than zero"
                    .into(),
            );
        }
        if self.max_referrer_pages == 0 {
            return bad("max_referrer_pages must be greater than zero".into());
        }
        Ok(())
    }
}

fn has_port(hostport: &str) -> bool {
    match hostport.rsplit_once(':') {
        Some((h, p)) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':'),
        None => false,
    }
}

fn host_of(hostport: &str) -> &str {
    if has_port(hostport) {
        hostport
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(hostport)
    } else {
        hostport
    }
}

/// An OCI registry client. Cheap to clone; clones share connections, tokens and the auth provider.
#[derive(Clone)]
pub struct RegistryClient {
    pub(crate) transport: Arc<Transport>,
    request_timeout: Duration,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("auth", &self.transport.auth.name())
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// Builds a client; fails on invalid configuration (bad plain-HTTP entry, bad CA PEM).
    pub fn new(config: RegistryConfig, auth: Arc<dyn AuthProvider>) -> Result<Self, RegistryError> {
        config.validate()?;
        let mut builder = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90));
        let mut roots = Vec::new();
        for pem in &config.extra_root_certificates_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| RegistryError::Config {
                    reason: format!("extra root certificate is not valid PEM: {e}"),
                })?;
            roots.extend(certs);
        }
        if !roots.is_empty() {
            builder = builder.tls_certs_merge(roots);
        }
        let http = builder.build().map_err(|e| RegistryError::Config {
            reason: format!("cannot build the HTTP client: {e}"),
        })?;
        let request_timeout = config.request_timeout;
        Ok(RegistryClient {
            transport: Arc::new(Transport {
                http,
                config: Arc::new(config),
                auth,
                state: AuthState::default(),
            }),
            request_timeout,
        })
    }

    /// A client without credentials.
    pub fn anonymous(config: RegistryConfig) -> Result<Self, RegistryError> {
        Self::new(config, Arc::new(Anonymous))
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.transport.config
    }

    /// The same client (shared connections and tokens) with another per-call deadline.
    pub fn with_request_timeout(&self, timeout: Duration) -> Self {
        RegistryClient {
            transport: self.transport.clone(),
            request_timeout: timeout,
        }
    }

    /// The per-call deadline in force.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Runs `op` under this call's deadline.
    pub(crate) async fn with_deadline<T, F, Fut>(
        &self,
        repo: &Repository,
        what: &str,
        op: F,
    ) -> Result<T, RegistryError>
    where
        F: FnOnce(Instant) -> Fut,
        Fut: Future<Output = Result<T, RegistryError>>,
    {
        let deadline = Instant::now() + self.request_timeout;
        match tokio::time::timeout_at(deadline.into(), op(deadline)).await {
            Ok(r) => r,
            Err(_) => Err(RegistryError::Timeout {
                registry: repo.registry().to_string(),
                what: what.to_string(),
                after: self.request_timeout,
            }),
        }
    }

    /// `http(s)://<api host>/v2/<name>/<suffix>`.
    pub(crate) fn url(&self, repo: &Repository, suffix: &str) -> Result<Url, RegistryError> {
        let host = repo.api_host();
        let scheme = if self.config().allows_plain_http(repo.registry())
            || self.config().allows_plain_http(host)
        {
            "http"
        } else {
            "https"
        };
        let text = format!("{scheme}://{host}/v2/{}/{suffix}", repo.name());
        Url::parse(&text).map_err(|e| RegistryError::InvalidReference {
            input: repo.to_string(),
            reason: format!("cannot form the registry URL {text}: {e}"),
        })
    }

    /// Resolves a tag (or checks a digest) with a HEAD request: the manifest's digest, media type
    /// and size. Falls back to GET and hashing when the registry omits `Docker-Content-Digest`.
    pub async fn resolve(&self, reference: &ImageReference) -> Result<Descriptor, RegistryError> {
        let repo = reference.repository();
        let what = format!("manifest {reference}");
        let what = what.as_str();
        self.with_deadline(repo, what, |deadline| async move {
            let url = self.url(
                repo,
                &format!("manifests/{}", reference.manifest_reference()),
            )?;
            let head = Call {
                repo,
                method: Method::HEAD,
                url: url.clone(),
                accept: &media_type::MANIFEST_TYPES,
                what,
                pass: &[StatusCode::METHOD_NOT_ALLOWED],
            };
            let resp = self.transport.send(&head, deadline).await?;
            if resp.status().is_success() {
                let headers = resp.headers();
                let digest = header_digest(headers, repo, what)?;
                let size = headers
                    .get(reqwest::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|n| *n > 0);
                if let (Some(digest), Some(size)) = (digest, size) {
                    if let Some(expected) = reference.digest()
                        && *expected != digest
                    {
                        return Err(RegistryError::DigestMismatch {
                            what: what.to_string(),
                            expected: expected.to_string(),
                            actual: digest.to_string(),
                        });
                    }
                    let mt = header_media_type(headers).ok_or_else(|| {
                        RegistryError::InvalidResponse {
                            registry: repo.registry().to_string(),
                            what: what.to_string(),
                            reason: "HEAD answer has no Content-Type".into(),
                        }
                    })?;
                    return Ok(Descriptor::new(&mt, digest, size));
                }
            }
            // GET the manifest and hash it ourselves.
            let get = Call {
                method: Method::GET,
                pass: &[],
                ..head
            };
            let resp = self.transport.send(&get, deadline).await?;
            let header_mt = header_media_type(resp.headers());
            let bytes = read_capped(
                resp,
                self.config().max_manifest_bytes,
                what,
                repo.registry(),
            )
            .await?;
            let digest = match reference.digest() {
                Some(expected) => {
                    expected.verify(&bytes, what)?;
                    expected.clone()
                }
                None => Digest::sha256_of(&bytes),
            };
            let mt = pick_media_type(header_mt, &bytes, repo, what)?;
            Ok(Descriptor::new(&mt, digest, bytes.len() as u64))
        })
        .await
    }

    /// The repositories of `registry` (`GET /v2/_catalog`, following `Link` pages of 1,000), at
    /// most `max`; the second value is true when there were more. Credentials are those for the
    /// registry's repositories: a registry whose token service grants `registry:catalog:*` only
    /// on request (ACR with scoped tokens) may refuse it; list repositories there by name.
    pub async fn catalog(
        &self,
        registry: &str,
        max: usize,
    ) -> Result<(Vec<String>, bool), RegistryError> {
        // Requests need a repository for their host and credentials; the name is never sent.
        let anchor = Repository::new(registry, "catalog")?;
        let first = self.url(&anchor, "")?;
        let first =
            first
                .join("/v2/_catalog?n=1000")
                .map_err(|e| RegistryError::InvalidReference {
                    input: registry.to_owned(),
                    reason: format!("cannot form the catalog URL: {e}"),
                })?;
        self.paged_list(
            &anchor,
            first,
            &format!("catalog of {registry}"),
            max,
            "repositories",
        )
        .await
    }

    /// The tags of `repo` (`GET /v2/<name>/tags/list`, following `Link` pages of 1,000), at
    /// most `max`; the second value is true when there were more.
    pub async fn list_tags(
        &self,
        repo: &Repository,
        max: usize,
    ) -> Result<(Vec<String>, bool), RegistryError> {
        let first = self.url(repo, "tags/list?n=1000")?;
        self.paged_list(repo, first, &format!("tags of {repo}"), max, "tags")
            .await
    }

    /// GETs `first` and the pages its `Link` headers name, collecting the strings of each JSON
    /// answer's `field` array (`tags`, `repositories`), at most `max`; true when there were more.
    async fn paged_list(
        &self,
        repo: &Repository,
        first: Url,
        what: &str,
        max: usize,
        field: &str,
    ) -> Result<(Vec<String>, bool), RegistryError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let page = self
                .with_deadline(repo, what, |deadline| {
                    let url = url.clone();
                    async move {
                        let call = Call {
                            repo,
                            method: Method::GET,
                            url: url.clone(),
                            accept: &["application/json"],
                            what,
                            pass: &[],
                        };
                        let resp = self.transport.send(&call, deadline).await?;
                        let link = resp
                            .headers()
                            .get(reqwest::header::LINK)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| {
                                v.split_once('<')?
                                    .1
                                    .split_once('>')
                                    .map(|(u, _)| u.to_owned())
                            });
                        let bytes =
                            read_capped(resp, 16 * 1024 * 1024, what, repo.registry()).await?;
                        let value: serde_json::Value =
                            serde_json::from_slice(&bytes).map_err(|e| {
                                RegistryError::InvalidResponse {
                                    registry: repo.registry().to_string(),
                                    what: what.to_string(),
                                    reason: format!("not JSON: {e}"),
                                }
                            })?;
                        let next = link.and_then(|l| url.join(&l).ok());
                        let items: Vec<String> = value
                            .get(field)
                            .and_then(|a| a.as_array())
                            .map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        Ok((items, next))
                    }
                })
                .await?;
            out.extend(page.0);
            if out.len() >= max {
                let more = out.len() > max || page.1.is_some();
                out.truncate(max);
                return Ok((out, more));
            }
            next = page.1;
        }
        Ok((out, false))
    }

    /// Fetches a manifest by digest, capped at `max_manifest_bytes` and verified against `digest`.
    pub async fn fetch_manifest(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Manifest, RegistryError> {
        let what = format!("manifest {repo}@{digest}");
        let what = what.as_str();
        self.with_deadline(repo, what, |deadline| async move {
            let call = Call {
                repo,
                method: Method::GET,
                url: self.url(repo, &format!("manifests/{digest}"))?,
                accept: &media_type::MANIFEST_TYPES,
                what,
                pass: &[],
            };
            let resp = self.transport.send(&call, deadline).await?;
            let header_mt = header_media_type(resp.headers());
            let bytes = read_capped(
                resp,
                self.config().max_manifest_bytes,
                what,
                repo.registry(),
            )
            .await?;
            digest.verify(&bytes, what)?;
            let media_type = pick_media_type(header_mt, &bytes, repo, what)?;
            Ok(Manifest {
                digest: digest.clone(),
                media_type,
                bytes,
            })
        })
        .await
    }

    /// Fetches a blob, capped at `max_blob_bytes` and verified against the descriptor's digest
    /// and size. Embedded `data` is used without a request.
    pub async fn fetch_blob(
        &self,
        repo: &Repository,
        descriptor: &Descriptor,
    ) -> Result<Bytes, RegistryError> {
        let what = format!("blob {repo}@{}", descriptor.digest);
        let limit = self.config().max_blob_bytes;
        if descriptor.size > limit {
            return Err(RegistryError::TooLarge {
                what,
                limit,
                size: Some(descriptor.size),
            });
        }
        let check = |bytes: Bytes, what: &str| -> Result<Bytes, RegistryError> {
            descriptor.digest.verify(&bytes, what)?;
            if bytes.len() as u64 != descriptor.size {
                return Err(RegistryError::InvalidManifest {
                    what: what.to_string(),
                    reason: format!(
                        "descriptor says {} bytes but the content has {}",
                        descriptor.size,
                        bytes.len()
                    ),
                });
            }
            Ok(bytes)
        };
        if let Some(data) = &descriptor.data {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| RegistryError::InvalidManifest {
                    what: what.clone(),
                    reason: format!("descriptor data is not base64: {e}"),
                })?;
            return check(Bytes::from(bytes), &what);
        }
        let what = what.as_str();
        self.with_deadline(repo, what, |deadline| async move {
            let call = Call {
                repo,
                method: Method::GET,
                url: self.url(repo, &format!("blobs/{}", descriptor.digest))?,
                accept: &[],
                what,
                pass: &[],
            };
            let resp = self.transport.send(&call, deadline).await?;
            let bytes = read_capped(resp, limit, what, repo.registry()).await?;
            check(bytes, what)
        })
        .await
    }

    /// Cosign's legacy signature manifest (`sha256-<hex>.sig` tag) for `digest`, if any.
    pub async fn cosign_signature_tag(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Option<Descriptor>, RegistryError> {
        let reference = ImageReference::with_tag(repo.clone(), &digest.cosign_signature_tag())?;
        match self.resolve(&reference).await {
            Ok(d) => Ok(Some(d)),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// `Docker-Content-Digest`, if present; malformed values are a protocol error.
fn header_digest(
    headers: &HeaderMap,
    repo: &Repository,
    what: &str,
) -> Result<Option<Digest>, RegistryError> {
    let Some(v) = headers.get("docker-content-digest") else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or_default().trim();
    Digest::parse(text)
        .map(Some)
        .map_err(|_| RegistryError::InvalidResponse {
            registry: repo.registry().to_string(),
            what: what.to_string(),
            reason: format!("Docker-Content-Digest {text:?} is not a valid digest"),
        })
}

fn header_media_type(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let mt = bare_media_type(ct);
    (!mt.is_empty()).then_some(mt)
}

/// The manifest's media type: the `Content-Type` when it is a manifest type, else the body's
/// `mediaType` field.
fn pick_media_type(
    header: Option<String>,
    bytes: &[u8],
    repo: &Repository,
    what: &str,
) -> Result<String, RegistryError> {
    if let Some(h) = &header
        && media_type::MANIFEST_TYPES.contains(&h.as_str())
    {
        return Ok(h.clone());
    }
    embedded_media_type(bytes).ok_or_else(|| RegistryError::InvalidResponse {
        registry: repo.registry().to_string(),
        what: what.to_string(),
        reason: format!(
            "the media type is unknown: Content-Type {:?} and no mediaType field",
            header.unwrap_or_default()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_matching() {
        let c = RegistryConfig {
            plain_http_registries: vec!["127.0.0.1:5000".into(), "localhost".into()],
            ..Default::default()
        };
        assert!(c.allows_plain_http("127.0.0.1:5000"));
        assert!(!c.allows_plain_http("127.0.0.1:5001"));
        assert!(c.allows_plain_http("localhost:1234"));
        assert!(!c.allows_plain_http("myacr.azurecr.io"));
        let all = RegistryConfig {
            plain_http_registries: vec!["*".into()],
            ..Default::default()
        };
        assert!(all.allows_plain_http("myacr.azurecr.io"));
        let bad = RegistryConfig {
            plain_http_registries: vec!["http://x:5000".into()],
            ..Default::default()
        };
        assert!(RegistryClient::anonymous(bad).is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_millis(200));
        assert_eq!(p.backoff(1), Duration::from_millis(400));
        assert_eq!(p.backoff(3), Duration::from_millis(1600));
        assert_eq!(p.backoff(4), Duration::from_millis(1750));
        assert_eq!(p.backoff(40), Duration::from_millis(1750));
    }
}
