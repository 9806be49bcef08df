//! The one registry event every receiver produces and every worker consumes, whatever format it
//! arrived in (ACR webhook, Event Grid, CloudEvents, distribution notification).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use verdict_scanner::registry::{Digest, ImageReference, Repository};

/// What happened to a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A manifest was pushed (an image, an index, a signature or another referrer).
    Push,
    /// A manifest (or a whole repository) was deleted.
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }
}

/// A registry event, checked: the repository and digest parse with the same grammar as image
/// references, so a worker never sees a name it could not look up. On the bus as
/// [`RegistryEvent::to_json`] writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEvent {
    /// The sender's event id (deduplication key: `Nats-Msg-Id`).
    pub id: String,
    pub action: Action,
    /// `registry/name`.
    pub repository: Repository,
    /// The manifest's digest (absent for some repository deletes: then the whole repository).
    pub digest: Option<Digest>,
    /// The tag the manifest was pushed under, if any.
    pub tag: Option<String>,
    /// The manifest's media type as the sender stated it (informational).
    pub media_type: Option<String>,
    /// Which receiver format it came from (`acr`, `eventgrid`, `cloudevents`, `registry`).
    pub source: String,
    /// When a receiver accepted it (the start of "push event → verdict visible").
    pub received_at: Option<DateTime<Utc>>,
}

/// The JSON shape of [`RegistryEvent`] on the bus (plain strings, parsed again on receipt).
#[derive(Serialize, Deserialize)]
struct Wire {
    id: String,
    action: Action,
    registry: String,
    repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    received_at: Option<DateTime<Utc>>,
}

impl RegistryEvent {
    /// The image reference this event names: `registry/repo@digest`, or `registry/repo:tag`
    /// without a digest.
    pub fn reference(&self) -> Option<ImageReference> {
        match (&self.digest, &self.tag) {
            (Some(d), _) => Some(ImageReference::with_digest(
                self.repository.clone(),
                d.clone(),
            )),
            (None, Some(t)) => ImageReference::with_tag(self.repository.clone(), t).ok(),
            (None, None) => None,
        }
    }

    /// The NATS subject of this event: `<prefix>.<registry>.<repository path>`, each part made a
    /// valid subject token (`.`, `*`, `>` and whitespace become `_`; path segments are tokens).
    pub fn subject(&self, prefix: &str) -> String {
        let mut s = String::with_capacity(prefix.len() + 64);
        s.push_str(prefix);
        s.push('.');
        s.push_str(&token(self.repository.registry()));
        for segment in self.repository.name().split('/') {
            s.push('.');
            s.push_str(&token(segment));
        }
        s
    }

    /// Bytes for the bus.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = Wire {
            id: self.id.clone(),
            action: self.action,
            registry: self.repository.registry().to_owned(),
            repository: self.repository.name().to_owned(),
            digest: self.digest.as_ref().map(ToString::to_string),
            tag: self.tag.clone(),
            media_type: self.media_type.clone(),
            source: self.source.clone(),
            received_at: self.received_at,
        };
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Reads bytes from the bus; an error names what is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let w: Wire =
            serde_json::from_slice(bytes).map_err(|e| format!("not a registry event: {e}"))?;
        let repository = Repository::new(&w.registry, &w.repository).map_err(|e| e.to_string())?;
        let digest = w
            .digest
            .map(|d| Digest::parse(&d).map_err(|e| e.to_string()))
            .transpose()?;
        Ok(RegistryEvent {
            id: w.id,
            action: w.action,
            repository,
            digest,
            tag: w.tag,
            media_type: w.media_type,
            source: w.source,
            received_at: w.received_at,
        })
    }
}

fn token(part: &str) -> String {
    let t: String = part
        .chars()
        .map(|c| match c {
            '.' | '*' | '>' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RegistryEvent {
        RegistryEvent {
            id: "e1".into(),
            action: Action::Push,
            repository: Repository::new("myacr.azurecr.io", "team/app").unwrap(),
            digest: Some(
                Digest::parse(
                    "sha256:57a94fc99816c6aa225678b738ac40d85422e75dbb96115f1bb9b6ed77176166",
                )
                .unwrap(),
            ),
            tag: Some("v1".into()),
            media_type: None,
            source: "acr".into(),
            received_at: Some(Utc::now()),
        }
    }

    #[test]
    fn subjects_are_valid_nats_tokens_by_registry_and_repository() {
        assert_eq!(
            event().subject("verdict.events"),
            "verdict.events.myacr_azurecr_io.team.app"
        );
        let mut e = event();
        e.repository = Repository::new("127.0.0.1:5000", "a").unwrap();
        assert_eq!(e.subject("p"), "p.127_0_0_1:5000.a");
    }

    #[test]
    fn bus_bytes_round_trip_and_are_checked_on_receipt() {
        let e = event();
        assert_eq!(RegistryEvent::from_json(&e.to_json()).unwrap(), e);
        let bad =
            br#"{"id":"x","action":"push","registry":"r.io","repository":"UPPER","source":"acr"}"#;
        assert!(RegistryEvent::from_json(bad).is_err());
        assert_eq!(
            e.reference().unwrap().to_string(),
            "myacr.azurecr.io/team/app@sha256:57a94fc99816c6aa225678b738ac40d85422e75dbb96115f1bb9b6ed77176166"
        );
    }
}
