//! The lookup core behind the endpoints: answer each key from the verdict cache, or verify it
//! inline within the request's deadline. The walk of a key: [`VerdictService::handle`] parses
//! the request ([`crate::wire`]), looks each subject up in memory ([`VerdictCache::get_memory`])
//! and then in the store (`store_io`, on the blocking pool, bounded), verifies misses (`miss`),
//! and writes the answer with [`crate::wire::ratify`].
//!
//! Miss path, per distinct subject `(namespace, repository@digest)`:
//! - tags are first resolved to a digest ([`TagResolver`]); verdicts belong to digests;
//! - single-flight: concurrent misses for one subject share one verification;
//! - bounded: at most `max_concurrent_verifications` run at once, at most
//!   `max_pending_verifications` subjects wait, beyond that `VERIFIER_BUSY` at once;
//! - the verification runs in its own task with `verification_timeout` and outlives the request,
//!   so a request that ran out of time (`VERIFY_TIMEOUT`, fail closed) leaves a verdict behind
//!   for the next one;
//! - verdicts are kept as long as [`VerificationResult::retention`] says; transient failures
//!   never (they become `REGISTRY_UNAVAILABLE` / `VERIFY_UNAVAILABLE` item errors).

mod miss;
mod store_io;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{Instrument, info_span, warn};
use verdict_scanner::registry::{Digest, ImageReference};
use verdict_scanner::report::VerificationResult;
use verdict_scanner::subject::{Namespace, SubjectKey};

use crate::cache::{ServedVerdict, VerdictCache};
use crate::config::ServiceConfig;
use crate::error::Error;
use crate::metrics as m;
use crate::single_flight::Flights;
use crate::verification::{InlineVerifier, TagResolver};
use crate::wire::ratify::Stamp;
use crate::wire::{self, Item, ItemKey, ItemValue, KeyPlan, ParsedKey, ProviderResponse};

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
    /// Every endpoint, in declaration order (`endpoint as usize` indexes it).
    pub const ALL: [Endpoint; 4] = [
        Endpoint::VerifyV1,
        Endpoint::VerifyV2,
        Endpoint::MutateV1,
        Endpoint::MutateV2,
    ];

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

type VerifyOutcome = Result<Arc<ServedVerdict>, Error>;
type ResolveOutcome = Result<Digest, Error>;
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
    /// Push-path refreshes in progress, one at a time per subject (see `refresh`).
    refreshing: Mutex<HashMap<SubjectKey, Arc<tokio::sync::Mutex<()>>>>,
    resolutions: Arc<Flights<TagQuery, ResolveOutcome>>,
    meters: std::sync::OnceLock<Meters>,
}
impl VerdictService {
    pub fn new(
        config: ServiceConfig,
        cache: Arc<dyn VerdictCache>,
        verifier: Arc<dyn InlineVerifier>,
        resolver: Arc<dyn TagResolver>,
    ) -> Result<Self, Error> {
        config.validate()?;
        Ok(VerdictService {
            inner: Arc::new(Inner {
                slots: Semaphore::new(config.max_concurrent_verifications),
                registry_slots: Mutex::new(HashMap::new()),
                store_ops: Arc::new(Semaphore::new(config.max_store_operations)),
                verifications: Flights::new(config.max_pending_verifications),
                refreshing: Mutex::new(HashMap::new()),
                resolutions: Flights::new(config.max_pending_verifications),
                meters: std::sync::OnceLock::new(),
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
    pub async fn handle(&self, endpoint: Endpoint, body: Result<Bytes, Error>) -> ProviderResponse {
        let trace_id = new_trace_id();
        let span = info_span!("external_data", endpoint = endpoint.label(), trace_id = %trace_id, keys = tracing::field::Empty);
        async {
            // Keys borrow from the body where they need no unescaping.
            let parsed = body
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|b| wire::parse_request(b, self.inner.config.max_keys));
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
                Outcome::SystemError
            } else if response.response.items.iter().any(|i| i.error.is_some()) {
                Outcome::KeyErrors
            } else {
                Outcome::Ok
            };
            self.inner.meters().requests[endpoint as usize][outcome as usize].increment(1);
            response
        }
        .instrument(span)
        .await
    }

    /// Verify answers for `keys` (request order, duplicates answered once).
    pub async fn verify_keys<S: AsRef<str>>(
        &self,
        endpoint: Endpoint,
        keys: Vec<S>,
        trace_id: &str,
    ) -> ProviderResponse {
        let deadline = self.deadline(self.inner.config.verify_deadline, "verify_deadline");
        let plan = KeyPlan::new(keys);
        // Digest references are looked up here, and hits answered without a future each; tags
        // (resolved, then looked up) and digest misses (verified) proceed concurrently.
        let mut verdicts: Vec<Option<Result<Arc<ServedVerdict>, Error>>> = plan
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
                Err(Error::Internal(
                    "a subject was left without a lookup".into(),
                ))
            })
        });
        let stamp = Arc::new(Stamp::new(trace_id, Utc::now()));
        // Each subject's value is written once; spelling variants of a key share its text.
        let values: Vec<Result<ItemValue, Error>> = verdicts
            .zip(&plan.subjects)
            .map(|(verdict, subject)| item_value(&*verdict?, endpoint, subject, &stamp))
            .collect();
        // Spelling variants of one subject share its value (a clone shares the rendered verdict).
        let items = plan
            .items
            .into_iter()
            .map(|(key, slot)| match slot.and_then(|i| values[i].clone()) {
                Ok(v) => Item::raw(key, v),
                Err(f) => failed_item(key, f),
            })
            .collect();
        ProviderResponse::items(items, endpoint.idempotent())
    }

    /// Mutate answers for `keys`: a tag becomes `registry/repository@digest` (normalised, tag
    /// dropped); a key with a digest is answered unchanged (without its `[ns]` prefix).
    pub async fn mutate_keys<S: AsRef<str>>(&self, keys: Vec<S>) -> ProviderResponse {
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
                Err(e) => failed_item(key, e),
                Ok(i) => match &digests[i] {
                    Ok(Some(pinned)) => Item::value(key, Value::String(pinned.clone())),
                    Ok(None) => {
                        let unchanged = strip_namespace(key.as_str()).to_owned();
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
    ) -> Result<VerificationResult, Error> {
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
}

/// A request's outcome, the `outcome` label of [`m::REQUESTS`].
#[derive(Clone, Copy)]
enum Outcome {
    Ok = 0,
    KeyErrors = 1,
    SystemError = 2,
}

impl Outcome {
    const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::KeyErrors, Outcome::SystemError];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::KeyErrors => "key_errors",
            Outcome::SystemError => "system_error",
        }
    }
}

/// The per-request series ([`m::REQUESTS`]'s twelve), looked up in the recorder once instead of
/// by name and labels on every request. Lookup durations go to [`m::LOOKUPS`].
struct Meters {
    /// By [`Endpoint`], then [`Outcome`].
    requests: [[metrics::Counter; 3]; 4],
}
impl Inner {
    /// The handles are taken at the first lookup, which comes after the process installed its
    /// recorder ([`crate::metrics::prometheus_recorder`] runs before the API serves).
    fn meters(&self) -> &Meters {
        self.meters.get_or_init(|| Meters {
            requests: Endpoint::ALL.map(|endpoint| {
                Outcome::ALL.map(|outcome| {
                    metrics::counter!(m::REQUESTS, "endpoint" => endpoint.label(), "outcome" => outcome.label())
                })
            }),
        })
    }

    fn record_hits(&self, hits: usize, deadline: Deadline) {
        let elapsed = deadline.started.elapsed().as_secs_f64();
        m::LOOKUPS.hit.record_many(elapsed, hits as u64);
    }
}

/// The item value for `endpoint`, presenting `verdict` as `subject` (the key's normalised
/// reference) with the request's `stamp`: the verdict's rendered value, written into the
/// response by [`ProviderResponse::to_json`].
fn item_value(
    verdict: &ServedVerdict,
    endpoint: Endpoint,
    subject: &Arc<ParsedKey>,
    stamp: &Arc<Stamp>,
) -> Result<ItemValue, Error> {
    let rendered = verdict.rendered().map_err(|e| {
        Error::Internal(format!(
            "encoding the verdict for {} failed: {e}",
            subject.normalised
        ))
    })?;
    Ok(ItemValue::verdict(
        Arc::clone(rendered),
        endpoint == Endpoint::VerifyV2,
        Arc::clone(subject),
        Arc::clone(stamp),
    ))
}

fn failed_item(key: ItemKey, failure: Error) -> Item {
    metrics::counter!(m::KEY_ERRORS, "code" => failure.code().unwrap_or("INTERNAL")).increment(1);
    Item::error(key, failure)
}

/// The key without its `[namespace]` prefix.
fn strip_namespace(key: &str) -> &str {
    match key.strip_prefix('[').and_then(|k| k.split_once(']')) {
        Some((_, rest)) => rest,
        None => key,
    }
}

/// A random UUID (version 4) per request, Ratify's `traceID`. It correlates logs and needs no
/// unpredictability, so its bits come from std's randomly keyed SipHash over a per-thread counter
/// rather than a `getrandom` system call per request (measurable at 60 k requests/s); the uuid
/// crate sets the version and variant and formats it.
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
    let bits = (u128::from(hi) << 64) | u128::from(lo);
    uuid::Builder::from_random_bytes(bits.to_le_bytes())
        .into_uuid()
        .hyphenated()
        .to_string()
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
}
