//! Errors of the Notation module. Verification results are values ([`super::SignatureOutcome`]);
//! these errors are for configuration that cannot be used at all (trust policy, trust stores).

/// A configuration problem of Notation verification. All variants are definitive: the same input
/// fails the same way until the configuration is fixed.
#[derive(Debug, thiserror::Error)]
pub enum NotationError {
    /// The trust policy document is not valid JSON of the expected shape or breaks a rule of the
    /// Notary Project trust policy specification v1.0.
    #[error("invalid Notation trust policy document: {reason}")]
    InvalidTrustPolicy { reason: String },

    /// A trust store name does not follow `[a-zA-Z0-9_.-]+` or its type is unknown.
    #[error("invalid trust store {store:?}: {reason}")]
    InvalidTrustStore { store: String, reason: String },

    /// A certificate given for a trust store cannot be used.
    #[error("trust store {store}: certificate {index} cannot be used: {reason}")]
    InvalidTrustStoreCertificate {
        store: String,
        index: usize,
        reason: String,
    },
}

impl NotationError {
    /// Notation errors come from configuration, never from the network: never transient.
    pub fn is_transient(&self) -> bool {
        match self {
            NotationError::InvalidTrustPolicy { .. }
            | NotationError::InvalidTrustStore { .. }
            | NotationError::InvalidTrustStoreCertificate { .. } => false,
        }
    }

    pub(crate) fn policy(reason: impl Into<String>) -> Self {
        NotationError::InvalidTrustPolicy {
            reason: reason.into(),
        }
    }
}
