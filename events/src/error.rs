//! Errors of the events crate, each classified as transient (retry: NATS or the registry may
//! come back) or definitive (the same input fails the same way).

/// An events failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// NATS or JetStream did not accept or deliver (down, timed out, not yet connected).
    #[error("NATS JetStream is unavailable: {0}")]
    BusUnavailable(String),

    /// Creating or updating the stream or consumer from configuration failed.
    #[error("cannot set up JetStream {what}: {reason} — fix: {fix}")]
    Setup {
        what: String,
        reason: String,
        fix: String,
    },

    /// The in-process bus is full (single-node mode without NATS).
    #[error("the in-process event queue is full ({0} events waiting); retry shortly")]
    QueueFull(usize),

    /// The receiver or the workers were shut down.
    #[error("the event pipeline is shut down")]
    Shutdown,
}

impl Error {
    pub fn is_transient(&self) -> bool {
        match self {
            Error::BusUnavailable(_) | Error::QueueFull(_) => true,
            Error::Setup { .. } | Error::Shutdown => false,
        }
    }
}

/// A worker's failure to apply one event: transient ones are retried with backoff (up to
/// `max_deliver`, then dead-lettered), definitive ones are dead-lettered at once.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub transient: bool,
    pub message: String,
}

impl HandlerError {
    pub fn transient(message: impl Into<String>) -> Self {
        HandlerError {
            transient: true,
            message: message.into(),
        }
    }

    pub fn definitive(message: impl Into<String>) -> Self {
        HandlerError {
            transient: false,
            message: message.into(),
        }
    }
}
