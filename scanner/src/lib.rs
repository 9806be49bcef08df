//! Verdict's scanner: registry access, referrer discovery, signature verification and trust policy.

pub mod error;
pub mod notation;
pub mod registry;
pub mod report;
pub mod store;
pub mod trust;
pub mod verify;

pub use error::Error;
