//! Fake Microsoft Entra ID token endpoint for the workload-identity (federated credential) grant.
//!
//! `POST /{tenant}/oauth2/v2.0/token` at the root of the server (the Azure SDK joins
//! `/{tenant}/oauth2/v2.0/token` onto the authority host and so drops any path it has), form body
//! `client_assertion=<federated token>&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_id=<id>&grant_type=client_credentials&scope=<resource>/.default`.
//! Success: `{"token_type":"Bearer","expires_in":N,"ext_expires_in":N,"access_token":"<JWT>"}`;
//! errors: `{"error","error_description":"AADSTSnnn: …","error_codes":[n],"timestamp","trace_id",
//! "correlation_id","error_uri"}` (shape of `examples/workload-identity/aad-token-exchange.txt`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;
use serde_json::json;

use super::https::{self, HttpsServer};
use super::{Form, JWT_BEARER_ASSERTION, TestCa, b64url, empty_response, json_response, now, uuid};

/// Default `expires_in` of issued tokens.
const DEFAULT_LIFETIME: u64 = 3600;

/// One request to the token endpoint as the fake parsed it (missing fields are empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntraRequest {
    /// Tenant from the path.
    pub tenant: String,
    /// `client_id`.
    pub client_id: String,
    /// `scope`, e.g. `https://vault.azure.net/.default`.
    pub scope: String,
    /// `client_assertion` (the federated token file's content).
    pub assertion: String,
    /// `grant_type`.
    pub grant_type: String,
    /// `client_assertion_type`.
    pub client_assertion_type: String,
    /// The status the fake answered with.
    pub status: u16,
}

/// A token the fake issued.
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    pub(crate) resource: String,
    pub(crate) exp: i64,
    pub(crate) tenant: String,
    pub(crate) client_id: String,
}

#[derive(Clone, Debug)]
struct Fault {
    status: u16,
    code: u32,
    description: String,
}

#[derive(Debug)]
struct EntraState {
    expected_assertion: Option<String>,
    lifetime: u64,
    fault: Option<Fault>,
    down: bool,
    requests: Vec<EntraRequest>,
    tokens: HashMap<String, IssuedToken>,
}

/// What the Key Vault and ACR fakes share with the Entra fake: the tenant and the issued tokens.
#[derive(Debug)]
pub(crate) struct EntraShared {
    pub(crate) tenant: String,
    pub(crate) client_id: String,
    state: Mutex<EntraState>,
}

impl EntraShared {
    fn lock(&self) -> MutexGuard<'_, EntraState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The issued, unexpired token `token` if its audience is `resource`.
    pub(crate) fn validate(&self, token: &str, resource: &str) -> Option<IssuedToken> {
        let state = self.lock();
        let issued = state.tokens.get(token)?;
        (issued.exp > now() && same_resource(&issued.resource, resource)).then(|| issued.clone())
    }
}

fn same_resource(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Entra ID token endpoint: POST /{tenant}/oauth2/v2.0/token at the ROOT of the server (the Azure
/// SDK drops any path of the authority host).
pub struct FakeEntra {
    shared: Arc<EntraShared>,
    server: HttpsServer,
}

impl std::fmt::Debug for FakeEntra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEntra")
            .field("port", &self.server.port())
            .field("tenant", &self.shared.tenant)
            .finish()
    }
}

impl FakeEntra {
    /// Serves the token endpoint for `tenant` and the application `client_id`. Until
    /// [`set_expected_assertion`](Self::set_expected_assertion) any non-empty assertion is accepted.
    pub async fn start(ca: &TestCa, tenant: &str, client_id: &str) -> Result<Self> {
        let shared = Arc::new(EntraShared {
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            state: Mutex::new(EntraState {
                expected_assertion: None,
                lifetime: DEFAULT_LIFETIME,
                fault: None,
                down: false,
                requests: Vec::new(),
                tokens: HashMap::new(),
            }),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = HttpsServer::start(https::bind().await?, ca.server_config(), router)?;
        Ok(Self { shared, server })
    }

    pub(crate) fn shared(&self) -> Arc<EntraShared> {
        self.shared.clone()
    }

    /// `https://127.0.0.1:PORT/` (trailing slash, like `AZURE_AUTHORITY_HOST` from the AKS webhook).
    pub fn authority_host(&self) -> String {
        format!("https://127.0.0.1:{}/", self.server.port())
    }

    /// The full token endpoint URL of the configured tenant.
    pub fn token_url(&self) -> String {
        format!(
            "{}{}/oauth2/v2.0/token",
            self.authority_host(),
            self.shared.tenant
        )
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.shared.tenant
    }

    /// The application (client) id.
    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    /// The federated token file content it accepts; other assertions get 401 `invalid_client`
    /// AADSTS700024 (what Entra answers for an expired, i.e. rotated-away, service-account token).
    pub fn set_expected_assertion(&self, jwt: &str) {
        self.shared.lock().expected_assertion = Some(jwt.to_string());
    }

    /// `expires_in` of issued tokens (default 3600).
    pub fn set_token_lifetime(&self, secs: u64) {
        self.shared.lock().lifetime = secs;
    }

    /// Every request fails with `status` and `AADSTS<aadsts_code>: <description>` until
    /// [`clear_faults`](Self::clear_faults). `error` follows the status: 400 `invalid_request`,
    /// 401 `invalid_client`, 403 `unauthorized_client`, 429/503 `temporarily_unavailable`, other
    /// 5xx `server_error`.
    pub fn fail_with(&self, status: u16, aadsts_code: u32, description: &str) {
        self.shared.lock().fault = Some(Fault {
            status,
            code: aadsts_code,
            description: description.to_string(),
        });
    }

    /// When true, every request gets 503 with an empty body (for a refused connection use
    /// [`stop`](Self::stop)).
    pub fn set_down(&self, down: bool) {
        self.shared.lock().down = down;
    }

    /// Clears [`fail_with`](Self::fail_with) and [`set_down`](Self::set_down).
    pub fn clear_faults(&self) {
        let mut state = self.shared.lock();
        state.fault = None;
        state.down = false;
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<EntraRequest> {
        self.shared.lock().requests.clone()
    }

    /// Requests answered with a token.
    pub fn tokens_issued(&self) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.status == 200)
            .count()
    }

    /// Whether `token` was issued by this fake, is unexpired and is for `resource`
    /// (`https://vault.azure.net` or `https://containerregistry.azure.net`; a trailing slash is
    /// ignored).
    pub fn token_is_valid(&self, token: &str, resource: &str) -> bool {
        self.shared.validate(token, resource).is_some()
    }

    /// Issues a token for `resource` directly, as if the client had asked (tests of the Key
    /// Vault or ACR fakes that do not care about the grant).
    pub fn issue_token(&self, resource: &str) -> String {
        issue(&self.shared, &mut self.shared.lock(), resource)
    }

    /// Closes the listener and open connections: clients get "connection refused". Issued tokens
    /// stay valid for the other fakes.
    pub async fn stop(&mut self) {
        self.server.stop().await;
    }

    /// Listens again on the same port after [`stop`](Self::stop), with the same state.
    pub async fn restart(&mut self) -> Result<()> {
        self.server.restart().await
    }
}

async fn handle(State(shared): State<Arc<EntraShared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let segments: Vec<&str> = parts
        .uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .collect();
    let tenant = match segments.as_slice() {
        [tenant, "oauth2", "v2.0", "token"] => tenant.to_string(),
        _ => return empty_response(404, &[]),
    };
    if parts.method != Method::POST {
        return error(
            405,
            "invalid_request",
            900561,
            &format!(
                "The endpoint only accepts POST requests. Received a {} request.",
                parts.method
            ),
        );
    }
    let Some(body) = super::read_body(body).await else {
        return error(
            400,
            "invalid_request",
            900144,
            "The request body could not be read.",
        );
    };
    let form = Form::parse(&body);
    let field = |k: &str| form.get(k).unwrap_or_default().to_string();
    let mut request = EntraRequest {
        tenant,
        client_id: field("client_id"),
        scope: field("scope"),
        assertion: field("client_assertion"),
        grant_type: field("grant_type"),
        client_assertion_type: field("client_assertion_type"),
        status: 0,
    };
    let mut state = shared.lock();
    let resp = answer(&shared, &mut state, &form, &request);
    request.status = resp.status().as_u16();
    state.requests.push(request);
    resp
}

fn answer(
    shared: &EntraShared,
    state: &mut EntraState,
    form: &Form,
    req: &EntraRequest,
) -> Response {
    if state.down {
        return empty_response(503, &[]);
    }
    if let Some(f) = &state.fault {
        let kind = match f.status {
            400 => "invalid_request",
            401 => "invalid_client",
            403 => "unauthorized_client",
            429 | 503 => "temporarily_unavailable",
            _ => "server_error",
        };
        return error(f.status, kind, f.code, &f.description);
    }
    if req.tenant != shared.tenant {
        return error(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.",
                req.tenant
            ),
        );
    }
    for name in [
        "grant_type",
        "client_id",
        "client_assertion_type",
        "client_assertion",
        "scope",
    ] {
        if form.non_empty(name).is_none() {
            return error(
                400,
                "invalid_request",
                900144,
                &format!("The request body must contain the following parameter: '{name}'."),
            );
        }
    }
    if req.grant_type != "client_credentials" {
        return error(
            400,
            "unsupported_grant_type",
            70003,
            &format!(
                "The app requested an unsupported grant type '{}'.",
                req.grant_type
            ),
        );
    }
    if req.client_id != shared.client_id {
        return error(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{}' was not found in the directory '{}'.",
                req.client_id, shared.tenant
            ),
        );
    }
    if req.client_assertion_type != JWT_BEARER_ASSERTION {
        return error(
            400,
            "invalid_request",
            50027,
            &format!(
                "Invalid client_assertion_type '{}'.",
                req.client_assertion_type
            ),
        );
    }
    let Some(resource) = req
        .scope
        .strip_suffix("/.default")
        .filter(|r| !r.is_empty())
    else {
        return error(
            400,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
                req.scope
            ),
        );
    };
    if let Some(expected) = &state.expected_assertion
        && *expected != req.assertion
    {
        return error(
            401,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        );
    }
    let lifetime = state.lifetime;
    let token = issue(shared, state, resource);
    json_response(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
        &[("cache-control", "no-store, no-cache".into())],
    )
}

/// Mints a JWT-shaped token for `resource` and records it.
fn issue(shared: &EntraShared, state: &mut EntraState, resource: &str) -> String {
    let iat = now();
    let exp = iat.saturating_add(i64::try_from(state.lifetime).unwrap_or(i64::MAX));
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "verdict-testkit-fake-entra"});
    let claims = json!({
        "aud": resource,
        "iss": format!("https://sts.windows.net/{}/", shared.tenant),
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "appid": shared.client_id,
        "appidacr": "2",
        "idtyp": "app",
        "oid": uuid(),
        "sub": uuid(),
        "tid": shared.tenant,
        "uti": super::random_hex(11),
        "ver": "1.0",
    });
    let token = format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes()),
        b64url(&crate::oci::random_bytes(64)),
    );
    state.tokens.insert(
        token.clone(),
        IssuedToken {
            resource: resource.trim_end_matches('/').to_string(),
            exp,
            tenant: shared.tenant.clone(),
            client_id: shared.client_id.clone(),
        },
    );
    token
}

/// An Entra error answer.
fn error(status: u16, kind: &str, code: u32, description: &str) -> Response {
    let trace_id = uuid();
    let correlation_id = uuid();
    let t = time::OffsetDateTime::now_utc();
    let timestamp = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    json_response(
        status,
        &json!({
            "error": kind,
            "error_description": format!(
                "AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
        &[("cache-control", "no-store, no-cache".into())],
    )
}
