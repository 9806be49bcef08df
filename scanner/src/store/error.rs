//! Errors of the verdict store.

use std::path::PathBuf;

/// A failure of the verdict store. Lookups that find a bad entry are not errors (they are
/// [`super::Lookup::Miss`]); these are invalid inputs, key-file problems and backend failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A verdict or tag key does not have the canonical form.
    #[error("invalid {what} {input:?}: {reason}")]
    InvalidKey {
        what: &'static str,
        input: String,
        reason: String,
    },
    /// A verdict that cannot be stored as given (digest mismatch, missing trust fingerprint, ...).
    #[error("refusing to store the verdict for {key}: {reason}")]
    InvalidVerdict { key: String, reason: String },
    /// The verdict key file is unreadable, malformed or of an unsupported kind.
    #[error("verdict key {path}: {reason}")]
    SignerKey { path: PathBuf, reason: String },
    /// Reading or writing a file or directory of the store failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The sled backend failed.
    #[error("verdict store ({op}): {source}")]
    Backend {
        op: &'static str,
        #[source]
        source: sled::Error,
    },
    /// An entry could not be encoded (a bug: every field of a verdict is encodable).
    #[error("encoding a verdict store entry: {0}")]
    Encode(#[source] postcard::Error),
    /// The store directory is in use or cannot be opened, and quarantining it would be wrong.
    #[error("cannot open the verdict store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
}

impl StoreError {
    /// True when retrying later may succeed (I/O errors); false for bad input and bad key files.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::InvalidKey { .. }
            | StoreError::InvalidVerdict { .. }
            | StoreError::SignerKey { .. }
            | StoreError::Encode(_) => false,
            StoreError::Io { .. } | StoreError::Open { .. } => true,
            StoreError::Backend { source, .. } => matches!(source, sled::Error::Io(_)),
        }
    }

    pub(crate) fn backend(op: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
        move |source| StoreError::Backend { op, source }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }
}
