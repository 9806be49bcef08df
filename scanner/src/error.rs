//! The crate-level error: every module's error folds into it, each classified as
//! definitive (the same input will fail the same way) or transient (retry may succeed).

/// Any failure of the scanner.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Notation(#[from] crate::notation::NotationError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    TrustConfig(#[from] crate::trust::TrustConfigError),
}

impl Error {
    /// True when retrying later may succeed (registry down, throttled, deadline passed).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Notation(e) => e.is_transient(),
            Error::Registry(e) => e.is_transient(),
            Error::Store(e) => e.is_transient(),
            Error::TrustConfig(e) => e.is_transient(),
        }
    }
}
