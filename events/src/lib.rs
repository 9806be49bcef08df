//! Verify on push: registry events (ACR webhooks, Event Grid, CloudEvents, distribution
//! notifications) received over HTTP, carried by NATS JetStream (or an in-process queue in
//! single-node mode) to workers that verify the pushed image — or the subject of a pushed
//! signature — before any pod asks.
//!
//! - [`event`]: the one [`RegistryEvent`] model, its bus encoding and NATS subject.
//! - [`parse`]: the four sender formats into events (tolerant of unknown fields, precise errors).
//! - [`receiver`]: the axum routes, shared-secret authentication, 2xx only once accepted.
//! - [`bus`]: [`EventBus`] and [`EventHandler`]; [`JetStream`] (work-queue stream, durable pull
//!   consumer, Nak with backoff, dead letters; the verdict stream every replica follows into its
//!   [`VerdictSink`]) and [`InProcessBus`].
//! - [`error`]: [`Error`] and [`HandlerError`], each transient or definitive.
//!
//! What a worker does with an event (verify, store, forget) is the binary's [`EventHandler`]:
//! this crate depends on the scanner only for names and digests.

pub mod bus;
pub mod error;
pub mod event;
pub mod metrics;
pub mod parse;
pub mod receiver;

pub use bus::{
    EventBus, EventHandler, InProcessBus, JetStream, JetStreamConfig, VerdictSink, announce,
};
pub use error::{Error, HandlerError};
pub use event::{Action, RegistryEvent};
pub use receiver::{Receiver, ReceiverConfig, Reply, Secret};
