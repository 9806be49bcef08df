//! The HTTP receivers (`verdict serve --events-listen`): `POST /events/acr` (ACR webhooks),
//! `POST|OPTIONS /events/eventgrid` (Event Grid schema with its validation handshake, and
//! CloudEvents 1.0 with the `WebHook-Request-Origin` handshake), `POST /events/registry`
//! (distribution notifications). Every request must carry the shared secret; an event is
//! answered 2xx only once the bus accepted it (JetStream: stored), 503 while it cannot.
//!
//! Handlers only extract and map; [`Receiver::receive`] decides.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tracing::{debug, warn};

use crate::bus::EventBus;
use crate::metrics as m;
use crate::parse::{self, Format, Parsed};

/// The shared webhook secret. Never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// A secret from the contents of `--webhook-secret-file` (surrounding whitespace trimmed);
    /// an error when it is empty.
    pub fn new(text: &str) -> Result<Self, String> {
        let s = text.trim();
        if s.is_empty() {
            return Err("the webhook secret is empty: put a random string (e.g. `openssl rand -hex 32`) in the secret file".into());
        }
        Ok(Secret(s.to_owned()))
    }

    fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Receiver settings.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    pub secret: Secret,
    /// The header carrying the secret (ACR custom header): `Authorization: Bearer <secret>` by
    /// default; another header may carry the bare secret or `Bearer <secret>`.
    pub header: HeaderName,
    /// Largest body accepted (Event Grid batches up to 1 MiB by default).
    pub max_body: usize,
}

impl ReceiverConfig {
    pub fn new(secret: Secret) -> Self {
        ReceiverConfig {
            secret,
            header: http::header::AUTHORIZATION,
            max_body: 1024 * 1024,
        }
    }
}

/// The receiver: authenticates, parses, publishes.
pub struct Receiver {
    config: ReceiverConfig,
    bus: Arc<dyn EventBus>,
}

/// What a request gets back.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Accepted { accepted: usize, ignored: usize },
    Validation(String),
    Unauthorized,
    Rejected(String),
    Unavailable(String),
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Accepted { accepted, ignored } => (
                StatusCode::OK,
                axum::Json(json!({"accepted": accepted, "ignored": ignored})),
            )
                .into_response(),
            Reply::Validation(code) => (
                StatusCode::OK,
                axum::Json(json!({"validationResponse": code})),
            )
                .into_response(),
            Reply::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "missing or wrong webhook secret: send `Authorization: Bearer <secret>` (an ACR webhook custom header) or add `?secret=<secret>` to the Event Grid endpoint URL; the secret is the content of --webhook-secret-file"})),
            )
                .into_response(),
            Reply::Rejected(why) => {
                (StatusCode::BAD_REQUEST, axum::Json(json!({"error": why}))).into_response()
            }
            Reply::Unavailable(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(http::header::RETRY_AFTER, HeaderValue::from_static("10"))],
                axum::Json(json!({"error": why})),
            )
                .into_response(),
        }
    }
}

#[derive(Deserialize)]
struct SecretQuery {
    secret: Option<String>,
}

impl Receiver {
    pub fn new(config: ReceiverConfig, bus: Arc<dyn EventBus>) -> Arc<Self> {
        Arc::new(Receiver { config, bus })
    }

    /// The routes, ready to serve.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/events/acr", post(acr))
            .route(
                "/events/eventgrid",
                post(eventgrid).options(eventgrid_origin),
            )
            .route("/events/registry", post(registry))
            .with_state(Arc::clone(self))
    }

    fn authorized(&self, headers: &HeaderMap, query: Option<&str>) -> bool {
        let from_header = headers
            .get_all(&self.config.header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                let v = v.trim();
                let bearer = v
                    .strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "));
                match bearer {
                    Some(token) => self.config.secret.matches(token.trim()),
                    None => {
                        self.config.header != http::header::AUTHORIZATION
                            && self.config.secret.matches(v)
                    }
                }
            });
        from_header || query.is_some_and(|q| self.config.secret.matches(q))
    }

    /// Authenticates, reads (bounded), parses and publishes one request body.
    pub async fn receive(
        &self,
        format: Format,
        headers: &HeaderMap,
        query_secret: Option<&str>,
        body: Body,
    ) -> Reply {
        let label = format.as_str();
        if !self.authorized(headers, query_secret) {
            m::received(label, "unauthorized", 1);
            return Reply::Unauthorized;
        }
        let bytes = match axum::body::to_bytes(body, self.config.max_body).await {
            Ok(b) => b,
            Err(e) => {
                m::received(label, "rejected", 1);
                return Reply::Rejected(format!(
                    "the body could not be read within the {} byte limit: {e}",
                    self.config.max_body
                ));
            }
        };
        let parsed = match format {
            Format::Acr => parse::acr(&bytes),
            Format::Registry => parse::registry_notifications(&bytes),
            Format::EventGrid | Format::CloudEvents => {
                if is_cloud_events(headers, &bytes) {
                    parse::cloud_events(&bytes)
                } else {
                    parse::event_grid(&bytes)
                }
            }
        };
        let Parsed {
            mut events,
            ignored,
            validation_code,
        } = match parsed {
            Ok(p) => p,
            Err(why) => {
                m::received(label, "rejected", 1);
                debug!(format = label, reason = %why, "event body rejected");
                return Reply::Rejected(why);
            }
        };
        if let Some(code) = validation_code {
            m::received(label, "validation", 1);
            return Reply::Validation(code);
        }
        let now = chrono::Utc::now();
        for event in &mut events {
            event.received_at = Some(now);
        }
        for event in &events {
            if let Err(e) = self.bus.publish(event).await {
                warn!(id = %event.id, error = %e, "event not accepted; the sender will retry");
                m::received(label, "unavailable", events.len());
                return Reply::Unavailable(format!("{e}; the event was not accepted, retry later"));
            }
        }
        m::received(label, "accepted", events.len());
        m::received(label, "ignored", ignored.len());
        Reply::Accepted {
            accepted: events.len(),
            ignored: ignored.len(),
        }
    }
}

/// CloudEvents by content type (`application/cloudevents+json`, `…-batch+json`) or by shape
/// (`specversion` in the object or the first array element).
fn is_cloud_events(headers: &HeaderMap, body: &[u8]) -> bool {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.contains("cloudevents") {
        return true;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let first = match &v {
        serde_json::Value::Array(a) => a.first(),
        other => Some(other),
    };
    first.is_some_and(|e| e.get("specversion").is_some() || e.get("specVersion").is_some())
}

async fn acr(
    State(r): State<Arc<Receiver>>,
    Query(q): Query<SecretQuery>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    r.receive(Format::Acr, &headers, q.secret.as_deref(), body)
        .await
}

async fn eventgrid(
    State(r): State<Arc<Receiver>>,
    Query(q): Query<SecretQuery>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    r.receive(Format::EventGrid, &headers, q.secret.as_deref(), body)
        .await
}

async fn registry(
    State(r): State<Arc<Receiver>>,
    Query(q): Query<SecretQuery>,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    r.receive(Format::Registry, &headers, q.secret.as_deref(), body)
        .await
}

/// CloudEvents webhook validation (abuse protection): echo `WebHook-Request-Origin` in
/// `WebHook-Allowed-Origin`.
async fn eventgrid_origin(
    State(r): State<Arc<Receiver>>,
    Query(q): Query<SecretQuery>,
    headers: HeaderMap,
) -> Response {
    if !r.authorized(&headers, q.secret.as_deref()) {
        m::received("cloudevents", "unauthorized", 1);
        return Reply::Unauthorized.into_response();
    }
    let origin = headers
        .get("webhook-request-origin")
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    m::received("cloudevents", "validation", 1);
    (
        StatusCode::OK,
        [
            (HeaderName::from_static("webhook-allowed-origin"), origin),
            (
                HeaderName::from_static("webhook-allowed-rate"),
                HeaderValue::from_static("*"),
            ),
            (
                http::header::ALLOW,
                HeaderValue::from_static("POST, OPTIONS"),
            ),
        ],
    )
        .into_response()
}
