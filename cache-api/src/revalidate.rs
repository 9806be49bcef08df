//! Revalidation runs: stored verdicts verified again in the background, newest first, with
//! bounded concurrency, while lookups keep being answered. A run is started by a trust change
//! (the binary: after revoking what rested on removed keys), by `--revalidate-schedule`, or by
//! `verdict revalidate` through the ops port (`POST /revalidate`).
//!
//! Each subject goes through [`VerdictService::refresh`]: verified afresh under the trust set in
//! force, an allow stored under its fingerprint (so lookups are hits again), a deny removing the
//! stored allow. Stored evidence holds envelope digests, not envelopes, so re-verification reads
//! the registry; until a subject is re-verified, its old verdict is not served (its fingerprint
//! is not the current one), so a run never lets an allow through that the new trust would not
//! give.

use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use verdict_scanner::store::VerdictStore;
use verdict_scanner::subject::SubjectKey;

use crate::VerdictService;

/// Runs by reason (`change`, `schedule`, `request`).
pub const METRIC_RUNS: &str = "verdict_revalidation_runs_total";
/// Subjects re-verified by outcome (`allowed`, `revoked`, `denied`, `error`).
pub const METRIC_SUBJECTS: &str = "verdict_revalidation_subjects_total";
/// Duration of finished runs, seconds.
pub const METRIC_DURATION: &str = "verdict_revalidation_duration_seconds";
/// Runs kept for `GET /revalidate`.
const KEPT_RUNS: usize = 32;

/// Which stored verdicts a run re-verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Selection {
    /// Every stored verdict (newest first, up to the run limit).
    All,
    /// Those whose evidence names this key or certificate fingerprint (`sha256:…`, `kmp:…`).
    Key(String),
    /// Those of one repository (`registry/name`) or of every repository under a prefix
    /// (`registry/team/`).
    Scope(String),
    /// These subjects (revoked ones, to warm them again under the new trust).
    Subjects(Vec<String>),
    /// Those computed under none of these trust fingerprints (what a change left behind).
    Stale(Vec<String>),
}

impl Selection {
    fn label(&self) -> String {
        match self {
            Selection::All => "all".into(),
            Selection::Key(k) => format!("key {k}"),
            Selection::Scope(s) => format!("scope {s}"),
            Selection::Subjects(s) => format!("{} subjects", s.len()),
            Selection::Stale(_) => "stale".into(),
        }
    }
}

/// Progress and outcome of one run.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub id: u64,
    pub selection: String,
    pub reason: String,
    /// `running`, `done`, or `superseded` (a later trust change started a newer run).
    pub state: String,
    pub total: usize,
    pub done: usize,
    /// Allowed under the trust in force.
    pub allowed: usize,
    /// Allowed before, denied now.
    pub revoked: usize,
    /// Denied (and were not allowed before).
    pub denied: usize,
    /// No verdict (registry or key material unavailable); retried by lookups.
    pub errors: usize,
    /// More verdicts matched than one run takes (`--revalidate-max`).
    pub truncated: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Starts and tracks runs.
pub struct Revalidator {
    service: VerdictService,
    store: Arc<dyn VerdictStore>,
    concurrency: usize,
    max_subjects: usize,
    next_id: AtomicU64,
    /// Bumped by every `Stale` run: an older one (a trust change since superseded) stops.
    stale_generation: AtomicU64,
    runs: Mutex<VecDeque<Arc<Mutex<RunReport>>>>,
}

impl Revalidator {
    /// `concurrency` verifications at a time (they share the service's verification slots with
    /// lookups, which keep priority through its queue); at most `max_subjects` per run.
    pub fn new(
        service: VerdictService,
        store: Arc<dyn VerdictStore>,
        concurrency: usize,
        max_subjects: usize,
    ) -> Arc<Self> {
        Arc::new(Revalidator {
            service,
            store,
            concurrency: concurrency.max(1),
            max_subjects: max_subjects.max(1),
            next_id: AtomicU64::new(1),
            stale_generation: AtomicU64::new(0),
            runs: Mutex::new(VecDeque::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Mutex<RunReport>>>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a run in the background; its id.
    pub fn start(self: &Arc<Self>, selection: Selection, reason: &str) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let report = Arc::new(Mutex::new(RunReport {
            id,
            selection: selection.label(),
            reason: reason.to_owned(),
            state: "running".into(),
            started_at: Some(Utc::now()),
            ..RunReport::default()
        }));
        {
            let mut runs = self.lock();
            runs.push_back(Arc::clone(&report));
            while runs.len() > KEPT_RUNS {
                runs.pop_front();
            }
        }
        metrics::counter!(METRIC_RUNS, "reason" => reason.to_owned()).increment(1);
        let generation = matches!(selection, Selection::Stale(_))
            .then(|| self.stale_generation.fetch_add(1, Ordering::Relaxed) + 1);
        let this = Arc::clone(self);
        tokio::spawn(async move { this.run(selection, report, generation).await });
        id
    }

    /// The report of run `id`, if it is still kept.
    pub fn report(&self, id: u64) -> Option<RunReport> {
        self.lock()
            .iter()
            .find(|r| lock(r).id == id)
            .map(|r| lock(r).clone())
    }

    /// Every kept run, oldest first.
    pub fn reports(&self) -> Vec<RunReport> {
        self.lock().iter().map(|r| lock(r).clone()).collect()
    }

    async fn run(
        self: Arc<Self>,
        selection: Selection,
        report: Arc<Mutex<RunReport>>,
        generation: Option<u64>,
    ) {
        let started = Instant::now();
        let store = Arc::clone(&self.store);
        let max = self.max_subjects;
        let chosen = tokio::task::spawn_blocking(move || choose(&*store, &selection, max)).await;
        let (subjects, truncated) = match chosen {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                finish(&report, Some(e), started);
                return;
            }
            Err(e) => {
                finish(
                    &report,
                    Some(format!("the selection task failed: {e}")),
                    started,
                );
                return;
            }
        };
        {
            let mut r = lock(&report);
            r.total = subjects.len();
            r.truncated = truncated;
        }
        tracing::info!(
            subjects = subjects.len(),
            truncated,
            reason = %lock(&report).reason,
            "revalidation started"
        );
        let service = &self.service;
        let superseded =
            || generation.is_some_and(|g| self.stale_generation.load(Ordering::Relaxed) != g);
        let mut results = futures::stream::iter(subjects)
            .take_while(|_| std::future::ready(!superseded()))
            .map(
                |(key, was_allowed)| async move { (service.refresh(&key).await, was_allowed, key) },
            )
            .buffer_unordered(self.concurrency);
        while let Some((result, was_allowed, key)) = results.next().await {
            let outcome = match &result {
                Ok(v) if v.result().is_success => "allowed",
                Ok(_) if was_allowed => "revoked",
                Ok(_) => "denied",
                Err(_) => "error",
            };
            metrics::counter!(METRIC_SUBJECTS, "outcome" => outcome).increment(1);
            let mut r = lock(&report);
            r.done += 1;
            match outcome {
                "allowed" => r.allowed += 1,
                "revoked" => r.revoked += 1,
                "denied" => r.denied += 1,
                _ => {
                    r.errors += 1;
                    if let Err(e) = result {
                        r.last_error = Some(format!("{key}: {e}"));
                    }
                }
            }
        }
        if superseded() {
            lock(&report).state = "superseded".into();
        }
        finish(&report, None, started);
    }
}

fn lock(r: &Mutex<RunReport>) -> std::sync::MutexGuard<'_, RunReport> {
    r.lock().unwrap_or_else(|e| e.into_inner())
}

fn finish(report: &Mutex<RunReport>, error: Option<String>, started: Instant) {
    let mut r = lock(report);
    if r.state == "running" {
        r.state = "done".into();
    }
    r.finished_at = Some(Utc::now());
    if let Some(e) = error {
        r.last_error = Some(e);
    }
    metrics::histogram!(METRIC_DURATION).record(started.elapsed().as_secs_f64());
    tracing::info!(
        id = r.id,
        total = r.total,
        allowed = r.allowed,
        revoked = r.revoked,
        denied = r.denied,
        errors = r.errors,
        seconds = started.elapsed().as_secs_f64(),
        "revalidation finished"
    );
}

/// The subjects of `selection`, newest verification first, at most `max`; whether more matched.
fn choose(
    store: &dyn VerdictStore,
    selection: &Selection,
    max: usize,
) -> Result<(Vec<(SubjectKey, bool)>, bool), String> {
    match selection {
        Selection::Key(fp) => {
            let mut keys = store
                .subjects_for_fingerprint(fp)
                .map_err(|e| format!("reading the subjects of {fp}: {e}"))?;
            let truncated = keys.len() > max;
            keys.truncate(max);
            Ok((keys.into_iter().map(|k| (k, true)).collect(), truncated))
        }
        Selection::Subjects(list) => {
            let mut out = Vec::new();
            for s in list.iter().take(max) {
                let key = SubjectKey::parse(s).map_err(|e| format!("subject {s:?}: {e}"))?;
                out.push((key, true));
            }
            Ok((out, list.len() > max))
        }
        Selection::All | Selection::Scope(_) | Selection::Stale(_) => {
            // Newest `max` by verification time: a min-heap of the kept ones.
            let mut heap: BinaryHeap<std::cmp::Reverse<(DateTime<Utc>, String)>> =
                BinaryHeap::new();
            let mut allowed = std::collections::HashMap::new();
            let mut matched = 0usize;
            for entry in store.iter_all() {
                let entry = entry.map_err(|e| format!("reading the store: {e}"))?;
                let (Some(key), Ok(v)) = (entry.key, entry.verdict) else {
                    continue;
                };
                if let Selection::Scope(scope) = selection
                    && !in_scope(&key, scope)
                {
                    continue;
                }
                if let Selection::Stale(current) = selection
                    && current.contains(&v.result.trust_config_fingerprint)
                {
                    continue;
                }
                matched += 1;
                let text = key.to_string();
                heap.push(std::cmp::Reverse((v.result.verified_at, text.clone())));
                allowed.insert(text, (key, v.result.is_success));
                if heap.len() > max
                    && let Some(std::cmp::Reverse((_, evicted))) = heap.pop()
                {
                    allowed.remove(&evicted);
                }
            }
            let mut kept: Vec<(DateTime<Utc>, String)> =
                heap.into_iter().map(|std::cmp::Reverse(x)| x).collect();
            kept.sort_by_key(|k| std::cmp::Reverse(k.0));
            let out = kept
                .into_iter()
                .filter_map(|(_, text)| allowed.remove(&text))
                .collect();
            Ok((out, matched > max))
        }
    }
}

/// `scope` is `registry/name` (that repository) or ends in `/` (every repository under it).
fn in_scope(key: &SubjectKey, scope: &str) -> bool {
    let repo = key.repository().to_string();
    match scope.strip_suffix('/') {
        Some(prefix) => repo.starts_with(&format!("{prefix}/")),
        None => repo == scope,
    }
}
