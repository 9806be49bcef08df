//! KeyManagementProvider (and the deprecated CertificateStore): where keys and certificates
//! come from.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::raw_parameters;

/// `spec` of KeyManagementProvider and NamespacedKeyManagementProvider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyManagementProviderSpec {
    /// `azurekeyvault` or `inline`.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    /// Go duration (e.g. `1h30m`); empty means no periodic refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::preserve_unknown")]
    pub parameters: Option<KmpParameters>,
}

/// KMP parameters, typed for `azurekeyvault` and `inline`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum KmpParameters {
    AzureKeyVault(AzureKeyVaultParameters),
    Inline(InlineParameters),
    Other(Value),
}
raw_parameters!(KmpParameters);

impl KmpParameters {
    pub fn as_azure_key_vault(&self) -> Option<&AzureKeyVaultParameters> {
        match self {
            KmpParameters::AzureKeyVault(p) => Some(p),
            _ => None,
        }
    }

    pub fn as_inline(&self) -> Option<&InlineParameters> {
        match self {
            KmpParameters::Inline(p) => Some(p),
            _ => None,
        }
    }
}

/// Parameters of the `azurekeyvault` provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AzureKeyVaultParameters {
    #[serde(default, rename = "vaultURI", skip_serializing_if = "Option::is_none")]
    pub vault_uri: Option<String>,
    #[serde(default, rename = "tenantID", skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, rename = "clientID", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates: Option<Vec<KeyVaultObject>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<KeyVaultObject>>,
    /// Azure resource (audience) used by Ratify internally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// A certificate or key in Key Vault: name, optional pinned version, optional number of
/// versions to keep trusting.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyVaultObject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_history_limit: Option<u32>,
}

/// Parameters of the `inline` provider.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineParameters {
    /// `certificate` or `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// PEM text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `spec` of the deprecated CertificateStore.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CertificateStoreSpec {
    /// `azurekeyvault` or `inline`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}
