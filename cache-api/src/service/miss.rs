//! The miss path: a subject no cache layer holds is verified inline, once however many requests
//! ask for it (single-flight), within bounded concurrency per registry and overall, and its
//! verdict kept for as long as [`verdict_scanner::report::VerificationResult::retention`] says.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span, warn};
use verdict_scanner::registry::{Digest, ImageReference};
use verdict_scanner::report::{DenyLifetimes, Retention, VerificationResult};
use verdict_scanner::subject::{Namespace, SubjectKey};

use super::{Deadline, Inner, ResolveOutcome, TagQuery, VerdictService, VerifyOutcome};
use crate::cache::ServedVerdict;
use crate::error::Error;
use crate::metrics as m;
use crate::single_flight::{self as flight, Join, WaitError};

impl VerdictService {
    /// `missed`: the subject's key when the caller already looked it up in memory and the store
    /// and found nothing (digest references in [`Self::verify_keys`]); it is not looked up again
    /// here, since the verification flight checks memory once more before verifying.
    pub(super) async fn verdict_within(
        &self,
        namespace: Option<&Namespace>,
        reference: &ImageReference,
        missed: Option<&SubjectKey>,
        deadline: Deadline,
    ) -> Result<Arc<ServedVerdict>, Error> {
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
        m::LOOKUPS
            .miss
            .record_many(deadline.started.elapsed().as_secs_f64(), 1);
        outcome
    }

    async fn verify_miss(
        &self,
        key: SubjectKey,
        deadline: Deadline,
    ) -> Result<Arc<ServedVerdict>, Error> {
        let rx = match self.inner.verifications.join(&key) {
            Join::Busy(n) => {
                return Err(Error::Busy(format!(
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
            Ok(Err(e)) => Err(e),
            Err(WaitError::Deadline) => Err(Error::Timeout(format!(
                "no verdict for {key} within {:?} ({}); the verification continues and a later request will find its result",
                deadline.budget, deadline.setting
            ))),
            Err(WaitError::Abandoned) => Err(Error::Internal(format!(
                "the verification of {key} ended without a result; see the server log"
            ))),
        }
    }

    /// Verifies `key` now, whatever any cache layer holds, and records the verdict: the push
    /// path (a new image, or a new signature of `key`). Shares the miss path's registry and
    /// global slots and its `verification_timeout`; does not join a lookup's verification in
    /// flight, which may have started before the push. A deny also removes a stored allow, so a
    /// verdict the registry no longer supports is not served from the store.
    pub async fn refresh(&self, key: &SubjectKey) -> Result<Arc<ServedVerdict>, Error> {
        let inner = &self.inner;
        // One refresh at a time per subject: each reads the registry afresh, so the last to run
        // started after the last event arrived and its verdict is the one left. Without this, an
        // image's push event verified concurrently with its signature's could finish last with
        // the deny it computed before the signature existed.
        let turn = {
            let mut map = inner.refreshing.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(map.entry(key.clone()).or_default())
        };
        let outcome = {
            let _turn = turn.lock().await;
            self.refresh_now(key).await
        };
        let mut map = inner.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&turn) == 2 {
            map.remove(key);
        }
        outcome
    }

    async fn refresh_now(&self, key: &SubjectKey) -> Result<Arc<ServedVerdict>, Error> {
        let inner = &self.inner;
        let work = async {
            let shut = |_| Error::VerifyUnavailable("the verification pool is shut down".into());
            let _registry_slot = inner
                .registry_slot(key)
                .acquire_owned()
                .await
                .map_err(shut)?;
            let _slot = inner.slots.acquire().await.map_err(shut)?;
            inner
                .verifier
                .verify(key.namespace(), &key.reference())
                .await
        };
        let verified = match tokio::time::timeout(inner.config.verification_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(Error::VerifyUnavailable(format!(
                "verification of {key} did not finish within verification_timeout {:?}",
                inner.config.verification_timeout
            ))),
        };
        let label = match &verified {
            Ok(v) if v.is_success => "allow",
            Ok(_) => "deny",
            Err(e) if e.is_transient() => "transient_error",
            Err(_) => "definitive_error",
        };
        metrics::counter!(m::PUSH_VERIFICATIONS, "result" => label).increment(1);
        let verdict = Arc::new(ServedVerdict::new(verified?));
        self.record(key, Arc::clone(&verdict)).await?;
        Ok(verdict)
    }

    /// Keeps a verdict made outside a lookup (push path, verdict stream). A deny must not leave
    /// an allow in the store behind it: the cache keeps denies in memory only, so the stored
    /// allow is forgotten first.
    async fn record(&self, key: &SubjectKey, verdict: Arc<ServedVerdict>) -> Result<(), Error> {
        if !verdict.result().is_success {
            self.forget(key).await?;
        }
        self.inner.store(key, verdict).await
    }

    /// Records a verdict another replica computed (the verdict stream): kept and served exactly
    /// like one computed here — only under the trust configuration it names, only until its
    /// evidence expires (a deny for its deny lifetime, from now).
    pub async fn apply(&self, key: &SubjectKey, result: VerificationResult) -> Result<(), Error> {
        self.record(key, Arc::new(ServedVerdict::new(result))).await
    }

    /// Forgets `key`'s verdict in memory and in the store (a deleted manifest); true if one was
    /// held. Bounded by `store_timeout` like every store operation.
    pub async fn forget(&self, key: &SubjectKey) -> Result<bool, Error> {
        let inner = &self.inner;
        let until = Instant::now() + inner.config.store_timeout;
        let stalled = || {
            Error::StoreUnavailable(format!(
                "the verdict store did not remove {key} within {:?}",
                inner.config.store_timeout
            ))
        };
        let Some(permit) = inner.store_slot(until).await else {
            return Err(stalled());
        };
        let cache = Arc::clone(&inner.cache);
        let owned = key.clone();
        let removal = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            cache.remove(&owned)
        });
        match tokio::time::timeout_at(until, removal).await {
            Err(_) => Err(stalled()),
            Ok(Err(e)) => Err(Error::Internal(format!("the store task failed: {e}"))),
            Ok(Ok(r)) => r,
        }
    }

    pub(super) async fn resolve_within(
        &self,
        namespace: Option<&Namespace>,
        reference: &ImageReference,
        deadline: Deadline,
    ) -> Result<Digest, Error> {
        // A tag the resolver already knows costs no flight (a storm of pods naming the same
        // tags must not queue behind the registry, or be refused as busy).
        if let Some(digest) = self
            .inner
            .resolver
            .known(namespace.map(Namespace::as_str), reference)
        {
            return Ok(digest);
        }
        let key: TagQuery = (namespace.cloned(), reference.clone());
        let rx = match self.inner.resolutions.join(&key) {
            Join::Busy(n) => {
                return Err(Error::Busy(format!(
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
            Ok(Err(e)) => Err(e),
            Err(WaitError::Deadline) => Err(Error::Timeout(format!(
                "tag {reference} was not resolved to a digest within {:?} ({})",
                deadline.budget, deadline.setting
            ))),
            Err(WaitError::Abandoned) => Err(Error::Internal(format!(
                "resolving {reference} ended without a result; see the server log"
            ))),
        }
    }
}

impl Inner {
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
                let e = Error::VerifyUnavailable("the verification pool is shut down".into());
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
                    Err(Error::VerifyUnavailable(format!(
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
    pub(super) async fn store(
        &self,
        key: &SubjectKey,
        verdict: Arc<ServedVerdict>,
    ) -> Result<(), Error> {
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
            Error::StoreUnavailable(format!(
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
            Err(_) => Err(Error::RegistryUnavailable(format!(
                "resolving {reference} did not finish within verification_timeout {:?}",
                self.config.verification_timeout
            ))),
        };
        done.publish(outcome);
    }
}
