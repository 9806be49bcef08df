//! Ratify's v1beta1 custom resources (`config.ratify.deislabs.io`) as Verdict's configuration.
//!
//! - [`model`]: typed Store, Verifier, KeyManagementProvider, Policy (and Namespaced kinds) and
//!   the deprecated CertificateStore, with typed parameters for the plugins Verdict implements.
//! - [`load_path`] / [`load_str`]: read multi-document YAML from files or a directory. Every
//!   problem is a [`Diagnostic`] naming file, line, column, field path and a fix; a bad document
//!   does not stop the others from loading.
//! - [`Resource::from_json`]: type and validate an object read from the cluster.

pub mod cluster;
pub mod crd;
pub mod diag;
pub mod dn;
pub mod model;
pub mod notation;

mod decode;
mod error;
mod load;
mod validate;

pub use validate::parse_go_duration;
mod yaml;

pub use decode::Decoded;
pub use diag::{Diagnostic, FieldPath, Pos, Segment, Severity};
pub use error::CrdError;
pub use load::{
    LoadReport, Loaded, Source, load_files, load_path, load_str, parse_yaml, validate_set,
};
pub use model::*;
pub use yaml::Positions;
