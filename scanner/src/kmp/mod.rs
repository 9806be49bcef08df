//! Key management providers' material in the forms their services hand it out. Today: JSON Web
//! Keys as Azure Key Vault returns them (`GET /keys/{name}/{version}`), turned into the public
//! keys the Cosign verifier trusts. (The Key Vault provider itself comes with the Azure work.)

mod jwk;

pub use jwk::{JwkError, public_key_from_jwk, spki_der_from_jwk, spki_pem_from_jwk};
