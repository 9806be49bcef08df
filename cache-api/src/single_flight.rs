//! Single-flight: concurrent callers asking for the same key share one computation.
//!
//! The first caller (the leader) gets a [`Completion`] and starts the work in a task; everyone
//! who joins while it runs waits on the same channel. The entry stays until the completion is
//! dropped, so the leader can publish the result, store it, and only then let a new flight start.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::time::Instant;

pub(crate) struct Flights<K, V> {
    map: Mutex<HashMap<K, watch::Receiver<Option<V>>>>,
    max: usize,
}

pub(crate) enum Join<K: Eq + Hash + Clone, V> {
    /// A flight for the key was already running.
    Follower(watch::Receiver<Option<V>>),
    /// A new flight: the caller must run the work and call [`Completion::publish`].
    Leader(watch::Receiver<Option<V>>, Completion<K, V>),
    /// `max` flights are running; no new one is started.
    Busy(usize),
}

/// Why a waiter got no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitError {
    /// The caller's deadline passed first (the flight goes on).
    Deadline,
    /// The flight ended without a result (its task panicked).
    Abandoned,
}

impl<K: Eq + Hash + Clone, V: Clone> Flights<K, V> {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Flights {
            map: Mutex::new(HashMap::new()),
            max,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, watch::Receiver<Option<V>>>> {
        // The map stays consistent even if a holder panicked (single insert/remove operations).
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn join(self: &Arc<Self>, key: &K) -> Join<K, V> {
        let mut map = self.lock();
        if let Some(rx) = map.get(key) {
            return Join::Follower(rx.clone());
        }
        if map.len() >= self.max {
            return Join::Busy(map.len());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), rx.clone());
        Join::Leader(
            rx,
            Completion {
                flights: Arc::clone(self),
                key: key.clone(),
                tx,
            },
        )
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The leader's handle; dropping it ends the flight (waiters without a result get `Abandoned`).
pub(crate) struct Completion<K: Eq + Hash + Clone, V> {
    flights: Arc<Flights<K, V>>,
    key: K,
    tx: watch::Sender<Option<V>>,
}

impl<K: Eq + Hash + Clone, V> Completion<K, V> {
    /// Hands the result to every waiter, current and joining until this is dropped.
    pub(crate) fn publish(&self, value: V) {
        self.tx.send_replace(Some(value));
    }
}

impl<K: Eq + Hash + Clone, V> Drop for Completion<K, V> {
    fn drop(&mut self) {
        self.flights
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// Waits for the flight's result until `deadline`.
pub(crate) async fn wait<V: Clone>(
    mut rx: watch::Receiver<Option<V>>,
    deadline: Instant,
) -> Result<V, WaitError> {
    match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await {
        Ok(Ok(v)) => v.clone().ok_or(WaitError::Abandoned),
        Ok(Err(_)) => Err(WaitError::Abandoned),
        Err(_) => Err(WaitError::Deadline),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn followers_share_the_leaders_result() {
        let flights: Arc<Flights<&str, u32>> = Flights::new(4);
        let Join::Leader(rx1, done) = flights.join(&"k") else {
            panic!("first join must lead")
        };
        let Join::Follower(rx2) = flights.join(&"k") else {
            panic!("second join must follow")
        };
        let deadline = Instant::now() + Duration::from_secs(1);
        done.publish(7);
        assert_eq!(wait(rx1, deadline).await, Ok(7));
        assert_eq!(wait(rx2, deadline).await, Ok(7));
        // Still registered until the completion is dropped: late joiners get the result too.
        let Join::Follower(rx3) = flights.join(&"k") else {
            panic!("join before drop must follow")
        };
        assert_eq!(wait(rx3, deadline).await, Ok(7));
        drop(done);
        assert_eq!(flights.len(), 0);
        assert!(matches!(flights.join(&"k"), Join::Leader(..)));
    }

    #[tokio::test]
    async fn deadline_abandon_and_busy() {
        let flights: Arc<Flights<u8, u8>> = Flights::new(1);
        let Join::Leader(rx, done) = flights.join(&1) else {
            panic!()
        };
        assert!(matches!(flights.join(&2), Join::Busy(1)));
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(wait(rx.clone(), soon).await, Err(WaitError::Deadline));
        drop(done);
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(wait(rx, later).await, Err(WaitError::Abandoned));
    }
}
