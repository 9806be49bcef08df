//! How a miss is verified: the service's two ports ([`InlineVerifier`], [`TagResolver`]) and the
//! scanner behind them ([`PipelineVerifier`]: referrers, Notation/Cosign, policy, per namespace
//! scope; [`RegistryTagResolver`]: a registry HEAD), plus [`TrustScopes`], which says which trust
//! configuration decides a `[namespace]` key.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use verdict_scanner::registry::{Digest, ImageReference, RegistryClient};
use verdict_scanner::report::VerificationResult;
use verdict_scanner::trust::{TrustConfig, TrustSet};
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
    fn scope<'a>(&'a self, namespace: Option<&'a str>) -> (Option<&'a str>, &'a str);
}

/// Fingerprint of "no configuration applies": matches no verdict (nothing is verified there).
const NO_CONFIGURATION: &str = "sha256:none";

impl TrustScopes for TrustSet {
    fn scope<'a>(&'a self, namespace: Option<&'a str>) -> (Option<&'a str>, &'a str) {
        let scope = TrustSet::scope(self, namespace);
        let fingerprint = self
            .for_namespace(scope)
            .map_or(NO_CONFIGURATION, |c| c.fingerprint.as_str());
        (scope, fingerprint)
    }
}

/// One configuration for every namespace (tests, and tools without multi-tenancy).
#[derive(Debug, Clone)]
pub struct SingleScope(pub String);

impl TrustScopes for SingleScope {
    fn scope<'a>(&'a self, _namespace: Option<&'a str>) -> (Option<&'a str>, &'a str) {
        (None, &self.0)
    }
}

/// The scanner's pipeline as the inline (miss-path) verifier: each `[namespace]` key is verified
/// under its namespace's effective configuration ([`TrustSet`]).
#[derive(Clone, Debug)]
pub struct PipelineVerifier {
    trust: Arc<TrustSet>,
    /// One verifier per scope (`None`: cluster-wide).
    verifiers: HashMap<Option<String>, ImageVerifier>,
}

impl PipelineVerifier {
    /// `registry_for` gives the registry client a configuration's Store settings call for.
    pub fn new(
        trust: Arc<TrustSet>,
        mut registry_for: impl FnMut(&TrustConfig) -> RegistryClient,
    ) -> Self {
        let verifiers = trust
            .configs()
            .map(|(scope, config)| {
                (
                    scope.map(str::to_owned),
                    ImageVerifier::new(registry_for(config), Arc::clone(config)),
                )
            })
            .collect();
        PipelineVerifier { trust, verifiers }
    }
}

#[async_trait]
impl InlineVerifier for PipelineVerifier {
    async fn verify(
        &self,
        namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<VerificationResult, Error> {
        let scope = self.trust.scope(namespace).map(str::to_owned);
        let Some(verifier) = self.verifiers.get(&scope) else {
            let reason = match self.trust.for_namespace(namespace) {
                Err(e) => e.to_string(),
                Ok(_) => format!("no verifier was built for scope {scope:?}"),
            };
            return Err(Error::VerifyFailed(reason));
        };
        verifier
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
