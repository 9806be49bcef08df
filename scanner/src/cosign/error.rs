//! Errors of the Cosign module. Verification results are values (a failed signature is an
//! outcome with a reason); these errors are for configuration that cannot be used at all.

/// A configuration problem of Cosign verification. Always definitive: the same configuration
/// fails the same way until someone edits it.
#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    /// A trust policy, key reference or keyless setting of the Verifier cannot be used.
    #[error("{message} — fix: {fix}")]
    Config { message: String, fix: String },

    /// The Sigstore trusted root (Fulcio, Rekor, CT log, TSA material) cannot be used.
    #[error("invalid Sigstore trusted root: {reason}")]
    TrustRoot { reason: String },
}

impl CosignError {
    /// Cosign errors come from configuration, never from the network: never transient.
    pub fn is_transient(&self) -> bool {
        match self {
            CosignError::Config { .. } | CosignError::TrustRoot { .. } => false,
        }
    }

    pub(crate) fn config(message: impl Into<String>, fix: impl Into<String>) -> Self {
        CosignError::Config {
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn trust_root(reason: impl Into<String>) -> Self {
        CosignError::TrustRoot {
            reason: reason.into(),
        }
    }
}
