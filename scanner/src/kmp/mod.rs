//! Key management providers' material in the forms their services hand it out. Today: JSON Web
//! Keys as Azure Key Vault returns them (`GET /keys/{name}/{version}`), turned into the public
//! keys the Cosign verifier trusts, and the certificate chains of Key Vault secret bundles
//! (`GET /secrets/{name}/{version}`, PEM). (The Key Vault provider itself comes with the Azure
//! work.)

mod jwk;
mod secret;

pub use jwk::{JwkError, public_key_from_jwk, spki_der_from_jwk, spki_pem_from_jwk};
pub use secret::{SecretError, certificates_from_secret_bundle};
