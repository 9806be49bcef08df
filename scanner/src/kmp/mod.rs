//! Key management providers: Azure Key Vault ([`KeyVaultProvider`]; certificates with their
//! chains through secret bundles, keys as JSON Web Keys, every enabled version) and the manager
//! that refreshes them and keeps the last good material ([`KmpManager`]). Inline providers need
//! no fetching: [`crate::trust`] reads them from the resource.

mod akv;
mod jwk;
mod manager;
mod pkcs12;
mod secret;

pub use akv::{
    DEFAULT_VERSION_LIMIT, ItemKind, ItemState, KeyVaultItem, KeyVaultProvider, KeyVaultSnapshot,
};
pub use jwk::{JwkError, public_key_from_jwk, spki_der_from_jwk, spki_pem_from_jwk};
pub use manager::{KmpManager, KmpStatus, RefreshOutcome};
pub use secret::{SecretError, certificates_from_secret_bundle};
