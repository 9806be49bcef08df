//! An in-process OCI registry that implements the referrers API (docker-registry 2.8 does not).
//!
//! In memory, on a free `127.0.0.1` port, plain HTTP. Implements `/v2/`, blob HEAD/GET, uploads
//! (POST, PATCH, monolithic PUT), manifest HEAD/GET/PUT by tag or digest (bytes stored exactly,
//! `Docker-Content-Digest`, `OCI-Subject` on PUT with a subject), tag listing, and
//! `GET /v2/<name>/referrers/<digest>[?artifactType=]` per distribution 1.1 (artifactType from the
//! manifest or its `config.mediaType`, annotations copied, `OCI-Filters-Applied`, `Link` paging).
//! Test switches: disable the referrers API (404 like old registries), page size, filtering off,
//! omit `Docker-Content-Digest`, serve wrong bytes for a digest, Basic or Bearer auth with a token
//! endpoint, injected failures (status + `Retry-After`), added latency, and a request log.
//!
//! Over 600 lines because the registry surface the tests need (uploads, manifests, referrers,
//! faults, token auth) in one server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SERVICE: &str = "inproc-registry";

/// Which credentials the registry demands.
#[derive(Clone, Debug, Default)]
pub enum RegistryAuth {
    /// Everything is public.
    #[default]
    None,
    /// `Authorization: Basic` with these credentials on every `/v2/` request.
    Basic { username: String, password: String },
    /// Docker token flow: `/token` issues tokens for Basic credentials (GET) or for
    /// `refresh_token` / `password` grants (POST form); `/v2/` requests need a token whose scope
    /// covers `repository:<name>:pull` (reads) or `:push` (writes).
    Bearer {
        username: String,
        password: String,
        refresh_token: Option<String>,
        token_ttl: Duration,
    },
}

/// One request as the registry saw it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub status: u16,
    pub had_authorization: bool,
}

#[derive(Clone, Debug)]
struct Fault {
    path_contains: Option<String>,
    status: u16,
    retry_after: Option<String>,
    remaining: usize,
}

#[derive(Clone)]
struct StoredManifest {
    media_type: String,
    bytes: Bytes,
    seq: u64,
}

#[derive(Default)]
struct Inner {
    blobs: HashMap<(String, String), Bytes>,
    manifests: HashMap<(String, String), StoredManifest>,
    tags: HashMap<(String, String), String>,
    uploads: HashMap<String, (String, Vec<u8>)>,
    wrong_bytes: HashMap<String, Bytes>,
    referrers_disabled: bool,
    page_size: Option<usize>,
    no_filtering: bool,
    omit_digest_header: bool,
    latency: Duration,
    /// Requests per second served before answering 429 (`Retry-After: 1`), and the current
    /// one-second window (start, requests in it).
    rate_limit: Option<u32>,
    window: Option<(Instant, u32)>,
    faults: Vec<Fault>,
    auth: RegistryAuth,
    tokens: HashMap<String, (Vec<String>, Instant)>,
    log: Vec<LoggedRequest>,
}

struct Shared {
    inner: Mutex<Inner>,
    seq: AtomicU64,
    addr: SocketAddr,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
}

/// A running in-process registry. Dropping it stops the server.
pub struct InprocRegistry {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl InprocRegistry {
    /// Starts the registry on a free `127.0.0.1` port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0 for the in-process registry")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            seq: AtomicU64::new(1),
            addr,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(InprocRegistry {
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `127.0.0.1:<port>`, the registry part of references.
    pub fn host_port(&self) -> String {
        self.shared.addr.to_string()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// Stops serving and closes the port (open connections are closed too).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    /// Stores a blob directly; returns its digest.
    pub fn put_blob(&self, repo: &str, bytes: impl Into<Bytes>) -> String {
        let bytes = bytes.into();
        let digest = sha256_digest(&bytes);
        self.shared
            .lock()
            .blobs
            .insert((repo.to_string(), digest.clone()), bytes);
        digest
    }

    /// Stores a manifest directly (bytes exact), optionally tagged; returns its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        media_type: &str,
        bytes: impl Into<Bytes>,
    ) -> String {
        let bytes = bytes.into();
        let digest = sha256_digest(&bytes);
        let seq = self.shared.next();
        let mut inner = self.shared.lock();
        inner.manifests.insert(
            (repo.to_string(), digest.clone()),
            StoredManifest {
                media_type: media_type.to_string(),
                bytes,
                seq,
            },
        );
        if let Some(t) = tag {
            inner
                .tags
                .insert((repo.to_string(), t.to_string()), digest.clone());
        }
        digest
    }

    /// The digest `repo:tag` points to.
    pub fn manifest_digest(&self, repo: &str, tag: &str) -> Option<String> {
        self.shared
            .lock()
            .tags
            .get(&(repo.to_string(), tag.to_string()))
            .cloned()
    }

    /// Requests answered with `status` so far.
    pub fn count_status(&self, status: u16) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    /// Answers the referrers endpoint with 404, like registries without the API.
    pub fn disable_referrers_api(&self, disabled: bool) {
        self.shared.lock().referrers_disabled = disabled;
    }

    /// Referrers pages hold at most `n` descriptors (`None`: one page).
    pub fn set_referrers_page_size(&self, n: Option<usize>) {
        self.shared.lock().page_size = n;
    }

    /// Ignore `artifactType` on the referrers endpoint (no `OCI-Filters-Applied`).
    pub fn disable_referrers_filtering(&self, disabled: bool) {
        self.shared.lock().no_filtering = disabled;
    }

    /// Omit `Docker-Content-Digest` from manifest responses.
    pub fn omit_digest_header(&self, omit: bool) {
        self.shared.lock().omit_digest_header = omit;
    }

    /// Serve `bytes` whenever the manifest or blob with `digest` is fetched (its digest header stays).
    pub fn serve_wrong_bytes(&self, digest: &str, bytes: impl Into<Bytes>) {
        self.shared
            .lock()
            .wrong_bytes
            .insert(digest.to_string(), bytes.into());
    }

    /// Beyond `per_second` requests in a second, answer 429 `TOOMANYREQUESTS` with
    /// `Retry-After: 1`, as ACR throttles (`None`: no limit).
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        let mut inner = self.shared.lock();
        inner.rate_limit = per_second;
        inner.window = None;
    }

    /// Delay every response by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// The next `n` requests under `/v2/<name>/` answer `status` (with `Retry-After` if given).
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<&str>) {
        self.push_fault(None, n, status, retry_after);
    }

    /// The next `n` requests whose path contains `path_contains` answer `status`.
    pub fn fail_next_matching(
        &self,
        path_contains: &str,
        n: usize,
        status: u16,
        retry_after: Option<&str>,
    ) {
        self.push_fault(Some(path_contains.to_string()), n, status, retry_after);
    }

    fn push_fault(&self, path: Option<String>, n: usize, status: u16, retry_after: Option<&str>) {
        self.shared.lock().faults.push(Fault {
            path_contains: path,
            status,
            retry_after: retry_after.map(str::to_string),
            remaining: n,
        });
    }

    /// Drops injected failures that have not fired yet.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Require credentials from now on.
    pub fn set_auth(&self, auth: RegistryAuth) {
        self.shared.lock().auth = auth;
    }

    /// Invalidate every issued token (as if they expired server-side).
    pub fn revoke_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.clone()
    }

    /// How many requests so far had a path containing `path_contains`.
    pub fn count_requests(&self, path_contains: &str) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.path.contains(path_contains))
            .count()
    }

    pub fn clear_log(&self) {
        self.shared.lock().log.clear();
    }
}

impl Drop for InprocRegistry {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (latency, throttled) = {
        let mut inner = shared.lock();
        let throttled = match inner.rate_limit {
            None => false,
            Some(limit) => {
                let now = Instant::now();
                let (start, count) = match inner.window {
                    Some((start, count)) if now.duration_since(start) < Duration::from_secs(1) => {
                        (start, count)
                    }
                    _ => (now, 0),
                };
                inner.window = Some((start, count + 1));
                count >= limit
            }
        };
        (inner.latency, throttled)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    let resp = if throttled {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOOMANYREQUESTS",
            "too many requests",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        r
    } else {
        route(&shared, &method, &uri, &headers, body)
    };
    shared.lock().log.push(LoggedRequest {
        method: method.to_string(),
        path,
        status: resp.status().as_u16(),
        had_authorization: headers.contains_key(header::AUTHORIZATION),
    });
    resp
}

fn route(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let query = parse_query(uri.query().unwrap_or(""));
    if let Some(resp) = take_fault(shared, path) {
        return resp;
    }
    if path == "/token" {
        return token_endpoint(shared, method, headers, &query, &body);
    }
    if path == "/v2" || path == "/v2/" {
        if let Some(resp) = check_auth(shared, headers, None, false) {
            return resp;
        }
        return json(
            StatusCode::OK,
            Bytes::from_static(b"{}"),
            "application/json",
        );
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "not a registry path");
    };
    let Some((name, kind, arg)) = split_route(rest) else {
        return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", "unknown route");
    };
    let write = !matches!(*method, Method::GET | Method::HEAD);
    if let Some(resp) = check_auth(shared, headers, Some(name), write) {
        return resp;
    }
    match (kind, method.clone()) {
        ("manifests", Method::GET) | ("manifests", Method::HEAD) => {
            get_manifest(shared, name, arg, *method == Method::HEAD)
        }
        ("manifests", Method::PUT) => put_manifest(shared, name, arg, headers, body),
        ("blobs", Method::GET) | ("blobs", Method::HEAD) => {
            get_blob(shared, name, arg, *method == Method::HEAD)
        }
        ("uploads", Method::POST) => start_upload(shared, name, &query, body),
        ("uploads", Method::PATCH) => patch_upload(shared, name, arg, body),
        ("uploads", Method::PUT) => finish_upload(shared, name, arg, &query, body),
        ("referrers", Method::GET) => referrers(shared, name, arg, &query),
        ("tags", Method::GET) => list_tags(shared, name),
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "method not allowed",
        ),
    }
}

/// Splits `<name>/<kind>/<arg>`; `<name>` may contain slashes.
fn split_route(rest: &str) -> Option<(&str, &'static str, &str)> {
    for (marker, kind) in [
        ("/blobs/uploads/", "uploads"),
        ("/manifests/", "manifests"),
        ("/blobs/", "blobs"),
        ("/referrers/", "referrers"),
    ] {
        if let Some(i) = rest.rfind(marker) {
            let name = &rest[..i];
            let arg = &rest[i + marker.len()..];
            if !name.is_empty() {
                return Some((name, kind, arg));
            }
        }
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads") {
        return Some((name, "uploads", ""));
    }
    rest.strip_suffix("/tags/list")
        .map(|name| (name, "tags", ""))
}

fn take_fault(shared: &Shared, path: &str) -> Option<Response> {
    let mut inner = shared.lock();
    let idx = inner.faults.iter().position(|f| {
        f.remaining > 0
            && match &f.path_contains {
                Some(p) => path.contains(p.as_str()),
                None => path.starts_with("/v2/") && path.len() > 4,
            }
    })?;
    let fault = &mut inner.faults[idx];
    fault.remaining -= 1;
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let retry_after = fault.retry_after.clone();
    inner.faults.retain(|f| f.remaining > 0);
    drop(inner);
    let code = match status.as_u16() {
        429 => "TOOMANYREQUESTS",
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        404 => "NOT_FOUND",
        _ => "UNAVAILABLE",
    };
    let mut resp = error(status, code, "injected failure");
    if let Some(ra) = retry_after
        && let Ok(v) = HeaderValue::from_str(&ra)
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Some(resp)
}

fn check_auth(
    shared: &Shared,
    headers: &HeaderMap,
    name: Option<&str>,
    write: bool,
) -> Option<Response> {
    let mut inner = shared.lock();
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    match inner.auth.clone() {
        RegistryAuth::None => None,
        RegistryAuth::Basic { username, password } => {
            if basic_matches(&given, &username, &password) {
                None
            } else {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHORIZED",
                    "authentication required",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"inproc-registry\""),
                );
                Some(r)
            }
        }
        RegistryAuth::Bearer { .. } => {
            let now = Instant::now();
            inner.tokens.retain(|_, (_, exp)| *exp > now);
            let action = if write { "push" } else { "pull" };
            let needed = name.map(|n| format!("repository:{n}:{action}"));
            let ok = given
                .strip_prefix("Bearer ")
                .and_then(|t| inner.tokens.get(t.trim()))
                .is_some_and(|(scopes, _)| match &needed {
                    Some(n) => scopes.iter().any(|s| s == n),
                    None => true,
                });
            if ok {
                return None;
            }
            let realm = format!("http://{}/token", shared.addr);
            let mut challenge = format!("Bearer realm=\"{realm}\",service=\"{SERVICE}\"");
            if let Some(n) = &needed {
                challenge.push_str(&format!(",scope=\"{n}\""));
            }
            let mut r = error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            Some(r)
        }
    }
}

fn basic_matches(given: &str, username: &str, password: &str) -> bool {
    let Some(b64) = given.strip_prefix("Basic ") else {
        return false;
    };
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .is_some_and(|s| s == format!("{username}:{password}"))
}

fn token_endpoint(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    query: &[(String, String)],
    body: &[u8],
) -> Response {
    let auth = shared.lock().auth.clone();
    let RegistryAuth::Bearer {
        username,
        password,
        refresh_token,
        token_ttl,
    } = auth
    else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no token service");
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (authorized, params) = if *method == Method::POST {
        let form = parse_query(&String::from_utf8_lossy(body));
        let get = |k: &str| form.iter().find(|(fk, _)| fk == k).map(|(_, v)| v.clone());
        let ok = match get("grant_type").as_deref() {
            Some("refresh_token") => {
                refresh_token.is_some() && get("refresh_token") == refresh_token
            }
            Some("password") => {
                get("username").as_deref() == Some(username.as_str())
                    && get("password").as_deref() == Some(password.as_str())
            }
            _ => false,
        };
        (ok, form)
    } else {
        (basic_matches(given, &username, &password), query.to_vec())
    };
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "invalid credentials",
        );
    }
    let mut scopes = Vec::new();
    for (k, v) in &params {
        if k != "scope" {
            continue;
        }
        for s in v.split(' ') {
            // repository:<name>:pull,push → one entry per action.
            if let Some((prefix, actions)) = s.rsplit_once(':') {
                for a in actions.split(',') {
                    scopes.push(format!("{prefix}:{a}"));
                }
            }
        }
    }
    let token = format!(
        "tok-{}-{:x}",
        shared.next(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    shared
        .lock()
        .tokens
        .insert(token.clone(), (scopes, Instant::now() + token_ttl));
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": token_ttl.as_secs(),
    });
    json(
        StatusCode::OK,
        Bytes::from(body.to_string()),
        "application/json",
    )
}

fn resolve_reference(inner: &Inner, name: &str, reference: &str) -> Option<String> {
    if reference.contains(':') {
        Some(reference.to_string())
    } else {
        inner
            .tags
            .get(&(name.to_string(), reference.to_string()))
            .cloned()
    }
}

fn get_manifest(shared: &Shared, name: &str, reference: &str, head: bool) -> Response {
    let inner = shared.lock();
    let Some(digest) = resolve_reference(&inner, name, reference) else {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        );
    };
    let Some(m) = inner.manifests.get(&(name.to_string(), digest.clone())) else {
        return error(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            "manifest unknown",
        );
    };
    let bytes = inner
        .wrong_bytes
        .get(&digest)
        .cloned()
        .unwrap_or_else(|| m.bytes.clone());
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, m.media_type.as_str())
        .header(header::CONTENT_LENGTH, bytes.len());
    if !inner.omit_digest_header {
        b = b.header("Docker-Content-Digest", digest.as_str());
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    b.body(body).unwrap_or_default()
}

fn put_manifest(
    shared: &Shared,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if media_type.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
            "Content-Type required",
        );
    }
    let digest = sha256_digest(&body);
    if reference.contains(':') && reference != digest {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "digest does not match content",
        );
    }
    let parsed: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", "not JSON"),
    };
    let subject = parsed
        .get("subject")
        .and_then(|s| s.get("digest"))
        .and_then(|d| d.as_str())
        .map(str::to_string);
    let seq = shared.next();
    let mut inner = shared.lock();
    inner.manifests.insert(
        (name.to_string(), digest.clone()),
        StoredManifest {
            media_type,
            bytes: body,
            seq,
        },
    );
    if !reference.contains(':') {
        inner
            .tags
            .insert((name.to_string(), reference.to_string()), digest.clone());
    }
    let mut b = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/manifests/{digest}"))
        .header("Docker-Content-Digest", digest.as_str());
    if let Some(s) = subject {
        b = b.header("OCI-Subject", s);
    }
    b.body(Body::empty()).unwrap_or_default()
}

fn get_blob(shared: &Shared, name: &str, digest: &str, head: bool) -> Response {
    let inner = shared.lock();
    let Some(blob) = inner.blobs.get(&(name.to_string(), digest.to_string())) else {
        return error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown");
    };
    let bytes = inner
        .wrong_bytes
        .get(digest)
        .cloned()
        .unwrap_or_else(|| blob.clone());
    let b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, bytes.len())
        .header("Docker-Content-Digest", digest);
    let body = if head {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    b.body(body).unwrap_or_default()
}

fn start_upload(shared: &Shared, name: &str, query: &[(String, String)], body: Bytes) -> Response {
    if let Some((_, digest)) = query.iter().find(|(k, _)| k == "digest") {
        return store_blob(shared, name, digest, body.to_vec());
    }
    let id = format!("upload-{}", shared.next());
    shared
        .lock()
        .uploads
        .insert(id.clone(), (name.to_string(), body.to_vec()));
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}"))
        .header("Docker-Upload-UUID", id.as_str())
        .header(header::RANGE, "0-0")
        .body(Body::empty())
        .unwrap_or_default()
}

fn patch_upload(shared: &Shared, name: &str, id: &str, body: Bytes) -> Response {
    let mut inner = shared.lock();
    let Some((_, data)) = inner.uploads.get_mut(id) else {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "upload unknown",
        );
    };
    data.extend_from_slice(&body);
    let end = data.len().saturating_sub(1);
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}"))
        .header(header::RANGE, format!("0-{end}"))
        .body(Body::empty())
        .unwrap_or_default()
}

fn finish_upload(
    shared: &Shared,
    name: &str,
    id: &str,
    query: &[(String, String)],
    body: Bytes,
) -> Response {
    let Some((_, digest)) = query.iter().find(|(k, _)| k == "digest") else {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "digest query parameter required",
        );
    };
    let Some((_, mut data)) = shared.lock().uploads.remove(id) else {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "upload unknown",
        );
    };
    data.extend_from_slice(&body);
    store_blob(shared, name, digest, data)
}

fn store_blob(shared: &Shared, name: &str, digest: &str, data: Vec<u8>) -> Response {
    let actual = sha256_digest(&data);
    if actual != digest {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "digest does not match content",
        );
    }
    shared
        .lock()
        .blobs
        .insert((name.to_string(), actual.clone()), Bytes::from(data));
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{name}/blobs/{actual}"))
        .header("Docker-Content-Digest", actual.as_str())
        .body(Body::empty())
        .unwrap_or_default()
}

fn list_tags(shared: &Shared, name: &str) -> Response {
    let inner = shared.lock();
    let mut tags: Vec<&String> = inner
        .tags
        .keys()
        .filter(|(n, _)| n == name)
        .map(|(_, t)| t)
        .collect();
    tags.sort();
    let body = serde_json::json!({"name": name, "tags": tags});
    json(
        StatusCode::OK,
        Bytes::from(body.to_string()),
        "application/json",
    )
}

fn referrers(shared: &Shared, name: &str, digest: &str, query: &[(String, String)]) -> Response {
    let inner = shared.lock();
    if inner.referrers_disabled {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from("404 page not found\n"))
            .unwrap_or_default();
    }
    let valid = digest
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "invalid digest");
    }
    let filter = query
        .iter()
        .find(|(k, _)| k == "artifactType")
        .map(|(_, v)| v.clone())
        .filter(|_| !inner.no_filtering);
    let mut found: Vec<(u64, serde_json::Value)> = Vec::new();
    for ((repo, mdigest), m) in &inner.manifests {
        if repo != name {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&m.bytes) else {
            continue;
        };
        if v.get("subject")
            .and_then(|s| s.get("digest"))
            .and_then(|d| d.as_str())
            != Some(digest)
        {
            continue;
        }
        let artifact_type = v
            .get("artifactType")
            .and_then(|a| a.as_str())
            .filter(|a| !a.is_empty())
            .or_else(|| {
                v.get("config")
                    .and_then(|c| c.get("mediaType"))
                    .and_then(|c| c.as_str())
            })
            .map(str::to_string);
        if let Some(f) = &filter
            && artifact_type.as_deref() != Some(f.as_str())
        {
            continue;
        }
        let mut d = serde_json::json!({
            "mediaType": m.media_type,
            "digest": mdigest,
            "size": m.bytes.len(),
        });
        if let Some(a) = artifact_type {
            d["artifactType"] = a.into();
        }
        if let Some(ann) = v
            .get("annotations")
            .filter(|a| a.as_object().is_some_and(|o| !o.is_empty()))
        {
            d["annotations"] = ann.clone();
        }
        found.push((m.seq, d));
    }
    found.sort_by_key(|(seq, _)| *seq);
    let page: usize = query
        .iter()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let size = inner.page_size.unwrap_or(usize::MAX).max(1);
    let start = page.saturating_mul(size).min(found.len());
    let end = start.saturating_add(size).min(found.len());
    let manifests: Vec<serde_json::Value> =
        found[start..end].iter().map(|(_, d)| d.clone()).collect();
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, OCI_INDEX);
    if filter.is_some() {
        b = b.header("OCI-Filters-Applied", "artifactType");
    }
    if end < found.len() {
        let mut next = format!("/v2/{name}/referrers/{digest}?page={}", page + 1);
        if let Some(f) = query.iter().find(|(k, _)| k == "artifactType") {
            let enc: String = url::form_urlencoded::byte_serialize(f.1.as_bytes()).collect();
            next.push_str(&format!("&artifactType={enc}"));
        }
        b = b.header(header::LINK, format!("<{next}>; rel=\"next\""));
    }
    b.body(Body::from(body.to_string())).unwrap_or_default()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn json(status: StatusCode, body: Bytes, content_type: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header("Docker-Distribution-API-Version", "registry/2.0")
        .body(Body::from(body))
        .unwrap_or_default()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    json(status, Bytes::from(body.to_string()), "application/json")
}
