//! Keeps the material of every `azurekeyvault` KeyManagementProvider: fetched at start, then
//! again every `refreshInterval` (Ratify v2 never refreshes) — or on the cron schedule of the
//! annotation [`REFRESH_SCHEDULE_ANNOTATION`] (`0 */6 * * *`: every six hours, UTC), which
//! Ratify's CRD has no field for — with a status per provider like Ratify's (`issuccess`,
//! `error`, `brieferror`, `lastfetchedtime`, `properties`).
//!
//! A failed refresh keeps the last good material and reports the error: neither a silent
//! fail-open (a refresh that cannot see a version was disabled changes nothing that was trusted
//! before) nor an outage of every verification. A provider that has never been fetched has no
//! material: the configurations that use it answer "no verdict" until it has.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use verdict_crds::model::{AzureKeyVaultParameters, Resource};

use super::akv::{ItemState, KeyVaultItem, KeyVaultProvider, KeyVaultSnapshot};
use crate::trust::{FetchedMaterial, KeyMaterial};

/// Annotation of a KeyManagementProvider: a cron schedule (5 fields as in a Kubernetes CronJob,
/// or 6 with seconds first) for its refreshes, instead of `refreshInterval`.
pub const REFRESH_SCHEDULE_ANNOTATION: &str = "verdict.ratify.deislabs.io/refresh-schedule";

/// Refreshes by provider and result (`ok`, `unchanged`, `error`).
pub const METRIC_KMP_REFRESHES: &str = "verdict_kmp_refreshes_total";
/// Versions trusted now, by provider.
pub const METRIC_KMP_TRUSTED: &str = "verdict_kmp_trusted_versions";

/// A provider's state as `verdict config check --live` and the ops port show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KmpStatus {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(rename = "type")]
    pub type_: String,
    /// The last fetch succeeded.
    pub issuccess: bool,
    /// The last fetch's error, in full.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub brieferror: String,
    /// When the material in force was fetched (`None`: never).
    pub lastfetchedtime: Option<DateTime<Utc>>,
    /// When a fetch was last attempted.
    pub lastattempttime: Option<DateTime<Utc>>,
    /// `refreshInterval` in seconds.
    pub refreshintervalseconds: u64,
    /// The refresh schedule annotation, when it replaces the interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshschedule: Option<String>,
    /// What verifications use: `fetched`, `last good` (the last fetch failed) or `unavailable`.
    pub serving: String,
    /// Every version seen by the fetch in force, trusted or not, with why.
    pub properties: Vec<KeyVaultItem>,
}

/// What a refresh pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshOutcome {
    pub attempted: usize,
    pub failed: usize,
    /// The material of at least one provider differs from before: rebuild the trust set.
    pub changed: bool,
}

struct Managed {
    namespace: Option<String>,
    name: String,
    params: AzureKeyVaultParameters,
    interval: Duration,
    schedule: Option<crate::schedule::CronSchedule>,
}

impl Managed {
    /// When this provider is due next after a fetch now.
    fn next_due(&self) -> Instant {
        let now = Instant::now();
        match &self.schedule {
            Some(s) => {
                let at = chrono::Utc::now();
                let wait = s
                    .next_after(at)
                    .and_then(|next| (next - at).to_std().ok())
                    .unwrap_or(Duration::from_secs(24 * 3600));
                now + wait
            }
            None => now + self.interval,
        }
    }
}

struct State {
    last_good: Option<KeyVaultSnapshot>,
    last_error: Option<String>,
    status: KmpStatus,
    next_due: Instant,
}

/// The Key Vault providers of one configuration.
pub struct KmpManager {
    provider: KeyVaultProvider,
    entries: Vec<Managed>,
    state: Mutex<HashMap<usize, State>>,
}

impl std::fmt::Debug for KmpManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmpManager")
            .field("providers", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl KmpManager {
    /// The `azurekeyvault` providers among `resources`; `refreshInterval` (a Go duration) or
    /// `default_interval`. An unparseable interval is an error naming the provider.
    pub fn from_resources<'a>(
        resources: impl IntoIterator<Item = &'a Resource>,
        provider: KeyVaultProvider,
        default_interval: Duration,
    ) -> Result<Self, String> {
        let mut entries = Vec::new();
        for r in resources {
            let (kmp, namespace) = match r {
                Resource::KeyManagementProvider(k) => (k, None),
                Resource::NamespacedKeyManagementProvider(k) => {
                    (k, Some(r.namespace().unwrap_or("default").to_owned()))
                }
                _ => continue,
            };
            if kmp.spec.type_ != "azurekeyvault" {
                continue;
            }
            let Some(params) = kmp
                .spec
                .parameters
                .as_ref()
                .and_then(|p| p.as_azure_key_vault())
            else {
                return Err(format!(
                    "KeyManagementProvider {:?}: spec.parameters are not azurekeyvault parameters — fix: set vaultURI, tenantID, clientID and certificates or keys",
                    kmp.name()
                ));
            };
            let interval = match kmp.spec.refresh_interval.as_deref().filter(|s| !s.is_empty()) {
                None => default_interval,
                Some(text) => verdict_crds::parse_go_duration(text)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        format!(
                            "KeyManagementProvider {:?}: refreshInterval {text:?} is not a positive Go duration — fix: write it like 5m, 1h or 30s",
                            kmp.name()
                        )
                    })?,
            };
            let schedule = match kmp
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REFRESH_SCHEDULE_ANNOTATION))
            {
                None => None,
                Some(text) => Some(crate::schedule::CronSchedule::parse(text).map_err(|e| {
                    format!(
                        "KeyManagementProvider {:?}: annotation {REFRESH_SCHEDULE_ANNOTATION}: {} — fix: write 5 cron fields as in a Kubernetes CronJob, e.g. \"0 */6 * * *\"",
                        kmp.name(),
                        e.reason
                    )
                })?),
            };
            entries.push(Managed {
                namespace,
                name: kmp.name().to_owned(),
                params: params.clone(),
                interval,
                schedule,
            });
        }
        let now = Instant::now();
        let state = entries
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (
                    i,
                    State {
                        last_good: None,
                        last_error: None,
                        status: KmpStatus {
                            name: m.name.clone(),
                            namespace: m.namespace.clone(),
                            type_: "azurekeyvault".into(),
                            issuccess: false,
                            error: "not fetched yet".into(),
                            brieferror: "not fetched yet".into(),
                            lastfetchedtime: None,
                            lastattempttime: None,
                            refreshintervalseconds: m.interval.as_secs(),
                            refreshschedule: m.schedule.as_ref().map(|s| s.expression().to_owned()),
                            serving: "unavailable".into(),
                            properties: Vec::new(),
                        },
                        next_due: now,
                    },
                )
            })
            .collect();
        Ok(KmpManager {
            provider,
            entries,
            state: Mutex::new(state),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, State>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fetches every provider that is due (all of them with `force`), concurrently.
    pub async fn refresh(&self, force: bool) -> RefreshOutcome {
        let now = Instant::now();
        let due: Vec<usize> = {
            let state = self.lock();
            (0..self.entries.len())
                .filter(|i| force || state.get(i).is_none_or(|s| s.next_due <= now))
                .collect()
        };
        let fetches = due.iter().map(|&i| {
            let m = &self.entries[i];
            async move { (i, self.provider.fetch(&m.name, &m.params).await) }
        });
        let results = futures::future::join_all(fetches).await;
        let mut outcome = RefreshOutcome {
            attempted: results.len(),
            ..RefreshOutcome::default()
        };
        let mut state = self.lock();
        for (i, result) in results {
            let m = &self.entries[i];
            let Some(s) = state.get_mut(&i) else { continue };
            let attempt = Utc::now();
            s.status.lastattempttime = Some(attempt);
            s.next_due = m.next_due();
            let label = m.name.clone();
            match result {
                Ok(snapshot) => {
                    let changed = s
                        .last_good
                        .as_ref()
                        .is_none_or(|old| old.material != snapshot.material);
                    outcome.changed |= changed;
                    let trusted = snapshot
                        .items
                        .iter()
                        .filter(|it| it.state == ItemState::Trusted)
                        .count();
                    metrics::gauge!(METRIC_KMP_TRUSTED, "provider" => label.clone())
                        .set(trusted as f64);
                    metrics::counter!(METRIC_KMP_REFRESHES, "provider" => label, "result" => if changed { "ok" } else { "unchanged" })
                        .increment(1);
                    if changed {
                        tracing::info!(provider = %m.name, trusted, "Key Vault material changed");
                    }
                    s.status.issuccess = true;
                    s.status.error.clear();
                    s.status.brieferror.clear();
                    s.status.lastfetchedtime = Some(attempt);
                    s.status.serving = "fetched".into();
                    s.status.properties = snapshot.items.clone();
                    s.last_error = None;
                    s.last_good = Some(snapshot);
                }
                Err(e) => {
                    outcome.failed += 1;
                    metrics::counter!(METRIC_KMP_REFRESHES, "provider" => label, "result" => "error")
                        .increment(1);
                    tracing::warn!(
                        provider = %m.name,
                        error = %e,
                        transient = e.is_transient(),
                        "Key Vault refresh failed; the last good material stays in force"
                    );
                    s.status.issuccess = false;
                    s.status.error = e.to_string();
                    s.status.brieferror = e.brief();
                    s.status.serving = if s.last_good.is_some() {
                        "last good".into()
                    } else {
                        "unavailable".into()
                    };
                    s.last_error = Some(e.to_string());
                }
            }
        }
        outcome
    }

    /// The material in force: the last good fetch of each provider, or "unavailable" with the
    /// error for those never fetched.
    pub fn material(&self) -> FetchedMaterial {
        let state = self.lock();
        let mut out = FetchedMaterial::default();
        for (i, m) in self.entries.iter().enumerate() {
            let material = match state.get(&i) {
                Some(State {
                    last_good: Some(s), ..
                }) => s.material.clone(),
                Some(s) => KeyMaterial::unavailable(format!(
                    "KeyManagementProvider {:?} could not be fetched from Key Vault: {}",
                    m.name,
                    s.last_error.as_deref().unwrap_or("not fetched yet")
                )),
                None => KeyMaterial::unavailable(format!(
                    "KeyManagementProvider {:?} has not been fetched",
                    m.name
                )),
            };
            out.insert(m.namespace.as_deref(), &m.name, material);
        }
        out
    }

    /// Every provider's status.
    pub fn statuses(&self) -> Vec<KmpStatus> {
        let state = self.lock();
        (0..self.entries.len())
            .filter_map(|i| state.get(&i).map(|s| s.status.clone()))
            .collect()
    }

    /// When the next provider is due for a refresh.
    pub fn next_due(&self) -> Option<Instant> {
        self.lock().values().map(|s| s.next_due).min()
    }
}
