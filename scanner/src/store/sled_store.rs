//! The sled implementation of [`VerdictStore`].
//!
//! One sled tree (key layout in `codec.rs`): an entry and the posting-list buckets of its
//! fingerprints change together in one atomic `apply_batch` (up to 64 verdicts per batch).
//! Writers are serialised by a mutex (they read the old entry and the buckets they edit); readers
//! never lock. Every write ends with `Db::flush` (fsync); concurrent writers share flushes, and a
//! writer flushes early rather than leave more than 256 KiB unflushed (this avoids a sled 0.34
//! deadlock seen with large unflushed bursts, see `MAX_UNFLUSHED_BYTES`).
//!
//! Opening checks the signed meta record (schema version, verdict key id) and nothing else, so it
//! does not scan entries. A store made with another verdict key is quarantined rather than kept
//! with every entry failing its signature: nothing in it could be served, and keeping it would
//! leave a million dead entries. Quarantined directories are kept for inspection (the newest
//! [`StoreOptions::keep_quarantined`]) and the store starts empty.
//!
//! Over 600 lines because the store's writes (entries with their index, revocation, recovery) share
//! one lock and one flush discipline.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use crate::registry::Digest;
use crate::report::Unservable;

use super::codec::{self, Id, META_COUNT, META_INDEX_DIRTY, META_SCHEMA, Meta, PREFIX_ENTRY};
use super::{
    EntryIter, Lookup, MissReason, StoreError, StoredEntry, StoredVerdict, SubjectKey, TagEntry,
    TagKey, VerdictSigner, VerdictStore,
};

/// Index entries processed per batch while revoking (bounds memory and writer pauses).
const REVOKE_CHUNK: usize = 512;
/// Verdicts per atomic sled batch when writing many.
const WRITE_CHUNK: usize = 64;
/// Written but unflushed bytes after which a writer flushes before writing more. sled 0.34 can
/// deadlock when a writer fills log buffers faster than its I/O pool drains them (the segment
/// accountant waits on a file truncation queued behind blocked writes); bounding the unflushed
/// data keeps the pool from filling up.
const MAX_UNFLUSHED_BYTES: usize = 256 * 1024;
const MAX_FINGERPRINT_LEN: usize = 512;
const LOCK_RETRIES: u32 = 20;
const LOCK_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Default sled page cache, in MiB. sled holds decoded leaves at roughly twice their on-disk
/// size and, under random reads, up to 64 unaccounted pages per LRU shard (256 shards) on top:
/// with 1 M verdicts, 4 MiB configured cost ~15 MiB resident, 16 MiB ~40 MiB (benches/README.md,
/// "Memory"). Repeated lookups are answered from the service's in-memory verdicts instead.
pub const DEFAULT_CACHE_MIB: u64 = 4;

/// Tuning of the sled backend.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled's page cache; a main term of the store's memory use (see [`DEFAULT_CACHE_MIB`]).
    pub cache_capacity_bytes: u64,
    /// sled's background flush period; acknowledged writes are flushed regardless.
    pub flush_every_ms: Option<u64>,
    /// How many quarantined directories to keep next to the store (older ones are deleted).
    pub keep_quarantined: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_capacity_bytes: DEFAULT_CACHE_MIB * 1024 * 1024,
            flush_every_ms: Some(500),
            keep_quarantined: 2,
        }
    }
}

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// No store existed; a new one was created.
    Created,
    /// An existing store passed its checks.
    Opened { entries: u64 },
    /// The existing store failed its checks and was moved aside; this store is new and empty.
    Quarantined { moved_to: PathBuf, reason: String },
}

/// The sled-backed verdict store.
pub struct SledStore {
    db: sled::Db,
    signer: VerdictSigner,
    path: PathBuf,
    /// Serialises writers; holds the bytes written since the last flush.
    write_lock: Mutex<usize>,
    count: AtomicU64,
    /// The fingerprint index was found damaged: fingerprint queries scan every entry.
    index_dirty: AtomicBool,
    outcome: OpenOutcome,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .field("signer", &self.signer)
            .field("entries", &self.count.load(Ordering::Relaxed))
            .finish()
    }
}

enum OpenFailure {
    /// The directory is unusable as a store: quarantine it.
    Quarantine(String),
    /// Could not open, and the directory must be left alone (locked by another process, permissions).
    Fatal(StoreError),
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, signing and checking entries with `signer`.
    /// A store that fails its checks is quarantined (see [`OpenOutcome::Quarantined`]).
    pub fn open(
        dir: impl AsRef<Path>,
        signer: VerdictSigner,
        opts: StoreOptions,
    ) -> Result<SledStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        match Self::try_open(&dir, &signer, &opts) {
            Ok((db, count, outcome)) => Ok(Self::assemble(db, signer, dir, count, outcome)),
            Err(OpenFailure::Fatal(e)) => Err(e),
            Err(OpenFailure::Quarantine(reason)) => {
                let moved_to = quarantine(&dir, &reason, opts.keep_quarantined)?;
                match Self::try_open(&dir, &signer, &opts) {
                    Ok((db, count, _)) => Ok(Self::assemble(
                        db,
                        signer,
                        dir,
                        count,
                        OpenOutcome::Quarantined { moved_to, reason },
                    )),
                    Err(OpenFailure::Fatal(e)) => Err(e),
                    Err(OpenFailure::Quarantine(again)) => Err(StoreError::Open {
                        path: dir,
                        reason: format!("a fresh store failed its checks too: {again}"),
                    }),
                }
            }
        }
    }

    fn assemble(
        db: sled::Db,
        signer: VerdictSigner,
        path: PathBuf,
        count: u64,
        outcome: OpenOutcome,
    ) -> SledStore {
        metrics::gauge!("verdict_store_entries").set(count as f64);
        let index_dirty = db.contains_key(META_INDEX_DIRTY).unwrap_or(true);
        if index_dirty {
            tracing::warn!(path = %path.display(), "the verdict store's fingerprint index is marked damaged; revocations scan every entry");
        }
        tracing::info!(path = %path.display(), entries = count, outcome = ?outcome, key_id = signer.key_id(), "verdict store open");
        SledStore {
            db,
            signer,
            path,
            write_lock: Mutex::new(0),
            count: AtomicU64::new(count),
            index_dirty: AtomicBool::new(index_dirty),
            outcome,
        }
    }

    fn try_open(
        dir: &Path,
        signer: &VerdictSigner,
        opts: &StoreOptions,
    ) -> Result<(sled::Db, u64, OpenOutcome), OpenFailure> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(opts.cache_capacity_bytes)
            .mode(sled::Mode::LowSpace)
            .flush_every_ms(opts.flush_every_ms);
        // sled releases its file lock only when its last I/O task ends, shortly after the previous
        // handle in this process is dropped: retry briefly before reporting the store as in use.
        let mut attempt = 0;
        let opened = loop {
            let r = catch_unwind(AssertUnwindSafe(|| config.open()));
            match &r {
                Ok(Err(sled::Error::Io(e)))
                    if attempt < LOCK_RETRIES
                        && e.to_string().contains("could not acquire lock") =>
                {
                    attempt += 1;
                    std::thread::sleep(LOCK_RETRY_DELAY);
                }
                _ => break r,
            }
        };
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(sled::Error::Io(e))) => {
                return if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
                ) {
                    Err(OpenFailure::Quarantine(format!(
                        "sled could not read its files: {e}"
                    )))
                } else {
                    Err(OpenFailure::Fatal(StoreError::Open {
                        path: dir.to_owned(),
                        reason: format!("{e} (is another verdict process using this directory?)"),
                    }))
                };
            }
            Ok(Err(e)) => return Err(OpenFailure::Quarantine(format!("sled: {e}"))),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "unknown panic".to_owned());
                return Err(OpenFailure::Quarantine(format!(
                    "sled panicked while opening: {msg}"
                )));
            }
        };
        let backend = |op: &'static str| {
            move |e: sled::Error| match e {
                sled::Error::Io(_) => OpenFailure::Fatal(StoreError::Backend { op, source: e }),
                other => OpenFailure::Quarantine(format!("sled ({op}): {other}")),
            }
        };

        let meta = db
            .get(META_SCHEMA)
            .map_err(backend("reading the meta record"))?;
        let Some(meta) = meta else {
            if db
                .first()
                .map_err(backend("checking for entries"))?
                .is_some()
            {
                return Err(OpenFailure::Quarantine(
                    "the store has entries but no meta record".to_owned(),
                ));
            }
            let now = Utc::now();
            let payload = codec::encode_meta(&Meta::new(signer.key_id(), &now))
                .map_err(|e| OpenFailure::Fatal(StoreError::Encode(e)))?;
            db.insert(META_SCHEMA, codec::seal(signer, META_SCHEMA, &payload))
                .map_err(backend("writing the meta record"))?;
            db.flush().map_err(backend("flushing the meta record"))?;
            return Ok((db, 0, OpenOutcome::Created));
        };

        if meta.first() != Some(&codec::SCHEMA_VERSION) {
            return Err(OpenFailure::Quarantine(format!(
                "unknown schema version {:?} (this build reads version {})",
                meta.first(),
                codec::SCHEMA_VERSION
            )));
        }
        let unchecked = codec::payload_unchecked(signer, &meta)
            .and_then(codec::decode_meta)
            .ok_or_else(|| OpenFailure::Quarantine("the meta record is unreadable".to_owned()))?;
        if unchecked.key_id != signer.key_id() {
            return Err(OpenFailure::Quarantine(format!(
                "entries were signed by verdict key {}, this node's key is {}",
                unchecked.key_id,
                signer.key_id()
            )));
        }
        let checked = codec::unseal(signer, META_SCHEMA, &meta)
            .ok()
            .and_then(codec::decode_meta)
            .ok_or_else(|| {
                OpenFailure::Quarantine("the meta record fails its signature".to_owned())
            })?;
        if checked.schema_version != codec::SCHEMA_VERSION {
            return Err(OpenFailure::Quarantine(format!(
                "unknown schema version {} in the meta record",
                checked.schema_version
            )));
        }
        tracing::debug!(created_at = ?checked.created_at(), "verdict store meta record ok");

        let count = match db
            .get(META_COUNT)
            .map_err(backend("reading the entry count"))?
        {
            Some(v) if v.len() == 8 => u64::from_le_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
            _ => {
                tracing::warn!(path = %dir.display(), "verdict store entry count missing; counting entries");
                let mut n = 0u64;
                for item in db.scan_prefix([PREFIX_ENTRY]).keys() {
                    item.map_err(backend("counting entries"))?;
                    n += 1;
                }
                n
            }
        };
        Ok((db, count, OpenOutcome::Opened { entries: count }))
    }

    /// What opening found (created, opened, or quarantined and started empty).
    pub fn open_outcome(&self) -> &OpenOutcome {
        &self.outcome
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The verdict key's public id.
    pub fn key_id(&self) -> &str {
        self.signer.key_id()
    }

    /// Bytes sled uses on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db
            .size_on_disk()
            .map_err(StoreError::backend("size_on_disk"))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(StoreError::backend("flush"))?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        // A panic while holding the lock cannot leave a half-applied batch (batches are atomic).
        self.write_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies `batch` atomically under the writer lock (`unflushed` is the lock's counter) and
    /// flushes first when too much is unflushed (see [`MAX_UNFLUSHED_BYTES`]).
    fn apply(
        &self,
        unflushed: &mut usize,
        batch: sled::Batch,
        bytes: usize,
        op: &'static str,
    ) -> Result<(), StoreError> {
        if *unflushed + bytes > MAX_UNFLUSHED_BYTES && *unflushed > 0 {
            self.flush()?;
            *unflushed = 0;
        }
        self.db
            .apply_batch(batch)
            .map_err(StoreError::backend(op))?;
        *unflushed += bytes;
        Ok(())
    }

    /// Flushes, resetting the unflushed counter.
    fn flush_all(&self) -> Result<(), StoreError> {
        let mut unflushed = self.lock();
        let pending = *unflushed;
        *unflushed = 0;
        drop(unflushed);
        if let Err(e) = self.flush() {
            *self.lock() += pending;
            return Err(e);
        }
        Ok(())
    }

    /// Verifies and decodes an entry value; `expected` is the key it was looked up by, if any.
    /// Counts and logs bad entries.
    fn check_entry(
        &self,
        entry_key: &[u8],
        value: &[u8],
        expected: Option<&SubjectKey>,
    ) -> Result<(SubjectKey, StoredVerdict), MissReason> {
        let outcome = codec::unseal(&self.signer, entry_key, value).and_then(|payload| {
            let (key, verdict) = codec::decode_verdict(payload).ok_or(MissReason::Corrupt)?;
            let key = SubjectKey::parse(&key).map_err(|_| MissReason::Corrupt)?;
            let consistent = verdict.result.digest == key.digest().to_string()
                && expected.is_none_or(|e| *e == key)
                && codec::entry_key(&key) == entry_key;
            if consistent {
                Ok((key, verdict))
            } else {
                Err(MissReason::Corrupt)
            }
        });
        if let Err(reason) = outcome {
            let shown = match expected {
                Some(k) => k.to_string(),
                None => hex::encode(entry_key),
            };
            bad_entry("verdict", reason, &shown);
        }
        outcome
    }

    /// The ids in an index bucket. A bucket failing its signature still contributes the ids it
    /// names (a superset is safe: every use re-checks the entry); an unreadable one marks the
    /// index dirty so fingerprint queries fall back to scanning entries.
    fn read_bucket(
        &self,
        bucket_key: &[u8],
        batch: &mut sled::Batch,
    ) -> Result<BTreeSet<Id>, StoreError> {
        let Some(value) = self
            .db
            .get(bucket_key)
            .map_err(StoreError::backend("reading the fingerprint index"))?
        else {
            return Ok(BTreeSet::new());
        };
        match codec::unseal(&self.signer, bucket_key, &value) {
            Ok(payload) => {
                if let Some(ids) = codec::decode_ids(payload) {
                    return Ok(ids);
                }
                bad_entry("index", MissReason::Corrupt, &hex::encode(bucket_key));
            }
            Err(reason) => {
                bad_entry("index", reason, &hex::encode(bucket_key));
                if let Some(ids) =
                    codec::payload_unchecked(&self.signer, &value).and_then(codec::decode_ids)
                {
                    return Ok(ids);
                }
            }
        }
        self.mark_index_dirty(batch);
        Ok(BTreeSet::new())
    }

    fn mark_index_dirty(&self, batch: &mut sled::Batch) {
        tracing::error!(
            path = %self.path.display(),
            "verdict store fingerprint index damaged: fingerprint queries and revocations now scan every entry"
        );
        self.index_dirty.store(true, Ordering::Relaxed);
        batch.insert(META_INDEX_DIRTY, &[1u8][..]);
    }

    /// Applies index edits to `batch`: per bucket, read, edit, write back (or delete when empty).
    fn apply_index_edits(
        &self,
        edits: IndexEdits,
        batch: &mut sled::Batch,
    ) -> Result<usize, StoreError> {
        let mut bytes = 0;
        for (bucket_key, (add, remove)) in edits.0 {
            let mut ids = self.read_bucket(&bucket_key, batch)?;
            let before = ids.clone();
            for id in &remove {
                ids.remove(id);
            }
            ids.extend(add);
            if ids == before && !ids.is_empty() {
                continue;
            }
            if ids.is_empty() {
                batch.remove(bucket_key);
            } else {
                let value = codec::seal(&self.signer, &bucket_key, &codec::encode_ids(&ids));
                bytes += bucket_key.len() + value.len();
                batch.insert(bucket_key, value);
            }
        }
        Ok(bytes)
    }

    fn write_entries<'a>(
        &self,
        entries: impl Iterator<Item = (&'a SubjectKey, &'a StoredVerdict)>,
    ) -> Result<(), StoreError> {
        struct Prepared {
            id: Id,
            entry_key: Vec<u8>,
            value: Vec<u8>,
            fingerprints: BTreeSet<String>,
        }
        let mut prepared = Vec::new();
        for (key, verdict) in entries {
            validate_verdict(key, verdict)?;
            let entry_key = codec::entry_key(key);
            let payload = codec::encode_verdict(key, verdict).map_err(StoreError::Encode)?;
            let value = codec::seal(&self.signer, &entry_key, &payload);
            prepared.push(Prepared {
                id: codec::id_of_entry_key(&entry_key).unwrap_or_default(),
                entry_key,
                value,
                fingerprints: verdict.fingerprints(),
            });
        }
        if prepared.is_empty() {
            return Ok(());
        }
        for chunk in prepared.chunks(WRITE_CHUNK) {
            let mut unflushed = self.lock();
            let mut batch = sled::Batch::default();
            let mut edits = IndexEdits::default();
            let mut count = self.count.load(Ordering::Relaxed);
            let mut bytes = 0;
            // What earlier entries of this chunk wrote (a batch reads only committed data).
            let mut written: BTreeMap<Id, &BTreeSet<String>> = BTreeMap::new();
            for p in chunk {
                let old_fps = match written.get(&p.id) {
                    Some(fps) => (*fps).clone(),
                    None => {
                        let old = self
                            .db
                            .get(&p.entry_key)
                            .map_err(StoreError::backend("reading the previous entry"))?;
                        count += u64::from(old.is_none());
                        old.as_ref()
                            .and_then(|v| codec::payload_unchecked(&self.signer, v))
                            .and_then(codec::fingerprints_of)
                            .unwrap_or_default()
                    }
                };
                for fp in old_fps.difference(&p.fingerprints) {
                    edits.remove(fp, p.id);
                }
                for fp in &p.fingerprints {
                    edits.add(fp, p.id);
                }
                bytes += p.entry_key.len() + p.value.len();
                batch.insert(p.entry_key.as_slice(), p.value.as_slice());
                written.insert(p.id, &p.fingerprints);
            }
            bytes += self.apply_index_edits(edits, &mut batch)?;
            batch.insert(META_COUNT, &count.to_le_bytes()[..]);
            self.apply(&mut unflushed, batch, bytes, "writing verdicts")?;
            self.count.store(count, Ordering::Relaxed);
        }
        metrics::gauge!("verdict_store_entries").set(self.count.load(Ordering::Relaxed) as f64);
        self.flush_all()
    }

    /// Every entry id resting on `fingerprint` per the index (a superset: callers re-check).
    fn indexed_ids(&self, fingerprint: &str) -> Result<Vec<Id>, StoreError> {
        let prefix = codec::index_prefix(fingerprint);
        let mut ids = Vec::new();
        let mut scratch = sled::Batch::default();
        for item in self.db.scan_prefix(&prefix) {
            let (bucket_key, _) =
                item.map_err(StoreError::backend("reading the fingerprint index"))?;
            ids.extend(self.read_bucket(&bucket_key, &mut scratch)?);
        }
        if self.index_dirty.load(Ordering::Relaxed)
            && let Err(e) = self.db.apply_batch(scratch)
        {
            // The in-memory flag already routes queries to the full scan.
            tracing::warn!(error = %e, "could not persist the damaged-index marker");
        }
        Ok(ids)
    }

    /// Entry ids resting on `fingerprint`: from the index, or by scanning every entry when the
    /// index is damaged.
    fn candidate_ids(&self, fingerprint: &str) -> Result<Vec<Id>, StoreError> {
        let ids = self.indexed_ids(fingerprint)?;
        if !self.index_dirty.load(Ordering::Relaxed) {
            return Ok(ids);
        }
        let mut all = Vec::new();
        for item in self.db.scan_prefix([PREFIX_ENTRY]) {
            let (entry_key, value) = item.map_err(StoreError::backend("scanning verdicts"))?;
            let rests = codec::payload_unchecked(&self.signer, &value)
                .and_then(codec::fingerprints_of)
                .is_some_and(|fps| fps.contains(fingerprint));
            if let (true, Some(id)) = (rests, codec::id_of_entry_key(&entry_key)) {
                all.push(id);
            }
        }
        Ok(all)
    }

    /// Adds the removal of the entry under `entry_key` (and its index ids) to `batch`/`edits`.
    fn remove_into(
        &self,
        batch: &mut sled::Batch,
        edits: &mut IndexEdits,
        entry_key: &[u8],
        old: &[u8],
    ) {
        if let Some(id) = codec::id_of_entry_key(entry_key) {
            let fps = codec::payload_unchecked(&self.signer, old)
                .and_then(codec::fingerprints_of)
                .unwrap_or_default();
            for fp in &fps {
                edits.remove(fp, id);
            }
        }
        batch.remove(entry_key);
    }
}

/// Pending posting-list changes, per bucket key: (ids to add, ids to remove).
#[derive(Default)]
struct IndexEdits(BTreeMap<Vec<u8>, (BTreeSet<Id>, BTreeSet<Id>)>);

impl IndexEdits {
    fn add(&mut self, fingerprint: &str, id: Id) {
        let e = self
            .0
            .entry(codec::index_bucket_key(fingerprint, &id))
            .or_default();
        e.1.remove(&id);
        e.0.insert(id);
    }
    fn remove(&mut self, fingerprint: &str, id: Id) {
        let e = self
            .0
            .entry(codec::index_bucket_key(fingerprint, &id))
            .or_default();
        e.0.remove(&id);
        e.1.insert(id);
    }
}

/// `m:marker:<name>`.
fn marker_key(name: &str) -> Vec<u8> {
    let mut k = b"m:marker:".to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

impl SledStore {
    /// `key`'s entry with its signature checked, or why it is not a verdict.
    fn read_checked(
        &self,
        key: &SubjectKey,
    ) -> Result<Result<StoredVerdict, MissReason>, StoreError> {
        let entry_key = codec::entry_key(key);
        let Some(value) = self
            .db
            .get(&entry_key)
            .map_err(StoreError::backend("reading a verdict"))?
        else {
            return Ok(Err(MissReason::Absent));
        };
        Ok(self
            .check_entry(&entry_key, &value, Some(key))
            .map(|(_, v)| v))
    }
}

impl VerdictStore for SledStore {
    fn get(
        &self,
        key: &SubjectKey,
        trust_config_fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<Lookup, StoreError> {
        let verdict = match self.read_checked(key)? {
            Ok(v) => v,
            Err(reason) => return Ok(Lookup::Miss(reason)),
        };
        Ok(match verdict.servable(now, trust_config_fingerprint) {
            Ok(()) => Lookup::Hit(verdict),
            Err(Unservable::Expired) => Lookup::Miss(MissReason::Expired),
            Err(Unservable::OtherTrustConfig) => Lookup::Miss(MissReason::OtherTrustConfig),
        })
    }

    fn get_any(
        &self,
        key: &SubjectKey,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredVerdict>, StoreError> {
        Ok(self.read_checked(key)?.ok().filter(|v| !v.is_expired(now)))
    }

    fn put_many(&self, entries: &[(SubjectKey, StoredVerdict)]) -> Result<(), StoreError> {
        self.write_entries(entries.iter().map(|(k, v)| (k, v)))
    }

    fn put(&self, key: &SubjectKey, verdict: &StoredVerdict) -> Result<(), StoreError> {
        self.write_entries(std::iter::once((key, verdict)))
    }

    fn rewrite_same_evidence(
        &self,
        entries: &[(SubjectKey, StoredVerdict)],
    ) -> Result<(), StoreError> {
        // Entry ids derive from the subject and the index from the evidence: both unchanged, so
        // only the values are written (no previous-entry read, no index edits).
        let mut prepared = Vec::with_capacity(entries.len());
        for (key, verdict) in entries {
            validate_verdict(key, verdict)?;
            let entry_key = codec::entry_key(key);
            let payload = codec::encode_verdict(key, verdict).map_err(StoreError::Encode)?;
            let value = codec::seal(&self.signer, &entry_key, &payload);
            prepared.push((entry_key, value));
        }
        for chunk in prepared.chunks(WRITE_CHUNK) {
            let mut unflushed = self.lock();
            let mut batch = sled::Batch::default();
            let mut bytes = 0;
            for (k, v) in chunk {
                bytes += k.len() + v.len();
                batch.insert(k.as_slice(), v.as_slice());
            }
            self.apply(&mut unflushed, batch, bytes, "rewriting verdicts")?;
        }
        self.flush_all()
    }

    fn remove(&self, key: &SubjectKey) -> Result<bool, StoreError> {
        let entry_key = codec::entry_key(key);
        {
            let mut unflushed = self.lock();
            let Some(old) = self
                .db
                .get(&entry_key)
                .map_err(StoreError::backend("reading a verdict"))?
            else {
                return Ok(false);
            };
            let mut batch = sled::Batch::default();
            let mut edits = IndexEdits::default();
            self.remove_into(&mut batch, &mut edits, &entry_key, &old);
            let bytes = 64 + self.apply_index_edits(edits, &mut batch)?;
            let count = self.count.load(Ordering::Relaxed).saturating_sub(1);
            batch.insert(META_COUNT, &count.to_le_bytes()[..]);
            self.apply(&mut unflushed, batch, bytes, "removing a verdict")?;
            self.count.store(count, Ordering::Relaxed);
        }
        metrics::gauge!("verdict_store_entries").set(self.count.load(Ordering::Relaxed) as f64);
        self.flush_all()?;
        Ok(true)
    }

    fn subjects_for_fingerprint(&self, fingerprint: &str) -> Result<Vec<SubjectKey>, StoreError> {
        validate_fingerprint(fingerprint)?;
        let mut out = Vec::new();
        for id in self.candidate_ids(fingerprint)? {
            let entry_key = codec::entry_key_for_id(&id);
            let Some(value) = self
                .db
                .get(&entry_key)
                .map_err(StoreError::backend("reading a verdict"))?
            else {
                continue; // stale id: the verdict was removed
            };
            if let Ok((key, v)) = self.check_entry(&entry_key, &value, None)
                && v.fingerprints().contains(fingerprint)
            {
                out.push(key);
            }
        }
        out.sort();
        Ok(out)
    }

    fn revoke_fingerprint(&self, fingerprint: &str) -> Result<Vec<SubjectKey>, StoreError> {
        validate_fingerprint(fingerprint)?;
        let candidates = self.candidate_ids(fingerprint)?;
        let mut revoked = Vec::new();
        for chunk in candidates.chunks(REVOKE_CHUNK) {
            let mut unflushed = self.lock();
            let mut batch = sled::Batch::default();
            let mut edits = IndexEdits::default();
            let mut count = self.count.load(Ordering::Relaxed);
            let mut removed_here = Vec::new();
            for id in chunk {
                let entry_key = codec::entry_key_for_id(id);
                let old = self
                    .db
                    .get(&entry_key)
                    .map_err(StoreError::backend("reading a verdict"))?;
                // Decide on the stored payload even if its signature fails: removing is always safe.
                let decoded = old
                    .as_ref()
                    .and_then(|v| codec::payload_unchecked(&self.signer, v))
                    .and_then(codec::decode_verdict);
                match (old, decoded) {
                    (Some(old), Some((key, v))) if v.fingerprints().contains(fingerprint) => {
                        self.remove_into(&mut batch, &mut edits, &entry_key, &old);
                        count = count.saturating_sub(1);
                        if let Ok(key) = SubjectKey::parse(&key) {
                            removed_here.push(key);
                        }
                    }
                    // Not (or no longer) resting on it: drop the stale id.
                    _ => edits.remove(fingerprint, *id),
                }
            }
            let bytes = removed_here.len() * 64 + self.apply_index_edits(edits, &mut batch)?;
            batch.insert(META_COUNT, &count.to_le_bytes()[..]);
            self.apply(&mut unflushed, batch, bytes, "revoking verdicts")?;
            self.count.store(count, Ordering::Relaxed);
            revoked.extend(removed_here);
        }
        metrics::gauge!("verdict_store_entries").set(self.count.load(Ordering::Relaxed) as f64);
        self.flush_all()?;
        if !revoked.is_empty() {
            tracing::info!(
                fingerprint,
                revoked = revoked.len(),
                "revoked verdicts resting on a fingerprint"
            );
        }
        revoked.sort();
        Ok(revoked)
    }

    fn tag_put(
        &self,
        tag: &TagKey,
        digest: &Digest,
        seen_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sled_key = codec::tag_key(tag);
        let payload =
            codec::encode_tag(&digest.to_string(), &seen_at).map_err(StoreError::Encode)?;
        let value = codec::seal(&self.signer, &sled_key, &payload);
        {
            let mut unflushed = self.lock();
            let bytes = sled_key.len() + value.len();
            let mut batch = sled::Batch::default();
            batch.insert(sled_key, value);
            self.apply(&mut unflushed, batch, bytes, "writing a tag")?;
        }
        self.flush_all()
    }

    fn tag_get(&self, tag: &TagKey) -> Result<Option<TagEntry>, StoreError> {
        let sled_key = codec::tag_key(tag);
        let Some(value) = self
            .db
            .get(&sled_key)
            .map_err(StoreError::backend("reading a tag"))?
        else {
            return Ok(None);
        };
        let entry = codec::unseal(&self.signer, &sled_key, &value)
            .and_then(|p| codec::decode_tag(p).ok_or(MissReason::Corrupt));
        match entry {
            Ok(e) => Ok(Some(e)),
            Err(reason) => {
                bad_entry("tag", reason, &tag.to_string());
                Ok(None)
            }
        }
    }

    fn marker(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let sled_key = marker_key(name);
        let Some(value) = self
            .db
            .get(&sled_key)
            .map_err(StoreError::backend("reading a marker"))?
        else {
            return Ok(None);
        };
        match codec::unseal(&self.signer, &sled_key, &value) {
            Ok(p) if p.len() == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(p);
                Ok(Some(u64::from_le_bytes(b)))
            }
            Ok(_) => Ok(None),
            Err(reason) => {
                bad_entry("marker", reason, name);
                Ok(None)
            }
        }
    }

    fn set_marker(&self, name: &str, value: u64) -> Result<(), StoreError> {
        let sled_key = marker_key(name);
        let sealed = codec::seal(&self.signer, &sled_key, &value.to_le_bytes());
        self.db
            .insert(sled_key, sealed)
            .map_err(StoreError::backend("writing a marker"))?;
        self.db
            .flush()
            .map_err(StoreError::backend("flushing a marker"))?;
        Ok(())
    }

    fn iter_all(&self) -> EntryIter<'_> {
        Box::new(self.db.scan_prefix([PREFIX_ENTRY]).map(move |item| {
            let (entry_key, value) = item.map_err(StoreError::backend("iterating verdicts"))?;
            Ok(match self.check_entry(&entry_key, &value, None) {
                Ok((key, verdict)) => StoredEntry {
                    key: Some(key),
                    verdict: Ok(verdict),
                },
                Err(reason) => StoredEntry {
                    // Name the subject if the damaged payload still says which one it was for.
                    key: codec::payload_unchecked(&self.signer, &value)
                        .and_then(codec::decode_verdict)
                        .and_then(|(k, _)| SubjectKey::parse(&k).ok())
                        .filter(|k| codec::entry_key(k) == entry_key.as_ref()),
                    verdict: Err(reason),
                },
            })
        }))
    }

    fn len(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn size_on_disk(&self) -> Option<u64> {
        SledStore::size_on_disk(self).ok()
    }
}

fn bad_entry(kind: &'static str, reason: MissReason, key: &str) {
    metrics::counter!("verdict_store_bad_entries_total", "kind" => kind, "reason" => reason.as_str())
        .increment(1);
    tracing::warn!(
        kind,
        key,
        reason = reason.as_str(),
        "verdict store entry failed its check; treated as a miss"
    );
}

fn validate_fingerprint(fp: &str) -> Result<(), StoreError> {
    if fp.is_empty() || fp.len() > MAX_FINGERPRINT_LEN || fp.contains('\0') {
        return Err(StoreError::InvalidKey {
            what: "fingerprint",
            input: fp.chars().take(80).collect(),
            reason: format!("must be 1-{MAX_FINGERPRINT_LEN} bytes without NUL, e.g. sha256:<hex>"),
        });
    }
    Ok(())
}

fn validate_verdict(key: &SubjectKey, v: &StoredVerdict) -> Result<(), StoreError> {
    let invalid = |reason: String| StoreError::InvalidVerdict {
        key: key.to_string(),
        reason,
    };
    if v.result.digest != key.digest().to_string() {
        return Err(invalid(format!(
            "the result is for digest {:?}, the key names {}",
            v.result.digest,
            key.digest()
        )));
    }
    if v.result.trust_config_fingerprint.is_empty() {
        return Err(invalid(
            "the result has no trust-configuration fingerprint".to_owned(),
        ));
    }
    for fp in v.fingerprints() {
        validate_fingerprint(&fp).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(())
}

/// Moves `dir` to `<dir>.quarantined-<UTC time>`, logs it, and prunes old quarantined copies.
fn quarantine(dir: &Path, reason: &str, keep: usize) -> Result<PathBuf, StoreError> {
    let name = dir
        .file_name()
        .ok_or_else(|| StoreError::Open {
            path: dir.to_owned(),
            reason: "the store path has no directory name to quarantine under".to_owned(),
        })?
        .to_string_lossy()
        .into_owned();
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut target = dir.with_file_name(format!("{name}.quarantined-{stamp}"));
    let mut n = 1;
    while target.exists() {
        target = dir.with_file_name(format!("{name}.quarantined-{stamp}-{n}"));
        n += 1;
    }
    std::fs::rename(dir, &target).map_err(StoreError::io("quarantining the verdict store", dir))?;
    metrics::counter!("verdict_store_quarantined_total").increment(1);
    tracing::error!(
        path = %dir.display(),
        moved_to = %target.display(),
        reason,
        "verdict store failed its checks at open: quarantined it and starting empty (verdicts will be re-verified)"
    );
    prune_quarantined(dir, &name, keep);
    Ok(target)
}

fn prune_quarantined(dir: &Path, name: &str, keep: usize) {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let Ok(read) = std::fs::read_dir(&parent) else {
        return;
    };
    let marker = format!("{name}.quarantined-");
    let mut found: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&marker))
        .map(|e| e.path())
        .collect();
    found.sort(); // timestamps sort chronologically
    let excess = found.len().saturating_sub(keep);
    for old in &found[..excess] {
        match std::fs::remove_dir_all(old) {
            Ok(()) => {
                tracing::info!(path = %old.display(), "deleted an old quarantined verdict store")
            }
            Err(e) => {
                tracing::warn!(path = %old.display(), error = %e, "could not delete an old quarantined verdict store")
            }
        }
    }
}
