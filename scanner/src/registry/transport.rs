//! One registry request: auth (Docker token flow, Basic), bounded retries honouring `Retry-After`,
//! status → typed error mapping, capped body reads, metrics and tracing.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use tracing::Instrument as _;
use url::Url;

use super::auth::{AuthProvider, Credentials, TokenEndpoint};
use super::token::{
    AuthState, Challenge, DEFAULT_TOKEN_LIFETIME, Scheme, TokenResponse, jwt_lifetime,
    parse_challenges,
};
use super::{RegistryConfig, RegistryError, Repository};

/// Counter of registry HTTP responses, labels `registry` and `status` (code, `error` or `timeout`).
pub const METRIC_REQUESTS: &str = "verdict_registry_requests_total";
/// Counter of retries, labels `registry` and `reason` (`throttled`, `unavailable`).
pub const METRIC_RETRIES: &str = "verdict_registry_retries_total";

/// Longest `Retry-After` we take seriously; longer values are clamped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How much of an error body we read to describe the error.
const ERROR_BODY_LIMIT: usize = 2048;

/// One idempotent request (GET or HEAD) against a repository.
pub(crate) struct Call<'a> {
    pub repo: &'a Repository,
    pub method: Method,
    pub url: Url,
    pub accept: &'a [&'a str],
    /// Names the thing requested, for errors and logs ("manifest sha256:…").
    pub what: &'a str,
    /// Statuses handed back to the caller instead of being mapped to errors (e.g. 404).
    pub pass: &'a [StatusCode],
}

pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub config: Arc<RegistryConfig>,
    pub auth: Arc<dyn AuthProvider>,
    pub state: AuthState,
}

impl Transport {
    /// Sends `call`, handling auth challenges and retrying transient failures until `deadline`.
    /// Returns responses with a 2xx status or a status in `call.pass`.
    pub async fn send(
        &self,
        call: &Call<'_>,
        deadline: Instant,
    ) -> Result<reqwest::Response, RegistryError> {
        let registry = call.repo.registry();
        let scope = format!("repository:{}:pull", call.repo.name());
        let mut retries = 0u32;
        let mut fresh_auth = false;
        loop {
            let outcome = self.attempt(call, &scope, deadline, &mut fresh_auth).await;
            let err = match outcome {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            if !err.is_retryable() || retries >= self.config.retry.max_retries {
                return Err(err);
            }
            let wait = match &err {
                RegistryError::Throttled {
                    retry_after: Some(d),
                    ..
                } => *d,
                _ => self.config.retry.backoff(retries),
            };
            if Instant::now() + wait >= deadline {
                // Waiting would pass the deadline: report the registry's answer, not a timeout.
                return Err(err);
            }
            let reason = if matches!(err, RegistryError::Throttled { .. }) {
                "throttled"
            } else {
                "unavailable"
            };
            metrics::counter!(METRIC_RETRIES, "registry" => registry.to_string(), "reason" => reason)
                .increment(1);
            tracing::warn!(registry, what = call.what, error = %err, wait_ms = wait.as_millis() as u64,
                retry = retries + 1, "registry request failed; retrying");
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    /// One attempt, including at most one re-authentication after a 401.
    async fn attempt(
        &self,
        call: &Call<'_>,
        scope: &str,
        deadline: Instant,
        fresh_auth: &mut bool,
    ) -> Result<reqwest::Response, RegistryError> {
        let registry = call.repo.registry();
        loop {
            let authz = match self
                .authorization(call.repo, scope, deadline, *fresh_auth)
                .await
            {
                // The token server refused credentials that may have been cached (a revoked
                // or expired ACR refresh token): the provider dropped them; once more, fresh.
                Err(RegistryError::Unauthorized { .. }) if !*fresh_auth => {
                    *fresh_auth = true;
                    continue;
                }
                other => other?,
            };
            let resp = self.send_once(call, authz.as_deref(), deadline).await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                let challenges = parse_challenges(
                    resp.headers()
                        .get_all(WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok()),
                );
                let chosen = challenges
                    .iter()
                    .find(|c| c.scheme == Scheme::Bearer)
                    .or_else(|| challenges.first())
                    .cloned();
                let detail = error_detail(resp).await;
                match chosen {
                    Some(c) if !*fresh_auth => {
                        self.state.set_challenge(registry, c);
                        *fresh_auth = true;
                        continue;
                    }
                    _ => {
                        self.auth.invalidate(registry);
                        self.state.forget_registry(registry);
                        let detail = if authz.is_none() && challenges.is_empty() {
                            format!("401 without a usable WWW-Authenticate challenge: {detail}")
                        } else if authz.is_none() {
                            format!("401 and the auth provider has no credentials for it: {detail}")
                        } else {
                            format!("401 with fresh credentials: {detail}")
                        };
                        return Err(RegistryError::Unauthorized {
                            registry: registry.to_string(),
                            detail,
                        });
                    }
                }
            }
            if status.is_success() || call.pass.contains(&status) {
                return Ok(resp);
            }
            return Err(status_error(resp, call.repo, call.what).await);
        }
    }

    async fn send_once(
        &self,
        call: &Call<'_>,
        authz: Option<&str>,
        deadline: Instant,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut rb = self
            .http
            .request(call.method.clone(), call.url.clone())
            .timeout(remaining(deadline));
        if !call.accept.is_empty() {
            rb = rb.header(ACCEPT, call.accept.join(", "));
        }
        if let Some(a) = authz {
            rb = rb.header(AUTHORIZATION, a);
        }
        let span = tracing::debug_span!("registry_request", registry = call.repo.registry(),
            method = %call.method, path = call.url.path());
        self.execute(rb, call.repo.registry(), call.what)
            .instrument(span)
            .await
    }

    /// Sends a built request, counting it; network failures become `Unavailable` or `Timeout`.
    async fn execute(
        &self,
        rb: reqwest::RequestBuilder,
        registry: &str,
        what: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        match rb.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                metrics::counter!(METRIC_REQUESTS, "registry" => registry.to_string(),
                    "status" => status.to_string())
                .increment(1);
                tracing::debug!(status, "registry response");
                Ok(resp)
            }
            Err(e) => {
                let timeout = e.is_timeout();
                metrics::counter!(METRIC_REQUESTS, "registry" => registry.to_string(),
                    "status" => if timeout { "timeout" } else { "error" })
                .increment(1);
                tracing::debug!(error = %error_chain(&e), "registry request failed");
                if timeout {
                    Err(RegistryError::Timeout {
                        registry: registry.to_string(),
                        what: what.to_string(),
                        after: self.config.request_timeout,
                    })
                } else {
                    Err(RegistryError::Unavailable {
                        registry: registry.to_string(),
                        status: None,
                        detail: error_chain(&e),
                    })
                }
            }
        }
    }

    /// The `Authorization` header for the next request, from the last challenge this registry sent.
    async fn authorization(
        &self,
        repo: &Repository,
        scope: &str,
        deadline: Instant,
        force_fresh: bool,
    ) -> Result<Option<String>, RegistryError> {
        let registry = repo.registry();
        let Some(challenge) = self.state.challenge(registry) else {
            return Ok(None);
        };
        if challenge.scheme == Scheme::Bearer
            && !force_fresh
            && let Some(t) = self.state.token(registry, scope)
        {
            return Ok(Some(t));
        }
        let creds = match (challenge.scheme, challenge.realm.as_deref()) {
            (Scheme::Bearer, Some(realm)) => {
                let endpoint = TokenEndpoint {
                    realm,
                    service: challenge.service.as_deref(),
                };
                self.auth.token_credentials(registry, endpoint).await?
            }
            _ => self.auth.credentials(registry).await?,
        };
        match (challenge.scheme, creds) {
            (_, Credentials::BearerToken(t)) => Ok(Some(format!("Bearer {t}"))),
            (Scheme::Basic, Credentials::Basic { username, password }) => {
                Ok(Some(basic_header(&username, &password)))
            }
            (Scheme::Basic, _) => Ok(None),
            (Scheme::Bearer, creds) => {
                let (header, lifetime) = self
                    .fetch_token(repo, &challenge, scope, creds, deadline)
                    .await?;
                self.state
                    .set_token(registry, scope, header.clone(), lifetime);
                Ok(Some(header))
            }
        }
    }

    /// The distribution token flow: GET the realm (Basic or anonymous) or POST a refresh token.
    async fn fetch_token(
        &self,
        repo: &Repository,
        challenge: &Challenge,
        scope: &str,
        creds: Credentials,
        deadline: Instant,
    ) -> Result<(String, Duration), RegistryError> {
        let registry = repo.registry();
        let unauthorized = |detail: String| RegistryError::Unauthorized {
            registry: registry.to_string(),
            detail,
        };
        let realm = challenge
            .realm
            .as_deref()
            .ok_or_else(|| unauthorized("Bearer challenge without a realm".into()))?;
        let mut url = Url::parse(realm)
            .map_err(|e| unauthorized(format!("token realm {realm:?} is not a URL: {e}")))?;
        let realm_host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.config.allows_plain_http(&realm_host) => {}
            other => {
                return Err(unauthorized(format!(
                    "token realm {realm} uses {other}; credentials are only sent over HTTPS \
                     unless the host is listed in plain_http_registries"
                )));
            }
        }
        let what = format!("token for {scope}");
        let rb = match creds {
            Credentials::IdentityToken(refresh) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", &refresh);
                if let Some(s) = &challenge.service {
                    form.append_pair("service", s);
                }
                form.append_pair("scope", scope);
                form.append_pair("client_id", "verdict");
                self.http
                    .post(url)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.finish())
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = &challenge.service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", scope);
                }
                let rb = self.http.get(url);
                match other {
                    Credentials::Basic { username, password } => {
                        rb.header(AUTHORIZATION, basic_header(&username, &password))
                    }
                    _ => rb,
                }
            }
        };
        let rb = rb.timeout(remaining(deadline));
        let resp = self
            .execute(rb, registry, &what)
            .instrument(tracing::debug_span!("registry_token", registry, scope))
            .await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            self.auth.invalidate(registry);
            self.state.forget_registry(registry);
            let detail = error_detail(resp).await;
            return Err(unauthorized(format!(
                "token server answered {}: {detail}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(status_error(resp, repo, &what).await);
        }
        let body = read_capped(resp, 1024 * 1024, &what, registry).await?;
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::InvalidResponse {
                registry: registry.to_string(),
                what: what.clone(),
                reason: format!("token response is not JSON: {e}"),
            })?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::InvalidResponse {
                registry: registry.to_string(),
                what: what.clone(),
                reason: "token response has neither \"token\" nor \"access_token\"".into(),
            })?;
        let lifetime = parsed
            .expires_in
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .or_else(|| jwt_lifetime(&token, chrono::Utc::now().timestamp()))
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Ok((format!("Bearer {token}"), lifetime))
    }
}

fn basic_header(user: &str, pass: &str) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {enc}")
}

/// The per-request timeout: the call's remaining time plus a margin, so the call-level deadline
/// (which reports the configured timeout) normally fires first; this is only a safety net.
pub(crate) fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(100)
}

/// Maps a non-success status to a typed error.
pub(crate) async fn status_error(
    resp: reqwest::Response,
    repo: &Repository,
    what: &str,
) -> RegistryError {
    let registry = repo.registry().to_string();
    let status = resp.status();
    let retry_after = parse_retry_after(resp.headers());
    let detail = error_detail(resp).await;
    match status.as_u16() {
        403 => RegistryError::Denied {
            registry,
            what: what.to_string(),
            detail,
        },
        404 => RegistryError::NotFound {
            registry,
            what: what.to_string(),
        },
        429 => RegistryError::Throttled {
            registry,
            retry_after,
        },
        408 | 500..=599 => RegistryError::Unavailable {
            registry,
            status: Some(status.as_u16()),
            detail,
        },
        s => RegistryError::UnexpectedStatus {
            registry,
            what: what.to_string(),
            status: s,
            detail,
        },
    }
}

/// `Retry-After` as delay-seconds or an HTTP date, clamped to an hour.
pub(crate) fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// A short description of an error response: distribution error codes, else the start of the body.
async fn error_detail(mut resp: reqwest::Response) -> String {
    let status = resp.status();
    let mut buf = Vec::new();
    while buf.len() < ERROR_BODY_LIMIT {
        match resp.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    buf.truncate(ERROR_BODY_LIMIT);
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(env) = serde_json::from_slice::<Envelope>(&buf)
        && !env.errors.is_empty()
    {
        return env
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(&buf);
    let text: String = text.trim().chars().take(200).collect();
    if text.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        format!("HTTP {}: {text}", status.as_u16())
    }
}

/// Reads a body, failing with `TooLarge` as soon as it exceeds `limit` bytes.
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    limit: u64,
    what: &str,
    registry: &str,
) -> Result<Bytes, RegistryError> {
    if let Some(len) = resp.content_length()
        && len > limit
    {
        return Err(RegistryError::TooLarge {
            what: what.to_string(),
            limit,
            size: Some(len),
        });
    }
    let mut buf = BytesMut::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| {
            if e.is_timeout() {
                RegistryError::Timeout {
                    registry: registry.to_string(),
                    what: what.to_string(),
                    after: Duration::ZERO,
                }
            } else {
                RegistryError::Unavailable {
                    registry: registry.to_string(),
                    status: None,
                    detail: format!("reading {what}: {}", error_chain(&e)),
                }
            }
        })?;
        let Some(chunk) = chunk else { break };
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(RegistryError::TooLarge {
                what: what.to_string(),
                limit,
                size: None,
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(3)));
        let later = SystemTime::now() + Duration::from_secs(120);
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = parse_retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999"));
        assert_eq!(parse_retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }
}
