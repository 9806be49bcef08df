//! The trust configuration of a running command ([`TrustRuntime`]): Ratify's resources from
//! files, the Key Vault providers' material, and the trust set in force, which is replaced whole
//! when the configuration files change (polled, so a ConfigMap's atomic symlink swap counts;
//! `SIGHUP` forces a reload) or when refreshed Key Vault material differs. An invalid new
//! configuration is rejected with its errors and the last good one stays in force. Whoever
//! serves registers a hook that runs after every replacement (revocation and revalidation).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;
use verdict_crds::model::Resource;
use verdict_scanner::cosign::SigstoreTrustRoot;
use verdict_scanner::kmp::{KeyVaultProvider, KmpManager, KmpStatus};
use verdict_scanner::trust::{LiveTrust, TrustSet};

use crate::cli::{RegistryArgs, TrustArgs};

/// Configuration changes by result (`applied`, `unchanged`, `rejected`).
pub const METRIC_RELOADS: &str = "verdict_config_reloads_total";

/// Runs after the trust set in force was replaced: `(old, new)`.
pub type SwapHook = Arc<dyn Fn(Arc<TrustSet>, Arc<TrustSet>) + Send + Sync>;

/// The last configuration change, as `/status` shows it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadStatus {
    /// The last change was applied (or there was none since start).
    pub ok: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_applied: Option<DateTime<Utc>>,
    /// Fingerprints in force, by scope.
    pub fingerprints: Vec<String>,
}

struct Loaded {
    resources: Vec<Resource>,
    kmps: Arc<KmpManager>,
    digest: String,
    /// The read in force (in-cluster: which objects, and their problems), for status writes.
    read: Arc<Read>,
}

/// Where Ratify's resources come from.
pub enum ConfigSource {
    /// A YAML file or a directory of them (polled; a ConfigMap's symlink swap counts).
    Files(PathBuf),
    /// The cluster's CRs (listed again on every poll), whose status is written back.
    Cluster(verdict_crds::cluster::Cluster),
}

/// One read of the source.
struct Read {
    report: verdict_crds::LoadReport,
    digest: String,
    /// In-cluster: every object read, in report order (one "file" per object).
    objects: Option<Vec<verdict_crds::cluster::ObjectRef>>,
}

impl Read {
    fn resources(&self) -> anyhow::Result<Vec<Resource>> {
        for d in &self.report.diagnostics {
            if d.is_error() {
                eprintln!("{d}");
            } else {
                tracing::warn!("{d}");
            }
        }
        if self.report.has_errors() {
            bail!(
                "the configuration has {} error(s); `verdict config check` lists them all",
                self.report.error_count()
            );
        }
        Ok(self
            .report
            .valid_resources()
            .map(|l| l.resource.clone())
            .collect())
    }
}

async fn read(source: &ConfigSource) -> anyhow::Result<Read> {
    match source {
        ConfigSource::Files(path) => {
            let digest = config_digest(path)?;
            let report = verdict_crds::load_path(path)
                .with_context(|| format!("cannot read the configuration {}", path.display()))?;
            Ok(Read {
                report,
                digest,
                objects: None,
            })
        }
        ConfigSource::Cluster(cluster) => {
            let r = cluster
                .load()
                .await
                .context("cannot read Ratify's resources from the cluster")?;
            Ok(Read {
                report: r.report,
                digest: r.digest,
                objects: Some(r.objects),
            })
        }
    }
}

pub struct TrustRuntime {
    source: ConfigSource,
    trust_args: TrustArgs,
    registry_args: RegistryArgs,
    sigstore: Arc<SigstoreTrustRoot>,
    loaded: Mutex<Loaded>,
    pub live: Arc<LiveTrust>,
    on_swap: Mutex<Option<SwapHook>>,
    status: Mutex<ReloadStatus>,
    /// One reload at a time (file change, SIGHUP, refresh).
    reloading: tokio::sync::Mutex<()>,
    /// This replica writes CR status (in-cluster: it holds the Lease).
    leader: std::sync::atomic::AtomicBool,
}

impl TrustRuntime {
    /// Loads Ratify resources, fetches every Key Vault provider once and builds every trust
    /// configuration (cluster-wide and per namespace). A configuration error is fatal at start
    /// (fail closed: a half-understood configuration must not verify anything); a Key Vault that
    /// cannot be reached is not: its configurations answer "no verdict" until it can be.
    pub async fn load(
        path: &Path,
        args: &TrustArgs,
        registry: &RegistryArgs,
    ) -> anyhow::Result<Self> {
        Self::load_from(ConfigSource::Files(path.to_path_buf()), args, registry).await
    }

    /// As [`Self::load`], from files or from the cluster.
    pub async fn load_from(
        source: ConfigSource,
        args: &TrustArgs,
        registry: &RegistryArgs,
    ) -> anyhow::Result<Self> {
        let sigstore = Arc::new(sigstore_root(args)?);
        let first = Arc::new(read(&source).await?);
        let digest = first.digest.clone();
        let resources = first.resources()?;
        let kmps = fetch_kmps(&resources, args, registry, true).await?;
        let set = build(&resources, &sigstore, &kmps)?;
        let status = ReloadStatus {
            ok: true,
            last_applied: Some(Utc::now()),
            fingerprints: fingerprints(&set),
            ..ReloadStatus::default()
        };
        Ok(TrustRuntime {
            source,
            trust_args: args.clone(),
            registry_args: registry.clone(),
            sigstore,
            loaded: Mutex::new(Loaded {
                resources,
                kmps: Arc::new(kmps),
                digest,
                read: first,
            }),
            live: Arc::new(LiveTrust::new(set)),
            on_swap: Mutex::new(None),
            status: Mutex::new(status),
            reloading: tokio::sync::Mutex::new(()),
            leader: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The trust set in force.
    pub fn current(&self) -> Arc<TrustSet> {
        self.live.current()
    }

    fn kmps(&self) -> Arc<KmpManager> {
        Arc::clone(&self.loaded().kmps)
    }

    /// Key Vault providers' status, as `/status` shows it.
    pub fn statuses(&self) -> Vec<KmpStatus> {
        self.kmps().statuses()
    }

    /// The last configuration change.
    pub fn reload_status(&self) -> ReloadStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `hook` after every replacement of the trust set.
    pub fn on_swap(&self, hook: SwapHook) {
        *self.on_swap.lock().unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    /// Puts `set` in force when any fingerprint differs; true if it did.
    fn replace(&self, set: TrustSet) -> bool {
        let old = self.live.current();
        let prints = fingerprints(&set);
        if fingerprints(&old) == prints {
            return false;
        }
        for (scope, config) in set.configs() {
            tracing::info!(
                scope = scope.unwrap_or("cluster"),
                fingerprint = %config.fingerprint,
                unavailable = config.unavailable.len(),
                "trust configuration replaced"
            );
        }
        self.live.replace(set);
        let new = self.live.current();
        {
            let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
            st.fingerprints = prints;
            st.last_applied = Some(Utc::now());
        }
        let hook = self
            .on_swap
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(hook) = hook {
            hook(old, new);
        }
        true
    }

    /// Reads the configuration again when its files changed (always with `force`), fetches its
    /// Key Vault providers and puts the new trust set in force. `None`: nothing to read;
    /// `Some(applied)`: read and valid, `applied` when the trust set changed. An invalid
    /// configuration is rejected (an error) and the one in force stays.
    pub async fn reload(&self, force: bool) -> anyhow::Result<Option<bool>> {
        let _one = self.reloading.lock().await;
        let fresh = Arc::new(read(&self.source).await?);
        let digest = fresh.digest.clone();
        if !force && digest == self.loaded().digest {
            return Ok(None);
        }
        let attempt = Utc::now();
        let outcome = async {
            let resources = fresh.resources()?;
            let kmps = fetch_kmps(&resources, &self.trust_args, &self.registry_args, false).await?;
            let set = build(&resources, &self.sigstore, &kmps)?;
            Ok::<_, anyhow::Error>((resources, kmps, set))
        }
        .await;
        let mut status = self.reload_status();
        status.last_attempt = Some(attempt);
        match outcome {
            Ok((resources, kmps, set)) => {
                {
                    let mut loaded = self.loaded();
                    loaded.resources = resources;
                    loaded.kmps = Arc::new(kmps);
                    loaded.digest = digest;
                    loaded.read = Arc::clone(&fresh);
                }
                status.ok = true;
                status.error.clear();
                *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
                let applied = self.replace(set);
                self.write_cluster_status(&fresh, true).await;
                metrics::counter!(METRIC_RELOADS, "result" => if applied { "applied" } else { "unchanged" })
                    .increment(1);
                Ok(Some(applied))
            }
            Err(e) => {
                // The same bad files are not retried until they change again.
                self.loaded().digest = digest;
                status.ok = false;
                status.error = format!("{e:#}");
                *self.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
                metrics::counter!(METRIC_RELOADS, "result" => "rejected").increment(1);
                self.write_cluster_status(&fresh, false).await;
                Err(e)
            }
        }
    }

    /// In-cluster, on the leader: status of every object of `read` like Ratify's. Objects with
    /// problems get `issuccess: false` and them; with `applied`, the others are marked good
    /// (key management providers with their fetch status, versions and fingerprints); a rejected
    /// change leaves valid objects' status alone.
    async fn write_cluster_status(&self, read: &Read, applied: bool) {
        let ConfigSource::Cluster(cluster) = &self.source else {
            return;
        };
        if !self.leader.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Some(objects) = &read.objects else {
            return;
        };
        let kmp_statuses = self.kmps().statuses();
        for object in objects {
            let label = object.label();
            let problems: Vec<String> = read
                .report
                .diagnostics
                .iter()
                .filter(|d| d.is_error() && d.file.as_deref() == Some(Path::new(&label)))
                .map(|d| d.message.clone())
                .collect();
            let status = if !problems.is_empty() {
                let error = problems.join("; ");
                serde_json::json!({
                    "issuccess": false,
                    "brieferror": error.chars().take(80).collect::<String>(),
                    "error": error,
                })
            } else if !applied {
                continue;
            } else if object.kind.ends_with("KeyManagementProvider") {
                match kmp_statuses
                    .iter()
                    .find(|s| s.name == object.name && s.namespace == object.namespace)
                {
                    Some(s) => serde_json::json!({
                        "issuccess": s.issuccess,
                        "error": s.error,
                        "brieferror": s.brieferror,
                        "lastfetchedtime": s.lastfetchedtime,
                        "properties": s.properties,
                    }),
                    None => serde_json::json!({
                        "issuccess": true, "error": "", "brieferror": "",
                        "lastfetchedtime": Utc::now(),
                    }),
                }
            } else {
                serde_json::json!({"issuccess": true, "error": "", "brieferror": ""})
            };
            if let Err(e) = cluster.write_status(object, status).await {
                tracing::warn!(object = %label, error = %e, "writing CR status failed");
            }
        }
    }

    /// In-cluster: campaigns for the status Lease every few seconds (`namespace`, identity
    /// from `POD_NAME` or the host name); a new leader writes every object's status at once.
    pub fn spawn_election(self: &Arc<Self>, namespace: &str, cancel: CancellationToken) {
        let ConfigSource::Cluster(cluster) = &self.source else {
            self.leader
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return;
        };
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("verdict-{}", std::process::id()));
        let election = verdict_crds::cluster::Election::new(
            cluster,
            namespace,
            "verdict-status-writer",
            &identity,
            Duration::from_secs(15),
        );
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let leads = match election.try_lead().await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "status lease");
                        false
                    }
                };
                let was = this
                    .leader
                    .swap(leads, std::sync::atomic::Ordering::Relaxed);
                if leads && !was {
                    tracing::info!(identity = %identity, "leading: this replica writes CR status");
                    let read = Arc::clone(&this.loaded().read);
                    this.write_cluster_status(&read, true).await;
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        });
    }

    /// Rebuilds from the loaded resources and the current Key Vault material.
    fn rebuild(&self) -> anyhow::Result<bool> {
        // Built under the lock, replaced after it (the swap hook may read the runtime).
        let set = {
            let loaded = self.loaded();
            build(&loaded.resources, &self.sigstore, &loaded.kmps)?
        };
        Ok(self.replace(set))
    }

    /// Refreshes Key Vault providers when they are due and replaces the trust set when their
    /// material changed, until `cancel`.
    pub fn spawn_refresher(self: &Arc<Self>, cancel: CancellationToken) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let kmps = this.kmps();
                let due = kmps
                    .next_due()
                    .unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(5));
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep_until(due.into()) => {}
                }
                if kmps.is_empty() {
                    continue;
                }
                let outcome = kmps.refresh(false).await;
                let read = Arc::clone(&this.loaded().read);
                this.write_cluster_status(&read, true).await;
                // A reload may have replaced the providers meanwhile: then this result is stale.
                if outcome.changed
                    && Arc::ptr_eq(&kmps, &this.kmps())
                    && let Err(e) = this.rebuild()
                {
                    tracing::error!(
                        error = %format!("{e:#}"),
                        "the refreshed Key Vault material gives an invalid trust configuration; the previous one stays in force"
                    );
                }
            }
        });
    }

    /// Watches the configuration: every `interval` its files are compared with what was
    /// loaded, and `SIGHUP` forces a reload; until `cancel`. `on_result` sees each attempt's
    /// error (`None` once one applies).
    pub fn spawn_config_watcher(
        self: &Arc<Self>,
        interval: Duration,
        on_result: impl Fn(Option<String>) + Send + 'static,
        cancel: CancellationToken,
    ) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            #[cfg(unix)]
            let mut hup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(s) => {
                            s.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<()>();
                let force = tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(interval) => false,
                    _ = hangup => {
                        tracing::info!("SIGHUP: reloading the configuration");
                        true
                    }
                };
                match this.reload(force).await {
                    Ok(None) => {}
                    Ok(Some(applied)) => {
                        tracing::info!(applied, "configuration read again");
                        on_result(None);
                    }
                    Err(e) => {
                        let e = format!("{e:#}");
                        tracing::error!(error = %e, "configuration change rejected; the previous configuration stays in force");
                        on_result(Some(e));
                    }
                }
            }
        });
    }
}

fn fingerprints(set: &TrustSet) -> Vec<String> {
    set.configs()
        .map(|(scope, c)| format!("{} {}", scope.unwrap_or("cluster"), c.fingerprint))
        .collect()
}

async fn fetch_kmps(
    resources: &[Resource],
    args: &TrustArgs,
    registry: &RegistryArgs,
    report: bool,
) -> anyhow::Result<KmpManager> {
    let provider =
        KeyVaultProvider::new(super::registry::identity(registry)?, args.kmp_version_limit);
    let kmps = KmpManager::from_resources(
        resources,
        provider,
        Duration::from_secs(args.kmp_refresh_secs.max(1)),
    )
    .map_err(anyhow::Error::msg)?;
    if !kmps.is_empty() {
        kmps.refresh(true).await;
        for s in kmps.statuses() {
            if report && !s.issuccess {
                eprintln!(
                    "verdict: KeyManagementProvider {:?} could not be fetched (verifications that need it get no verdict until it can): {}",
                    s.name, s.error
                );
            }
        }
    }
    Ok(kmps)
}

fn build(
    resources: &[Resource],
    sigstore: &Arc<SigstoreTrustRoot>,
    kmps: &KmpManager,
) -> anyhow::Result<TrustSet> {
    TrustSet::from_resources_with_material(resources, Arc::clone(sigstore), &kmps.material())
        .context("cannot build the trust configuration")
}

fn sigstore_root(args: &TrustArgs) -> anyhow::Result<SigstoreTrustRoot> {
    Ok(match &args.sigstore_trusted_root {
        Some(p) => {
            let bytes = std::fs::read(p).with_context(|| {
                format!("cannot read the Sigstore trusted root {}", p.display())
            })?;
            SigstoreTrustRoot::from_trusted_root_json(&bytes).with_context(|| {
                format!(
                    "{} is not a usable Sigstore trusted root (--sigstore-trusted-root)",
                    p.display()
                )
            })?
        }
        None => SigstoreTrustRoot::new(),
    })
}

/// SHA-256 over the names and contents of the configuration's YAML files (following symlinks,
/// as a mounted ConfigMap's are): any edit, addition, removal or atomic swap changes it.
fn config_digest(path: &Path) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?
        {
            let p = entry?.path();
            let yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if yaml && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    for f in files {
        let bytes = std::fs::read(&f)
            .with_context(|| format!("cannot read the configuration {}", f.display()))?;
        hasher.update(f.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(Sha256::digest(&bytes));
    }
    Ok(hex::encode(hasher.finalize()))
}
