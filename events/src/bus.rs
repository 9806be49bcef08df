//! Where receivers put events and workers take them: NATS JetStream (durable, shared by every
//! replica) or, without NATS, an in-process queue with the same effects minus durability.
//!
//! JetStream: one work-queue stream of registry events (subjects `<prefix>.<registry>.<repo…>`,
//! `Nats-Msg-Id` = the sender's event id, so a redelivered webhook is stored once within the
//! duplicate window), one durable pull consumer shared by all workers (explicit ack after the
//! effect is stored; Nak with backoff on transient failures; after `max_deliver` deliveries, or
//! at once for a definitive failure, the event goes to the dead-letter stream with the reason and
//! is terminated). Stream and consumer are created or updated idempotently at start.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::{Error, HandlerError};
use crate::event::RegistryEvent;
use crate::metrics as m;

/// Accepts events for the workers.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Returns once the event is accepted: stored by JetStream (acknowledged by the server), or
    /// queued in-process. An error means the sender should retry (the receiver answers 503).
    async fn publish(&self, event: &RegistryEvent) -> Result<(), Error>;

    /// Whether an accepted event survives a crash of this process.
    fn durable(&self) -> bool;
}

/// Applies one event (verify the pushed image or its subject, forget a deleted one).
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// What was done (a metrics label: `verified`, `removed`, …), or why not.
    async fn handle(&self, event: &RegistryEvent) -> Result<&'static str, HandlerError>;
}

/// JetStream settings (`verdict serve --nats-url …`).
#[derive(Clone, Debug)]
pub struct JetStreamConfig {
    pub url: String,
    /// Stream of registry events (work queue).
    pub stream: String,
    /// Subject prefix of registry events.
    pub subject_prefix: String,
    /// Durable consumer shared by the workers.
    pub consumer: String,
    /// Stream of verdicts every replica applies (last message per subject kept).
    pub verdict_stream: String,
    pub verdict_prefix: String,
    /// Stream of dead letters (events given up on, with the reason).
    pub dead_letter_stream: String,
    pub dead_letter_prefix: String,
    /// Deliveries before an event that keeps failing transiently is dead-lettered.
    pub max_deliver: i64,
    /// Nak delays, by delivery (the last repeats).
    pub backoff: Vec<Duration>,
    /// How long a worker may hold an event before JetStream redelivers it.
    pub ack_wait: Duration,
    /// Window in which a repeated event id is stored once.
    pub duplicate_window: Duration,
    /// Deadline of one publish (connect + server acknowledgement).
    pub publish_timeout: Duration,
}

impl JetStreamConfig {
    pub fn new(url: impl Into<String>) -> Self {
        JetStreamConfig {
            url: url.into(),
            stream: "VERDICT_EVENTS".into(),
            subject_prefix: "verdict.events".into(),
            consumer: "verdict-workers".into(),
            verdict_stream: "VERDICT_VERDICTS".into(),
            verdict_prefix: "verdict.verdicts".into(),
            dead_letter_stream: "VERDICT_DEAD_LETTERS".into(),
            dead_letter_prefix: "verdict.deadletter".into(),
            max_deliver: 8,
            backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(15),
                Duration::from_secs(60),
            ],
            ack_wait: Duration::from_secs(60),
            duplicate_window: Duration::from_secs(600),
            publish_timeout: Duration::from_secs(5),
        }
    }

    fn delay(&self, delivered: i64) -> Duration {
        let i = usize::try_from(delivered.max(1) - 1).unwrap_or(0);
        self.backoff
            .get(i)
            .or(self.backoff.last())
            .copied()
            .unwrap_or(Duration::from_secs(5))
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::BusUnavailable(format!("{what}: {e}"))
}

/// JetStream as the event bus and the workers' queue.
#[derive(Clone)]
pub struct JetStream {
    client: async_nats::Client,
    js: jetstream::Context,
    config: Arc<JetStreamConfig>,
}

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStream")
            .field("stream", &self.config.stream)
            .finish_non_exhaustive()
    }
}

impl JetStream {
    /// A client for `config.url` that connects, and reconnects, in the background: the API
    /// serves whether or not NATS is up; until it is, publishing fails (the receivers answer
    /// 503) and workers wait. Call [`JetStream::set_up`] to create the streams and consumer.
    pub async fn connect(config: JetStreamConfig) -> Result<Self, Error> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(&config.url)
            .await
            .map_err(|e| unavailable(&format!("connecting to {}", config.url), e))?;
        Ok(JetStream {
            js: jetstream::new(client.clone()),
            client,
            config: Arc::new(config),
        })
    }

    /// Creates or updates the streams and the consumer, retrying every 2 s while NATS is
    /// unreachable, until done or `cancel`. A definitive setup error (incompatible existing
    /// stream) is returned at once.
    pub async fn set_up(&self, cancel: &CancellationToken) -> Result<(), Error> {
        let mut logged = false;
        loop {
            let attempt = tokio::time::timeout(Duration::from_secs(10), self.ensure_streams());
            match attempt.await {
                Ok(Ok(())) => {
                    info!(stream = %self.config.stream, consumer = %self.config.consumer, "JetStream stream and consumer ready");
                    return Ok(());
                }
                Ok(Err(e)) if !e.is_transient() && !matches!(e, Error::Setup { .. }) => {
                    return Err(e);
                }
                Ok(Err(e)) if !logged => {
                    warn!(error = %e, "JetStream not ready; retrying every 2 s");
                    logged = true;
                }
                Err(_) if !logged => {
                    warn!(url = %self.config.url, "NATS does not answer; retrying every 2 s");
                    logged = true;
                }
                _ => {}
            }
            tokio::select! {
                () = cancel.cancelled() => return Err(Error::Shutdown),
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }

    async fn ensure_streams(&self) -> Result<(), Error> {
        let c = &self.config;
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            Error::Setup {
            what: what.to_owned(),
            reason: e.to_string(),
            fix: "check that nats-server runs with JetStream (-js) and that an existing stream or consumer of this name was not created with incompatible settings (delete it to let Verdict recreate it)".into(),
        }
        };
        let events = stream::Config {
            name: c.stream.clone(),
            subjects: vec![format!("{}.>", c.subject_prefix)],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: c.duplicate_window,
            max_age: Duration::from_secs(7 * 24 * 3600),
            ..Default::default()
        };
        self.create_or_update(events)
            .await
            .map_err(|e| setup(&format!("stream {}", c.stream), &e))?;
        let dead = stream::Config {
            name: c.dead_letter_stream.clone(),
            subjects: vec![format!("{}.>", c.dead_letter_prefix)],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(14 * 24 * 3600),
            ..Default::default()
        };
        self.create_or_update(dead)
            .await
            .map_err(|e| setup(&format!("stream {}", c.dead_letter_stream), &e))?;
        let verdicts = stream::Config {
            name: c.verdict_stream.clone(),
            subjects: vec![format!("{}.>", c.verdict_prefix)],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            // The latest change per subject is the state: a replica that starts empty replays
            // one message per subject, not the history.
            max_messages_per_subject: 1,
            ..Default::default()
        };
        self.create_or_update(verdicts)
            .await
            .map_err(|e| setup(&format!("stream {}", c.verdict_stream), &e))?;
        let stream = self
            .js
            .get_stream(&c.stream)
            .await
            .map_err(|e| setup(&format!("stream {}", c.stream), &e))?;
        // No consumer-level `backoff`: JetStream would use its first value (1 s) in place of
        // ack_wait for the first delivery, redelivering every event that takes longer to verify
        // (the storm benchmark saw a third of its events verified twice). Transient failures are
        // Nak'ed with their delay instead, and ack_wait plus progress heartbeats cover the rest.
        let consumer_config = consumer::pull::Config {
            durable_name: Some(c.consumer.clone()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: c.ack_wait,
            max_deliver: c.max_deliver,
            ..Default::default()
        };
        stream
            .get_or_create_consumer(&c.consumer, consumer_config)
            .await
            .map_err(|e| setup(&format!("consumer {}", c.consumer), &e))?;
        Ok(())
    }

    async fn create_or_update(&self, config: stream::Config) -> Result<(), String> {
        match self.js.get_or_create_stream(config.clone()).await {
            Ok(_) => Ok(()),
            Err(e) => match self.js.update_stream(config).await {
                Ok(_) => Ok(()),
                Err(u) => Err(format!("{e}; updating it: {u}")),
            },
        }
    }

    /// Runs up to `concurrency` events at a time through `handler` until `cancel`; reconnects the
    /// message stream when NATS goes away.
    pub async fn run_workers(
        &self,
        handler: Arc<dyn EventHandler>,
        concurrency: usize,
        cancel: CancellationToken,
    ) {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        while !cancel.is_cancelled() {
            let consumer = async {
                let stream = self
                    .js
                    .get_stream(&self.config.stream)
                    .await
                    .map_err(|e| e.to_string())?;
                stream
                    .get_consumer::<consumer::pull::Config>(&self.config.consumer)
                    .await
                    .map_err(|e| e.to_string())
            };
            let consumer = match consumer.await {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "cannot consume registry events; retrying in 2 s");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    }
                }
            };
            loop {
                // A free worker first, then exactly as many events as there are free workers: an
                // event waiting in this client's buffer would get no progress heartbeat, and
                // after ack_wait JetStream would hand it to another worker as well (the storm
                // benchmark saw events verified four times while others waited).
                let first = tokio::select! {
                    () = cancel.cancelled() => return,
                    p = Arc::clone(&permits).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                let mut slots = vec![first];
                while let Ok(p) = Arc::clone(&permits).try_acquire_owned() {
                    slots.push(p);
                }
                let batch = consumer
                    .batch()
                    .max_messages(slots.len())
                    .expires(Duration::from_secs(5))
                    .messages()
                    .await;
                let mut batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        warn!(error = %e, "receiving registry events failed; reconnecting");
                        break;
                    }
                };
                let mut failed = false;
                loop {
                    let next = tokio::select! {
                        () = cancel.cancelled() => return,
                        n = batch.next() => n,
                    };
                    let message = match next {
                        Some(Ok(m)) => m,
                        Some(Err(e)) => {
                            warn!(error = %e, "receiving registry events failed; reconnecting");
                            failed = true;
                            break;
                        }
                        None => break,
                    };
                    let Some(permit) = slots.pop() else {
                        break;
                    };
                    let bus = self.clone();
                    let handler = Arc::clone(&handler);
                    tokio::spawn(async move {
                        let _permit = permit;
                        bus.process(message, handler.as_ref()).await;
                    });
                }
                if failed {
                    break;
                }
            }
        }
    }

    async fn process(&self, message: jetstream::Message, handler: &dyn EventHandler) {
        let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
        let event = match RegistryEvent::from_json(&message.payload) {
            Ok(e) => e,
            Err(reason) => {
                self.dead_letter(&message, "unreadable", &reason).await;
                return;
            }
        };
        let span = info_span!("registry_event", id = %event.id, action = event.action.as_str(), repository = %event.repository, delivered);
        // Tell JetStream the event is still being worked on, so a slow verification is not
        // redelivered to another worker while this one runs; a worker that dies stops doing so
        // and the event is redelivered after ack_wait.
        let work = handler.handle(&event).instrument(span);
        tokio::pin!(work);
        let mut heartbeat =
            tokio::time::interval((self.config.ack_wait / 2).max(Duration::from_millis(200)));
        heartbeat.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = heartbeat.tick() => {
                    let _ = message.ack_with(AckKind::Progress).await;
                }
            }
        };
        match result {
            Ok(label) => {
                m::processed(label);
                if let Err(e) = message.double_ack().await {
                    // Not acknowledged: JetStream redelivers, and the effect is idempotent.
                    warn!(id = %event.id, error = %e, "acknowledging a registry event failed");
                }
            }
            Err(e) if e.transient && delivered < self.config.max_deliver => {
                let delay = self.config.delay(delivered);
                debug!(id = %event.id, error = %e.message, ?delay, "transient failure; redelivering later");
                m::processed("retried");
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            }
            Err(e) => {
                let why = if e.transient {
                    format!(
                        "gave up after {delivered} deliveries (max_deliver): {}",
                        e.message
                    )
                } else {
                    e.message.clone()
                };
                self.dead_letter(&message, &event.id, &why).await;
            }
        }
    }

    /// Publishes the message to the dead-letter stream with the reason, then terminates it.
    async fn dead_letter(&self, message: &jetstream::Message, id: &str, reason: &str) {
        warn!(id, reason, "registry event dead-lettered");
        m::processed("dead_lettered");
        let subject = format!(
            "{}{}",
            self.config.dead_letter_prefix,
            message
                .subject
                .as_str()
                .strip_prefix(self.config.subject_prefix.as_str())
                .unwrap_or(".unknown")
        );
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Verdict-Dead-Letter-Reason", one_line(reason).as_str());
        let publish = jetstream::message::PublishMessage::build()
            .payload(message.payload.clone())
            .headers(headers);
        let stored = match self.js.send_publish(subject, publish).await {
            Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match stored {
            Ok(()) => {
                let _ = message.ack_with(AckKind::Term).await;
            }
            // Not terminated: it is redelivered and dead-lettered again later, never lost.
            Err(e) => {
                warn!(id, error = %e, "storing a dead letter failed; leaving the event for redelivery")
            }
        }
    }
}

/// Applies verdict-stream messages to this replica's store.
#[async_trait]
pub trait VerdictSink: Send + Sync {
    /// Applies the message at stream `sequence` (sealed by the publisher; the sink checks it).
    async fn apply(&self, payload: &[u8], sequence: u64);
}

impl JetStream {
    /// Publishes a sealed verdict change under `subject_token` (one subject per verdict key, so
    /// the stream keeps the latest change of each); returns once JetStream stored it.
    pub async fn publish_verdict(
        &self,
        subject_token: &str,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        let subject = format!("{}.{subject_token}", self.config.verdict_prefix);
        let publish = jetstream::message::PublishMessage::build().payload(payload.into());
        tokio::time::timeout(self.config.publish_timeout, async {
            let ack = self
                .js
                .send_publish(subject, publish)
                .await
                .map_err(|e| unavailable("publishing a verdict", e))?;
            ack.await
                .map(drop)
                .map_err(|e| unavailable("storing a verdict", e))
        })
        .await
        .map_err(|_| unavailable("publishing a verdict", "no acknowledgement in time"))?
    }

    /// Applies the verdict stream from the message after `applied` (0: from the start) to
    /// `sink`, in order, until `cancel`; re-subscribes from the last applied message after
    /// NATS comes back.
    pub async fn follow_verdicts(
        &self,
        mut applied: u64,
        sink: Arc<dyn VerdictSink>,
        cancel: CancellationToken,
    ) {
        while !cancel.is_cancelled() {
            let messages = async {
                let stream = self
                    .js
                    .get_stream(&self.config.verdict_stream)
                    .await
                    .map_err(|e| e.to_string())?;
                let consumer = stream
                    .create_consumer(consumer::pull::OrderedConfig {
                        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                            start_sequence: applied + 1,
                        },
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                consumer.messages().await.map_err(|e| e.to_string())
            };
            let mut messages = match messages.await {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "cannot follow the verdict stream; retrying in 2 s");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    () = cancel.cancelled() => return,
                    n = messages.next() => n,
                };
                match next {
                    Some(Ok(message)) => {
                        let sequence = message
                            .info()
                            .map(|i| i.stream_sequence)
                            .unwrap_or(applied + 1);
                        sink.apply(&message.payload, sequence).await;
                        applied = applied.max(sequence);
                    }
                    Some(Err(e)) => {
                        warn!(error = %e, "reading the verdict stream failed; resubscribing");
                        break;
                    }
                    None => break,
                }
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(512)
        .collect()
}

#[async_trait]
impl EventBus for JetStream {
    async fn publish(&self, event: &RegistryEvent) -> Result<(), Error> {
        // Disconnected: say so now rather than after the publish timeout (the sender retries).
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(unavailable(
                "publishing",
                format!("not connected to {}", self.config.url),
            ));
        }
        let publish = jetstream::message::PublishMessage::build()
            .payload(event.to_json().into())
            .message_id(&event.id);
        let subject = event.subject(&self.config.subject_prefix);
        let stored = tokio::time::timeout(self.config.publish_timeout, async {
            let ack = self
                .js
                .send_publish(subject, publish)
                .await
                .map_err(|e| unavailable("publishing", e))?;
            ack.await.map_err(|e| unavailable("storing", e))
        })
        .await
        .map_err(|_| {
            unavailable(
                "publishing",
                format!(
                    "JetStream did not acknowledge within {:?}",
                    self.config.publish_timeout
                ),
            )
        })??;
        if stored.duplicate {
            debug!(id = %event.id, "event already stored (duplicate id)");
        }
        Ok(())
    }

    fn durable(&self) -> bool {
        true
    }
}

/// Single-node mode: a bounded in-process queue, ids deduplicated over the last
/// [`InProcessBus::DEDUP_WINDOW`] events, transient failures retried with backoff. Lost on a
/// crash (say so at start).
#[derive(Clone, Debug)]
pub struct InProcessBus {
    tx: mpsc::Sender<RegistryEvent>,
    capacity: usize,
    seen: Arc<Mutex<Recent>>,
}

#[derive(Debug, Default)]
struct Recent {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl InProcessBus {
    /// Event ids remembered for deduplication.
    pub const DEDUP_WINDOW: usize = 10_000;
    /// Attempts of an event that keeps failing transiently.
    pub const MAX_ATTEMPTS: u32 = 5;

    /// The bus and the receiving end for [`InProcessBus::run_workers`].
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<RegistryEvent>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            InProcessBus {
                tx,
                capacity,
                seen: Arc::default(),
            },
            rx,
        )
    }

    /// Runs events through `handler`, up to `concurrency` at a time, until `cancel`.
    pub async fn run_workers(
        mut rx: mpsc::Receiver<RegistryEvent>,
        handler: Arc<dyn EventHandler>,
        concurrency: usize,
        cancel: CancellationToken,
    ) {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => return,
                e = rx.recv() => match e { Some(e) => e, None => return },
            };
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let handler = Arc::clone(&handler);
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let span = info_span!("registry_event", id = %event.id, action = event.action.as_str(), repository = %event.repository);
                async {
                    let mut attempt = 1;
                    loop {
                        match handler.handle(&event).await {
                            Ok(label) => return m::processed(label),
                            Err(e) if e.transient && attempt < Self::MAX_ATTEMPTS => {
                                let delay = Duration::from_secs(1 << attempt.min(5));
                                debug!(error = %e.message, ?delay, "transient failure; retrying");
                                m::processed("retried");
                                tokio::select! {
                                    () = cancel.cancelled() => return,
                                    () = tokio::time::sleep(delay) => {}
                                }
                                attempt += 1;
                            }
                            Err(e) => {
                                warn!(error = %e.message, attempt, "registry event given up (in-process bus: no dead-letter stream)");
                                return m::processed("dead_lettered");
                            }
                        }
                    }
                }
                .instrument(span)
                .await;
            });
        }
    }

    /// True the first time `id` is seen within the window.
    fn first_sighting(&self, id: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.ids.contains(id) {
            return false;
        }
        seen.ids.insert(id.to_owned());
        seen.order.push_back(id.to_owned());
        while seen.order.len() > Self::DEDUP_WINDOW {
            if let Some(old) = seen.order.pop_front() {
                seen.ids.remove(&old);
            }
        }
        true
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, event: &RegistryEvent) -> Result<(), Error> {
        if !self.first_sighting(&event.id) {
            debug!(id = %event.id, "event already accepted (duplicate id)");
            return Ok(());
        }
        match self.tx.try_send(event.clone()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Let a retry through.
                self.seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .ids
                    .remove(&event.id);
                Err(Error::QueueFull(self.capacity))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Shutdown),
        }
    }

    fn durable(&self) -> bool {
        false
    }
}

/// Logs which bus is in use, and what that means, at start.
pub fn announce(bus: &dyn EventBus) {
    if bus.durable() {
        info!("registry events go through NATS JetStream (durable, shared by every replica)");
    } else {
        warn!(
            "no --nats-url: registry events go through an in-process queue — same effects, but events accepted and not yet applied are lost if this process stops, and other replicas do not see them"
        );
    }
}
