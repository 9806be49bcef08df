//! Policy: how verifier results combine into allow/deny.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::raw_parameters;

/// `spec` of Policy and NamespacedPolicy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PolicySpec {
    /// `config-policy` or `rego-policy`.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::preserve_unknown")]
    pub parameters: Option<PolicyParameters>,
}

/// Policy parameters, typed for `config-policy` and `rego-policy`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PolicyParameters {
    Config(ConfigPolicyParameters),
    Rego(RegoPolicyParameters),
    Other(Value),
}
raw_parameters!(PolicyParameters);

/// Parameters of `config-policy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigPolicyParameters {
    /// Artifact type (or `default`) → `any` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_verification_policies: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_enabled: Option<bool>,
}

/// Parameters of `rego-policy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegoPolicyParameters {
    /// Rego source (`package ratify.policy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough_enabled: Option<bool>,
}
