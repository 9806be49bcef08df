//! What a worker does with a registry event — the glue between `verdict-events` (which knows
//! events) and the cache API's [`VerdictService`] (which verifies and stores verdicts): a pushed
//! image is verified; a pushed signature or other referrer gets its subject re-verified (this also
//! closes the sign-after-push race); a deleted manifest's verdict is forgotten. With NATS, each
//! outcome is then published, sealed with the verdict key, to the verdict stream, and
//! [`ReplicaSink`] applies that stream on every replica.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::Digest as _;
use verdict_cache_api::VerdictService;
use verdict_cache_api::tag_map::TagMap;
use verdict_events::{Action, EventHandler, HandlerError, JetStream, RegistryEvent, VerdictSink};
use verdict_scanner::registry::{Digest, ImageReference, RegistryClient, Repository};
use verdict_scanner::store::{
    MissReason, Replicated, StoredVerdict, VerdictSigner, VerdictStore, open_replicated,
    seal_replicated,
};
use verdict_scanner::subject::SubjectKey;
use verdict_scanner::trust::LiveTrust;

/// Histogram: seconds from a receiver accepting a push event to its verdict being stored here
/// (and published to the other replicas).
pub const EVENT_TO_VERDICT: &str = "verdict_event_to_verdict_seconds";

/// The store marker holding the last verdict-stream sequence this replica applied.
pub const APPLIED_MARKER: &str = "verdict-stream";

/// Where a worker's outcomes go besides its own store: the verdict stream, sealed.
pub struct Replication {
    pub stream: JetStream,
    pub signer: Arc<VerdictSigner>,
}

impl Replication {
    async fn publish(&self, change: &Replicated) -> Result<(), HandlerError> {
        let sealed = seal_replicated(&self.signer, change)
            .map_err(|e| HandlerError::definitive(e.to_string()))?;
        let token = hex::encode(sha2::Sha256::digest(change.key_text().as_bytes()));
        self.stream
            .publish_verdict(&token, sealed)
            .await
            .map_err(|e| HandlerError::transient(e.to_string()))
    }
}

/// The binary's [`EventHandler`].
pub struct PushHandler {
    service: VerdictService,
    registry: RegistryClient,
    tags: Arc<TagMap>,
    trust: Arc<LiveTrust>,
    replication: Option<Replication>,
}

impl PushHandler {
    pub fn new(
        service: VerdictService,
        registry: RegistryClient,
        tags: Arc<TagMap>,
        trust: Arc<LiveTrust>,
        replication: Option<Replication>,
    ) -> Self {
        PushHandler {
            service,
            registry,
            tags,
            trust,
            replication,
        }
    }

    async fn replicate(&self, change: Replicated) -> Result<(), HandlerError> {
        match &self.replication {
            Some(r) => r.publish(&change).await,
            None => Ok(()),
        }
    }

    /// The subject a pushed manifest is about, if it is a referrer: from a tag-schema tag
    /// (`sha256-<hex>`, optionally `.sig` / `.att` / `.sbom`, what clients push beside referrers on
    /// registries without the referrers API), else from the manifest's own `subject`.
    async fn subject_of(
        &self,
        repository: &Repository,
        digest: &Digest,
        tag: Option<&str>,
    ) -> Result<Option<Digest>, HandlerError> {
        if let (Some(tag), Some(subject)) = (tag, tag.and_then(tag_schema_subject)) {
            // distribution announces a manifest push before it links the tag: until the tag
            // names this index, reading the subject's referrers would miss the new one.
            let reference = ImageReference::with_tag(repository.clone(), tag)
                .map_err(|e| HandlerError::definitive(e.to_string()))?;
            return match self.registry.resolve(&reference).await {
                Ok(d) if d.digest == *digest => Ok(Some(subject)),
                Ok(d) => Err(HandlerError::transient(format!(
                    "{reference} points at {} rather than the pushed {digest} (not linked yet, or replaced since); retrying",
                    d.digest
                ))),
                Err(e) if e.is_not_found() || e.is_transient() => Err(HandlerError::transient(
                    format!("{reference} cannot be read yet ({e}); retrying"),
                )),
                Err(e) => Err(HandlerError::definitive(e.to_string())),
            };
        }
        let manifest = match self.registry.fetch_manifest(repository, digest).await {
            Ok(m) => m,
            Err(e) if e.is_not_found() => {
                return Err(HandlerError::definitive(format!(
                    "{repository}@{digest} no longer exists: nothing to verify"
                )));
            }
            Err(e) if e.is_transient() => return Err(HandlerError::transient(e.to_string())),
            Err(e) => return Err(HandlerError::definitive(e.to_string())),
        };
        let subject = if manifest.is_index() {
            manifest.index().ok().and_then(|i| i.subject)
        } else {
            manifest.image_manifest().ok().and_then(|m| m.subject)
        };
        Ok(subject.map(|d| d.digest))
    }
}

/// `sha256:<hex>` from a tag-schema tag: `sha256-<64 hex>` with an optional `.sig`, `.att` or
/// `.sbom` suffix (Cosign's legacy tags).
fn tag_schema_subject(tag: &str) -> Option<Digest> {
    let hex = tag.strip_prefix("sha256-")?;
    let hex = [".sig", ".att", ".sbom"]
        .iter()
        .find_map(|s| hex.strip_suffix(s))
        .unwrap_or(hex);
    Digest::parse(&format!("sha256:{hex}")).ok()
}

fn failed(e: verdict_cache_api::Error) -> HandlerError {
    if e.is_transient() {
        HandlerError::transient(e.to_string())
    } else {
        HandlerError::definitive(e.to_string())
    }
}

#[async_trait]
impl EventHandler for PushHandler {
    async fn handle(&self, event: &RegistryEvent) -> Result<&'static str, HandlerError> {
        let repository = &event.repository;
        match event.action {
            Action::Delete => {
                let Some(digest) = &event.digest else {
                    // A whole repository: its verdicts expire or are swept; nothing to name here.
                    return Ok("ignored");
                };
                let key = SubjectKey::new(None, repository.clone(), digest.clone());
                self.tags.forget_digest(&key.reference(), digest);
                self.service.forget(&key).await.map_err(failed)?;
                self.replicate(Replicated::Remove(key)).await?;
                Ok("removed")
            }
            Action::Push => {
                let Some(digest) = &event.digest else {
                    return Err(HandlerError::definitive("a push event without a digest"));
                };
                // An image no trust policy covers could only be denied: nothing to prepare.
                let name = repository.to_string();
                if !self.trust.current().configs().any(|(_, c)| c.covers(&name)) {
                    tracing::debug!(repository = %name, "no trust policy covers this repository; event acknowledged");
                    return Ok("not_covered");
                }
                let (target, label) = match self
                    .subject_of(repository, digest, event.tag.as_deref())
                    .await?
                {
                    Some(subject) => (subject, "subject_verified"),
                    None => {
                        // The tag map learns the push at once (contract 4), here and, through
                        // the verdict stream, on every replica.
                        if let Some(reference) = event
                            .tag
                            .as_deref()
                            .and_then(|t| ImageReference::with_tag(repository.clone(), t).ok())
                        {
                            self.tags.record_push(&reference, digest);
                            self.replicate(Replicated::Tag {
                                reference,
                                digest: digest.clone(),
                            })
                            .await?;
                        }
                        (digest.clone(), "verified")
                    }
                };
                let key = SubjectKey::new(None, repository.clone(), target);
                let verdict = self.service.refresh(&key).await.map_err(failed)?;
                let result = verdict.result();
                let allowed = result.is_success;
                let subject = key.to_string();
                // Denies too: another replica must drop an allow it holds, and this one's own
                // copy of the message must not erase the deny it just stored.
                self.replicate(Replicated::Put(key, StoredVerdict::new(result.clone())))
                    .await?;
                // Push event accepted → verdict stored here and published to the replicas.
                let seconds = event
                    .received_at
                    .map(|at| (chrono::Utc::now() - at).as_seconds_f64().max(0.0));
                if let Some(s) = seconds {
                    metrics::histogram!(EVENT_TO_VERDICT).record(s);
                }
                tracing::info!(
                    subject,
                    allowed,
                    latency_ms = seconds.map(|s| (s * 100_000.0).round() / 100.0),
                    "verified on push"
                );
                Ok(label)
            }
        }
    }
}

/// Applies the verdict stream to this replica: checks each message's seal with the (shared)
/// verdict key, stores or forgets, and records the sequence so a restart resumes after it.
pub struct ReplicaSink {
    pub service: VerdictService,
    pub signer: Arc<VerdictSigner>,
    pub store: Arc<dyn VerdictStore>,
    pub tags: Arc<TagMap>,
}

#[async_trait]
impl VerdictSink for ReplicaSink {
    async fn apply(&self, payload: &[u8], sequence: u64) {
        let outcome = match open_replicated(&self.signer, payload) {
            Ok(Replicated::Put(key, verdict)) => self
                .service
                .apply(&key, verdict.result)
                .await
                .map(|()| "applied"),
            Ok(Replicated::Remove(key)) => self.service.forget(&key).await.map(|_| "removed"),
            Ok(Replicated::Tag { reference, digest }) => {
                self.tags.record_push(&reference, &digest);
                Ok("tag")
            }
            Err(reason) => {
                tracing::warn!(
                    sequence,
                    reason = reason.as_str(),
                    hint = if reason == MissReason::BadSignature {
                        "every replica must use the same verdict key (--verdict-key from one Secret)"
                    } else {
                        ""
                    },
                    "verdict-stream message rejected"
                );
                Ok("rejected")
            }
        };
        let label = match outcome {
            Ok(label) => label,
            Err(e) => {
                // Not applied here: lookups verify inline until the next change arrives.
                tracing::warn!(sequence, error = %e, "applying a replicated verdict failed");
                "failed"
            }
        };
        metrics::counter!("verdict_replica_messages_total", "result" => label).increment(1);
        let store = Arc::clone(&self.store);
        let _ =
            tokio::task::spawn_blocking(move || store.set_marker(APPLIED_MARKER, sequence)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_schema_tags_name_their_subject() {
        let hex = "57a94fc99816c6aa225678b738ac40d85422e75dbb96115f1bb9b6ed77176166";
        for tag in [
            format!("sha256-{hex}"),
            format!("sha256-{hex}.sig"),
            format!("sha256-{hex}.att"),
        ] {
            assert_eq!(
                tag_schema_subject(&tag).map(|d| d.to_string()),
                Some(format!("sha256:{hex}")),
                "{tag}"
            );
        }
        assert_eq!(tag_schema_subject("v1"), None);
        assert_eq!(tag_schema_subject("sha256-short"), None);
    }
}
