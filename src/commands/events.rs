//! `verdict serve`'s event pipeline: the bus (JetStream with --nats-url, else in-process), the
//! workers applying events through [`super::push::PushHandler`], and the receivers' router.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use verdict_events::{
    EventBus, EventHandler, InProcessBus, JetStream, JetStreamConfig, Receiver, ReceiverConfig,
    Secret, announce,
};

use crate::cli::EventArgs;

/// Queue capacity of the in-process bus (single-node mode).
const IN_PROCESS_CAPACITY: usize = 10_000;

/// Starts the workers (and the bus they read) when events are configured; returns the
/// receivers' router when `--events-listen` is set.
pub async fn start(
    args: &EventArgs,
    handler: Arc<dyn EventHandler>,
    cancel: &CancellationToken,
) -> anyhow::Result<Option<axum::Router>> {
    if args.events_listen.is_none() && args.nats_url.is_none() {
        return Ok(None);
    }
    let bus: Arc<dyn EventBus> = match &args.nats_url {
        Some(url) => {
            let mut config = JetStreamConfig::new(url);
            config.max_deliver = args.event_max_deliver.max(1);
            let js = JetStream::connect(config)
                .await
                .with_context(|| format!("cannot use NATS at {url}"))?;
            let (workers, cancel) = (js.clone(), cancel.clone());
            let concurrency = args.event_workers;
            tokio::spawn(async move {
                match workers.set_up(&cancel).await {
                    Ok(()) => workers.run_workers(handler, concurrency, cancel).await,
                    Err(e) => tracing::error!(error = %e, "registry events are not processed"),
                }
            });
            Arc::new(js)
        }
        None => {
            let (bus, rx) = InProcessBus::new(IN_PROCESS_CAPACITY);
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
