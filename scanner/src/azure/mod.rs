//! Azure: workload identity (an Entra ID token from the pod's projected service-account token)
//! and the HTTP settings every Azure call shares: a deadline, the trusted CAs (the platform's,
//! `SSL_CERT_FILE` and `--extra-ca-file`, for Entra, ACR and Key Vault alike — what a
//! TLS-inspecting proxy or a test CA needs, never a switch that turns verification off) and the
//! Entra authority host (`AZURE_AUTHORITY_HOST`, for sovereign clouds).

mod identity;

use std::sync::Arc;
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::http::{ClientOptions, FixedRetryOptions, RetryOptions, Transport};

pub use identity::{
    ACR_SCOPE, DEFAULT_AUTHORITY_HOST, FederatedTokenFile, KEY_VAULT_SCOPE, WorkloadIdentity,
    WorkloadIdentityEnv,
};

/// Why an Azure call failed, classified like every other error of the scanner.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AzureError {
    /// Missing or unusable settings (no token file, no tenant, a bad URL or CA file). Definitive.
    #[error("{what}: {message} — fix: {fix}")]
    Config {
        what: String,
        message: String,
        fix: String,
    },
    /// The service answered with an error, or could not be reached.
    #[error("{what}: {}{message}", answer(.status, .code))]
    Service {
        what: String,
        /// HTTP status; `None` when no answer arrived (connection refused, timeout).
        status: Option<u16>,
        /// The service's error code (`KeyNotFound`, `Forbidden`, AADSTS numbers, ...).
        code: Option<String>,
        message: String,
    },
}

/// `HTTP 404 KeyNotFound: ` for a service's answer, nothing when there was none.
fn answer(status: &Option<u16>, code: &Option<String>) -> String {
    match (status, code) {
        (Some(s), Some(c)) => format!("HTTP {s} {c}: "),
        (Some(s), None) => format!("HTTP {s}: "),
        (None, _) => String::new(),
    }
}

impl AzureError {
    /// Whether a retry may succeed: no answer, 408, 429 and 5xx. A 401/403/404 stays until
    /// someone changes a role assignment or the configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            AzureError::Config { .. } => false,
            AzureError::Service { status, .. } => match status {
                None => true,
                Some(s) => *s == 408 || *s == 429 || *s >= 500,
            },
        }
    }

    /// A short form for status fields (`brieferror`): the code and status only.
    pub fn brief(&self) -> String {
        match self {
            AzureError::Config { message, .. } => message.chars().take(80).collect(),
            AzureError::Service { status, code, .. } => match (status, code) {
                (Some(s), Some(c)) => format!("HTTP {s} {c}"),
                (Some(s), None) => format!("HTTP {s}"),
                (None, _) => "unreachable".into(),
            },
        }
    }

    pub(crate) fn config(
        what: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        AzureError::Config {
            what: what.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// From an Azure SDK error: its HTTP status and service error code when there was an answer.
    pub(crate) fn from_core(what: impl Into<String>, e: &azure_core::Error) -> Self {
        use azure_core::error::ErrorKind;
        let (status, code) = match e.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => (Some(u16::from(*status)), error_code.clone()),
            _ => (None, None),
        };
        AzureError::Service {
            what: what.into(),
            status,
            code,
            message: e.to_string(),
        }
    }
}

/// How Verdict talks to Azure endpoints.
#[derive(Clone)]
pub struct AzureHttp {
    /// PEM CA certificates trusted in addition to the platform's roots.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Deadline of each HTTP request (connect + answer).
    pub timeout: Duration,
    /// Retries of throttled or failed requests inside the SDK (each within `timeout`).
    pub max_retries: u32,
}

impl std::fmt::Debug for AzureHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureHttp")
            .field("extra_ca_certificates", &self.extra_ca_pem.len())
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl Default for AzureHttp {
    fn default() -> Self {
        AzureHttp {
            extra_ca_pem: Vec::new(),
            timeout: Duration::from_secs(10),
            max_retries: 2,
        }
    }
}

impl AzureHttp {
    /// A reqwest client with the platform roots plus the extra CAs and the deadline.
    pub fn reqwest_client(&self) -> Result<reqwest::Client, AzureError> {
        let mut roots = Vec::new();
        for pem in &self.extra_ca_pem {
            roots.extend(reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                AzureError::config(
                    "extra CA certificates",
                    format!("not valid PEM: {e}"),
                    "pass PEM CA certificates in --extra-ca-file / SSL_CERT_FILE",
                )
            })?);
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("verdict/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.timeout.min(Duration::from_secs(5)))
            .timeout(self.timeout);
        if !roots.is_empty() {
            builder = builder.tls_certs_merge(roots);
        }
        builder.build().map_err(|e| {
            AzureError::config(
                "HTTP client for Azure",
                e.to_string(),
                "check the CA certificates",
            )
        })
    }

    /// Azure SDK client options: our transport (CAs, deadline), bounded retries and, when given,
    /// the Entra authority host.
    pub fn client_options(
        &self,
        authority_host: Option<&str>,
    ) -> Result<ClientOptions, AzureError> {
        let mut options = ClientOptions {
            transport: Some(Transport::new(Arc::new(self.reqwest_client()?))),
            retry: RetryOptions::fixed(FixedRetryOptions {
                delay: time::Duration::milliseconds(200),
                max_retries: self.max_retries,
                max_total_elapsed: time::Duration::try_from(
                    self.timeout.saturating_mul(self.max_retries + 1),
                )
                .unwrap_or(time::Duration::MAX),
            }),
            ..ClientOptions::default()
        };
        if let Some(host) = authority_host {
            let mut custom = CustomConfiguration::default();
            custom.authority_host = host.trim_end_matches('/').to_owned();
            options.cloud = Some(Arc::new(CloudConfiguration::from(custom)));
        }
        Ok(options)
    }
}
