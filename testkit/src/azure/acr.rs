//! Fake ACR token server (the `/oauth2/*` half of a registry), to put in front of a real
//! `docker-registry` configured with token auth (see [`FakeAcrTokenServer::token_auth`]).
//!
//! - `POST /oauth2/exchange[?api-version=2021-07-01]`, form
//!   `grant_type=access_token&service=<svc>&access_token=<Entra token>[&tenant=<t>]` →
//!   `{"refresh_token":"<JWT>"}`, the token shaped like the recording: `.` + padded standard
//!   base64 of the claims + `.` (no header, no signature).
//! - `POST /oauth2/token`, form `grant_type=refresh_token&service=<svc>&scope=…&refresh_token=…`
//!   (scope repeatable, unknown fields such as `client_id` ignored) → `{"access_token":"<JWT>"}`
//!   with **no** `expires_in`: the lifetime is only in the JWT `exp`. Access tokens are ES256
//!   distribution JWTs with an `x5c` header chaining to the bundle `token_auth` writes.
//!
//! Errors are ACR's `{"errors":[{"code","message"}]}`; 401 for anything about credentials.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::entra::EntraShared;
use super::https::{self, HttpsServer};
use super::{ACR_RESOURCE, FakeEntra, Form, TestCa, b64std, b64url, json_response, now, uuid};
use crate::pki::{CertBuilder, KeyAlg, SignAlg, TestCert};
use crate::registry::TokenAuth;

/// `iss` of ACR tokens.
pub const ACR_ISSUER: &str = "Azure Container Registry";
const DEFAULT_REFRESH_LIFETIME: u64 = 10_800;
const DEFAULT_ACCESS_LIFETIME: u64 = 3600;
const AUTH_REQUIRED: &str =
    "authentication required, visit https://aka.ms/acr/authorization for more information.";

#[derive(Clone, Debug)]
struct RefreshToken {
    exp: i64,
    sub: String,
    actions: Vec<String>,
}

#[derive(Debug)]
struct AcrState {
    refresh_lifetime: u64,
    access_lifetime: u64,
    fail_exchange: Option<u16>,
    actions: Vec<String>,
    refresh_tokens: HashMap<String, RefreshToken>,
    exchanges: usize,
    token_requests: usize,
    scopes: Vec<Vec<String>>,
}

#[derive(Debug)]
struct AcrShared {
    service: String,
    entra: Arc<EntraShared>,
    signer: TestCert,
    state: Mutex<AcrState>,
}

impl AcrShared {
    fn lock(&self) -> MutexGuard<'_, AcrState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// ACR's token server in front of a real docker-registry configured with token auth: POST
/// /oauth2/exchange and POST /oauth2/token (refresh_token grant), access tokens are distribution
/// JWTs (ES256, x5c) that docker-registry 2.8 verifies.
pub struct FakeAcrTokenServer {
    shared: Arc<AcrShared>,
    root: TestCert,
    server: HttpsServer,
}

impl std::fmt::Debug for FakeAcrTokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAcrTokenServer")
            .field("port", &self.server.port())
            .field("service", &self.shared.service)
            .finish()
    }
}

impl FakeAcrTokenServer {
    /// A token server for registry `service` (the `service` of the registry's challenge, ACR:
    /// the login server host name) that accepts Entra tokens for
    /// `https://containerregistry.azure.net` issued by `entra`. Its token-signing CA is its own,
    /// separate from `ca`.
    pub async fn start(ca: &TestCa, entra: &FakeEntra, service: &str) -> Result<Self> {
        let root = CertBuilder::root_ca("O=Verdict Test, CN=Fake ACR Token Root").self_signed()?;
        let signer = CertBuilder::code_signing("O=Verdict Test, CN=Fake ACR Token Signer")
            .key_alg(KeyAlg::EcP256)
            .signed_by(&root)?;
        let shared = Arc::new(AcrShared {
            service: service.to_string(),
            entra: entra.shared(),
            signer,
            state: Mutex::new(AcrState {
                refresh_lifetime: DEFAULT_REFRESH_LIFETIME,
                access_lifetime: DEFAULT_ACCESS_LIFETIME,
                fail_exchange: None,
                actions: vec!["read".to_string()],
                refresh_tokens: HashMap::new(),
                exchanges: 0,
                token_requests: 0,
                scopes: Vec::new(),
            }),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = HttpsServer::start(https::bind().await?, ca.server_config(), router)?;
        Ok(Self {
            shared,
            root,
            server,
        })
    }

    /// `https://127.0.0.1:PORT` (where `/oauth2/exchange` lives).
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.server.port())
    }

    /// `https://127.0.0.1:PORT/oauth2/token`.
    pub fn realm(&self) -> String {
        format!("{}/oauth2/token", self.url())
    }

    /// `https://127.0.0.1:PORT/oauth2/exchange`.
    pub fn exchange_url(&self) -> String {
        format!("{}/oauth2/exchange", self.url())
    }

    /// The `service` (audience) of its tokens.
    pub fn service(&self) -> &str {
        &self.shared.service
    }

    /// Writes the token-signing root into `dir` (`acr-token-root.pem`) and returns
    /// `TokenAuth{realm, service, issuer: "Azure Container Registry", rootcertbundle}` to pass to
    /// `DockerRegistry::builder().token_auth(..)`.
    pub fn token_auth(&self, dir: &Path) -> Result<TokenAuth> {
        let bundle = dir.join("acr-token-root.pem");
        self.root.write_pem(&bundle)?;
        Ok(TokenAuth {
            realm: self.realm(),
            service: self.shared.service.clone(),
            issuer: ACR_ISSUER.to_string(),
            rootcertbundle: bundle,
        })
    }

    /// Lifetime of new refresh tokens (default 10800 s = 3 h).
    pub fn set_refresh_token_lifetime(&self, secs: u64) {
        self.shared.lock().refresh_lifetime = secs;
    }

    /// Lifetime of new access tokens (default 3600 s); it only shows in the JWT `exp`, the
    /// response has no `expires_in`.
    pub fn set_access_token_lifetime(&self, secs: u64) {
        self.shared.lock().access_lifetime = secs;
    }

    /// The `permissions.Actions` new refresh tokens carry (default `["read"]`, i.e. AcrPull):
    /// `read` grants `pull`, `write` `push`, `delete` `delete` in access tokens.
    pub fn set_permissions(&self, actions: &[&str]) {
        self.shared.lock().actions = actions.iter().map(|a| a.to_string()).collect();
    }

    /// `/oauth2/exchange` answers `status` with an ACR error body (code `UNAUTHORIZED` for 401)
    /// until [`clear_faults`](Self::clear_faults).
    pub fn fail_exchange(&self, status: u16) {
        self.shared.lock().fail_exchange = Some(status);
    }

    /// Existing refresh tokens now get 401 at `/oauth2/token`.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.lock().refresh_tokens.clear();
    }

    /// Clears [`fail_exchange`](Self::fail_exchange).
    pub fn clear_faults(&self) {
        self.shared.lock().fail_exchange = None;
    }

    /// Successful `/oauth2/exchange` calls.
    pub fn exchanges(&self) -> usize {
        self.shared.lock().exchanges
    }

    /// Successful `/oauth2/token` calls.
    pub fn token_requests(&self) -> usize {
        self.shared.lock().token_requests
    }

    /// The `scope` values of each successful `/oauth2/token` call, in order.
    pub fn token_scopes(&self) -> Vec<Vec<String>> {
        self.shared.lock().scopes.clone()
    }

    /// Closes the listener and open connections (clients get "connection refused").
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Listens again on the same port after [`stop`](Self::stop), with the same state.
    pub async fn restart(&mut self) -> Result<()> {
        self.server.restart().await
    }
}

async fn handle(State(acr): State<Arc<AcrShared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    if path != "/oauth2/exchange" && path != "/oauth2/token" {
        return acr_error(404, "NOT_FOUND", &format!("{path} is not a token endpoint"));
    }
    if parts.method != Method::POST {
        // GET /oauth2/token with Basic credentials (docker login style) is not implemented.
        return acr_error(401, "UNAUTHORIZED", AUTH_REQUIRED);
    }
    let Some(body) = super::read_body(body).await else {
        return acr_error(400, "BAD_REQUEST", "the request body could not be read");
    };
    let form = Form::parse(&body);
    if path == "/oauth2/exchange" {
        exchange(&acr, &form)
    } else {
        token(&acr, &form)
    }
}

fn exchange(acr: &AcrShared, form: &Form) -> Response {
    let mut state = acr.lock();
    if let Some(status) = state.fail_exchange {
        let code = match status {
            401 => "UNAUTHORIZED",
            403 => "DENIED",
            429 => "TOOMANYREQUESTS",
            _ => "UNKNOWN",
        };
        return acr_error(status, code, "token exchange failed (injected fault)");
    }
    let grant = form.get("grant_type").unwrap_or_default();
    if grant != "access_token" {
        return acr_error(
            400,
            "UNSUPPORTED",
            &format!("grant_type '{grant}' is not supported"),
        );
    }
    if form.get("service") != Some(acr.service.as_str()) {
        return acr_error(401, "UNAUTHORIZED", "service does not match this registry");
    }
    let Some(issued) = form
        .non_empty("access_token")
        .and_then(|t| acr.entra.validate(t, ACR_RESOURCE))
    else {
        return acr_error(
            401,
            "UNAUTHORIZED",
            "the access token is not valid for this registry",
        );
    };
    if let Some(tenant) = form.non_empty("tenant")
        && tenant != issued.tenant
    {
        return acr_error(
            401,
            "UNAUTHORIZED",
            "the access token is not from this tenant",
        );
    }
    let iat = now();
    let exp = iat.saturating_add(secs(state.refresh_lifetime));
    let claims = json!({
        "jti": uuid(),
        "sub": issued.client_id,
        "nbf": iat,
        "exp": exp,
        "iat": iat,
        "iss": ACR_ISSUER,
        "aud": acr.service,
        "version": "1.0",
        "rid": super::random_hex(16),
        "grant_type": "refresh_token",
        "appid": issued.client_id,
        "tenant": issued.tenant,
        "permissions": {"Actions": state.actions, "NotActions": null},
        "roles": [],
    });
    let refresh_token = format!(".{}.", b64std(claims.to_string().as_bytes()));
    let actions = state.actions.clone();
    state.refresh_tokens.insert(
        refresh_token.clone(),
        RefreshToken {
            exp,
            sub: issued.client_id,
            actions,
        },
    );
    state.exchanges += 1;
    json_response(200, &json!({"refresh_token": refresh_token}), &[])
}

fn token(acr: &AcrShared, form: &Form) -> Response {
    let mut state = acr.lock();
    let grant = form.get("grant_type").unwrap_or_default();
    if grant != "refresh_token" {
        return acr_error(
            400,
            "UNSUPPORTED",
            &format!("grant_type '{grant}' is not supported"),
        );
    }
    if form.get("service") != Some(acr.service.as_str()) {
        return acr_error(401, "UNAUTHORIZED", AUTH_REQUIRED);
    }
    let Some(rt) = form
        .non_empty("refresh_token")
        .and_then(|t| state.refresh_tokens.get(t))
        .filter(|rt| rt.exp > now())
        .cloned()
    else {
        return acr_error(401, "UNAUTHORIZED", AUTH_REQUIRED);
    };
    let scopes: Vec<String> = form
        .all("scope")
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect();
    let mut access = Vec::new();
    for scope in &scopes {
        match grant_scope(scope, &rt.actions) {
            Some(entry) => access.push(entry),
            None => return acr_error(400, "UNSUPPORTED", &format!("invalid scope '{scope}'")),
        }
    }
    let iat = now();
    let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [b64std(acr.signer.der())]});
    let claims = json!({
        "jti": uuid(),
        "sub": rt.sub,
        "nbf": iat,
        "exp": iat.saturating_add(secs(state.access_lifetime)),
        "iat": iat,
        "iss": ACR_ISSUER,
        "aud": acr.service,
        "version": "3.0",
        "grant_type": "refresh_token",
        "access": access,
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = match acr.signer.sign(SignAlg::Es256, input.as_bytes()) {
        Ok(s) => s,
        Err(e) => return acr_error(500, "UNKNOWN", &format!("signing failed: {e}")),
    };
    state.token_requests += 1;
    state.scopes.push(scopes);
    json_response(
        200,
        &json!({"access_token": format!("{input}.{}", b64url(&signature))}),
        &[],
    )
}

/// The `access` entry for `type:name:actions`, granting what the refresh token's permissions
/// allow; `None` if the scope is malformed.
fn grant_scope(scope: &str, permissions: &[String]) -> Option<Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, requested) = rest.rsplit_once(':')?;
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    let allowed = |action: &str| {
        let needs = match action {
            "pull" => "read",
            "push" => "write",
            "delete" => "delete",
            _ => return false,
        };
        permissions.iter().any(|p| p == needs)
    };
    let granted: Vec<&str> = match kind {
        "repository" => {
            let mut out = Vec::new();
            for action in requested.split(',').map(str::trim) {
                let expanded: &[&str] = if action == "*" {
                    &["pull", "push", "delete"]
                } else {
                    std::slice::from_ref(&action)
                };
                for a in expanded {
                    if allowed(a) && !out.contains(a) {
                        out.push(*a);
                    }
                }
            }
            out
        }
        "registry" if name == "catalog" && permissions.iter().any(|p| p == "read") => vec!["*"],
        _ => Vec::new(),
    };
    Some(json!({"type": kind, "name": name, "actions": granted}))
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

fn acr_error(status: u16, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"errors": [{"code": code, "message": message}]}),
        &[(
            "docker-distribution-api-version",
            "registry/2.0".to_string(),
        )],
    )
}
