//! Typed model of Ratify's `config.ratify.deislabs.io/v1beta1` resources.
//!
//! Field names follow Ratify's CRDs exactly (`issuccess`, `artifactTypes`, `vaultURI`, ...).
//! Optional fields are `Option` and are left out when serialised, so a loaded object serialises
//! back to the same JSON. Plugin `parameters` are typed for the plugins Verdict implements
//! (ORAS store, Notation and Cosign verifiers, Azure Key Vault and inline KMPs, config and rego
//! policies) and kept as raw JSON for any other plugin.

mod kmp;
mod policy;
mod store;
mod verifier;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use kmp::{
    AzureKeyVaultParameters, CertificateStoreSpec, InlineParameters, KeyManagementProviderSpec,
    KeyVaultObject, KmpParameters,
};
pub use policy::{ConfigPolicyParameters, PolicyParameters, PolicySpec, RegoPolicyParameters};
pub use store::{
    AuthProvider, K8sSecretRef, OrasParameters, PluginSource, StoreParameters, StoreSpec,
};
pub use verifier::{
    CertStoreEntry, CosignKey, CosignParameters, CosignTrustPolicy, Keyless, NotationParameters,
    NotationTrustPolicy, SignatureVerification, TrustPolicyDocument, TrustStoreType,
    VerifierParameters, VerifierSpec,
};

/// The API group of Ratify v1 configuration resources.
pub const GROUP: &str = "config.ratify.deislabs.io";
/// The served storage version.
pub const API_VERSION: &str = "config.ratify.deislabs.io/v1beta1";

/// Kubernetes object metadata; every field of `ObjectMeta` is kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_references: Option<Vec<OwnerReference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalizers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_fields: Option<Vec<ManagedFieldsEntry>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_owner_deletion: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedFieldsEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields_type: Option<String>,
    #[serde(default, rename = "fieldsV1", skip_serializing_if = "Option::is_none")]
    pub fields_v1: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
}

/// Status of Store, Verifier and Policy resources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PluginStatus {
    #[serde(default)]
    pub issuccess: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brieferror: Option<String>,
}

/// Status of KeyManagementProvider and CertificateStore resources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProviderStatus {
    #[serde(default)]
    pub issuccess: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brieferror: Option<String>,
    /// RFC 3339 time of the last fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lastfetchedtime: Option<String>,
    /// Provider-specific properties (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::preserve_unknown_any")]
    pub properties: Option<Value>,
}

/// A Kubernetes object with a typed spec and status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Object<Spec, Status> {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Spec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

impl<Spec, Status> Object<Spec, Status> {
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }
}

pub type Store = Object<StoreSpec, PluginStatus>;
pub type Verifier = Object<VerifierSpec, PluginStatus>;
pub type KeyManagementProvider = Object<KeyManagementProviderSpec, ProviderStatus>;
pub type Policy = Object<PolicySpec, PluginStatus>;
pub type CertificateStore = Object<CertificateStoreSpec, ProviderStatus>;

/// The kinds of Ratify v1 configuration resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Store,
    NamespacedStore,
    Verifier,
    NamespacedVerifier,
    KeyManagementProvider,
    NamespacedKeyManagementProvider,
    Policy,
    NamespacedPolicy,
    /// Deprecated since Ratify v1.2.0: read, with a warning.
    CertificateStore,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Store,
        Kind::NamespacedStore,
        Kind::Verifier,
        Kind::NamespacedVerifier,
        Kind::KeyManagementProvider,
        Kind::NamespacedKeyManagementProvider,
        Kind::Policy,
        Kind::NamespacedPolicy,
        Kind::CertificateStore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Store => "Store",
            Kind::NamespacedStore => "NamespacedStore",
            Kind::Verifier => "Verifier",
            Kind::NamespacedVerifier => "NamespacedVerifier",
            Kind::KeyManagementProvider => "KeyManagementProvider",
            Kind::NamespacedKeyManagementProvider => "NamespacedKeyManagementProvider",
            Kind::Policy => "Policy",
            Kind::NamespacedPolicy => "NamespacedPolicy",
            Kind::CertificateStore => "CertificateStore",
        }
    }

    pub fn from_name(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        matches!(
            self,
            Kind::NamespacedStore
                | Kind::NamespacedVerifier
                | Kind::NamespacedKeyManagementProvider
                | Kind::NamespacedPolicy
                | Kind::CertificateStore
        )
    }

    /// Whether Ratify's CRD for this kind still serves the deprecated `v1alpha1`.
    pub fn has_v1alpha1(self) -> bool {
        matches!(
            self,
            Kind::Store | Kind::Verifier | Kind::Policy | Kind::CertificateStore
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Ratify configuration resource of any kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    Store(Store),
    NamespacedStore(Store),
    Verifier(Verifier),
    NamespacedVerifier(Verifier),
    KeyManagementProvider(KeyManagementProvider),
    NamespacedKeyManagementProvider(KeyManagementProvider),
    Policy(Policy),
    NamespacedPolicy(Policy),
    CertificateStore(CertificateStore),
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Store(_) => Kind::Store,
            Resource::NamespacedStore(_) => Kind::NamespacedStore,
            Resource::Verifier(_) => Kind::Verifier,
            Resource::NamespacedVerifier(_) => Kind::NamespacedVerifier,
            Resource::KeyManagementProvider(_) => Kind::KeyManagementProvider,
            Resource::NamespacedKeyManagementProvider(_) => Kind::NamespacedKeyManagementProvider,
            Resource::Policy(_) => Kind::Policy,
            Resource::NamespacedPolicy(_) => Kind::NamespacedPolicy,
            Resource::CertificateStore(_) => Kind::CertificateStore,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Resource::Store(o) | Resource::NamespacedStore(o) => &o.metadata,
            Resource::Verifier(o) | Resource::NamespacedVerifier(o) => &o.metadata,
            Resource::KeyManagementProvider(o) | Resource::NamespacedKeyManagementProvider(o) => {
                &o.metadata
            }
            Resource::Policy(o) | Resource::NamespacedPolicy(o) => &o.metadata,
            Resource::CertificateStore(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    /// The namespace a namespaced resource applies to (`default` when not written, as with
    /// `kubectl apply`); `None` for cluster-scoped kinds.
    pub fn namespace(&self) -> Option<&str> {
        if self.kind().is_namespaced() {
            Some(self.metadata().namespace.as_deref().unwrap_or("default"))
        } else {
            None
        }
    }

    pub fn as_store(&self) -> Option<&Store> {
        match self {
            Resource::Store(o) | Resource::NamespacedStore(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_verifier(&self) -> Option<&Verifier> {
        match self {
            Resource::Verifier(o) | Resource::NamespacedVerifier(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_key_management_provider(&self) -> Option<&KeyManagementProvider> {
        match self {
            Resource::KeyManagementProvider(o) | Resource::NamespacedKeyManagementProvider(o) => {
                Some(o)
            }
            _ => None,
        }
    }

    pub fn as_policy(&self) -> Option<&Policy> {
        match self {
            Resource::Policy(o) | Resource::NamespacedPolicy(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_certificate_store(&self) -> Option<&CertificateStore> {
        match self {
            Resource::CertificateStore(o) => Some(o),
            _ => None,
        }
    }

    /// The resource as JSON, exactly as it would be written back.
    pub fn to_json(&self) -> Value {
        // Serialising plain data structures with string keys cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Serialize for Resource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Resource::Store(o) | Resource::NamespacedStore(o) => o.serialize(s),
            Resource::Verifier(o) | Resource::NamespacedVerifier(o) => o.serialize(s),
            Resource::KeyManagementProvider(o) | Resource::NamespacedKeyManagementProvider(o) => {
                o.serialize(s)
            }
            Resource::Policy(o) | Resource::NamespacedPolicy(o) => o.serialize(s),
            Resource::CertificateStore(o) => o.serialize(s),
        }
    }
}

/// Implements `Deserialize` for a parameters enum as "raw JSON first": the loader then types the
/// parameters according to the plugin named in the spec (see `decode`).
macro_rules! raw_parameters {
    ($t:ty) => {
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                serde_json::Value::deserialize(d).map(<$t>::Other)
            }
        }
    };
}
pub(crate) use raw_parameters;
