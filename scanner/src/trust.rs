//! The trust configuration: Ratify's Store, KeyManagementProvider, Verifier and Policy resources
//! turned into what verification needs (trust stores with certificates, trust policies, the
//! artifact policy, registry settings), plus a fingerprint that changes whenever anything that
//! could change a verdict changes. A verdict computed under another fingerprint is never served.
//!
//! Ratify's multi-tenancy ([`TrustSet`]): a `[namespace]` key is decided by that namespace's own
//! NamespacedStore / NamespacedVerifier / NamespacedPolicy where it has them, falling back per
//! kind to the cluster-wide resources; Verifiers reach KeyManagementProviders by bare `name`
//! (cluster-wide) or `namespace/name` (a NamespacedKeyManagementProvider of the request's own
//! namespace only). Namespaces whose effective configuration equals the cluster-wide one share
//! it (and its verdicts).
//!
//! Scope today: the `oras` store, the `notation` and `cosign` verifiers
//! and the `inline` and `azurekeyvault` key management providers. Key Vault material is fetched
//! beforehand (asynchronously, by [`crate::kmp::KmpManager`]) and handed in as [`FetchedMaterial`];
//! a provider whose material could not be fetched yet makes the configurations that use it
//! answer "no verdict" (transient) instead of verifying against nothing. Cosign's Sigstore material (Fulcio roots, Rekor and
//! CT log keys, TSAs) is not part of Ratify's resources (Ratify fetches it through TUF): it is
//! passed in with [`TrustConfig::from_resources_with_sigstore`]. Other types are configuration
//! errors that name the resource — a verifier whose trust material cannot be built must not
//! silently verify nothing.
//!
//! Over 600 lines because building a configuration and its fingerprint must see every resource kind
//! in one place, or a kind could escape the fingerprint.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use verdict_crds::model::{
    KeyManagementProvider, KmpParameters, Policy, PolicyParameters, Resource, Store,
    StoreParameters, Verifier, VerifierParameters,
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
    #[error(
        "no Verifier applies to {scope}: it has no NamespacedVerifier and there is no cluster-wide Verifier — fix: add a Verifier, or a NamespacedVerifier in that namespace"
    )]
    NoVerifierFor { scope: String },
    #[error(
        "the configuration has namespaced resources ({kinds}), which a single trust configuration cannot honour — fix: build a TrustSet"
    )]
    Namespaced { kinds: String },
    /// Key material this configuration needs could not be fetched (Key Vault unreachable, no
    /// permission): nothing can be decided until it can. Transient.
    #[error("trust material is unavailable, no verdict until it can be fetched: {}", .reasons.join("; "))]
    Unavailable { reasons: Vec<String> },
}

impl TrustConfigError {
    /// Only missing trust material is transient: the same resources otherwise fail the same way
    /// until someone edits them.
    pub fn is_transient(&self) -> bool {
        matches!(self, TrustConfigError::Unavailable { .. })
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

/// The version of Verdict's verification logic, part of every trust fingerprint: verdicts stored
/// by another build (which may have verified differently) are never served by this one. Bump the
/// suffix whenever a change to verification could change a verdict; the crate version changes it
/// at every release anyway.
pub const VERIFICATION_LOGIC_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "/logic-2");

/// Trust material held by one KeyManagementProvider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyMaterial {
    /// Certificates, PEM as configured (one provider may hold a chain).
    pub certificates_pem: Vec<String>,
    /// Public keys: inline ones unnamed and unversioned, Key Vault ones by name and version.
    pub keys: Vec<ProviderKey>,
    /// Fetched from a service (Key Vault): empty is then a state (every version disabled), which
    /// trusts nothing, rather than a configuration error.
    pub fetched: bool,
    /// Why the material could not be fetched yet (no successful fetch since start).
    pub unavailable: Option<String>,
}

impl KeyMaterial {
    /// Material of a provider that has never been fetched successfully.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        KeyMaterial {
            fetched: true,
            unavailable: Some(reason.into()),
            ..KeyMaterial::default()
        }
    }
}

/// Material of KeyManagementProviders that live in a service (Azure Key Vault), fetched before
/// a configuration is built: by namespace (`None`: cluster-wide) and provider name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchedMaterial {
    by_provider: BTreeMap<(Option<String>, String), KeyMaterial>,
}

impl FetchedMaterial {
    pub fn insert(&mut self, namespace: Option<&str>, name: &str, material: KeyMaterial) {
        self.by_provider
            .insert((namespace.map(str::to_owned), name.to_owned()), material);
    }

    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<&KeyMaterial> {
        self.by_provider
            .get(&(namespace.map(str::to_owned), name.to_owned()))
    }
}

/// Registry settings from the `oras` Store resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StoreSettings {
    /// `useHttp: true`: talk plain HTTP to every registry (Ratify's semantics).
    pub use_http: bool,
    /// `cosignEnabled: true`: look up `sha256-<hex>.sig` tags.
    pub cosign_enabled: bool,
    /// `authProvider.name` (e.g. `dockerConfig`, `azureWorkloadIdentity`), if configured.
    pub auth_provider: Option<String>,
    /// `authProvider.clientID`: the workload identity to use instead of `AZURE_CLIENT_ID`.
    pub auth_client_id: Option<String>,
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
    /// Providers whose material could not be fetched: every verification under this
    /// configuration is "no verdict" (transient) until they can.
    pub unavailable: Vec<String>,
    /// `sha256:<hex>` over the resources' specs alone (no trust material): see
    /// [`TrustConfig::material_fingerprints`] for what a change of material removed.
    pub spec_fingerprint: String,
    /// `sha256:<hex>` over everything above, including the certificates' fingerprints.
    pub fingerprint: Arc<str>,
}

impl TrustConfig {
    /// Whether any verifier has a trust policy for images of `repository` (`registry/name`):
    /// a Notation statement scoped to it or global, or a Cosign policy whose scope matches.
    /// An image no policy covers can only be denied; push events for it are not verified.
    pub fn covers(&self, repository: &str) -> bool {
        let reference = format!("{repository}@sha256:{}", "0".repeat(64));
        self.verifiers.iter().any(|v| match &v.kind {
            VerifierKind::Notation { policy, .. } => policy.applicable_policy(&reference).is_ok(),
            VerifierKind::Cosign { verifier } => {
                verifier.policy_for(&reference, repository).is_some()
            }
        })
    }

    /// Build from loaded cluster-wide resources (use only resources without validation errors),
    /// with no Sigstore trust material: keyless Cosign policies are then rejected. Namespaced
    /// resources are refused here (they would be ignored): use [`TrustSet`].
    pub fn from_resources<'a>(
        resources: impl IntoIterator<Item = &'a Resource>,
    ) -> Result<Self, TrustConfigError> {
        Self::from_resources_with_sigstore(resources, Arc::new(SigstoreTrustRoot::new()))
    }

    /// Build from loaded cluster-wide resources and the Sigstore trust material Cosign verifiers
    /// use offline (Fulcio CAs, Rekor/CT log keys, TSAs; e.g. a `trusted_root.json`).
    pub fn from_resources_with_sigstore<'a>(
        resources: impl IntoIterator<Item = &'a Resource>,
        sigstore: Arc<SigstoreTrustRoot>,
    ) -> Result<Self, TrustConfigError> {
        let set = TrustSet::from_resources_with_sigstore(resources, sigstore)?;
        if set.has_namespaced {
            return Err(TrustConfigError::Namespaced {
                kinds: "NamespacedStore, NamespacedVerifier, NamespacedKeyManagementProvider or NamespacedPolicy".into(),
            });
        }
        set.cluster
            .map(Arc::unwrap_or_clone)
            .ok_or(TrustConfigError::NoVerifier)
    }

    /// One configuration from the resources that apply to it. `kmps` resolves provider
    /// references as written in Verifiers; `scope` names it in errors.
    fn build(
        parts: &Parts<'_>,
        kmps: &KmpIndex<'_>,
        sigstore: &Arc<SigstoreTrustRoot>,
    ) -> Result<Self, TrustConfigError> {
        let mut store = StoreSettings::default();
        let mut policy = ArtifactPolicy::default();
        let mut canonical = format!("logic {VERIFICATION_LOGIC_VERSION}\n");
        for s in &parts.stores {
            if let Some(StoreParameters::Oras(p)) = &s.spec.parameters {
                store.use_http = p.use_http.unwrap_or(false);
                store.cosign_enabled = p.cosign_enabled.unwrap_or(false);
                store.auth_provider = p.auth_provider.as_ref().and_then(|a| a.name.clone());
                store.auth_client_id = p
                    .auth_provider
                    .as_ref()
                    .and_then(|a| a.client_id.clone())
                    .filter(|c| !c.is_empty());
            }
            let _ = writeln!(canonical, "store {}", json_of(&s.spec));
        }
        for p in &parts.policies {
            policy = artifact_policy(p.name(), p.spec.parameters.as_ref())?;
            let _ = writeln!(canonical, "policy {}", json_of(&p.spec));
        }
        let mut verifiers = Vec::new();
        let mut unavailable = Vec::new();
        for v in &parts.verifiers {
            verifiers.push(verifier_config(v, kmps, sigstore, &mut unavailable)?);
            let _ = writeln!(canonical, "verifier {} {}", v.name(), json_of(&v.spec));
        }
        // Everything but the trust material: equal across a change means only keys and
        // certificates moved, so a verdict whose evidence rests on none that left still holds.
        let spec_fingerprint = format!("sha256:{}", hex::encode(Sha256::digest(&canonical)));
        unavailable.sort();
        unavailable.dedup();
        for u in &unavailable {
            let _ = writeln!(canonical, "unavailable {u}");
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
            unavailable,
            spec_fingerprint,
            fingerprint: fingerprint.into(),
        })
    }

    /// The fingerprints of the trust material this configuration trusts, in the form evidence
    /// records them: `sha256:<hex>` of each trust-store certificate (DER) and of each Cosign key
    /// (SPKI), and each key's `kmp:`/`file:` name. When one disappears from the configuration,
    /// the verdicts that rested on it are revoked.
    pub fn material_fingerprints(&self) -> std::collections::BTreeSet<String> {
        let mut out = std::collections::BTreeSet::new();
        for v in &self.verifiers {
            match &v.kind {
                VerifierKind::Notation { stores, .. } => {
                    for (ty, name) in stores.store_names() {
                        for der in stores.certificates(ty, &name).unwrap_or_default() {
                            out.insert(format!("sha256:{}", hex::encode(Sha256::digest(der))));
                        }
                    }
                }
                VerifierKind::Cosign { verifier } => {
                    for p in verifier.policies() {
                        if let cosign::Trust::Keys(keys) = &p.trust {
                            for k in keys {
                                out.insert(k.key.fingerprint().to_owned());
                                out.insert(k.info.evidence_id());
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// The first verifier that handles `artifact_type` (Ratify's rule).
    pub fn verifier_for(&self, artifact_type: &str) -> Option<&VerifierConfig> {
        self.verifiers.iter().find(|v| v.can_verify(artifact_type))
    }
}

/// The resources one trust configuration is built from.
#[derive(Default, Clone)]
struct Parts<'a> {
    stores: Vec<&'a Store>,
    verifiers: Vec<&'a Verifier>,
    policies: Vec<&'a Policy>,
}

/// KeyManagementProviders as a configuration may reach them: cluster-wide ones by bare name and,
/// for a namespace's configuration, that namespace's own as `namespace/name`.
struct KmpIndex<'a> {
    cluster: &'a BTreeMap<String, KeyMaterial>,
    /// The namespace whose configuration this is, and its providers by bare name.
    own: Option<(&'a str, &'a BTreeMap<String, KeyMaterial>)>,
}

/// Why a provider reference does not resolve.
enum KmpMiss {
    Absent,
    /// `ns/name` of a namespace the configuration may not use.
    Forbidden,
}

impl KmpIndex<'_> {
    fn get(&self, reference: &str) -> Result<&KeyMaterial, KmpMiss> {
        match reference.split_once('/') {
            None => self.cluster.get(reference).ok_or(KmpMiss::Absent),
            Some((ns, name)) => match self.own {
                Some((own, kmps)) if own == ns => kmps.get(name).ok_or(KmpMiss::Absent),
                _ => Err(KmpMiss::Forbidden),
            },
        }
    }

    fn scope(&self) -> String {
        match self.own {
            Some((ns, _)) => format!("namespace {ns:?}"),
            None => "the cluster-wide configuration".into(),
        }
    }
}

/// Every trust configuration of a cluster (Ratify's multi-tenancy): the cluster-wide one, and one
/// per namespace whose own resources make its effective configuration differ from it.
#[derive(Debug, Clone)]
pub struct TrustSet {
    /// `None` when there is no cluster-wide Verifier (only namespaces with their own are served).
    cluster: Option<Arc<TrustConfig>>,
    /// Namespaces with an effective configuration of their own.
    namespaces: BTreeMap<String, Arc<TrustConfig>>,
    /// Any namespaced resource was loaded (even one that changed nothing).
    has_namespaced: bool,
}

impl TrustSet {
    /// Builds the cluster-wide configuration and each namespace's effective one: per kind, the
    /// namespace's own Stores, Verifiers and Policy where it has any, else the cluster's. Any
    /// configuration that cannot be built fails the whole set, naming the resource. Key Vault
    /// providers count as not fetched yet: use [`Self::from_resources_with_material`].
    pub fn from_resources_with_sigstore<'a>(
        resources: impl IntoIterator<Item = &'a Resource>,
        sigstore: Arc<SigstoreTrustRoot>,
    ) -> Result<Self, TrustConfigError> {
        Self::from_resources_with_material(resources, sigstore, &FetchedMaterial::default())
    }

    /// As [`Self::from_resources_with_sigstore`], with the material of Key Vault providers.
    pub fn from_resources_with_material<'a>(
        resources: impl IntoIterator<Item = &'a Resource>,
        sigstore: Arc<SigstoreTrustRoot>,
        fetched: &FetchedMaterial,
    ) -> Result<Self, TrustConfigError> {
        let mut cluster = Parts::default();
        let mut cluster_kmps: BTreeMap<String, KeyMaterial> = BTreeMap::new();
        let mut per_ns: BTreeMap<&str, Parts<'_>> = BTreeMap::new();
        let mut ns_kmps: BTreeMap<&str, BTreeMap<String, KeyMaterial>> = BTreeMap::new();
        let mut has_namespaced = false;
        for r in resources {
            let ns = r.namespace();
            has_namespaced |= ns.is_some();
            match r {
                Resource::KeyManagementProvider(kmp) => {
                    cluster_kmps.insert(kmp.name().to_owned(), key_material(kmp, None, fetched)?);
                }
                Resource::NamespacedKeyManagementProvider(kmp) => {
                    let ns = ns.unwrap_or("default");
                    ns_kmps
                        .entry(ns)
                        .or_default()
                        .insert(kmp.name().to_owned(), key_material(kmp, Some(ns), fetched)?);
                }
                Resource::Verifier(v) => cluster.verifiers.push(v),
                Resource::Store(s) => cluster.stores.push(s),
                Resource::Policy(p) => cluster.policies.push(p),
                Resource::NamespacedVerifier(v) => per_ns
                    .entry(ns.unwrap_or("default"))
                    .or_default()
                    .verifiers
                    .push(v),
                Resource::NamespacedStore(s) => per_ns
                    .entry(ns.unwrap_or("default"))
                    .or_default()
                    .stores
                    .push(s),
                Resource::NamespacedPolicy(p) => per_ns
                    .entry(ns.unwrap_or("default"))
                    .or_default()
                    .policies
                    .push(p),
                Resource::CertificateStore(c) => {
                    return Err(TrustConfigError::resource(
                        "CertificateStore",
                        c.name(),
                        "CertificateStore is deprecated (Ratify v1.2) and not supported by Verdict",
                        "convert it to a KeyManagementProvider (or NamespacedKeyManagementProvider) with the same parameters and reference that instead",
                    ));
                }
            }
        }
        let no_kmps = BTreeMap::new();
        let cluster_index = KmpIndex {
            cluster: &cluster_kmps,
            own: None,
        };
        let cluster_config = if cluster.verifiers.is_empty() {
            None
        } else {
            Some(Arc::new(TrustConfig::build(
                &cluster,
                &cluster_index,
                &sigstore,
            )?))
        };
        // Namespaces with their own providers but no resources of their own use the cluster's
        // configuration as is (a cluster Verifier may not reach namespaced providers).
        let mut namespaces = BTreeMap::new();
        for (&ns, own) in &per_ns {
            let parts = Parts {
                stores: if own.stores.is_empty() {
                    cluster.stores.clone()
                } else {
                    own.stores.clone()
                },
                verifiers: if own.verifiers.is_empty() {
                    cluster.verifiers.clone()
                } else {
                    own.verifiers.clone()
                },
                policies: if own.policies.is_empty() {
                    cluster.policies.clone()
                } else {
                    own.policies.clone()
                },
            };
            if parts.verifiers.is_empty() {
                // Keys of this namespace get the NoVerifierFor error at lookup.
                continue;
            }
            let index = KmpIndex {
                cluster: &cluster_kmps,
                own: Some((ns, ns_kmps.get(ns).unwrap_or(&no_kmps))),
            };
            let config = TrustConfig::build(&parts, &index, &sigstore)?;
            if cluster_config
                .as_ref()
                .is_some_and(|c| c.fingerprint == config.fingerprint)
            {
                continue;
            }
            namespaces.insert(ns.to_owned(), Arc::new(config));
        }
        if cluster_config.is_none() && namespaces.is_empty() {
            return Err(TrustConfigError::NoVerifier);
        }
        Ok(TrustSet {
            cluster: cluster_config,
            namespaces,
            has_namespaced,
        })
    }

    /// The configuration that decides `[namespace]` keys (`None`: keys without a prefix).
    pub fn for_namespace(
        &self,
        namespace: Option<&str>,
    ) -> Result<&Arc<TrustConfig>, TrustConfigError> {
        namespace
            .and_then(|ns| self.namespaces.get(ns))
            .or(self.cluster.as_ref())
            .ok_or_else(|| TrustConfigError::NoVerifierFor {
                scope: match namespace {
                    Some(ns) => format!("namespace {ns:?}"),
                    None => "keys without a [namespace] prefix".into(),
                },
            })
    }

    /// The namespace whose own configuration decides `namespace`'s keys, or `None` when the
    /// cluster-wide one does: verdicts are shared by every namespace of one scope.
    pub fn scope<'a>(&self, namespace: Option<&'a str>) -> Option<&'a str> {
        namespace.filter(|ns| self.namespaces.contains_key(*ns))
    }

    /// The cluster-wide configuration, if there is a cluster-wide Verifier.
    pub fn cluster(&self) -> Option<&Arc<TrustConfig>> {
        self.cluster.as_ref()
    }

    /// Namespaces with a configuration of their own, and those configurations.
    pub fn namespaces(&self) -> impl Iterator<Item = (&str, &Arc<TrustConfig>)> {
        self.namespaces.iter().map(|(ns, c)| (ns.as_str(), c))
    }

    /// The trust material of every configuration (see [`TrustConfig::material_fingerprints`]).
    pub fn material_fingerprints(&self) -> std::collections::BTreeSet<String> {
        self.configs()
            .flat_map(|(_, c)| c.material_fingerprints())
            .collect()
    }

    /// Every configuration with its scope (`None`: cluster-wide).
    pub fn configs(&self) -> impl Iterator<Item = (Option<&str>, &Arc<TrustConfig>)> {
        self.cluster
            .iter()
            .map(|c| (None, c))
            .chain(self.namespaces().map(|(ns, c)| (Some(ns), c)))
    }
}

/// The trust set a running server decides with, replaced as a whole when Key Vault material or
/// the configuration changes; every lookup reads it without taking a lock.
#[derive(Debug)]
pub struct LiveTrust(arc_swap::ArcSwap<TrustSet>);

impl LiveTrust {
    pub fn new(set: TrustSet) -> Self {
        LiveTrust(arc_swap::ArcSwap::from_pointee(set))
    }

    /// The set in force now (it stays valid for whoever holds it after a replacement).
    pub fn current(&self) -> Arc<TrustSet> {
        self.0.load_full()
    }

    /// Puts `set` in force and returns the one it replaced.
    pub fn replace(&self, set: TrustSet) -> Arc<TrustSet> {
        self.0.swap(Arc::new(set))
    }

    /// Reads the set in force without cloning its `Arc` (hot paths).
    pub fn with<R>(&self, f: impl FnOnce(&TrustSet) -> R) -> R {
        f(&self.0.load())
    }
}

fn json_of<T: serde::Serialize>(v: &T) -> String {
    // Serialising a value of our own types cannot fail; an empty string would only weaken the
    // fingerprint, never make two different configurations equal in practice.
    serde_json::to_string(v).unwrap_or_default()
}

fn key_material(
    kmp: &KeyManagementProvider,
    namespace: Option<&str>,
    fetched: &FetchedMaterial,
) -> Result<KeyMaterial, TrustConfigError> {
    const KIND: &str = "KeyManagementProvider";
    let name = kmp.name();
    match (kmp.spec.type_.as_str(), kmp.spec.parameters.as_ref()) {
        ("inline", Some(KmpParameters::Inline(p))) => {
            let value = p.value.clone().unwrap_or_default();
            match p.content_type.as_deref() {
                Some("certificate") => Ok(KeyMaterial {
                    certificates_pem: vec![value],
                    ..KeyMaterial::default()
                }),
                // Ratify's inline providers hold one unnamed, unversioned key.
                Some("key") => Ok(KeyMaterial {
                    keys: vec![ProviderKey {
                        name: String::new(),
                        version: String::new(),
                        pem: value,
                    }],
                    ..KeyMaterial::default()
                }),
                other => Err(TrustConfigError::resource(
                    KIND,
                    name,
                    format!("inline contentType {other:?} is not supported"),
                    "set spec.parameters.contentType to `certificate` or `key`",
                )),
            }
        }
        ("azurekeyvault", _) => Ok(fetched.get(namespace, name).cloned().unwrap_or_else(|| {
            KeyMaterial::unavailable(format!(
                "KeyManagementProvider {name:?} has not been fetched from Key Vault"
            ))
        })),
        (other, _) => Err(TrustConfigError::resource(
            KIND,
            name,
            format!("type {other:?} is not supported"),
            "use type `inline` or `azurekeyvault`",
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

/// Keys of KeyManagementProviders and key files, as Cosign trust policies resolve them; notes
/// the providers whose material is unavailable.
struct CosignKeys<'a> {
    kmps: &'a KmpIndex<'a>,
    unavailable: std::cell::RefCell<Vec<String>>,
}

impl cosign::KeyResolver for CosignKeys<'_> {
    fn provider_keys(&self, provider: &str) -> Option<Vec<ProviderKey>> {
        self.kmps.get(provider).ok().map(|m| {
            if let Some(reason) = &m.unavailable {
                self.unavailable.borrow_mut().push(reason.clone());
            }
            m.keys.clone()
        })
    }

    fn provider_is_fetched(&self, provider: &str) -> bool {
        self.kmps.get(provider).is_ok_and(|m| m.fetched)
    }

    fn read_key_file(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }
}

fn verifier_config(
    v: &Verifier,
    kmps: &KmpIndex<'_>,
    sigstore: &Arc<SigstoreTrustRoot>,
    unavailable: &mut Vec<String>,
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
            let policy = notation::TrustPolicyDocument::from_document(doc).map_err(|e| {
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
                        let material = kmps.get(&provider).map_err(|miss| match miss {
                            KmpMiss::Absent => TrustConfigError::resource(
                                KIND,
                                name,
                                format!(
                                    "verificationCertStores {}:{store_name} names KeyManagementProvider {provider:?}, which does not exist for {}",
                                    ty.as_str(),
                                    kmps.scope()
                                ),
                                format!("create KeyManagementProvider {provider:?} or fix the name"),
                            ),
                            KmpMiss::Forbidden => TrustConfigError::resource(
                                KIND,
                                name,
                                format!(
                                    "verificationCertStores {}:{store_name} names {provider:?}, a provider of another namespace, which {} may not use",
                                    ty.as_str(),
                                    kmps.scope()
                                ),
                                "use a cluster-wide KeyManagementProvider (bare name) or a NamespacedKeyManagementProvider of the same namespace (`namespace/name`)",
                            ),
                        })?;
                        if let Some(reason) = &material.unavailable {
                            unavailable.push(reason.clone());
                        }
                        if material.certificates_pem.is_empty() && !material.fetched {
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
            let resolver = CosignKeys {
                kmps,
                unavailable: std::cell::RefCell::new(Vec::new()),
            };
            let verifier = CosignVerifier::from_parameters(p, &resolver, sigstore.clone())
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
            unavailable.extend(resolver.unavailable.into_inner());
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
