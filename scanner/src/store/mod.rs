//! The signed, persistent verdict store.
//!
//! Entries are keyed by the canonical `[namespace]registry/repository@digest` ([`SubjectKey`]) and
//! hold a [`StoredVerdict`] (the [`VerificationResult`] with its reports, evidence and trust-config
//! fingerprint, plus an expiry). Every value is signed with the node's [`VerdictSigner`] over key
//! and value and checked on every read: a bad signature or an undecodable value is a
//! [`Lookup::Miss`] and counts in `verdict_store_bad_entries_total{kind,reason}`. Lookups take the
//! caller's current trust-configuration fingerprint, so an entry computed under another trust
//! configuration can never come back as a hit. Writes return after sled has flushed them to disk.
//!
//! Next to the entries the store keeps an index from key/certificate fingerprint to subjects
//! (updated in the same atomic batch as the entry) and a tag map (`registry/repository:tag` →
//! digest, seen-at). The backend is sled 0.34 ([`SledStore`]) behind the [`VerdictStore`] trait;
//! on corruption, an unknown schema or a meta record made by another verdict key, opening moves the
//! directory aside (`<dir>.quarantined-<time>`) and starts empty — the store is a cache that is
//! rebuilt by re-verifying.
//!
//! The trait is synchronous: reads take microseconds and may run on async workers; writes wait
//! for an fsync (milliseconds), so async callers run them in `spawn_blocking` and batch with
//! [`VerdictStore::put_many`] (concurrent writers also share fsyncs).

mod codec;
mod error;
mod key;
mod replica;
mod signer;
mod sled_store;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

pub use codec::SCHEMA_VERSION;
pub use error::StoreError;
pub use key::TagKey;
pub use replica::{Replicated, open_replicated, seal_replicated};

pub use crate::subject::SubjectKey;
pub use signer::{SignerKind, VerdictSigner};
pub use sled_store::{DEFAULT_CACHE_MIB, OpenOutcome, SledStore, StoreOptions};

use crate::registry::Digest;
use crate::report::{Unservable, VerificationResult};

/// A verdict as stored: the result and the instant after which it must not be served (from
/// [`VerificationResult::retention`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVerdict {
    pub result: VerificationResult,
    /// `None` = no bound (an allow resting on non-expiring keys).
    pub expires_at: Option<DateTime<Utc>>,
}

impl StoredVerdict {
    /// The result, expiring when its earliest evidence stops being valid (an allow's retention).
    pub fn new(result: VerificationResult) -> Self {
        let expires_at = result.valid_until();
        StoredVerdict { result, expires_at }
    }

    /// Whether it may be served at `now` under `current_fingerprint`
    /// ([`VerificationResult::servable`]).
    pub fn servable(
        &self,
        now: DateTime<Utc>,
        current_fingerprint: &str,
    ) -> Result<(), Unservable> {
        self.result
            .servable(self.expires_at, now, current_fingerprint)
    }

    /// True when it can never be served again: its lifetime has ended at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        let own = &self.result.trust_config_fingerprint;
        self.servable(now, own) == Err(Unservable::Expired)
    }

    /// Every key/certificate fingerprint the verdict rests on (the revocation index keys).
    pub fn fingerprints(&self) -> BTreeSet<String> {
        self.result
            .evidence
            .iter()
            .flat_map(|e| e.fingerprints.iter().cloned())
            .collect()
    }
}

/// The answer of [`VerdictStore::get`].
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A verdict with a valid signature, unexpired, computed under the current trust configuration.
    Hit(StoredVerdict),
    Miss(MissReason),
}

/// Why a lookup found nothing servable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MissReason {
    Absent,
    Expired,
    /// The entry's signature does not match (tampered, moved to another key, or another verdict key).
    BadSignature,
    /// The signature matched but the value is not a verdict of this schema.
    Corrupt,
    /// The entry was computed under a different trust configuration.
    OtherTrustConfig,
}

impl MissReason {
    /// Label value for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::Absent => "absent",
            MissReason::Expired => "expired",
            MissReason::BadSignature => "bad_signature",
            MissReason::Corrupt => "corrupt",
            MissReason::OtherTrustConfig => "other_trust_config",
        }
    }
}

/// A tag-map entry: the digest a tag pointed to when it was last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEntry {
    pub digest: Digest,
    pub seen_at: DateTime<Utc>,
}

/// One entry as found by [`VerdictStore::iter_all`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// The subject. Always set for a valid entry; for a bad one, set when its payload still names
    /// a subject consistent with where it is stored (so it can be re-verified), else `None`.
    pub key: Option<SubjectKey>,
    pub verdict: Result<StoredVerdict, MissReason>,
}

/// Iterator over every stored verdict.
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<StoredEntry, StoreError>> + Send + 'a>;

/// The verdict store. Implementations check signatures on every read and make writes durable
/// before returning.
pub trait VerdictStore: Send + Sync {
    /// The verdict for `key` if it is valid, unexpired at `now` and was computed under
    /// `trust_config_fingerprint`; otherwise the reason it is a miss. `Err` only for backend failures.
    fn get(
        &self,
        key: &SubjectKey,
        trust_config_fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Lookup, StoreError>;

    /// The verdict for `key` if it is valid and unexpired at `now`, under whichever trust
    /// configuration it was computed (for carrying verdicts over to a new configuration whose
    /// change leaves their evidence standing). `Err` only for backend failures.
    fn get_any(
        &self,
        key: &SubjectKey,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredVerdict>, StoreError>;

    /// Stores the verdicts (replacing earlier ones and their index entries) and returns once they
    /// are on disk. Each entry is atomic with its index entries; the batch as a whole is not.
    fn put_many(&self, entries: &[(SubjectKey, StoredVerdict)]) -> Result<(), StoreError>;

    /// Replaces entries whose evidence (hence their fingerprint-index entries) is the same as
    /// the stored one's — a verdict carried over to a new trust configuration — without
    /// touching the index; durable on return. Default: [`VerdictStore::put_many`].
    fn rewrite_same_evidence(
        &self,
        entries: &[(SubjectKey, StoredVerdict)],
    ) -> Result<(), StoreError> {
        self.put_many(entries)
    }

    /// Stores one verdict durably (see [`VerdictStore::put_many`]).
    fn put(&self, key: &SubjectKey, verdict: &StoredVerdict) -> Result<(), StoreError> {
        self.put_many(&[(key.clone(), verdict.clone())])
    }

    /// Removes the verdict for `key` durably; true if there was one.
    fn remove(&self, key: &SubjectKey) -> Result<bool, StoreError>;

    /// The subjects whose stored verdict rests on `fingerprint` (valid entries only).
    fn subjects_for_fingerprint(&self, fingerprint: &str) -> Result<Vec<SubjectKey>, StoreError>;

    /// Durably removes every verdict resting on `fingerprint` and returns their keys (for
    /// re-verification); the count is the length.
    fn revoke_fingerprint(&self, fingerprint: &str) -> Result<Vec<SubjectKey>, StoreError>;

    /// Records durably that `tag` pointed to `digest` at `seen_at`.
    fn tag_put(
        &self,
        tag: &TagKey,
        digest: &Digest,
        seen_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The last digest recorded for `tag`; `None` if absent or if the entry fails its signature.
    fn tag_get(&self, tag: &TagKey) -> Result<Option<TagEntry>, StoreError>;

    /// Every stored verdict, each checked (for revalidation); the order is unspecified.
    fn iter_all(&self) -> EntryIter<'_>;

    /// Number of stored verdicts.
    fn len(&self) -> u64;

    /// Bytes the store occupies on disk, when the backend can tell.
    fn size_on_disk(&self) -> Option<u64> {
        None
    }

    /// A named counter this node keeps with its verdicts (the last verdict-stream sequence it
    /// applied), signed like an entry: `None` when never set or unreadable (then the node
    /// starts over, which only repeats idempotent work). Default: none kept.
    fn marker(&self, _name: &str) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Records a named counter durably. Callers record progress after the work it counts, so a
    /// crash in between repeats work rather than skipping it.
    fn set_marker(&self, _name: &str, _value: u64) -> Result<(), StoreError> {
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
