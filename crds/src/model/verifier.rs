//! Verifier: Notation and Cosign signature verification settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::raw_parameters;
use super::store::PluginSource;

/// `spec` of Verifier and NamespacedVerifier.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifierSpec {
    /// Verifier plugin type: `notation`, `cosign`, ... (required by the CRD).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Comma-separated artifact types this verifier handles (required by the CRD).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_types: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PluginSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crd::preserve_unknown")]
    pub parameters: Option<VerifierParameters>,
}

impl VerifierSpec {
    /// `artifactTypes` split at commas, trimmed, empty entries dropped.
    pub fn artifact_types(&self) -> Vec<&str> {
        self.artifact_types
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// Verifier parameters, typed for `notation` and `cosign`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum VerifierParameters {
    Notation(NotationParameters),
    Cosign(CosignParameters),
    Other(Value),
}
raw_parameters!(VerifierParameters);

impl VerifierParameters {
    pub fn as_notation(&self) -> Option<&NotationParameters> {
        match self {
            VerifierParameters::Notation(p) => Some(p),
            _ => None,
        }
    }

    pub fn as_cosign(&self) -> Option<&CosignParameters> {
        match self {
            VerifierParameters::Cosign(p) => Some(p),
            _ => None,
        }
    }
}

/// Parameters of the `notation` verifier.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotationParameters {
    /// Directories of trusted certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_certs: Option<Vec<String>>,
    /// Either `{ca|signingAuthority|tsa: {<store>: [<kmp>...]}}` or the legacy
    /// `{<store>: [<kmp>...]}` (treated as `ca`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_cert_stores: Option<BTreeMap<String, CertStoreEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_policy_doc: Option<TrustPolicyDocument>,
}

/// A value under `verificationCertStores`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CertStoreEntry {
    /// Legacy format: store name → KeyManagementProvider (or CertificateStore) names.
    Refs(Vec<String>),
    /// New format under a trust store type: store name → provider names.
    Stores(BTreeMap<String, Vec<String>>),
}

/// The kinds of trust store the Notary Project defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TrustStoreType {
    /// Roots (or pinned intermediates) for `notary.x509` signatures.
    #[serde(rename = "ca")]
    Ca,
    /// Roots for `notary.x509.signingAuthority` signatures.
    #[serde(rename = "signingAuthority")]
    SigningAuthority,
    /// Timestamping authority roots for RFC 3161 countersignatures.
    #[serde(rename = "tsa")]
    Tsa,
}

impl std::fmt::Display for TrustStoreType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TrustStoreType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ca" => Some(TrustStoreType::Ca),
            "signingAuthority" => Some(TrustStoreType::SigningAuthority),
            "tsa" => Some(TrustStoreType::Tsa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrustStoreType::Ca => "ca",
            TrustStoreType::SigningAuthority => "signingAuthority",
            TrustStoreType::Tsa => "tsa",
        }
    }
}

impl NotationParameters {
    /// `verificationCertStores` in the new format: type → store name → provider names.
    /// Legacy entries are placed under `ca`. Returns `None` when the two formats are mixed or a
    /// key of the new format is not a trust store type (validation reports those).
    pub fn cert_stores_by_type(
        &self,
    ) -> Option<BTreeMap<TrustStoreType, BTreeMap<String, Vec<String>>>> {
        let mut out: BTreeMap<TrustStoreType, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        let stores = match &self.verification_cert_stores {
            Some(s) => s,
            None => return Some(out),
        };
        let legacy = stores
            .values()
            .all(|e| matches!(e, CertStoreEntry::Refs(_)));
        let typed = stores
            .values()
            .all(|e| matches!(e, CertStoreEntry::Stores(_)));
        if legacy {
            for (name, e) in stores {
                if let CertStoreEntry::Refs(r) = e {
                    out.entry(TrustStoreType::Ca)
                        .or_default()
                        .insert(name.clone(), r.clone());
                }
            }
        } else if typed {
            for (ty, e) in stores {
                let t = TrustStoreType::parse(ty)?;
                if let CertStoreEntry::Stores(m) = e {
                    out.entry(t).or_default().extend(m.clone());
                }
            }
        } else {
            return None;
        }
        Some(out)
    }
}

/// Notation trust policy document (version `1.0`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustPolicyDocument {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_policies: Option<Vec<NotationTrustPolicy>>,
}

/// One Notation trust policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotationTrustPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_verification: Option<SignatureVerification>,
    /// `type:name` entries, e.g. `ca:certs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_stores: Option<Vec<String>>,
    /// `*` or `x509.subject: <DN>` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_identities: Option<Vec<String>>,
}

/// `signatureVerification` of a Notation trust policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureVerification {
    /// `strict`, `permissive`, `audit` or `skip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Validation type (`authenticity`, `authenticTimestamp`, `expiry`, `revocation`) →
    /// action (`enforce`, `log`, `skip`).
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_: Option<BTreeMap<String, String>>,
    /// `always` or `afterCertExpiry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_timestamp: Option<String>,
}

/// Parameters of the `cosign` verifier.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CosignParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_policies: Option<Vec<CosignTrustPolicy>>,
    /// Deprecated: path of a public key file (legacy mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Deprecated: Rekor URL (legacy mode).
    #[serde(default, rename = "rekorURL", skip_serializing_if = "Option::is_none")]
    pub rekor_url: Option<String>,
}

/// One Cosign trust policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CosignTrustPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Trust policy schema version; only `1.0.0` exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Image reference scopes: `*`, an exact repository, or a prefix ending in `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<CosignKey>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<Keyless>,
    /// Verify the transparency log entry (default true).
    #[serde(
        default,
        rename = "tLogVerify",
        skip_serializing_if = "Option::is_none"
    )]
    pub t_log_verify: Option<bool>,
    #[serde(default, rename = "rekorURL", skip_serializing_if = "Option::is_none")]
    pub rekor_url: Option<String>,
}

/// A key of a Cosign trust policy: from a KeyManagementProvider or a file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CosignKey {
    /// KeyManagementProvider name (`name` or `namespace/name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Key name inside the provider; all keys of the provider when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Path of a public key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Keyless (Fulcio certificate) verification settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Keyless {
    /// Verify the certificate transparency log SCT (default true).
    #[serde(
        default,
        rename = "ctLogVerify",
        skip_serializing_if = "Option::is_none"
    )]
    pub ct_log_verify: Option<bool>,
    #[serde(
        default,
        rename = "certificateIdentity",
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_identity: Option<String>,
    #[serde(
        default,
        rename = "certificateIdentityRegExp",
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_identity_reg_exp: Option<String>,
    #[serde(
        default,
        rename = "certificateOIDCIssuer",
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_oidc_issuer: Option<String>,
    #[serde(
        default,
        rename = "certificateOIDCIssuerRegExp",
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_oidc_issuer_reg_exp: Option<String>,
}
