//! Store: where signatures and other referrers are read from.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::raw_parameters;

/// `spec` of Store and NamespacedStore.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoreSpec {
    /// Store plugin type, e.g. `oras` (required by the CRD).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Plugin path (external plugins only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PluginSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::preserve_unknown")]
    pub parameters: Option<StoreParameters>,
}

/// OCI artifact to download a plugin from (`spec.source`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// Free-form auth provider configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::preserve_unknown")]
    pub auth_provider: Option<Map<String, Value>>,
}

/// Store parameters, typed for the built-in `oras` store.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StoreParameters {
    Oras(OrasParameters),
    Other(Value),
}
raw_parameters!(StoreParameters);

impl StoreParameters {
    pub fn as_oras(&self) -> Option<&OrasParameters> {
        match self {
            StoreParameters::Oras(p) => Some(p),
            StoreParameters::Other(_) => None,
        }
    }
}

/// Parameters of the `oras` store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrasParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_http: Option<bool>,
    /// Discover Cosign signatures stored under the `sha256-<hex>.sig` tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosign_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_provider: Option<AuthProvider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_cache_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_enabled: Option<bool>,
    /// Referrer cache TTL in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// Registry credentials provider of the `oras` store (`parameters.authProvider`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthProvider {
    /// `dockerConfig`, `azureWorkloadIdentity`, `azureManagedIdentity`, `k8Secrets`,
    /// `awsEcrBasic` or `alibabacloudAcrBasic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Azure identity client ID (azureWorkloadIdentity, azureManagedIdentity).
    #[serde(default, rename = "clientID", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Registry host patterns the Azure providers answer for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<String>>,
    /// k8Secrets: service account whose image pull secrets are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// k8Secrets: docker config secrets to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<K8sSecretRef>>,
    /// dockerConfig: path of the docker config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_path: Option<String>,
}

/// A Kubernetes secret of type dockerconfigjson/dockercfg.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct K8sSecretRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}
