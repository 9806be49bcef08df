//! The lookup core behind the endpoints: answer each key from the verdict cache, or verify it
//! inline within the request's deadline.
//!
//! Miss path, per distinct subject `(namespace, repository@digest)`:
//! - tags are first resolved to a digest ([`TagResolver`]); verdicts belong to digests;
//! - single-flight: concurrent misses for one subject share one verification;
//! - bounded: at most `max_concurrent_verifications` run at once, at most
//!   `max_pending_verifications` subjects wait, beyond that `VERIFIER_BUSY` at once;
//! - the verification runs in its own task with `verification_timeout` and outlives the request,
//!   so a request that ran out of time (`VERIFY_TIMEOUT`, fail closed) leaves a verdict behind
//!   for the next one;
//! - allows are cached until their evidence expires, definitive denies for `deny_ttl`, transient
//!   failures never (they become `REGISTRY_UNAVAILABLE` / `VERIFY_UNAVAILABLE` item errors).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span, warn};
use verdict_scanner::registry::{Digest, ImageReference, RegistryError};
use verdict_scanner::report::{DenyLifetimes, Retention, VerificationResult};
use verdict_scanner::subject::{Namespace, SubjectKey};

use crate::config::ServiceConfig;
use crate::error::CacheApiError;
use crate::flight::{self, Flights, Join, WaitError};
use crate::metrics as m;
use crate::wire::ratify::{self, JsonString, RenderedVerdict, Stamp};
use crate::wire::{self, Item, ItemValue, KeyPlan, ProviderResponse, RequestError};

/// A verdict as the service serves it: the result and its Ratify values rendered once (see
/// [`RenderedVerdict`]), shared by every answer that uses it.
#[derive(Debug)]
pub struct ServedVerdict {
    result: VerificationResult,
    rendered: Result<RenderedVerdict, String>,
}

impl ServedVerdict {
    pub fn new(result: VerificationResult) -> Self {
        let rendered = ratify::render(&result).map_err(|e| e.to_string());
        ServedVerdict { result, rendered }
    }

    pub fn result(&self) -> &VerificationResult {
        &self.result
    }

    /// The item value for `endpoint`, presenting the verdict as `subject` (the key's normalised
    /// reference, JSON-encoded) with the request's `stamp`.
    fn item_value(
        &self,
        endpoint: Endpoint,
        subject: &JsonString,
        stamp: &Stamp,
    ) -> Result<ItemValue, KeyFailure> {
        let rendered = self.rendered.as_ref().map_err(|e| {
            KeyFailure::Internal(format!(
                "encoding the verdict for {} failed: {e}",
                subject.as_str()
            ))
        })?;
        Ok(ItemValue::write_with(|out| match endpoint {
            Endpoint::VerifyV2 => rendered.write_v2(subject, stamp, out),
            _ => rendered.write_v1(subject, stamp, out),
        }))
    }
}

/// A verdict-cache backend failure. Lookups treat it as a miss (the subject is verified inline).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    #[error("verdict cache backend failed: {0}")]
    Backend(String),
}

impl CacheError {
    /// Backend failures (I/O, a store being reopened) may pass.
    pub fn is_transient(&self) -> bool {
        match self {
            CacheError::Backend(_) => true,
        }
    }
}

/// Where verdicts are looked up and stored. Implementations must only return verdicts valid at
/// `now` under the current trust configuration (the sled store's adapter checks signatures and
/// the trust-configuration fingerprint).
///
/// Two layers: [`Self::get_memory`] never blocks and is asked first, on the request's task;
/// [`Self::get_stored`] and [`Self::put`] may block on I/O, so the service runs them on the
/// blocking pool, bounded in number and in time (a stalled store fails requests closed instead
/// of hanging them).
pub trait VerdictCache: Send + Sync {
    /// What memory holds for `key`; no I/O.
    fn get_memory(&self, key: &SubjectKey, now: DateTime<Utc>) -> Option<Arc<ServedVerdict>>;

    /// The persistent layer behind memory (may block). Default: there is none.
    fn get_stored(
        &self,
        _key: &SubjectKey,
        _now: DateTime<Utc>,
    ) -> Result<Option<Arc<ServedVerdict>>, CacheError> {
        Ok(None)
    }

    /// Stores `verdict`, to be served until `expires_at` (`None`: no bound from this crate).
    fn put(
        &self,
        key: &SubjectKey,
        verdict: &Arc<ServedVerdict>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), CacheError>;

    /// Memory, then the store (blocking).
    fn get(
        &self,
        key: &SubjectKey,
        now: DateTime<Utc>,
    ) -> Result<Option<Arc<ServedVerdict>>, CacheError> {
        match self.get_memory(key, now) {
            Some(hit) => Ok(Some(hit)),
            None => self.get_stored(key, now),
        }
    }
}

type MemoryEntries = HashMap<SubjectKey, (Arc<ServedVerdict>, Option<DateTime<Utc>>)>;

/// An in-process [`VerdictCache`] (tests, and single-node use without a persistent store).
/// Expired entries are dropped when read.
#[derive(Default)]
pub struct MemoryVerdictCache {
    entries: Mutex<MemoryEntries>,
}

impl MemoryVerdictCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryEntries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of stored entries (expired ones included until read).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the entry for `key`; true if there was one.
    pub fn remove(&self, key: &SubjectKey) -> bool {
        self.lock().remove(key).is_some()
    }

    /// The stored expiry of `key`, if it has an entry.
    pub fn expiry(&self, key: &SubjectKey) -> Option<Option<DateTime<Utc>>> {
        self.lock().get(key).map(|(_, e)| *e)
    }
}

impl VerdictCache for MemoryVerdictCache {
    fn get_memory(&self, key: &SubjectKey, now: DateTime<Utc>) -> Option<Arc<ServedVerdict>> {
        let mut entries = self.lock();
        let (verdict, expires_at) = entries.get(key)?;
        // No trust configuration here: a verdict is served under the one it was computed under.
        let own = &verdict.result().trust_config_fingerprint;
        if verdict.result().servable(*expires_at, now, own).is_err() {
            entries.remove(key);
            return None;
        }
        Some(Arc::clone(verdict))
    }

    fn put(
        &self,
        key: &SubjectKey,
        verdict: &Arc<ServedVerdict>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), CacheError> {
        self.lock()
            .insert(key.clone(), (Arc::clone(verdict), expires_at));
        Ok(())
    }
}

/// Why an inline verification produced no verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The registry could not be reached, throttled, or failed; a retry may succeed.
    #[error("{0}")]
    RegistryUnavailable(String),
    /// Another dependency (Key Vault) failed; a retry may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// The verdict store did not acknowledge the verdict in time (stalled or saturated).
    #[error("{0}")]
    Store(String),
    /// Verification cannot succeed as asked (manifest not found, malformed content, ...).
    /// An image that is merely unsigned or badly signed is not an error: it is a deny result.
    #[error("{0}")]
    Definitive(String),
}

impl VerifyError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            VerifyError::RegistryUnavailable(_)
                | VerifyError::Unavailable(_)
                | VerifyError::Store(_)
        )
    }
}

impl From<RegistryError> for VerifyError {
    fn from(e: RegistryError) -> Self {
        if e.is_transient() {
            VerifyError::RegistryUnavailable(e.to_string())
        } else {
            VerifyError::Definitive(e.to_string())
        }
    }
}

/// Why a tag could not be resolved to a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The registry says the tag (or repository) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The registry could not be reached, throttled, or failed; a retry may succeed.
    #[error("{0}")]
    RegistryUnavailable(String),
    /// Any other failure that a retry will not fix.
    #[error("{0}")]
    Definitive(String),
}

impl ResolveError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ResolveError::RegistryUnavailable(_))
    }
}

impl From<RegistryError> for ResolveError {
    fn from(e: RegistryError) -> Self {
        if e.is_not_found() {
            ResolveError::NotFound(e.to_string())
        } else if e.is_transient() {
            ResolveError::RegistryUnavailable(e.to_string())
        } else {
            ResolveError::Definitive(e.to_string())
        }
    }
}

/// Verifies a subject on a cache miss (the scanner's pipeline: referrers, Notation/Cosign, policy).
#[async_trait]
pub trait InlineVerifier: Send + Sync {
    /// `reference` always carries a digest (tags are resolved before). Unsigned or badly signed
    /// images are `Ok` with `is_success == false`; `Err` is for "could not decide".
    async fn verify(
        &self,
        namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<VerificationResult, VerifyError>;
}

/// Resolves tags to manifest digests (the tag map with a bounded TTL, then a registry HEAD).
#[async_trait]
pub trait TagResolver: Send + Sync {
    /// `reference` has a tag and no digest.
    async fn resolve(
        &self,
        namespace: Option<&str>,
        reference: &ImageReference,
    ) -> Result<Digest, ResolveError>;
}

/// A per-key failure, answered as that item's `error` (`CODE: message`, Ratify style).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFailure {
    #[error("INVALID_KEY: {0}")]
    InvalidKey(String),
    #[error("TAG_NOT_FOUND: {0}")]
    TagNotFound(String),
    #[error("RESOLVE_FAILED: {0}")]
    ResolveFailed(String),
    #[error("REGISTRY_UNAVAILABLE: {0}")]
    RegistryUnavailable(String),
    #[error("VERIFY_UNAVAILABLE: {0}")]
    VerifyUnavailable(String),
    #[error("VERIFY_FAILED: {0}")]
    VerifyFailed(String),
    #[error("VERIFY_TIMEOUT: {0}")]
    Timeout(String),
    #[error("STORE_UNAVAILABLE: {0}")]
    StoreUnavailable(String),
    #[error("VERIFIER_BUSY: {0}")]
    Busy(String),
    #[error("INTERNAL: {0}")]
    Internal(String),
}

impl KeyFailure {
    /// The code before the colon (metric label).
    pub fn code(&self) -> &'static str {
        match self {
            KeyFailure::InvalidKey(_) => "INVALID_KEY",
            KeyFailure::TagNotFound(_) => "TAG_NOT_FOUND",
            KeyFailure::ResolveFailed(_) => "RESOLVE_FAILED",
            KeyFailure::RegistryUnavailable(_) => "REGISTRY_UNAVAILABLE",
            KeyFailure::VerifyUnavailable(_) => "VERIFY_UNAVAILABLE",
            KeyFailure::VerifyFailed(_) => "VERIFY_FAILED",
            KeyFailure::Timeout(_) => "VERIFY_TIMEOUT",
            KeyFailure::StoreUnavailable(_) => "STORE_UNAVAILABLE",
            KeyFailure::Busy(_) => "VERIFIER_BUSY",
            KeyFailure::Internal(_) => "INTERNAL",
        }
    }

    /// True when asking again later may give a verdict.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            KeyFailure::RegistryUnavailable(_)
                | KeyFailure::VerifyUnavailable(_)
                | KeyFailure::Timeout(_)
                | KeyFailure::StoreUnavailable(_)
                | KeyFailure::Busy(_)
                | KeyFailure::Internal(_)
        )
    }
}

impl From<VerifyError> for KeyFailure {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::RegistryUnavailable(m) => KeyFailure::RegistryUnavailable(m),
            VerifyError::Unavailable(m) => KeyFailure::VerifyUnavailable(m),
            VerifyError::Store(m) => KeyFailure::StoreUnavailable(m),
            VerifyError::Definitive(m) => KeyFailure::VerifyFailed(m),
        }
    }
}

impl From<ResolveError> for KeyFailure {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::NotFound(m) => KeyFailure::TagNotFound(m),
            ResolveError::RegistryUnavailable(m) => KeyFailure::RegistryUnavailable(m),
            ResolveError::Definitive(m) => KeyFailure::ResolveFailed(m),
        }
    }
}

/// The four Gatekeeper endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/ratify/gatekeeper/v1/verify`: Ratify v1 values (`version` 0.2.0, `isSuccess`, ...).
    VerifyV1,
    /// `/ratify/gatekeeper/v2/verify`: Ratify v2 values (`succeeded`, `artifactReports`).
    VerifyV2,
    /// `/ratify/gatekeeper/v1/mutate`: tag → `repo@digest`.
    MutateV1,
    /// `/ratify/gatekeeper/v2/mutate`: same as v1.
    MutateV2,
}

impl Endpoint {
    /// The `endpoint` metric label.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::VerifyV1 => "v1_verify",
            Endpoint::VerifyV2 => "v2_verify",
            Endpoint::MutateV1 => "v1_mutate",
            Endpoint::MutateV2 => "v2_mutate",
        }
    }

    /// Mutation answers must say `idempotent: true` or Gatekeeper rejects them; verify says false
    /// (as Ratify does).
    pub fn idempotent(self) -> bool {
        matches!(self, Endpoint::MutateV1 | Endpoint::MutateV2)
    }
}

/// A request's time budget.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    /// When the request's work began (lookup latencies are measured from here).
    started: Instant,
    /// The request's wall-clock time: verdict expiry is judged at it.
    now: DateTime<Utc>,
    at: Instant,
    budget: Duration,
    setting: &'static str,
}

type VerifyOutcome = Result<Arc<ServedVerdict>, VerifyError>;
type ResolveOutcome = Result<Digest, ResolveError>;
/// A tag resolution in flight: the key's namespace and the tag reference.
type TagQuery = (Option<Namespace>, ImageReference);

/// Answers Gatekeeper requests from the verdict cache, verifying misses inline. Cheap to clone.
#[derive(Clone)]
pub struct VerdictService {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServiceConfig,
    cache: Arc<dyn VerdictCache>,
    verifier: Arc<dyn InlineVerifier>,
    resolver: Arc<dyn TagResolver>,
    slots: Semaphore,
    /// Per registry host: at most `max_verifications_per_registry` of the `slots` (a slow
    /// registry cannot hold them all).
    registry_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Store operations running on the blocking pool (each holds a thread while it runs).
    store_ops: Arc<Semaphore>,
    verifications: Arc<Flights<SubjectKey, VerifyOutcome>>,
    resolutions: Arc<Flights<TagQuery, ResolveOutcome>>,
    lookup_histograms: std::sync::OnceLock<LookupHistograms>,
}

impl VerdictService {
    pub fn new(
        config: ServiceConfig,
        cache: Arc<dyn VerdictCache>,
        verifier: Arc<dyn InlineVerifier>,
        resolver: Arc<dyn TagResolver>,
    ) -> Result<Self, CacheApiError> {
        config.validate()?;
        Ok(VerdictService {
            inner: Arc::new(Inner {
                slots: Semaphore::new(config.max_concurrent_verifications),
                registry_slots: Mutex::new(HashMap::new()),
                store_ops: Arc::new(Semaphore::new(config.max_store_operations)),
                verifications: Flights::new(config.max_pending_verifications),
                resolutions: Flights::new(config.max_pending_verifications),
                lookup_histograms: std::sync::OnceLock::new(),
                config,
                cache,
                verifier,
                resolver,
            }),
        })
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// Answers one request body (or the reason it could not be read) for `endpoint`.
    pub async fn handle(
        &self,
        endpoint: Endpoint,
        body: Result<Bytes, RequestError>,
    ) -> ProviderResponse {
        let trace_id = new_trace_id();
        let span = info_span!("external_data", endpoint = endpoint.label(), trace_id = %trace_id, keys = tracing::field::Empty);
        async {
            let parsed = body.and_then(|b| wire::parse_request(&b, self.inner.config.max_keys));
            let response = match parsed {
                Err(e) => {
                    warn!(error = %e, "refusing external-data request");
                    ProviderResponse::system_error(&e, endpoint.idempotent())
                }
                Ok(request) => {
                    tracing::Span::current().record("keys", request.keys.len());
                    match endpoint {
                        Endpoint::VerifyV1 | Endpoint::VerifyV2 => {
                            self.verify_keys(endpoint, request.keys, &trace_id).await
                        }
                        Endpoint::MutateV1 | Endpoint::MutateV2 => {
                            self.mutate_keys(request.keys).await
                        }
                    }
                }
            };
            let outcome = if !response.response.system_error.is_empty() {
                "system_error"
            } else if response.response.items.iter().any(|i| i.error.is_some()) {
                "key_errors"
            } else {
                "ok"
            };
            metrics::counter!(m::REQUESTS, "endpoint" => endpoint.label(), "outcome" => outcome)
                .increment(1);
            response
        }
        .instrument(span)
        .await
    }

    /// Verify answers for `keys` (request order, duplicates answered once).
    pub async fn verify_keys(
        &self,
        endpoint: Endpoint,
        keys: Vec<String>,
        trace_id: &str,
    ) -> ProviderResponse {
        let deadline = self.deadline(self.inner.config.verify_deadline, "verify_deadline");
        let plan = KeyPlan::new(keys);
        // Digest references are looked up here, and hits answered without a future each; tags
        // (resolved, then looked up) and digest misses (verified) proceed concurrently.
        let mut verdicts: Vec<Option<Result<Arc<ServedVerdict>, KeyFailure>>> = plan
            .subjects
            .iter()
            .map(|s| {
                s.subject
                    .as_ref()
                    .and_then(|key| self.inner.cache.get_memory(key, deadline.now))
                    .map(Ok)
            })
            .collect();
        // These hits were all answered by now (one clock read for the lot).
        let hits = verdicts.iter().filter(|v| v.is_some()).count();
        if hits > 0 {
            self.inner.record_hits(hits, deadline);
        }
        // Digest references memory did not have: one store read for all of them.
        let unread: Vec<usize> = (0..verdicts.len())
            .filter(|&i| verdicts[i].is_none() && plan.subjects[i].subject.is_some())
            .collect();
        if !unread.is_empty() {
            let keys = unread
                .iter()
                .filter_map(|&i| plan.subjects[i].subject.clone())
                .collect();
            match self.inner.read_store(keys, deadline).await {
                Ok(found) => {
                    let hits = found.iter().filter(|f| f.is_some()).count();
                    for (&i, f) in unread.iter().zip(found) {
                        verdicts[i] = f.map(Ok);
                    }
                    if hits > 0 {
                        self.inner.record_hits(hits, deadline);
                    }
                }
                Err(failure) => {
                    for &i in &unread {
                        verdicts[i] = Some(Err(failure.clone()));
                    }
                }
            }
        }
        if verdicts.iter().any(Option::is_none) {
            let pending: Vec<usize> = (0..verdicts.len())
                .filter(|&i| verdicts[i].is_none())
                .collect();
            let looked_up = join_all(pending.iter().map(|&i| {
                let s = &plan.subjects[i];
                // Digest subjects were looked up above; tags are resolved, then looked up.
                self.verdict_within(
                    s.namespace.as_ref(),
                    &s.reference,
                    s.subject.as_ref(),
                    deadline,
                )
            }))
            .await;
            for (i, verdict) in pending.into_iter().zip(looked_up) {
                verdicts[i] = Some(verdict);
            }
        }
        let verdicts = verdicts.into_iter().map(|v| {
            v.unwrap_or_else(|| {
                Err(KeyFailure::Internal(
                    "a subject was left without a lookup".into(),
                ))
            })
        });
        let stamp = Stamp::new(trace_id, Utc::now());
        // Each subject's value is written once; spelling variants of a key share its text.
        let mut values: Vec<Result<ItemValue, KeyFailure>> = verdicts
            .zip(&plan.subjects)
            .map(|(verdict, subject)| {
                verdict?.item_value(endpoint, &subject.normalised_json, &stamp)
            })
            .collect();
        // Each value is moved into its last item and cloned only for spelling variants.
        let mut uses = vec![0usize; values.len()];
        for (_, slot) in &plan.items {
            if let Ok(i) = slot {
                uses[*i] += 1;
            }
        }
        let items = plan
            .items
            .into_iter()
            .map(|(key, slot)| match slot {
                Err(e) => failed_item(key, KeyFailure::InvalidKey(e.to_string())),
                Ok(i) => {
                    uses[i] -= 1;
                    let value = if uses[i] == 0 {
                        std::mem::replace(&mut values[i], Err(KeyFailure::Internal(String::new())))
                    } else {
                        values[i].clone()
                    };
                    match value {
                        Ok(v) => Item::raw(key, v),
                        Err(f) => failed_item(key, f),
                    }
                }
            })
            .collect();
        ProviderResponse::items(items, endpoint.idempotent())
    }

    /// Mutate answers for `keys`: a tag becomes `registry/repository@digest` (normalised, tag
    /// dropped); a key with a digest is answered unchanged (without its `[ns]` prefix).
    pub async fn mutate_keys(&self, keys: Vec<String>) -> ProviderResponse {
        let deadline = self.deadline(self.inner.config.mutate_deadline, "mutate_deadline");
        let plan = KeyPlan::new(keys);
        let digests = join_all(plan.subjects.iter().map(|s| async move {
            match s.reference.digest() {
                Some(_) => Ok(None),
                None => self
                    .resolve_within(s.namespace.as_ref(), &s.reference, deadline)
                    .await
                    .map(|d| Some(format!("{}@{}", s.reference.repository(), d))),
            }
        }))
        .await;
        let items = plan
            .items
            .into_iter()
            .map(|(key, slot)| match slot {
                Err(e) => failed_item(key, KeyFailure::InvalidKey(e.to_string())),
                Ok(i) => match &digests[i] {
                    Ok(Some(pinned)) => Item::value(key, Value::String(pinned.clone())),
                    Ok(None) => {
                        let unchanged = strip_namespace(&key).to_owned();
                        Item::value(key, Value::String(unchanged))
                    }
                    Err(f) => failed_item(key, f.clone()),
                },
            })
            .collect();
        ProviderResponse::items(items, true)
    }

    /// The verdict for one subject, from the cache or verified inline, within `budget`.
    pub async fn verdict(
        &self,
        namespace: Option<&Namespace>,
        reference: &ImageReference,
        budget: Duration,
    ) -> Result<VerificationResult, KeyFailure> {
        let deadline = self.deadline(budget, "the caller's budget");
        self.verdict_within(namespace, reference, None, deadline)
            .await
            .map(|v| v.result().clone())
    }

    fn deadline(&self, budget: Duration, setting: &'static str) -> Deadline {
        let started = Instant::now();
        Deadline {
            started,
            now: Utc::now(),
            at: started + budget,
            budget,
            setting,
        }
    }

    /// `missed`: the subject's key when the caller already looked it up in memory and the store
    /// and found nothing (digest references in [`Self::verify_keys`]); it is not looked up again
    /// here, since the verification flight checks memory once more before verifying.
    async fn verdict_within(
        &self,
        namespace: Option<&Namespace>,
        reference: &ImageReference,
        missed: Option<&SubjectKey>,
        deadline: Deadline,
    ) -> Result<Arc<ServedVerdict>, KeyFailure> {
        let key = match missed {
            Some(key) => key.clone(),
            None => {
                let digest = match reference.digest() {
                    Some(digest) => digest.clone(),
                    None => self.resolve_within(namespace, reference, deadline).await?,
                };
                let key =
                    SubjectKey::new(namespace.cloned(), reference.repository().clone(), digest);
                let hit = match self.inner.cache.get_memory(&key, deadline.now) {
                    Some(hit) => Some(hit),
                    None => self
                        .inner
                        .read_store(vec![key.clone()], deadline)
                        .await?
                        .pop()
                        .flatten(),
                };
                if let Some(hit) = hit {
                    self.inner.record_hits(1, deadline);
                    return Ok(hit);
                }
                key
            }
        };
        let outcome = self.verify_miss(key, deadline).await;
        self.inner
            .lookup_histograms()
            .miss
            .record(deadline.started.elapsed().as_secs_f64());
        outcome
    }

    async fn verify_miss(
        &self,
        key: SubjectKey,
        deadline: Deadline,
    ) -> Result<Arc<ServedVerdict>, KeyFailure> {
        let rx = match self.inner.verifications.join(&key) {
            Join::Busy(n) => {
                return Err(KeyFailure::Busy(format!(
                    "{n} subjects are being verified or waiting; {key} was not verified. Retry shortly, or raise max_pending_verifications / max_concurrent_verifications"
                )));
            }
            Join::Follower(rx) => rx,
            Join::Leader(rx, done) => {
                let inner = Arc::clone(&self.inner);
                let span = info_span!("inline_verification", subject = %key);
                tokio::spawn(inner.run_verification(key.clone(), done).instrument(span));
                rx
            }
        };
        match flight::wait(rx, deadline.at).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(e.into()),
            Err(WaitError::Deadline) => Err(KeyFailure::Timeout(format!(
                "no verdict for {key} within {:?} ({}); the verification continues and a later request will find its result",
                deadline.budget, deadline.setting
            ))),
            Err(WaitError::Abandoned) => Err(KeyFailure::Internal(format!(
                "the verification of {key} ended without a result; see the server log"
            ))),
        }
    }

    async fn resolve_within(
        &self,
        namespace: Option<&Namespace>,
        reference: &ImageReference,
        deadline: Deadline,
    ) -> Result<Digest, KeyFailure> {
        let key: TagQuery = (namespace.cloned(), reference.clone());
        let rx = match self.inner.resolutions.join(&key) {
            Join::Busy(n) => {
                return Err(KeyFailure::Busy(format!(
                    "{n} tags are being resolved; {reference} was not resolved. Retry shortly, or raise max_pending_verifications"
                )));
            }
            Join::Follower(rx) => rx,
            Join::Leader(rx, done) => {
                let inner = Arc::clone(&self.inner);
                let span = info_span!("tag_resolution", reference = %reference);
                tokio::spawn(inner.run_resolution(key, done).instrument(span));
                rx
            }
        };
        match flight::wait(rx, deadline.at).await {
            Ok(Ok(digest)) => Ok(digest),
            Ok(Err(e)) => Err(e.into()),
            Err(WaitError::Deadline) => Err(KeyFailure::Timeout(format!(
                "tag {reference} was not resolved to a digest within {:?} ({})",
                deadline.budget, deadline.setting
            ))),
            Err(WaitError::Abandoned) => Err(KeyFailure::Internal(format!(
                "resolving {reference} ended without a result; see the server log"
            ))),
        }
    }
}

/// [`m::LOOKUP_DURATION`]'s two series, looked up in the recorder once.
struct LookupHistograms {
    hit: metrics::Histogram,
    miss: metrics::Histogram,
}

impl Inner {
    /// The handles are taken at the first lookup, which comes after the process installed its
    /// recorder ([`crate::metrics::prometheus_recorder`] runs before the API serves).
    fn lookup_histograms(&self) -> &LookupHistograms {
        self.lookup_histograms.get_or_init(|| LookupHistograms {
            hit: metrics::histogram!(m::LOOKUP_DURATION, "result" => "hit"),
            miss: metrics::histogram!(m::LOOKUP_DURATION, "result" => "miss"),
        })
    }

    fn record_hits(&self, hits: usize, deadline: Deadline) {
        let elapsed = deadline.started.elapsed().as_secs_f64();
        let histogram = &self.lookup_histograms().hit;
        for _ in 0..hits {
            histogram.record(elapsed);
        }
    }

    /// The earlier of the request's deadline and `store_timeout` from now.
    fn store_deadline(&self, deadline: Deadline) -> Instant {
        (Instant::now() + self.config.store_timeout).min(deadline.at)
    }

    /// A store slot, waited for until `until`; `None` when the store stays saturated.
    async fn store_slot(&self, until: Instant) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match tokio::time::timeout_at(until, Arc::clone(&self.store_ops).acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => None,
        }
    }

    /// Reads `keys` from the persistent layer, on the blocking pool, within the store deadline.
    /// A backend error is a miss (the subject is verified inline); a store that does not answer
    /// in time fails every key closed (`STORE_UNAVAILABLE`), so a stalled store cannot hang
    /// requests or tie up threads without bound.
    async fn read_store(
        &self,
        keys: Vec<SubjectKey>,
        deadline: Deadline,
    ) -> Result<Vec<Option<Arc<ServedVerdict>>>, KeyFailure> {
        let until = self.store_deadline(deadline);
        let stalled = || {
            metrics::counter!(m::CACHE_ERRORS, "op" => "get_timeout").increment(1);
            KeyFailure::StoreUnavailable(format!(
                "the verdict store did not answer within {:?}; denied rather than answered unchecked. Check the data directory's disk, or raise --store-timeout-ms",
                self.config.store_timeout.min(deadline.budget)
            ))
        };
        let Some(permit) = self.store_slot(until).await else {
            return Err(stalled());
        };
        let cache = Arc::clone(&self.cache);
        let now = deadline.now;
        let read = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            keys.iter()
                .map(|k| (cache.get_stored(k, now), k.clone()))
                .collect::<Vec<_>>()
        });
        match tokio::time::timeout_at(until, read).await {
            Err(_) => Err(stalled()),
            Ok(Err(e)) => Err(KeyFailure::Internal(format!("the store read task failed: {e}"))),
            Ok(Ok(results)) => Ok(results
                .into_iter()
                .map(|(r, key)| {
                    r.unwrap_or_else(|e| {
                        warn!(subject = %key, error = %e, "verdict cache read failed; verifying inline");
                        metrics::counter!(m::CACHE_ERRORS, "op" => "get").increment(1);
                        None
                    })
                })
                .collect()),
        }
    }

    /// The verification slot of `key`'s registry host.
    fn registry_slot(&self, key: &SubjectKey) -> Arc<Semaphore> {
        let mut slots = self
            .registry_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let host = key.repository().registry();
        if let Some(s) = slots.get(host) {
            return Arc::clone(s);
        }
        // Hosts come from keys anyone can send: forget idle ones rather than grow without bound.
        if slots.len() >= 1024 {
            let per = self.config.max_verifications_per_registry;
            slots.retain(|_, s| s.available_permits() < per);
        }
        let s = Arc::new(Semaphore::new(self.config.max_verifications_per_registry));
        slots.insert(host.to_owned(), Arc::clone(&s));
        s
    }

    async fn run_verification(
        self: Arc<Self>,
        key: SubjectKey,
        done: flight::Completion<SubjectKey, VerifyOutcome>,
    ) {
        let work = async {
            // A flight that finished between our miss and our join may have stored the verdict.
            if let Some(hit) = self.cache.get_memory(&key, Utc::now()) {
                return (Ok(hit), false);
            }
            // The registry's share first, then a global slot: waiting on a slow registry holds
            // no slot another registry could use.
            let registry = self.registry_slot(&key);
            let shut = || {
                let e = VerifyError::Unavailable("the verification pool is shut down".into());
                (Err(e), false)
            };
            let Ok(_registry_slot) = registry.acquire_owned().await else {
                return shut();
            };
            let Ok(_slot) = self.slots.acquire().await else {
                return shut();
            };
            let reference = key.reference();
            let verified = self.verifier.verify(key.namespace(), &reference).await;
            (verified.map(|r| Arc::new(ServedVerdict::new(r))), true)
        };
        let (mut outcome, fresh, timed_out) =
            match tokio::time::timeout(self.config.verification_timeout, work).await {
                Ok((outcome, fresh)) => (outcome, fresh, false),
                Err(_) => (
                    Err(VerifyError::Unavailable(format!(
                        "verification of {key} did not finish within verification_timeout {:?}",
                        self.config.verification_timeout
                    ))),
                    true,
                    true,
                ),
            };
        if fresh {
            let label = match &outcome {
                _ if timed_out => "timeout",
                Ok(v) if v.result().is_success => "allow",
                Ok(_) => "deny",
                Err(e) if e.is_transient() => "transient_error",
                Err(_) => "definitive_error",
            };
            metrics::counter!(m::INLINE_VERIFICATIONS, "result" => label).increment(1);
            debug!(result = label, "inline verification finished");
        }
        // Store first, answer second: an answered verdict is an acknowledged one, and it must
        // survive a crash right after the answer (the store flushes before returning).
        if let (true, Ok(verdict)) = (fresh, &outcome)
            && let Err(e) = self.store(&key, Arc::clone(verdict)).await
        {
            outcome = Err(e);
        }
        done.publish(outcome);
        drop(done);
    }

    /// Keeps the verdict for as long as [`VerificationResult::retention`] says (`deny_ttl` and
    /// `pending_deny_ttl` are its deny lifetimes). A backend failure is logged (the verdict is
    /// still answered: it was computed now); a store that does not acknowledge within
    /// `store_timeout` is an error, so the answer fails closed instead of waiting on it.
    async fn store(
        &self,
        key: &SubjectKey,
        verdict: Arc<ServedVerdict>,
    ) -> Result<(), VerifyError> {
        let lifetimes = DenyLifetimes {
            definitive: self.config.deny_ttl,
            provisional: self.config.pending_deny_ttl,
        };
        let Retention::Keep { expires_at } = verdict.result().retention(Utc::now(), &lifetimes)
        else {
            return Ok(());
        };
        let until = Instant::now() + self.config.store_timeout;
        let stalled = || {
            metrics::counter!(m::CACHE_ERRORS, "op" => "put_timeout").increment(1);
            VerifyError::Store(format!(
                "the verdict store did not acknowledge the verdict for {key} within {:?}; denied rather than answered unrecorded. Check the data directory's disk, or raise --store-timeout-ms",
                self.config.store_timeout
            ))
        };
        let Some(permit) = self.store_slot(until).await else {
            return Err(stalled());
        };
        let cache = Arc::clone(&self.cache);
        let key_owned = key.clone();
        let put = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            cache.put(&key_owned, &verdict, expires_at)
        });
        let err = match tokio::time::timeout_at(until, put).await {
            Err(_) => return Err(stalled()),
            Ok(Ok(Ok(()))) => return Ok(()),
            Ok(Ok(Err(e))) => e.to_string(),
            Ok(Err(e)) => format!("the store task failed: {e}"),
        };
        warn!(subject = %key, error = %err, "storing the inline verdict failed; it will be verified again");
        metrics::counter!(m::CACHE_ERRORS, "op" => "put").increment(1);
        Ok(())
    }

    async fn run_resolution(
        self: Arc<Self>,
        key: TagQuery,
        done: flight::Completion<TagQuery, ResolveOutcome>,
    ) {
        let (namespace, reference) = &key;
        let outcome = match tokio::time::timeout(
            self.config.verification_timeout,
            self.resolver
                .resolve(namespace.as_ref().map(Namespace::as_str), reference),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(ResolveError::RegistryUnavailable(format!(
                "resolving {reference} did not finish within verification_timeout {:?}",
                self.config.verification_timeout
            ))),
        };
        done.publish(outcome);
    }
}

fn failed_item(key: String, failure: KeyFailure) -> Item {
    metrics::counter!(m::KEY_ERRORS, "code" => failure.code()).increment(1);
    Item::error(key, failure)
}

/// The key without its `[namespace]` prefix.
fn strip_namespace(key: &str) -> &str {
    match key.strip_prefix('[').and_then(|k| k.split_once(']')) {
        Some((_, rest)) => rest,
        None => key,
    }
}

/// A random UUID (version 4) per request, Ratify's `traceID`. Unpredictability is not needed
/// (it correlates logs), so the bits come from std's randomly keyed SipHash over a per-thread
/// counter rather than the system RNG.
fn new_trace_id() -> String {
    use std::cell::Cell;
    use std::hash::BuildHasher;
    thread_local! {
        static STATE: (std::hash::RandomState, Cell<u64>) =
            (std::hash::RandomState::new(), Cell::new(0));
    }
    let (hi, lo) = STATE.with(|(keyed, counter)| {
        let n = counter.get().wrapping_add(1);
        counter.set(n);
        (keyed.hash_one((n, 0u8)), keyed.hash_one((n, 1u8)))
    });
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_le_bytes());
    b[8..].copy_from_slice(&lo.to_le_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_uuid_v4() {
        let mut ids: std::collections::HashSet<String> =
            (0..1000).map(|_| new_trace_id()).collect();
        let other_thread: Vec<String> =
            std::thread::spawn(|| (0..1000).map(|_| new_trace_id()).collect())
                .join()
                .unwrap();
        ids.extend(other_thread);
        assert_eq!(ids.len(), 2000, "trace IDs repeat");
        for id in &ids {
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "4", "{id}");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
            assert_eq!(id.matches('-').count(), 4);
        }
    }

    #[test]
    fn strip_namespace_prefix() {
        assert_eq!(strip_namespace("[ns]r.io/a@sha256:x"), "r.io/a@sha256:x");
        assert_eq!(strip_namespace("r.io/a@sha256:x"), "r.io/a@sha256:x");
    }

    #[test]
    fn registry_errors_keep_their_class() {
        let e: VerifyError = RegistryError::Throttled {
            registry: "r.io".into(),
            retry_after: None,
        }
        .into();
        assert!(e.is_transient());
        let e: ResolveError = RegistryError::NotFound {
            registry: "r.io".into(),
            what: "tag v1".into(),
        }
        .into();
        assert!(matches!(e, ResolveError::NotFound(_)));
        assert_eq!(KeyFailure::from(e).code(), "TAG_NOT_FOUND");
    }
}
