//! `verdict serve`: Gatekeeper's external-data API from the signed verdict store, with misses
//! verified inline, in one process (local mode: no NATS needed).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use verdict_cache_api::config::Limits;
use verdict_cache_api::revalidate::{Revalidator, Selection};
use verdict_cache_api::store_cache::{CarryOver, StoreVerdictCache};
use verdict_cache_api::tag_map::{MappedTagResolver, TagMap};
use verdict_cache_api::verification::{PipelineVerifier, RegistryTagResolver};
use verdict_cache_api::{CacheApi, Config, Ops, Readiness, ServiceConfig, VerdictService};
use verdict_scanner::store::{
    OpenOutcome, SignerKind, SledStore, StoreOptions, VerdictSigner, VerdictStore,
};

use crate::cli::ServeArgs;

/// Tags remembered at most (tag → digest, each for --tag-ttl-secs).
const TAG_MAP_CAPACITY: usize = 100_000;

pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    // Before any worker thread exists: glibc gives each thread that allocates its own arena.
    // With 1 M stored verdicts one arena measured ~20 MiB less RSS than two (and 40–60 MiB less
    // than glibc's default) at the same cache-hit throughput (benches/README.md, "Memory").
    // An operator's own MALLOC_ARENA_MAX wins.
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        verdict_cache_api::limit_malloc_arenas(1);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    // Metrics first: everything after may record.
    let metrics = verdict_cache_api::metrics::prometheus_recorder()
        .context("cannot install the metrics recorder")?;
    let readiness = Readiness::new(&["store", "config"]);

    let runtime = Arc::new(
        super::trust::TrustRuntime::load_from(
            config_source(args).await?,
            &args.trust,
            &args.registry,
        )
        .await?,
    );
    let trust = Arc::clone(&runtime.live);
    let initial = runtime.current();
    for (scope, config) in initial.configs() {
        tracing::info!(
            scope = scope.unwrap_or("cluster"),
            fingerprint = %config.fingerprint,
            verifiers = config.verifiers.len(),
            unavailable = config.unavailable.len(),
            "trust configuration loaded"
        );
    }
    readiness.set("config", true);

    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let key_path = args
        .verdict_key
        .clone()
        .unwrap_or_else(|| args.data_dir.join("verdict.key"));
    let (signer, generated) = VerdictSigner::generate_if_missing(&key_path, SignerKind::HmacSha256)
        .with_context(|| format!("cannot load the verdict key {}", key_path.display()))?;
    if generated {
        tracing::info!(path = %key_path.display(), "generated a new verdict key");
    }
    warn_if_key_beside_store(&key_path, &args.data_dir);
    let store_dir = args.data_dir.join("store");
    let store_options = StoreOptions {
        cache_capacity_bytes: args.store_cache_mib.saturating_mul(1024 * 1024),
        ..StoreOptions::default()
    };
    let store =
        tokio::task::spawn_blocking(move || SledStore::open(&store_dir, signer, store_options))
            .await
            .context("store open task failed")?
            .context("cannot open the verdict store")?;
    match store.open_outcome() {
        OpenOutcome::Quarantined { moved_to, reason } => tracing::error!(
            moved_to = %moved_to.display(),
            reason,
            "verdict store failed its checks: quarantined it and started empty"
        ),
        outcome => tracing::info!(?outcome, "verdict store open"),
    }
    let store: Arc<dyn VerdictStore> = Arc::new(store);
    readiness.set("store", true);

    // One registry client per distinct Store settings (`useHttp`, auth provider), shared by
    // scopes and built when a configuration first needs it (a refresh may bring new ones).
    let clients = Arc::new(RegistryClients::new(args.registry.clone()));
    let cluster_store = initial
        .cluster()
        .map(|c| c.store.clone())
        .unwrap_or_default();
    // Mutation keys carry no namespace: tags are resolved with the cluster-wide Store's client.
    let registry = clients.get(&cluster_store)?;
    let registry_for = {
        let clients = Arc::clone(&clients);
        Arc::new(move |config: &verdict_scanner::trust::TrustConfig| {
            clients.get(&config.store).map_err(|e| format!("{e:#}"))
        })
    };
    let verifier = PipelineVerifier::new(Arc::clone(&trust), registry_for);

    let (cert, key) = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => local_tls(&args.data_dir.join("tls"))?,
    };
    let mut config = Config::new(cert, key);
    config.listen = args.listen;
    config.ops_listen = args.ops_listen;
    config.tls.client_ca_path = args.client_ca.clone();
    config.max_body_bytes = args.max_request_bytes;
    config.max_connections = args.max_connections;
    config.header_read_timeout = Duration::from_secs(args.header_read_timeout_secs);
    config.limits = Limits {
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_concurrent_streams: args.max_concurrent_streams,
        max_in_flight_requests: args.max_in_flight_requests,
        max_buffered_bytes: args.max_buffered_mib.saturating_mul(1024 * 1024),
    };
    config.service = ServiceConfig {
        max_keys: args.max_request_keys,
        verify_deadline: Duration::from_millis(args.verify_deadline_ms),
        deny_ttl: Duration::from_secs(args.deny_ttl_secs),
        pending_deny_ttl: Duration::from_millis(args.pending_deny_ttl_ms),
        max_concurrent_verifications: args.max_verifications,
        max_verifications_per_registry: args.max_verifications_per_registry,
        max_pending_verifications: args.max_pending_verifications,
        store_timeout: Duration::from_millis(args.store_timeout_ms),
        ..ServiceConfig::default()
    };

    let cache = Arc::new(StoreVerdictCache::with_memory_entries(
        Arc::clone(&store),
        trust.clone(),
        args.memory_cache_entries,
        args.deny_cache_entries,
    ));
    let tags = Arc::new(TagMap::new(
        TAG_MAP_CAPACITY,
        Duration::from_secs(args.tag_ttl_secs),
        Duration::from_secs(args.tag_event_ttl_secs),
    ));
    let service = VerdictService::new(
        config.service.clone(),
        cache.clone(),
        Arc::new(verifier),
        Arc::new(MappedTagResolver::new(
            Arc::clone(&tags),
            Arc::new(RegistryTagResolver::new(registry.clone())),
        )),
    )?;

    let cancel = CancellationToken::new();
    let revalidator = Revalidator::new(
        service.clone(),
        Arc::clone(&store),
        args.revalidate_concurrency,
        args.revalidate_max,
    );
    runtime.on_swap(on_trust_swap(
        Arc::clone(&store),
        Arc::clone(&cache),
        Arc::clone(&revalidator),
        args.revalidate_on_change,
    ));
    runtime.spawn_refresher(cancel.child_token());
    runtime.spawn_election(&args.lease_namespace, cancel.child_token());
    runtime.spawn_config_watcher(
        Duration::from_millis(args.config_poll_ms.max(100)),
        {
            let readiness = readiness.clone();
            move |error| {
                readiness.set_detail(
                    "config",
                    error.map(|e| {
                        format!("the last configuration change was rejected and the previous configuration stays in force: {e}")
                    }),
                )
            }
        },
        cancel.child_token(),
    );
    if let Some(schedule) = &args.revalidate_schedule {
        spawn_schedule(
            schedule.clone(),
            Arc::clone(&revalidator),
            cancel.child_token(),
        );
    }
    tokio::spawn(verdict_cache_api::upkeep::run(
        cache,
        Duration::from_secs(args.sweep_interval_secs),
        cancel.child_token(),
    ));
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        on_signal.cancel();
    });
    let parts = super::events::Parts {
        service: service.clone(),
        registry,
        store: Arc::clone(&store),
        signer: Arc::new(
            VerdictSigner::load(&key_path)
                .with_context(|| format!("cannot load the verdict key {}", key_path.display()))?,
        ),
        tags,
        trust: Arc::clone(&trust),
    };
    let ops = Ops::new(readiness, metrics)
        .with_status(
            "keyManagementProviders",
            Arc::new({
                let runtime = Arc::clone(&runtime);
                move || serde_json::to_value(runtime.statuses()).unwrap_or_default()
            }),
        )
        .with_status(
            "configuration",
            Arc::new({
                let runtime = Arc::clone(&runtime);
                move || serde_json::to_value(runtime.reload_status()).unwrap_or_default()
            }),
        )
        .with_revalidator(revalidator);
    let mut api = CacheApi::bind(config, service, ops).await?;
    if let Some(router) = super::events::start(&args.events, parts, &cancel).await? {
        let addr = args
            .events
            .events_listen
            .context("event receivers without --events-listen")?;
        let bound = api
            .add_listener("events", addr, router, args.events.events_plain_http)
            .await?;
        eprintln!(
            "verdict: receiving registry events on {}://{bound}/events/{{acr,eventgrid,registry}}",
            if args.events.events_plain_http {
                "http"
            } else {
                "https"
            }
        );
    }
    tracing::info!(https = %api.local_addr(), ops = %api.ops_addr(), "serving");
    eprintln!(
        "verdict: serving https://{} (ops http://{})",
        api.local_addr(),
        api.ops_addr()
    );
    api.run(cancel).await?;
    Ok(())
}

/// After the trust set in force was replaced: verdicts resting on a key or certificate that left
/// it are removed from the store (and memory) at once; where only key material changed, the
/// others are carried over to the new configuration from their evidence (at their next lookup,
/// and by a pass over the store); what is left is re-verified in the background, revoked ones
/// first (with `revalidate_all`).
fn on_trust_swap(
    store: Arc<dyn VerdictStore>,
    cache: Arc<StoreVerdictCache>,
    revalidator: Arc<Revalidator>,
    revalidate_all: bool,
) -> super::trust::SwapHook {
    Arc::new(move |old, new| {
        let removed: std::collections::BTreeSet<String> = old
            .material_fingerprints()
            .difference(&new.material_fingerprints())
            .cloned()
            .collect();
        cache.set_carry_over(carry_over_rules(&cache.carry_over(), &old, &new, &removed));
        let current: Vec<String> = new
            .configs()
            .map(|(_, c)| c.fingerprint.to_string())
            .collect();
        let (store, cache, revalidator) = (
            Arc::clone(&store),
            Arc::clone(&cache),
            Arc::clone(&revalidator),
        );
        tokio::spawn(async move {
            let revoked = {
                let store = Arc::clone(&store);
                tokio::task::spawn_blocking(move || {
                    let mut revoked = Vec::new();
                    for fp in &removed {
                        match store.revoke_fingerprint(fp) {
                            Ok(keys) => {
                                tracing::info!(fingerprint = %fp, verdicts = keys.len(), "trust material removed: verdicts resting on it revoked");
                                revoked.extend(keys);
                            }
                            Err(e) => tracing::error!(fingerprint = %fp, error = %e, "revoking the verdicts of removed trust material failed"),
                        }
                    }
                    revoked
                })
                .await
                .unwrap_or_default()
            };
            for key in &revoked {
                cache.invalidate(key);
            }
            metrics::counter!(METRIC_REVOKED).increment(revoked.len() as u64);
            let started = std::time::Instant::now();
            // On a thread of its own, outside the blocking pool lookups' store reads use.
            let pass = {
                let cache = Arc::clone(&cache);
                let (done, result) = tokio::sync::oneshot::channel();
                let spawned = std::thread::Builder::new()
                    .name("verdict-carry-over".into())
                    .spawn(move || {
                        let _ = done.send(cache.carry_over_pass(chrono::Utc::now()));
                    });
                match spawned {
                    Ok(_) => result.await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            };
            match pass {
                Ok(Ok(r)) => {
                    metrics::counter!(METRIC_CARRY_PASSES).increment(1);
                    metrics::gauge!(METRIC_CARRY_LAST_SECONDS).set(started.elapsed().as_secs_f64());
                    metrics::gauge!(METRIC_CARRY_LAST_CARRIED).set(r.carried as f64);
                    tracing::info!(
                        examined = r.examined,
                        carried = r.carried,
                        left = r.left,
                        seconds = started.elapsed().as_secs_f64(),
                        "verdicts carried over to the new trust configuration from their evidence"
                    )
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "carrying verdicts over failed; they are verified again at lookup")
                }
                Err(e) => tracing::error!(error = %e, "the carry-over task failed"),
            }
            if !revoked.is_empty() {
                let subjects = revoked.iter().map(ToString::to_string).collect();
                revalidator.start(Selection::Subjects(subjects), "change");
            }
            if revalidate_all {
                revalidator.start(Selection::Stale(current), "change");
            }
        });
    })
}

/// Carry-over rules after `old` → `new`: per scope whose specs did not change and whose key
/// material is all available, verdicts of the old fingerprint (and of earlier ones still being
/// carried, composed) move to the new one unless their evidence names `removed` material.
fn carry_over_rules(
    earlier: &[CarryOver],
    old: &verdict_scanner::trust::TrustSet,
    new: &verdict_scanner::trust::TrustSet,
    removed: &std::collections::BTreeSet<String>,
) -> Vec<CarryOver> {
    const KEPT: usize = 16;
    let mut rules = Vec::new();
    for (scope, now) in new.configs() {
        let Ok(before) = old.for_namespace(scope) else {
            continue;
        };
        if before.spec_fingerprint != now.spec_fingerprint || !now.unavailable.is_empty() {
            continue;
        }
        if before.fingerprint == now.fingerprint {
            continue;
        }
        rules.push(CarryOver {
            from: before.fingerprint.clone(),
            to: now.fingerprint.clone(),
            removed: removed.clone(),
        });
        for e in earlier.iter().filter(|e| e.to == before.fingerprint) {
            rules.push(CarryOver {
                from: e.from.clone(),
                to: now.fingerprint.clone(),
                removed: e.removed.union(removed).cloned().collect(),
            });
        }
    }
    rules.truncate(KEPT);
    rules
}

/// Verdicts revoked because the trust material they rested on left the configuration.
const METRIC_REVOKED: &str = "verdict_revoked_verdicts_total";
/// Carry-over passes finished; the last one's duration and verdicts carried.
const METRIC_CARRY_PASSES: &str = "verdict_carry_over_passes_total";
const METRIC_CARRY_LAST_SECONDS: &str = "verdict_carry_over_last_pass_seconds";
const METRIC_CARRY_LAST_CARRIED: &str = "verdict_carry_over_last_pass_carried";

/// Starts a full revalidation each time `schedule` fires, until `cancel`.
fn spawn_schedule(
    schedule: verdict_scanner::schedule::CronSchedule,
    revalidator: Arc<Revalidator>,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let Some(next) = schedule.next_after(chrono::Utc::now()) else {
                tracing::warn!(
                    schedule = schedule.expression(),
                    "the revalidation schedule never fires again"
                );
                return;
            };
            let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            tracing::info!(schedule = schedule.expression(), "scheduled revalidation");
            revalidator.start(Selection::All, "schedule");
        }
    });
}

/// Files (`--config`) or the cluster's CRs (`--kubernetes`).
async fn config_source(args: &ServeArgs) -> anyhow::Result<super::trust::ConfigSource> {
    Ok(match (&args.config, args.kubernetes) {
        (Some(path), false) => super::trust::ConfigSource::Files(path.clone()),
        (None, true) => {
            super::trust::ConfigSource::Cluster(verdict_crds::cluster::Cluster::connect().await?)
        }
        _ => anyhow::bail!("give either --config or --kubernetes"),
    })
}

/// Registry clients by Store settings, built on first use.
struct RegistryClients {
    args: crate::cli::RegistryArgs,
    built: std::sync::Mutex<
        std::collections::HashMap<
            verdict_scanner::trust::StoreSettings,
            verdict_scanner::registry::RegistryClient,
        >,
    >,
}

impl RegistryClients {
    fn new(args: crate::cli::RegistryArgs) -> Self {
        RegistryClients {
            args,
            built: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn get(
        &self,
        store: &verdict_scanner::trust::StoreSettings,
    ) -> anyhow::Result<verdict_scanner::registry::RegistryClient> {
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = built.get(store) {
            return Ok(c.clone());
        }
        let client = super::registry::client(&self.args, store)?;
        built.insert(store.clone(), client.clone());
        Ok(client)
    }
}

/// Whoever can write the store and read the key beside it can forge verdicts: in a cluster the
/// key comes from a Secret mounted apart from the data directory.
fn warn_if_key_beside_store(key: &Path, data_dir: &Path) {
    let (Ok(key), Ok(dir)) = (key.canonicalize(), data_dir.canonicalize()) else {
        return;
    };
    if key.starts_with(&dir) {
        tracing::warn!(
            key = %key.display(),
            data_dir = %dir.display(),
            "the verdict-signing key sits inside the data directory: anyone who can write the store can also forge verdicts. In a cluster, mount it from a Secret outside the data directory and pass --verdict-key"
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Local mode: a CA and a server certificate for `localhost`/`127.0.0.1`, generated once under
/// `dir` (`ca.crt` is what a client trusts). In a cluster, pass --tls-cert/--tls-key instead.
fn local_tls(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert_path = dir.join("tls.crt");
    let key_path = dir.join("tls.key");
    if cert_path.is_file() && key_path.is_file() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca_key = rcgen::KeyPair::generate().context("cannot generate a CA key")?;
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Verdict local CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = ca_params.self_signed(&ca_key)?;
    let server_key = rcgen::KeyPair::generate().context("cannot generate a server key")?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(std::net::IpAddr::from([
            127, 0, 0, 1,
        ])));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "verdict");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server = params.signed_by(&server_key, &issuer)?;
    std::fs::write(dir.join("ca.crt"), ca.pem())?;
    std::fs::write(&cert_path, server.pem())?;
    write_private(&key_path, server_key.serialize_pem().as_bytes())?;
    tracing::info!(dir = %dir.display(), "generated local TLS material");
    Ok((cert_path, key_path))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}
