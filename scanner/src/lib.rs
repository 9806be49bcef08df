//! Verdict's scanner: registry access, referrer discovery, signature verification and trust policy.

pub mod azure;
pub mod cosign;
mod der;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod kmp;
pub mod notation;
pub mod registry;
pub mod report;
mod rfc3161;
pub mod schedule;
pub mod store;
pub mod subject;
pub mod trust;
pub mod verify;

pub use error::Error;
