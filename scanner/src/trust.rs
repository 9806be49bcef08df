//! The trust configuration: Ratify's Store, KeyManagementProvider, Verifier and Policy resources
//! turned into what verification needs (trust stores with certificates, trust policies, the
//! artifact policy, registry settings), plus a fingerprint that changes whenever anything that
//! could change a verdict changes. A verdict computed under another fingerprint is never served.
//!
//! Scope today: cluster-wide resources, the `oras` store, the `notation` and `cosign` verifiers
//! and the `inline` key management provider. Cosign's Sigstore material (Fulcio roots, Rekor and
//! CT log keys, TSAs) is not part of Ratify's resources (Ratify fetches it through TUF): it is
//! passed in with [`TrustConfig::from_resources_with_sigstore`]. Other types are configuration
//! errors that name the resource — a verifier whose trust material cannot be built must not
//! silently verify nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use verdict_crds::model::{
    KeyManagementProvider, KmpParameters, PolicyParameters, Resource, StoreParameters, Verifier,
    VerifierParameters,
};

use crate::cosign::{self, CosignVerifier, ProviderKey, SigstoreTrustRoot};
use crate::notation::{self, TrustStores};
use crate::report::{ArtifactPolicy, Rule};

/// Why a trust configuration could not be built. Always definitive: the same resources fail the
/// same way until someone edits them.
#[derive(Debug, thiserror::Error)]
pub enum TrustConfigError {
    #[error("{kind} {name:?}: {message} — fix: {fix}")]
    Resource {
        kind: &'static str,
        name: String,
        message: String,
        fix: String,
    },
    #[error(
        "no Verifier resource found — fix: add a Verifier (for example the `notation` verifier of the Ratify docs)"
    )]
    NoVerifier,
}

impl TrustConfigError {
    pub fn is_transient(&self) -> bool {
        false
    }

    fn resource(
        kind: &'static str,
        name: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        TrustConfigError::Resource {
            kind,
            name: name.to_owned(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Trust material held by one KeyManagementProvider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyMaterial {
    /// Certificates, PEM as configured (one provider may hold a chain).
    pub certificates_pem: Vec<String>,
    /// Public keys, PEM as configured.
    pub public_keys_pem: Vec<String>,
}

/// Registry settings from the `oras` Store resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    /// `useHttp: true`: talk plain HTTP to every registry (Ratify's semantics).
    pub use_http: bool,
    /// `cosignEnabled: true`: look up `sha256-<hex>.sig` tags.
    pub cosign_enabled: bool,
    /// `authProvider.name` (e.g. `dockerConfig`, `azureWorkloadIdentity`), if configured.
    pub auth_provider: Option<String>,
}

/// What one verifier checks.
#[derive(Debug, Clone)]
pub enum VerifierKind {
    Notation {
        policy: notation::TrustPolicyDocument,
        stores: TrustStores,
    },
    Cosign {
        verifier: Arc<CosignVerifier>,
    },
}

/// One configured Verifier.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// `metadata.name`, reported as Ratify's `verifierName`.
    pub name: String,
    /// `spec.type` / `spec.name`, reported as `verifierType`.
    pub verifier_type: String,
    /// Artifact types this verifier handles (`*` = any).
    pub artifact_types: Vec<String>,
    pub kind: VerifierKind,
}

impl VerifierConfig {
    /// Ratify's `CanVerify`: the artifact type is listed, or `*` is.
    pub fn can_verify(&self, artifact_type: &str) -> bool {
        self.artifact_types
            .iter()
            .any(|t| t == "*" || t == artifact_type)
    }
}

/// Everything verification needs, built once per configuration change.
#[derive(Debug, Clone)]
pub struct TrustConfig {
    pub store: StoreSettings,
    /// In configuration order; the first verifier that can verify an artifact type handles it.
    pub verifiers: Vec<VerifierConfig>,
    pub policy: ArtifactPolicy,
    /// `sha256:<hex>` over everything above, including the certificates' fingerprints.
    pub fingerprint: String,
}

impl TrustConfig {
    /// Build from loaded resources (use only resources without validation errors), with no
    /// Sigstore trust material: keyless Cosign policies are then rejected.
    pub fn from_resources<'a>(
        resources: impl IntoIterator<Item = &'a Resource>,
    ) -> Result<Self, TrustConfigError> {
        Self::from_resources_with_sigstore(resources, Arc::new(SigstoreTrustRoot::new()))
    }

    /// Build from loaded resources and the Sigstore trust material Cosign verifiers use offline
    /// (Fulcio CAs, Rekor/CT log keys, TSAs; e.g. a `trusted_root.json`).
    pub fn from_resources_with_sigstore<'a>(
        resources: impl IntoIterator<Item = &'a Resource>,
        sigstore: Arc<SigstoreTrustRoot>,
    ) -> Result<Self, TrustConfigError> {
        let mut kmps: BTreeMap<String, KeyMaterial> = BTreeMap::new();
        let mut verifiers_src: Vec<&Verifier> = Vec::new();
        let mut store = StoreSettings::default();
        let mut policy = ArtifactPolicy::default();
        let mut canonical = String::new();

        let resources: Vec<&Resource> = resources.into_iter().collect();
        for r in &resources {
            match r {
                Resource::KeyManagementProvider(kmp) => {
                    let material = key_material(kmp)?;
                    kmps.insert(kmp.name().to_owned(), material);
                }
                Resource::Verifier(v) => verifiers_src.push(v),
                Resource::Store(s) => {
                    if let Some(StoreParameters::Oras(p)) = &s.spec.parameters {
                        store.use_http = p.use_http.unwrap_or(false);
                        store.cosign_enabled = p.cosign_enabled.unwrap_or(false);
                        store.auth_provider = p.auth_provider.as_ref().and_then(|a| a.name.clone());
                    }
                    let _ = writeln!(canonical, "store {}", json_of(&s.spec));
                }
                Resource::Policy(p) => {
                    policy = artifact_policy(p.name(), p.spec.parameters.as_ref())?;
                    let _ = writeln!(canonical, "policy {}", json_of(&p.spec));
                }
                // Namespaced resources apply to `[namespace]` requests; handled by the
                // multi-tenant configuration, not the cluster-wide one.
                _ => {}
            }
        }

        let mut verifiers = Vec::new();
        for v in verifiers_src {
            verifiers.push(verifier_config(v, &kmps, &sigstore)?);
            let _ = writeln!(canonical, "verifier {} {}", v.name(), json_of(&v.spec));
        }
        if verifiers.is_empty() {
            return Err(TrustConfigError::NoVerifier);
        }
        for v in &verifiers {
            match &v.kind {
                VerifierKind::Notation { stores, .. } => {
                    let _ = writeln!(canonical, "stores {} {}", v.name, stores.fingerprint());
                }
                VerifierKind::Cosign { verifier } => {
                    let _ = writeln!(canonical, "cosign {}\n{}", v.name, verifier.canonical());
                }
            }
        }
        let fingerprint = format!("sha256:{}", hex::encode(Sha256::digest(canonical)));
        Ok(TrustConfig {
            store,
            verifiers,
            policy,
            fingerprint,
        })
    }

    /// The first verifier that handles `artifact_type` (Ratify's rule).
    pub fn verifier_for(&self, artifact_type: &str) -> Option<&VerifierConfig> {
        self.verifiers.iter().find(|v| v.can_verify(artifact_type))
    }
}

fn json_of<T: serde::Serialize>(v: &T) -> String {
    // Serialising a value of our own types cannot fail; an empty string would only weaken the
    // fingerprint, never make two different configurations equal in practice.
    serde_json::to_string(v).unwrap_or_default()
}

fn key_material(kmp: &KeyManagementProvider) -> Result<KeyMaterial, TrustConfigError> {
    const KIND: &str = "KeyManagementProvider";
    let name = kmp.name();
    match (kmp.spec.type_.as_str(), kmp.spec.parameters.as_ref()) {
        ("inline", Some(KmpParameters::Inline(p))) => {
            let value = p.value.clone().unwrap_or_default();
            match p.content_type.as_deref() {
                Some("certificate") => Ok(KeyMaterial {
                    certificates_pem: vec![value],
                    public_keys_pem: vec![],
                }),
                Some("key") => Ok(KeyMaterial {
                    certificates_pem: vec![],
                    public_keys_pem: vec![value],
                }),
                other => Err(TrustConfigError::resource(
                    KIND,
                    name,
                    format!("inline contentType {other:?} is not supported"),
                    "set spec.parameters.contentType to `certificate` or `key`",
                )),
            }
        }
        ("azurekeyvault", _) => Err(TrustConfigError::resource(
            KIND,
            name,
            "type azurekeyvault is not available in this build yet",
            "use an `inline` KeyManagementProvider with the certificate or key PEM for now",
        )),
        (other, _) => Err(TrustConfigError::resource(
            KIND,
            name,
            format!("type {other:?} is not supported"),
            "use type `inline` (or `azurekeyvault` once available)",
        )),
    }
}

fn artifact_policy(
    name: &str,
    params: Option<&PolicyParameters>,
) -> Result<ArtifactPolicy, TrustConfigError> {
    match params {
        Some(PolicyParameters::Config(p)) => {
            let mut entries = Vec::new();
            for (artifact_type, rule) in p.artifact_verification_policies.iter().flatten() {
                let rule = match rule.as_str() {
                    "any" => Rule::Any,
                    "all" => Rule::All,
                    other => {
                        return Err(TrustConfigError::resource(
                            "Policy",
                            name,
                            format!("artifactVerificationPolicies[{artifact_type:?}] is {other:?}"),
                            "use `any` or `all`",
                        ));
                    }
                };
                entries.push((artifact_type.as_str(), rule));
            }
            if p.passthrough_enabled == Some(true) {
                return Err(TrustConfigError::resource(
                    "Policy",
                    name,
                    "passthroughEnabled makes every verdict undecided (isSuccess false) and leaves the decision to Rego",
                    "remove passthroughEnabled; Verdict decides with the config policy",
                ));
            }
            Ok(ArtifactPolicy::from_map(entries))
        }
        None => Ok(ArtifactPolicy::default()),
        Some(_) => Err(TrustConfigError::resource(
            "Policy",
            name,
            "only the `config-policy` type is supported",
            "use type `config-policy` with artifactVerificationPolicies",
        )),
    }
}

/// Keys of KeyManagementProviders and key files, as Cosign trust policies resolve them.
struct CosignKeys<'a>(&'a BTreeMap<String, KeyMaterial>);

impl cosign::KeyResolver for CosignKeys<'_> {
    fn provider_keys(&self, provider: &str) -> Option<Vec<ProviderKey>> {
        // Inline providers hold one unnamed, unversioned key (Ratify's empty KMPMapKey).
        self.0.get(provider).map(|m| {
            m.public_keys_pem
                .iter()
                .map(|pem| ProviderKey {
                    name: String::new(),
                    version: String::new(),
                    pem: pem.clone(),
                })
                .collect()
        })
    }

    fn read_key_file(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

fn verifier_config(
    v: &Verifier,
    kmps: &BTreeMap<String, KeyMaterial>,
    sigstore: &Arc<SigstoreTrustRoot>,
) -> Result<VerifierConfig, TrustConfigError> {
    const KIND: &str = "Verifier";
    let name = v.name();
    let artifact_types: Vec<String> = v
        .spec
        .artifact_types()
        .into_iter()
        .map(str::to_owned)
        .collect();
    // Ratify v1.4's CRD carries the verifier type in `spec.name`.
    let verifier_type = v.spec.name.clone();
    match (verifier_type.as_str(), v.spec.parameters.as_ref()) {
        ("notation", Some(VerifierParameters::Notation(p))) => {
            let doc = p.trust_policy_doc.as_ref().ok_or_else(|| {
                TrustConfigError::resource(
                    KIND,
                    name,
                    "spec.parameters.trustPolicyDoc is missing",
                    "add a Notation trust policy document (version \"1.0\")",
                )
            })?;
            let policy = notation::TrustPolicyDocument::from_json(
                &serde_json::to_value(doc).map_err(|e| {
                    TrustConfigError::resource(KIND, name, e.to_string(), "check trustPolicyDoc")
                })?,
            )
            .map_err(|e| {
                TrustConfigError::resource(
                    KIND,
                    name,
                    format!("spec.parameters.trustPolicyDoc: {e}"),
                    "correct the trust policy document",
                )
            })?;
            let by_type = p.cert_stores_by_type().ok_or_else(|| {
                TrustConfigError::resource(
                    KIND,
                    name,
                    "verificationCertStores mixes the legacy and the typed format",
                    "use either `{ca: {store: [providers]}}` or `{store: [providers]}`",
                )
            })?;
            let mut stores = TrustStores::new();
            for (ty, named) in by_type {
                let ty = match ty {
                    verdict_crds::model::TrustStoreType::Ca => notation::TrustStoreType::Ca,
                    verdict_crds::model::TrustStoreType::SigningAuthority => {
                        notation::TrustStoreType::SigningAuthority
                    }
                    verdict_crds::model::TrustStoreType::Tsa => notation::TrustStoreType::Tsa,
                };
                for (store_name, providers) in named {
                    stores.create_store(ty, &store_name).map_err(|e| {
                        TrustConfigError::resource(KIND, name, e.to_string(), "rename the store")
                    })?;
                    for provider in providers {
                        let material = kmps.get(&provider).ok_or_else(|| {
                            TrustConfigError::resource(
                                KIND,
                                name,
                                format!(
                                    "verificationCertStores {}:{store_name} names KeyManagementProvider {provider:?}, which does not exist",
                                    ty.as_str()
                                ),
                                format!("create KeyManagementProvider {provider:?} or fix the name"),
                            )
                        })?;
                        if material.certificates_pem.is_empty() {
                            return Err(TrustConfigError::resource(
                                KIND,
                                name,
                                format!("KeyManagementProvider {provider:?} holds no certificates"),
                                "Notation trust stores need certificates (inline contentType `certificate`)",
                            ));
                        }
                        for pem in &material.certificates_pem {
                            stores
                                .add_certificates(ty, &store_name, pem.as_bytes())
                                .map_err(|e| {
                                    TrustConfigError::resource(
                                        "KeyManagementProvider",
                                        &provider,
                                        e.to_string(),
                                        "provide PEM certificates",
                                    )
                                })?;
                        }
                    }
                }
            }
            Ok(VerifierConfig {
                name: name.to_owned(),
                verifier_type,
                artifact_types,
                kind: VerifierKind::Notation { policy, stores },
            })
        }
        ("cosign", Some(VerifierParameters::Cosign(p))) => {
            let verifier = CosignVerifier::from_parameters(p, &CosignKeys(kmps), sigstore.clone())
                .map_err(|e| match e {
                    cosign::CosignError::Config { message, fix } => {
                        TrustConfigError::resource(KIND, name, message, fix)
                    }
                    other => TrustConfigError::resource(
                        KIND,
                        name,
                        other.to_string(),
                        "fix the Sigstore trusted root",
                    ),
                })?;
            Ok(VerifierConfig {
                name: name.to_owned(),
                verifier_type,
                artifact_types,
                kind: VerifierKind::Cosign {
                    verifier: Arc::new(verifier),
                },
            })
        }
        ("cosign", _) => Err(TrustConfigError::resource(
            KIND,
            name,
            "spec.parameters is missing",
            "add `trustPolicies:` with `- name: default`, `scopes: [\"*\"]` and `keys: [{provider: <KeyManagementProvider>}]`",
        )),
        (other, _) => Err(TrustConfigError::resource(
            KIND,
            name,
            format!("verifier type {other:?} is not supported yet"),
            "use the `notation` or `cosign` verifier",
        )),
    }
}
