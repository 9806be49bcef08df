//! Azure Container Registry with workload identity (Ratify's `azureWorkloadIdentity` auth
//! provider): an Entra ID token for `https://containerregistry.azure.net/.default` is exchanged at
//! `POST https://<registry>/oauth2/exchange` for an ACR refresh token, which the transport trades
//! at `POST /oauth2/token` for a repository-scoped access token (the refresh-token grant).
//!
//! The refresh token is cached per registry until its JWT `exp` minus a margin — not for a fixed
//! 12 hours, which in Ratify outlives the token and turns into 403s and false denials (Ratify
//! issue #2580) — and dropped when the registry or its token server rejects it. Registries that
//! do not match the configured endpoints (`*.azurecr.io`, `*.azurecr.us`, `*.azurecr.cn` by
//! default) get the fallback provider's credentials: an Entra token is never sent elsewhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use url::Url;

use super::RegistryError;
use super::auth::{AuthProvider, Credentials, TokenEndpoint, normalize_registry_key};
use crate::azure::{ACR_SCOPE, WorkloadIdentity};

/// ACR login servers in Azure's public, US Government and China clouds.
pub const DEFAULT_ACR_ENDPOINTS: [&str; 3] = ["*.azurecr.io", "*.azurecr.us", "*.azurecr.cn"];

/// Used when an ACR refresh token carries no readable `exp` (Ratify's fallback: 3 h − 5 min).
const FALLBACK_REFRESH_LIFETIME: Duration = Duration::from_secs(3 * 3600 - 300);
/// Largest exchange response read.
const MAX_EXCHANGE_BODY: usize = 64 * 1024;

/// A cached ACR refresh token. `Debug` shows only when it expires.
#[derive(Clone)]
struct RefreshToken {
    token: String,
    renew_at: Instant,
}

/// The `azureWorkloadIdentity` auth provider.
pub struct AcrAuthProvider {
    identity: Arc<WorkloadIdentity>,
    tenant_id: Option<String>,
    client_id: Option<String>,
    endpoints: Vec<String>,
    fallback: Arc<dyn AuthProvider>,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, RefreshToken>>,
}

impl std::fmt::Debug for AcrAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcrAuthProvider")
            .field("client_id", &self.client_id)
            .field("endpoints", &self.endpoints)
            .field("fallback", &self.fallback.name())
            .finish_non_exhaustive()
    }
}

impl AcrAuthProvider {
    /// `client_id` / `tenant_id`: the Store's `authProvider.clientID` (and tenant) when set, else
    /// the pod's environment. `endpoints`: login-server patterns (`*.azurecr.io`, `host:port`).
    pub fn new(
        identity: Arc<WorkloadIdentity>,
        tenant_id: Option<String>,
        client_id: Option<String>,
        endpoints: Vec<String>,
        fallback: Arc<dyn AuthProvider>,
    ) -> Result<Self, RegistryError> {
        let http = identity
            .http()
            .reqwest_client()
            .map_err(|e| RegistryError::Config {
                reason: e.to_string(),
            })?;
        Ok(AcrAuthProvider {
            identity,
            tenant_id,
            client_id,
            endpoints: endpoints
                .into_iter()
                .map(|e| e.trim().to_ascii_lowercase())
                .collect(),
            fallback,
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `registry` is an ACR login server this provider serves.
    pub fn handles(&self, registry: &str) -> bool {
        let registry = normalize_registry_key(registry);
        let host = registry.split(':').next().unwrap_or_default();
        self.endpoints
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(suffix) => {
                    host.len() > suffix.len() + 1
                        && host.ends_with(suffix)
                        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                }
                None if pattern.contains(':') => *pattern == registry,
                None => *pattern == host,
            })
    }

    fn cached(&self, registry: &str) -> Option<String> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(registry)
            .filter(|t| Instant::now() < t.renew_at)
            .map(|t| t.token.clone())
    }

    /// Entra token → `POST /oauth2/exchange` → ACR refresh token.
    async fn exchange(
        &self,
        registry: &str,
        endpoint: TokenEndpoint<'_>,
    ) -> Result<RefreshToken, RegistryError> {
        let fail = |reason: String| RegistryError::Credentials {
            registry: registry.to_owned(),
            provider: self.name().to_owned(),
            reason,
        };
        let entra = self
            .identity
            .token(
                self.tenant_id.as_deref(),
                self.client_id.as_deref(),
                ACR_SCOPE,
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut url = Url::parse(endpoint.realm).map_err(|e| {
            fail(format!(
                "token realm {:?} is not a URL: {e}",
                endpoint.realm
            ))
        })?;
        if url.scheme() != "https" {
            return Err(fail(format!(
                "token realm {} is not HTTPS; an Entra ID token is only sent over HTTPS",
                endpoint.realm
            )));
        }
        url.set_path("/oauth2/exchange");
        url.set_query(None);
        let service = endpoint.service.unwrap_or(registry);
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "access_token");
            form.append_pair("service", service);
            if let Some(t) = &self.tenant_id {
                form.append_pair("tenant", t);
            }
            form.append_pair("access_token", entra.token.secret());
            form.finish()
        };
        let resp = self
            .http
            .post(url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| fail(format!("POST {url} failed: {e}")))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| fail(format!("reading the answer of POST {url}: {e}")))?;
        let text = String::from_utf8_lossy(&body[..body.len().min(MAX_EXCHANGE_BODY)]);
        if !status.is_success() {
            return Err(fail(format!(
                "POST {url} answered {}: {} — check that the identity has the AcrPull role on the registry",
                status.as_u16(),
                text.chars().take(300).collect::<String>()
            )));
        }
        #[derive(serde::Deserialize)]
        struct Exchange {
            refresh_token: String,
        }
        let parsed: Exchange = serde_json::from_str(&text)
            .map_err(|e| fail(format!("POST {url}: the answer has no refresh_token: {e}")))?;
        let lifetime = super::jwt_lifetime(&parsed.refresh_token, chrono::Utc::now().timestamp())
            .unwrap_or(FALLBACK_REFRESH_LIFETIME);
        // Renew 5 minutes early (a tenth of the lifetime for short-lived tokens).
        let margin = Duration::from_secs(300).min(lifetime / 10);
        Ok(RefreshToken {
            token: parsed.refresh_token,
            renew_at: Instant::now() + lifetime.saturating_sub(margin),
        })
    }
}

impl AuthProvider for AcrAuthProvider {
    fn name(&self) -> &str {
        "azureWorkloadIdentity"
    }

    fn credentials<'a>(
        &'a self,
        registry: &'a str,
    ) -> BoxFuture<'a, Result<Credentials, RegistryError>> {
        // Without a challenge there is no realm to exchange at: ACR always challenges first.
        self.fallback.credentials(registry)
    }

    fn token_credentials<'a>(
        &'a self,
        registry: &'a str,
        endpoint: TokenEndpoint<'a>,
    ) -> BoxFuture<'a, Result<Credentials, RegistryError>> {
        Box::pin(async move {
            if !self.handles(registry) {
                return self.fallback.token_credentials(registry, endpoint).await;
            }
            if let Some(token) = self.cached(registry) {
                return Ok(Credentials::IdentityToken(token));
            }
            let fresh = self.exchange(registry, endpoint).await?;
            let token = fresh.token.clone();
            self.cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(registry.to_owned(), fresh);
            tracing::debug!(
                registry,
                "exchanged an Entra ID token for an ACR refresh token"
            );
            Ok(Credentials::IdentityToken(token))
        })
    }

    fn invalidate(&self, registry: &str) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(registry);
        self.fallback.invalidate(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::azure::{AzureHttp, WorkloadIdentityEnv};
    use crate::registry::Anonymous;

    #[test]
    fn only_configured_login_servers_get_entra_tokens() {
        let identity = Arc::new(WorkloadIdentity::new(
            WorkloadIdentityEnv::default(),
            AzureHttp::default(),
        ));
        let p = AcrAuthProvider::new(
            identity,
            None,
            None,
            DEFAULT_ACR_ENDPOINTS
                .iter()
                .map(|s| s.to_string())
                .chain(["127.0.0.1:5000".to_string()])
                .collect(),
            Arc::new(Anonymous),
        )
        .unwrap();
        assert!(p.handles("myregistry.azurecr.io"));
        assert!(p.handles("MyRegistry.AzureCR.io"));
        assert!(p.handles("gov.azurecr.us"));
        assert!(p.handles("cn.azurecr.cn:443"));
        assert!(p.handles("127.0.0.1:5000"));
        assert!(!p.handles("127.0.0.1:5001"));
        assert!(
            !p.handles("azurecr.io"),
            "the bare suffix is not a login server"
        );
        assert!(!p.handles("evilazurecr.io"));
        assert!(!p.handles("myregistry.azurecr.io.evil.example"));
        assert!(!p.handles("docker.io"));
        let debug = format!("{p:?}");
        assert!(!debug.contains("token"), "{debug}");
    }
}
