//! The plain-HTTP operations port: `/healthz` (the process answers), `/readyz` (every readiness
//! condition is met) and `/metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// Named readiness conditions (e.g. `store`, `config`, `cache_api`); ready when all are met.
/// Cheap to clone; every clone shares the conditions.
#[derive(Clone, Default, Debug)]
pub struct Readiness {
    conditions: Arc<Mutex<BTreeMap<String, bool>>>,
    /// Warnings shown with the answer without making it unready (a rejected configuration
    /// change while the last good one serves).
    details: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Readiness {
    /// Readiness with the given conditions, none met yet.
    pub fn new(conditions: &[&str]) -> Self {
        let r = Readiness::default();
        for c in conditions {
            r.set(c, false);
        }
        r
    }

    /// Sets (or adds) a condition.
    pub fn set(&self, condition: &str, met: bool) {
        self.lock().insert(condition.to_owned(), met);
    }

    /// Sets (`Some`) or clears a detail line shown by `/readyz`.
    pub fn set_detail(&self, name: &str, detail: Option<String>) {
        let mut d = self.details.lock().unwrap_or_else(|e| e.into_inner());
        match detail {
            Some(text) => d.insert(name.to_owned(), text),
            None => d.remove(name),
        };
    }

    /// Detail lines, `name: text`, in name order.
    pub fn details(&self) -> Vec<String> {
        self.details
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(n, t)| format!("{n}: {t}"))
            .collect()
    }

    /// Conditions not met yet, in name order.
    pub fn pending(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, met)| !**met)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// True when at least one condition is registered and all are met.
    pub fn is_ready(&self) -> bool {
        let c = self.lock();
        !c.is_empty() && c.values().all(|met| *met)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        self.conditions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A section of `/status`: its name and what it reports now.
pub type StatusSource = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// What the operations port serves.
#[derive(Clone)]
pub struct Ops {
    pub readiness: Readiness,
    pub metrics: PrometheusHandle,
    /// `/status` sections (for example `keyManagementProviders`), read at every request.
    pub status: Vec<(String, StatusSource)>,
    /// Revalidation runs (`POST /revalidate`, `GET /revalidate[/{id}]`), when the server has a store.
    pub revalidator: Option<Arc<crate::revalidate::Revalidator>>,
}

impl Ops {
    pub fn new(readiness: Readiness, metrics: PrometheusHandle) -> Self {
        Ops {
            readiness,
            metrics,
            status: Vec::new(),
            revalidator: None,
        }
    }

    /// Serves revalidation runs.
    pub fn with_revalidator(mut self, revalidator: Arc<crate::revalidate::Revalidator>) -> Self {
        self.revalidator = Some(revalidator);
        self
    }

    /// Adds a `/status` section.
    pub fn with_status(mut self, name: &str, source: StatusSource) -> Self {
        self.status.push((name.to_owned(), source));
        self
    }
}

/// The operations router.
pub fn router(ops: Ops) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/status", get(status))
        .route("/revalidate", get(revalidations).post(start_revalidation))
        .route("/revalidate/{id}", get(revalidation))
        .with_state(ops)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ops): State<Ops>) -> Response {
    if ops.readiness.is_ready() {
        let mut body = String::from("ready\n");
        for d in ops.readiness.details() {
            body.push_str(&d);
            body.push('\n');
        }
        (StatusCode::OK, body).into_response()
    } else {
        let pending = ops.readiness.pending();
        let body = if pending.is_empty() {
            "not ready: no readiness conditions registered\n".to_string()
        } else {
            format!("not ready: waiting for {}\n", pending.join(", "))
        };
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn status(State(ops): State<Ops>) -> Response {
    let mut body = serde_json::Map::new();
    for (name, source) in &ops.status {
        body.insert(name.clone(), source());
    }
    axum::Json(serde_json::Value::Object(body)).into_response()
}

fn no_revalidator() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "this server does not revalidate (no verdict store)\n",
    )
        .into_response()
}

async fn start_revalidation(
    State(ops): State<Ops>,
    body: Result<axum::Json<crate::revalidate::Selection>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(r) = &ops.revalidator else {
        return no_revalidator();
    };
    match body {
        Ok(axum::Json(selection)) => {
            let id = r.start(selection, "request");
            (
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({"id": id})),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!(
                "{e} — send \"all\", {{\"key\": \"sha256:…\"}} or {{\"scope\": \"registry/repository\"}}\n"
            ),
        )
            .into_response(),
    }
}

async fn revalidations(State(ops): State<Ops>) -> Response {
    match &ops.revalidator {
        Some(r) => axum::Json(r.reports()).into_response(),
        None => no_revalidator(),
    }
}

async fn revalidation(
    State(ops): State<Ops>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> Response {
    match ops.revalidator.as_ref().map(|r| r.report(id)) {
        None => no_revalidator(),
        Some(None) => {
            (StatusCode::NOT_FOUND, format!("no revalidation run {id}\n")).into_response()
        }
        Some(Some(report)) => axum::Json(report).into_response(),
    }
}

async fn metrics_text(State(ops): State<Ops>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&ops.metrics),
    )
        .into_response()
}

/// Serves the operations router until `cancel`, draining histogram buckets every few seconds
/// (the exporter needs upkeep when it is not installed with its own HTTP listener).
pub async fn serve(
    listener: TcpListener,
    ops: Ops,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let handle = ops.metrics.clone();
    let upkeep_cancel = cancel.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = upkeep_cancel.cancelled() => break,
                _ = tick.tick() => handle.run_upkeep(),
            }
        }
    });
    let result = axum::serve(listener, router(ops))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
        .map_err(|e| Error::Serve {
            what: "operations",
            reason: e.to_string(),
        });
    upkeep.abort();
    result
}
