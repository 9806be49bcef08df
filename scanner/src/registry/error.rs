//! Typed registry errors. A registry that is down, throttling or refusing us is never "unsigned".

use std::time::Duration;

/// Errors of registry access, each classified by [`RegistryError::is_transient`].
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The image reference, repository name or digest text is malformed.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },

    /// The client configuration is unusable (bad plain-HTTP entry, bad CA certificate, ...).
    #[error("invalid registry client configuration: {reason}")]
    Config { reason: String },

    /// The auth provider could not produce credentials (unreadable or malformed Docker config, ...).
    #[error("credentials for registry {registry} from {provider}: {reason}")]
    Credentials {
        registry: String,
        provider: String,
        reason: String,
    },

    /// The registry answered 404 for the manifest, blob or tag.
    #[error("{what} not found in registry {registry}")]
    NotFound { registry: String, what: String },

    /// The registry (or its token server) rejected our credentials, even after fetching a fresh token.
    #[error(
        "registry {registry} rejected our credentials ({detail}); check the credentials the auth provider supplies for this registry"
    )]
    Unauthorized { registry: String, detail: String },

    /// The registry answered 403: the credentials are valid but lack pull permission.
    #[error(
        "registry {registry} denied access to {what} ({detail}); grant the identity pull permission on the repository"
    )]
    Denied {
        registry: String,
        what: String,
        detail: String,
    },

    /// The registry answered 429 and retries did not get through before the deadline.
    #[error("registry {registry} is throttling requests (HTTP 429{})", fmt_retry_after(.retry_after))]
    Throttled {
        registry: String,
        retry_after: Option<Duration>,
    },

    /// The registry could not be reached, reset the connection, or answered 5xx/408.
    #[error("registry {registry} is unavailable{}: {detail}", fmt_status(.status))]
    Unavailable {
        registry: String,
        status: Option<u16>,
        detail: String,
    },

    /// The call did not complete within its deadline.
    #[error("{what} at registry {registry} did not complete within {after:?}")]
    Timeout {
        registry: String,
        what: String,
        after: Duration,
    },

    /// The bytes served do not hash to the digest they were requested by.
    #[error("{what}: the registry served content with digest {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// A manifest, index or blob exceeds the configured size limit.
    #[error(
        "{what} is larger than the {limit}-byte limit{}; raise the limit only if such content is expected",
        fmt_size(.size)
    )]
    TooLarge {
        what: String,
        limit: u64,
        size: Option<u64>,
    },

    /// Content-addressed content (digest verified) is not a valid manifest or index.
    #[error("invalid manifest {what}: {reason}")]
    InvalidManifest { what: String, reason: String },

    /// The registry's answer breaks the distribution protocol (bad header, malformed referrers page, ...).
    #[error("registry {registry} sent an invalid response to {what}: {reason}")]
    InvalidResponse {
        registry: String,
        what: String,
        reason: String,
    },

    /// The registry answered a status this client does not expect for the request (e.g. 400).
    #[error("registry {registry} answered HTTP {status} to {what}: {detail}")]
    UnexpectedStatus {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
}

fn fmt_retry_after(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!(", Retry-After {}s", d.as_secs_f64()),
        None => String::new(),
    }
}

fn fmt_status(s: &Option<u16>) -> String {
    match s {
        Some(s) => format!(" (HTTP {s})"),
        None => String::new(),
    }
}

fn fmt_size(s: &Option<u64>) -> String {
    match s {
        Some(s) => format!(" (it is {s} bytes)"),
        None => String::new(),
    }
}

impl RegistryError {
    /// True when a later retry may succeed, so the outcome must never be cached as a definitive verdict.
    ///
    /// Transient: `Throttled`, `Unavailable`, `Timeout`, `InvalidResponse` (a misbehaving registry or
    /// proxy, not a property of the image), and the auth failures `Unauthorized`, `Denied` and
    /// `Credentials`: they depend on our credentials, which rotate or get fixed, not on the image.
    /// Definitive: `NotFound`, `DigestMismatch`, `TooLarge`, `InvalidManifest`, `InvalidReference`,
    /// `Config`, `UnexpectedStatus` — the same request fails the same way.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Throttled { .. }
            | RegistryError::Unavailable { .. }
            | RegistryError::Timeout { .. }
            | RegistryError::InvalidResponse { .. }
            | RegistryError::Unauthorized { .. }
            | RegistryError::Denied { .. }
            | RegistryError::Credentials { .. } => true,
            RegistryError::InvalidReference { .. }
            | RegistryError::Config { .. }
            | RegistryError::NotFound { .. }
            | RegistryError::DigestMismatch { .. }
            | RegistryError::TooLarge { .. }
            | RegistryError::InvalidManifest { .. }
            | RegistryError::UnexpectedStatus { .. } => false,
        }
    }

    /// True for errors the HTTP layer retries by itself within the call's deadline.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            RegistryError::Throttled { .. } | RegistryError::Unavailable { .. }
        )
    }

    /// True for [`RegistryError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }
}
