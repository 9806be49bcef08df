//! The HTTPS listener for Gatekeeper and the operations listener.
//!
//! TLS is accepted by our own loop (tokio-rustls + hyper's HTTP/1.1 and HTTP/2 connection
//! builders, chosen by ALPN) rather than axum-server: it is the same stack a bare hyper server
//! uses, so the only per-request overhead on top of it is axum's routing and our handler (the
//! benchmark compares against exactly that); the `ServerConfig` for each new connection comes
//! from [`TlsReloader`] (hot reload without restarting the listener); and we keep control of the
//! handshake timeout, the connection limit and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::error::Error;
use crate::metrics as m;
use crate::ops::{self, Ops};
use crate::service::{Endpoint, VerdictService};
use crate::tls::TlsReloader;
use crate::wire::ProviderResponse;

/// The readiness condition this server sets while it accepts connections.
pub const READINESS_CONDITION: &str = "cache_api";

/// Paths of the four external-data endpoints (Ratify's).
pub const PATH_V1_VERIFY: &str = "/ratify/gatekeeper/v1/verify";
pub const PATH_V2_VERIFY: &str = "/ratify/gatekeeper/v2/verify";
pub const PATH_V1_MUTATE: &str = "/ratify/gatekeeper/v1/mutate";
pub const PATH_V2_MUTATE: &str = "/ratify/gatekeeper/v2/mutate";

/// Bodies over the limit are still read (and discarded) up to this size so the client receives
/// the `systemError` answer instead of a reset; larger ones get the answer and a closed connection.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Both listeners, bound and ready to [`run`](CacheApi::run).
pub struct CacheApi {
    config: Config,
    service: VerdictService,
    ops: Ops,
    tls: Arc<TlsReloader>,
    listener: TcpListener,
    ops_listener: TcpListener,
    local_addr: SocketAddr,
    ops_addr: SocketAddr,
    extra: Vec<ExtraListener>,
}

/// A listener on `addr` and the address it got (`what` names it in errors).
async fn bind(what: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let failed = |source| Error::Bind {
        what,
        addr,
        source: Arc::new(source),
    };
    let listener = TcpListener::bind(addr).await.map_err(failed)?;
    let local = listener.local_addr().map_err(failed)?;
    Ok((listener, local))
}

/// Another router served beside the API on its own listener (the registry-event receivers):
/// HTTPS with the API's certificate but no client-certificate requirement (registries have none),
/// or plain HTTP when TLS ends at an ingress.
struct ExtraListener {
    what: &'static str,
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<TlsReloader>>,
}

impl CacheApi {
    /// Serves `router` on `addr` too (see [`ExtraListener`]); returns the bound address.
    pub async fn add_listener(
        &mut self,
        what: &'static str,
        addr: SocketAddr,
        router: Router,
        plain_http: bool,
    ) -> Result<SocketAddr, Error> {
        let (listener, local) = bind(what, addr).await?;
        let tls = if plain_http {
            None
        } else {
            let mut settings = self.config.tls.clone();
            settings.client_ca_path = None;
            Some(TlsReloader::load(&settings)?)
        };
        self.extra.push(ExtraListener {
            what,
            listener,
            router,
            tls,
        });
        Ok(local)
    }

    /// Loads TLS and binds both listeners (port 0 picks a free port; see [`CacheApi::local_addr`]).
    pub async fn bind(config: Config, service: VerdictService, ops: Ops) -> Result<Self, Error> {
        config.validate()?;
        ops.readiness.set(READINESS_CONDITION, false);
        let tls = TlsReloader::load(&config.tls)?;
        let (listener, local_addr) = bind("HTTPS", config.listen).await?;
        let (ops_listener, ops_addr) = bind("operations", config.ops_listen).await?;
        Ok(CacheApi {
            config,
            service,
            ops,
            tls,
            listener,
            ops_listener,
            local_addr,
            ops_addr,
            extra: Vec::new(),
        })
    }

    /// Binds and serves until `cancel` (see [`CacheApi::bind`] and [`CacheApi::run`]).
    pub async fn serve(
        config: Config,
        service: VerdictService,
        ops: Ops,
        cancel: CancellationToken,
    ) -> Result<(), Error> {
        Self::bind(config, service, ops).await?.run(cancel).await
    }

    /// The bound HTTPS address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound operations address.
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops_addr
    }

    /// The TLS configuration source (e.g. to force a reload check).
    pub fn tls(&self) -> Arc<TlsReloader> {
        Arc::clone(&self.tls)
    }

    /// Serves both listeners and reloads TLS files until `cancel`; then stops accepting, lets
    /// open requests finish for up to `shutdown_grace`, and returns.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), Error> {
        let CacheApi {
            config,
            service,
            ops,
            tls,
            listener,
            ops_listener,
            local_addr,
            ops_addr,
            extra,
        } = self;
        let reloader = Arc::clone(&tls).spawn(cancel.child_token());
        let mut extra_tasks = Vec::new();
        for ExtraListener {
            what,
            listener,
            router,
            tls,
        } in extra
        {
            let cancel = cancel.clone();
            let config = config.clone();
            info!(what, addr = ?listener.local_addr().ok(), tls = tls.is_some(), "listening");
            extra_tasks.push(tokio::spawn(async move {
                match tls {
                    Some(tls) => {
                        let reloader = Arc::clone(&tls).spawn(cancel.child_token());
                        accept_loop(listener, tls, router, &config, &cancel).await;
                        let _ = reloader.await;
                    }
                    None => {
                        let shutdown = cancel.clone();
                        if let Err(e) = axum::serve(listener, router)
                            .with_graceful_shutdown(async move { shutdown.cancelled().await })
                            .await
                        {
                            warn!(what, error = %e, "listener failed");
                        }
                    }
                }
            }));
        }
        let readiness = ops.readiness.clone();
        let ops_task = tokio::spawn(ops::serve(ops_listener, ops, cancel.child_token()));
        info!(%local_addr, %ops_addr, mtls = config.tls.client_ca_path.is_some(), "cache API listening");
        readiness.set(READINESS_CONDITION, true);
        let router = router(service, &config);
        accept_loop(listener, tls, router, &config, &cancel).await;
        readiness.set(READINESS_CONDITION, false);
        let _ = reloader.await;
        for task in extra_tasks {
            let _ = task.await;
        }
        match ops_task.await {
            Ok(r) => r,
            Err(e) => Err(Error::Serve {
                what: "operations",
                reason: e.to_string(),
            }),
        }
    }
}

/// What the handlers share; one `Arc` so a request clones one pointer (an atomic on a cache
/// line every core touches), as before the limits were added.
#[derive(Clone)]
struct AppState(Arc<AppShared>);

struct AppShared {
    service: VerdictService,
    max_body_bytes: usize,
    body_read_timeout: Duration,
    /// Requests being answered (`limits.max_in_flight_requests`).
    in_flight: Budget,
    /// Buffered request-body bytes beyond each request's [`FREE_BODY_BYTES`]
    /// (`limits.max_buffered_bytes`).
    buffered: Budget,
}

/// Body bytes a request may buffer without touching the shared buffer budget: the in-flight cap
/// already bounds them (1,024 × 64 KiB = 64 MiB by default), and Gatekeeper's bodies are about
/// 1 KiB, so the common request pays no shared atomic for them.
const FREE_BODY_BYTES: u64 = 64 * 1024;

/// A count with a ceiling, taken and given back lock-free (tokio's `Semaphore` takes a mutex on
/// every release, which every request would pay twice).
#[derive(Debug)]
struct Budget {
    used: std::sync::atomic::AtomicUsize,
    limit: usize,
}

impl Budget {
    fn new(limit: usize) -> Self {
        Budget {
            used: std::sync::atomic::AtomicUsize::new(0),
            limit,
        }
    }

    /// `n` more, unless that would pass the limit.
    fn try_take(&self, n: usize) -> Option<Taken<'_>> {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        self.used
            .fetch_update(AcqRel, Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .ok()
            .map(|_| Taken { budget: self, n })
    }
}

/// Part of a [`Budget`], given back when dropped.
struct Taken<'a> {
    budget: &'a Budget,
    n: usize,
}

impl Taken<'_> {
    fn merge(&mut self, other: Taken<'_>) {
        self.n += other.n;
        std::mem::forget(other);
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.budget
            .used
            .fetch_sub(self.n, std::sync::atomic::Ordering::AcqRel);
    }
}

/// The external-data router (without TLS; useful for in-process tests and benchmarks).
pub fn router(service: VerdictService, config: &Config) -> Router {
    let state = AppState(Arc::new(AppShared {
        service,
        max_body_bytes: config.max_body_bytes,
        body_read_timeout: config.body_read_timeout,
        in_flight: Budget::new(config.limits.max_in_flight_requests),
        buffered: Budget::new(config.limits.max_buffered_bytes),
    }));
    Router::new()
        .route(PATH_V1_VERIFY, post(verify_v1))
        .route(PATH_V2_VERIFY, post(verify_v2))
        .route(PATH_V1_MUTATE, post(mutate_v1))
        .route(PATH_V2_MUTATE, post(mutate_v2))
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
}

async fn verify_v1(State(s): State<AppState>, req: Request) -> Response {
    external_data(s, Endpoint::VerifyV1, req).await
}

async fn verify_v2(State(s): State<AppState>, req: Request) -> Response {
    external_data(s, Endpoint::VerifyV2, req).await
}

async fn mutate_v1(State(s): State<AppState>, req: Request) -> Response {
    external_data(s, Endpoint::MutateV1, req).await
}

async fn mutate_v2(State(s): State<AppState>, req: Request) -> Response {
    external_data(s, Endpoint::MutateV2, req).await
}

/// Extract the body, call the service, answer HTTP 200 with its `ProviderResponse`. Past the
/// in-flight or buffered-bytes limit the request is answered at once with a `systemError`
/// (Gatekeeper denies; nothing queues without bound).
async fn external_data(AppState(state): AppState, endpoint: Endpoint, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Some(_in_flight) = state.in_flight.try_take(1) else {
        metrics::counter!(m::REQUESTS_SHED, "limit" => "in_flight").increment(1);
        let busy =
            Error::Overloaded("every request slot is taken (--max-in-flight-requests)".into());
        return json(
            StatusCode::OK,
            &state.service.handle(endpoint, Err(busy)).await,
        );
    };
    let mut buffered = None;
    let body = read_body(
        &parts.headers,
        body,
        state.max_body_bytes,
        state.body_read_timeout,
        &state.buffered,
        &mut buffered,
    )
    .await;
    let answer = state.service.handle(endpoint, body).await;
    drop(buffered);
    json(StatusCode::OK, &answer)
}

async fn unknown_path(req: Request) -> Response {
    let answer = ProviderResponse::system_error(
        format!(
            "no external-data endpoint at {}; set the Provider's spec.url to one of {PATH_V1_VERIFY}, {PATH_V2_VERIFY}, {PATH_V1_MUTATE}, {PATH_V2_MUTATE}",
            req.uri().path()
        ),
        false,
    );
    json(StatusCode::NOT_FOUND, &answer)
}

async fn wrong_method(req: Request) -> Response {
    let answer = ProviderResponse::system_error(
        format!(
            "{} is not allowed on {}; Gatekeeper sends POST with a ProviderRequest body",
            req.method(),
            req.uri().path()
        ),
        false,
    );
    json(StatusCode::METHOD_NOT_ALLOWED, &answer)
}

fn json(status: StatusCode, answer: &ProviderResponse) -> Response {
    let mut response = Response::new(Body::from(answer.to_json()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Reads at most `limit` bytes within `read_timeout`; a larger body is drained (up to
/// [`DRAIN_LIMIT`]) and refused. Kept bytes past [`FREE_BODY_BYTES`] are taken from `budget`
/// (held in `*held` until the caller drops it); when the budget is spent the request is refused.
///
/// Not `http_body_util::Limited`: it stops at the limit, and this reader must also charge the
/// shared budget frame by frame and drain an oversized body so the client reads the refusal
/// (with its size) instead of a reset connection.
async fn read_body<'a>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    read_timeout: Duration,
    budget: &'a Budget,
    held: &mut Option<Taken<'a>>,
) -> Result<Bytes, Error> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > DRAIN_LIMIT) {
        return Err(Error::BodyTooLarge {
            limit,
            size: Some(len),
        });
    }
    let read = async {
        let mut body = body;
        let mut first: Option<Bytes> = None;
        let mut buf = BytesMut::new();
        let mut total: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::BodyRead(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total += data.len() as u64;
            if total > limit as u64 {
                if total > DRAIN_LIMIT {
                    break;
                }
                continue;
            }
            // Only bytes beyond the free allowance count against the shared budget.
            let charged = total.saturating_sub(FREE_BODY_BYTES).min(data.len() as u64);
            if charged > 0 {
                let Some(permit) = budget.try_take(charged as usize) else {
                    metrics::counter!(m::REQUESTS_SHED, "limit" => "buffered_bytes").increment(1);
                    return Err(Error::Overloaded(
                        "request bodies being read fill the buffer budget (--max-buffered-mib)"
                            .into(),
                    ));
                };
                match held.as_mut() {
                    Some(h) => h.merge(permit),
                    None => *held = Some(permit),
                }
            }
            // The common single-chunk body is kept without copying.
            match first.take() {
                None if buf.is_empty() => first = Some(data),
                None => buf.extend_from_slice(&data),
                Some(f) => {
                    buf.extend_from_slice(&f);
                    buf.extend_from_slice(&data);
                }
            }
        }
        if total > limit as u64 {
            return Err(Error::BodyTooLarge {
                limit,
                size: Some(total),
            });
        }
        Ok(first.unwrap_or_else(|| buf.freeze()))
    };
    tokio::time::timeout(read_timeout, read)
        .await
        .unwrap_or(Err(Error::BodyTimeout(read_timeout)))
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<TlsReloader>,
    router: Router,
    config: &Config,
    cancel: &CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.limits.max_concurrent_streams);
    let handshake_timeout = config.tls.handshake_timeout;
    let reaper = Arc::new(IdleReaper::default());
    let reaper_task = tokio::spawn(Arc::clone(&reaper).run(config.limits.idle_timeout));
    loop {
        let (tcp, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics::counter!(m::CONNECTIONS_REJECTED).increment(1);
            debug!(%peer, "closing connection: max_connections reached");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.current());
        let watcher = graceful.watcher();
        let activity = Arc::new(Activity::default());
        let service = {
            let (router, activity) = (router.clone(), Arc::clone(&activity));
            // What hyper-util's TowerToHyperService does (clone the router, oneshot), plus
            // counting the request for the idle timeout; no allocation per request.
            hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let guard = activity.begin();
                let call = tower::ServiceExt::oneshot(router.clone(), req.map(Body::new));
                async move {
                    let response = call.await;
                    drop(guard);
                    response
                }
            })
        };
        let (http1, http2) = (http1.clone(), http2.clone());
        let task = tokio::spawn(async move {
            let _slot = slot;
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    metrics::counter!(m::TLS_HANDSHAKE_FAILURES).increment(1);
                    debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    metrics::counter!(m::TLS_HANDSHAKE_FAILURES).increment(1);
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let io = TokioIo::new(stream);
            let served = if h2 {
                watcher.watch(http2.serve_connection(io, service)).await
            } else {
                watcher.watch(http1.serve_connection(io, service)).await
            };
            if let Err(e) = served {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
        reaper.track(activity, task.abort_handle());
    }
    reaper_task.abort();
    drop(listener);
    if tokio::time::timeout(config.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(grace = ?config.shutdown_grace, "connections still open after the shutdown grace period; closing them");
    }
}

/// What a connection is doing, for the idle timeout: requests in flight and requests begun.
#[derive(Default)]
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    begun: std::sync::atomic::AtomicU64,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        use std::sync::atomic::Ordering::Relaxed;
        self.begun.fetch_add(1, Relaxed);
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(Arc::clone(self))
    }
}

/// Closes idle connections: every `idle` it looks at each open connection's [`Activity`], and
/// aborts the task of one that had no request in flight and none begun for a whole period (so an
/// idle connection is closed between one and two periods after its last request). Nothing runs
/// per request but the [`Activity`] counters, and nothing per poll of a connection.
#[derive(Default)]
struct IdleReaper {
    /// Open connections and how many requests each had begun at the last look.
    conns: std::sync::Mutex<Vec<(Arc<Activity>, tokio::task::AbortHandle, u64)>>,
}

impl IdleReaper {
    fn track(&self, activity: Arc<Activity>, task: tokio::task::AbortHandle) {
        let begun = activity.begun.load(std::sync::atomic::Ordering::Relaxed);
        self.lock().push((activity, task, begun));
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, Vec<(Arc<Activity>, tokio::task::AbortHandle, u64)>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(self: Arc<Self>, idle: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut tick = tokio::time::interval(idle);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let mut closed = 0u64;
            self.lock().retain_mut(|(activity, task, seen)| {
                if task.is_finished() {
                    return false;
                }
                let begun = activity.begun.load(Relaxed);
                if begun == *seen && activity.in_flight.load(Relaxed) == 0 {
                    task.abort();
                    closed += 1;
                    return false;
                }
                *seen = begun;
                true
            });
            if closed > 0 {
                metrics::counter!(m::CONNECTIONS_IDLE_CLOSED).increment(closed);
                debug!(closed, ?idle, "closed idle connections");
            }
        }
    }
}

/// Ends a request in [`Activity`] when dropped (also when the request is cancelled).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
