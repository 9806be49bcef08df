//! How a miss is verified: the service's two ports ([`InlineVerifier`], [`TagResolver`]) and the
//! scanner behind them ([`PipelineVerifier`]: referrers, Notation/Cosign, policy, per namespace
//! scope; [`RegistryTagResolver`]: a registry HEAD), plus [`TrustScopes`], which says which trust
//! configuration decides a `[namespace]` key.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use verdict_scanner::registry::{Digest, ImageReference, RegistryClient};
use verdict_scanner::report::VerificationResult;
use verdict_scanner::trust::{LiveTrust, TrustConfig, TrustSet};
use verdict_scanner::verify::ImageVerifier;

use crate::error::Error;

/// Verifies a subject on a cache miss (the scanner's pipeline: referrers, Notation/Cosign, policy).
#[async_trait]
pub trait InlineVerifier: Send + Sync {
    /// `reference` always carries a digest (tags are resolved before). Unsigned or badly signed
    /// images are `Ok` with `is_success == false`; `Err` is for "could not decide".
    async fn verify(
        &self,
        namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<VerificationResult, Error>;
}

/// Resolves tags to manifest digests (the tag map with a bounded TTL, then a registry HEAD).
#[async_trait]
pub trait TagResolver: Send + Sync {
    /// `reference` has a tag and no digest.
    async fn resolve(
        &self,
        namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<Digest, Error>;

    /// The answer, if it is known without asking anyone (no I/O). Default: never.
    fn known(&self, _namespace: Option<&str>, _reference: &ImageReference) -> Option<Digest> {
        None
    }
}

/// Which trust configuration decides a namespace's keys. Verdicts are stored per scope, so
/// namespaces that share a configuration share verdicts, and a namespace with its own never sees
/// another's.
pub trait TrustScopes: Send + Sync {
    /// The scope deciding `[namespace]` keys (`None`: the cluster-wide configuration) and the
    /// fingerprint of its configuration; a verdict is only served under that fingerprint.
    fn scope<'a>(&self, namespace: Option<&'a str>) -> (Option<&'a str>, Arc<str>);
}

/// Fingerprint of "no configuration applies": matches no verdict (nothing is verified there).
const NO_CONFIGURATION: &str = "sha256:none";

impl TrustScopes for TrustSet {
    fn scope<'a>(&self, namespace: Option<&'a str>) -> (Option<&'a str>, Arc<str>) {
        let scope = TrustSet::scope(self, namespace);
        let fingerprint = self
            .for_namespace(scope)
            .map_or_else(|_| Arc::from(NO_CONFIGURATION), |c| c.fingerprint.clone());
        (scope, fingerprint)
    }
}

/// The trust set in force now (it changes when Key Vault material or the configuration does).
impl TrustScopes for LiveTrust {
    fn scope<'a>(&self, namespace: Option<&'a str>) -> (Option<&'a str>, Arc<str>) {
        self.with(|set| TrustScopes::scope(set, namespace))
    }
}

/// One configuration for every namespace (tests, and tools without multi-tenancy).
#[derive(Debug, Clone)]
pub struct SingleScope(pub Arc<str>);

impl TrustScopes for SingleScope {
    fn scope<'a>(&self, _namespace: Option<&'a str>) -> (Option<&'a str>, Arc<str>) {
        (None, self.0.clone())
    }
}

/// Gives the registry client a configuration's Store settings call for.
pub type RegistryFor = dyn Fn(&TrustConfig) -> Result<RegistryClient, String> + Send + Sync;

/// The scanner's pipeline as the inline (miss-path) verifier: each `[namespace]` key is verified
/// under its namespace's effective configuration in the trust set in force at that moment.
#[derive(Clone)]
pub struct PipelineVerifier {
    trust: Arc<LiveTrust>,
    registry_for: Arc<RegistryFor>,
}

impl std::fmt::Debug for PipelineVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineVerifier").finish_non_exhaustive()
    }
}

impl PipelineVerifier {
    pub fn new(trust: Arc<LiveTrust>, registry_for: Arc<RegistryFor>) -> Self {
        PipelineVerifier {
            trust,
            registry_for,
        }
    }
}

#[async_trait]
impl InlineVerifier for PipelineVerifier {
    async fn verify(
        &self,
        namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<VerificationResult, Error> {
        let set = self.trust.current();
        let config = set
            .for_namespace(set.scope(namespace))
            .map_err(|e| Error::VerifyFailed(e.to_string()))?;
        let registry = (self.registry_for)(config).map_err(Error::VerifyFailed)?;
        ImageVerifier::new(registry, Arc::clone(config))
            .verify(reference, Utc::now())
            .await
            .map_err(|e| Error::Verification {
                subject: reference.to_string(),
                source: Arc::new(e),
            })
    }
}

/// Resolves tags with the registry (HEAD): tags move, so every resolution asks the registry
/// (contract 4: tags are resolved freshly). Nothing is written: a tag map nobody reads would only
/// let whoever creates pods grow the store.
#[derive(Clone)]
pub struct RegistryTagResolver {
    registry: RegistryClient,
}

impl RegistryTagResolver {
    pub fn new(registry: RegistryClient) -> Self {
        RegistryTagResolver { registry }
    }
}

#[async_trait]
impl TagResolver for RegistryTagResolver {
    async fn resolve(
        &self,
        _namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<Digest, Error> {
        match self.registry.resolve(reference).await {
            Ok(descriptor) => Ok(descriptor.digest),
            Err(e) => Err(Error::Resolution {
                reference: reference.to_string(),
                source: Arc::new(e.into()),
            }),
        }
    }
}
