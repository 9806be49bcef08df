//! `verdict serve`'s event pipeline: the bus (JetStream with --nats-url, else in-process), the
//! workers applying events through [`PushHandler`], the verdict-stream follower ([`ReplicaSink`],
//! with NATS) and the receivers' router.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use verdict_cache_api::VerdictService;
use verdict_cache_api::tag_map::TagMap;
use verdict_events::{
    EventBus, EventHandler, InProcessBus, JetStream, JetStreamConfig, Receiver, ReceiverConfig,
    Secret, announce,
};
use verdict_scanner::registry::RegistryClient;
use verdict_scanner::store::{VerdictSigner, VerdictStore};
use verdict_scanner::trust::LiveTrust;

use super::push::{APPLIED_MARKER, PushHandler, ReplicaSink, Replication};
use crate::cli::{EventArgs, Role};

/// Queue capacity of the in-process bus (single-node mode).
const IN_PROCESS_CAPACITY: usize = 10_000;

/// What the event pipeline works with.
pub struct Parts {
    pub service: VerdictService,
    pub registry: RegistryClient,
    pub store: Arc<dyn VerdictStore>,
    /// The verdict key (replicas seal and check verdict-stream messages with it).
    pub signer: Arc<VerdictSigner>,
    /// The tag map the service's resolver reads; push events update it.
    pub tags: Arc<TagMap>,
    /// The trust configuration (which repositories any policy covers).
    pub trust: Arc<LiveTrust>,
}

/// Starts the workers (and the bus they read) when events are configured, and with NATS the
/// follower applying the verdict stream to this replica; returns the receivers' router when
/// `--events-listen` is set.
pub async fn start(
    args: &EventArgs,
    parts: Parts,
    cancel: &CancellationToken,
) -> anyhow::Result<Option<axum::Router>> {
    let has = |r: Role| args.roles.contains(&r);
    if args.events_listen.is_some() && !has(Role::Events) {
        anyhow::bail!(
            "--events-listen is set but --roles does not include `events`: add it, or drop --events-listen"
        );
    }
    let all = has(Role::Api) && has(Role::Events) && has(Role::Worker);
    if !all && args.nats_url.is_none() {
        anyhow::bail!(
            "--roles {:?} splits the work between processes, which share it only through NATS: add --nats-url (or use all three roles in one process)",
            args.roles
        );
    }
    if args.events_listen.is_none() && args.nats_url.is_none() {
        return Ok(None);
    }
    let bus: Arc<dyn EventBus> = match &args.nats_url {
        Some(url) => {
            let mut config = JetStreamConfig::new(url);
            config.max_deliver = args.event_max_deliver.max(1);
            config.ack_wait = std::time::Duration::from_secs(args.event_ack_wait_secs.max(1));
            let js = JetStream::connect(config)
                .await
                .with_context(|| format!("cannot use NATS at {url}"))?;
            let store = Arc::clone(&parts.store);
            let applied = tokio::task::spawn_blocking(move || store.marker(APPLIED_MARKER))
                .await
                .context("reading the verdict-stream marker")?
                .context("reading the verdict-stream marker")?
                .unwrap_or(0);
            let sink = Arc::new(ReplicaSink {
                service: parts.service.clone(),
                signer: Arc::clone(&parts.signer),
                store: parts.store,
                tags: Arc::clone(&parts.tags),
            });
            let handler: Arc<dyn EventHandler> = Arc::new(PushHandler::new(
                parts.service,
                parts.registry,
                parts.tags,
                Arc::clone(&parts.trust),
                Some(Replication {
                    stream: js.clone(),
                    signer: parts.signer,
                }),
            ));
            let (workers, cancel) = (js.clone(), cancel.clone());
            let concurrency = args.event_workers;
            let (follow, work) = (has(Role::Api), has(Role::Worker));
            tokio::spawn(async move {
                if let Err(e) = workers.set_up(&cancel).await {
                    tracing::error!(error = %e, "registry events are not processed");
                    return;
                }
                let following = async {
                    if follow {
                        tracing::info!(after = applied, "following the verdict stream");
                        workers.follow_verdicts(applied, sink, cancel.clone()).await;
                    }
                };
                let working = async {
                    if work {
                        workers
                            .run_workers(handler, concurrency, cancel.clone())
                            .await;
                    }
                };
                tokio::join!(following, working);
            });
            Arc::new(js)
        }
        None => {
            let (bus, rx) = InProcessBus::new(IN_PROCESS_CAPACITY);
            let handler: Arc<dyn EventHandler> = Arc::new(PushHandler::new(
                parts.service,
                parts.registry,
                parts.tags,
                parts.trust,
                None,
            ));
            tokio::spawn(InProcessBus::run_workers(
                rx,
                handler,
                args.event_workers,
                cancel.clone(),
            ));
            Arc::new(bus)
        }
    };
    announce(bus.as_ref());
    let Some(_) = args.events_listen else {
        return Ok(None);
    };
    let path = args.webhook_secret_file.as_ref().context(
        "--events-listen needs --webhook-secret-file: a file holding the secret every webhook must send (e.g. `openssl rand -hex 32 > webhook.secret`)",
    )?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the webhook secret file {}", path.display()))?;
    let secret = Secret::new(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| path.display().to_string())?;
    let mut config = ReceiverConfig::new(secret);
    config.header = args.webhook_secret_header.parse().with_context(|| {
        format!(
            "--webhook-secret-header {:?} is not a header name",
            args.webhook_secret_header
        )
    })?;
    Ok(Some(Receiver::new(config, bus).router()))
}
