//! The four formats registries send, read into [`RegistryEvent`]s: ACR native webhooks, Event
//! Grid schema arrays, CloudEvents 1.0 (single or batch) and distribution's notification
//! envelopes. Unknown fields are tolerated; a body that is not one of these, or names an action
//! Verdict does not know, is an error naming the problem (the receiver answers 400).
//!
//! Kept (published): manifest pushes and deletes. Acknowledged and counted, not published:
//! pings, Helm chart events (not container images), quarantine notices (a quarantined image
//! cannot be pulled until released), pulls and mounts, and blob pushes of a distribution
//! registry (only manifests carry signatures).

use serde_json::Value;
use verdict_scanner::registry::{Digest, Repository};

use crate::event::{Action, RegistryEvent};

/// Which receiver read the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Acr,
    EventGrid,
    CloudEvents,
    Registry,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Acr => "acr",
            Format::EventGrid => "eventgrid",
            Format::CloudEvents => "cloudevents",
            Format::Registry => "registry",
        }
    }
}

/// What a body holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Events to publish.
    pub events: Vec<RegistryEvent>,
    /// Events acknowledged without effect (pings, charts, quarantine, pulls, blobs), by kind.
    pub ignored: Vec<&'static str>,
    /// Event Grid's subscription validation code, to be echoed as `validationResponse`.
    pub validation_code: Option<String>,
}

/// Event Grid's event type for the validation handshake.
pub const EVENT_GRID_VALIDATION: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";

fn json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |cur, p| cur.get(*p))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Manifest media types (images, indexes, artifacts): the pushes that can be images or
/// signatures. A missing media type counts as a manifest (ACR omits it in some payloads).
fn is_manifest(media_type: Option<&str>) -> bool {
    match media_type {
        None => true,
        Some(t) => matches!(
            t,
            "application/vnd.oci.image.manifest.v1+json"
                | "application/vnd.oci.image.index.v1+json"
                | "application/vnd.oci.artifact.manifest.v1+json"
                | "application/vnd.docker.distribution.manifest.v2+json"
                | "application/vnd.docker.distribution.manifest.list.v2+json"
                | "application/vnd.docker.distribution.manifest.v1+json"
                | "application/vnd.docker.distribution.manifest.v1+prettyjws"
        ),
    }
}

/// One ACR / distribution style event object (`{id, action, target{…}, request{host}}`), with the
/// registry host given or taken from `request.host`. `what` names it in errors.
fn manifest_event(
    v: &Value,
    action: Action,
    registry: Option<&str>,
    format: Format,
    what: &str,
) -> Result<RegistryEvent, String> {
    let id = str_at(v, &["id"]).ok_or(format!("{what} has no id"))?;
    let registry = registry
        .or_else(|| str_at(v, &["request", "host"]))
        .ok_or(format!(
            "{what} has no request.host: Verdict cannot tell which registry it is about"
        ))?;
    let repo =
        str_at(v, &["target", "repository"]).ok_or(format!("{what} has no target.repository"))?;
    let repository = Repository::new(registry, repo)
        .map_err(|e| format!("{what}: target.repository {repo:?} on {registry:?}: {e}"))?;
    let digest = str_at(v, &["target", "digest"])
        .map(|d| Digest::parse(d).map_err(|e| format!("{what}: target.digest {d:?}: {e}")))
        .transpose()?;
    if action == Action::Push && digest.is_none() {
        return Err(format!("{what} is a push without target.digest"));
    }
    Ok(RegistryEvent {
        id: id.to_owned(),
        action,
        repository,
        digest,
        tag: str_at(v, &["target", "tag"]).map(str::to_owned),
        media_type: str_at(v, &["target", "mediaType"]).map(str::to_owned),
        source: format.as_str().to_owned(),
        received_at: None,
    })
}

/// An ACR native webhook body (one event).
pub fn acr(body: &[u8]) -> Result<Parsed, String> {
    let v = json(body)?;
    if !v.is_object() {
        return Err("an ACR webhook body is one JSON object".into());
    }
    let mut out = Parsed::default();
    match str_at(&v, &["action"]) {
        Some("push") => out.events.push(manifest_event(
            &v,
            Action::Push,
            None,
            Format::Acr,
            "the push event",
        )?),
        Some("delete") => out.events.push(manifest_event(
            &v,
            Action::Delete,
            None,
            Format::Acr,
            "the delete event",
        )?),
        Some("ping") => out.ignored.push("ping"),
        Some("chart_push" | "chart_delete") => out.ignored.push("chart"),
        Some("quarantine") => out.ignored.push("quarantine"),
        Some(other) => {
            return Err(format!(
                "unknown action {other:?} (ACR sends push, delete, chart_push, chart_delete, quarantine, ping)"
            ));
        }
        None => return Err("the body has no action".into()),
    }
    Ok(out)
}

/// `<name>.azurecr.io` from an Event Grid topic `/subscriptions/…/registries/<name>`.
fn registry_from_topic(topic: &str) -> Option<String> {
    let name = topic.rsplit_once("/registries/")?.1;
    (!name.is_empty() && !name.contains('/')).then(|| format!("{}.azurecr.io", name.to_lowercase()))
}

/// One Event Grid or CloudEvents event (`type_field` = `eventType` or `type`,
/// `topic_field` = `topic` or `source`).
fn cloud_event(
    v: &Value,
    type_field: &str,
    topic_field: &str,
    format: Format,
    out: &mut Parsed,
) -> Result<(), String> {
    let ty = str_at(v, &[type_field]).ok_or(format!("an event has no {type_field}"))?;
    let action = match ty {
        EVENT_GRID_VALIDATION => {
            let code = str_at(v, &["data", "validationCode"])
                .ok_or("the subscription validation event has no data.validationCode")?;
            out.validation_code = Some(code.to_owned());
            return Ok(());
        }
        "Microsoft.ContainerRegistry.ImagePushed" => Action::Push,
        "Microsoft.ContainerRegistry.ImageDeleted" => Action::Delete,
        "Microsoft.ContainerRegistry.ChartPushed" | "Microsoft.ContainerRegistry.ChartDeleted" => {
            out.ignored.push("chart");
            return Ok(());
        }
        other => {
            return Err(format!(
                "unknown event type {other:?} (Verdict handles Microsoft.ContainerRegistry.ImagePushed and ImageDeleted)"
            ));
        }
    };
    let data = v.get("data").ok_or(format!("the {ty} event has no data"))?;
    let registry = str_at(data, &["request", "host"])
        .map(str::to_owned)
        .or_else(|| str_at(v, &[topic_field]).and_then(registry_from_topic));
    let mut event = manifest_event(data, action, registry.as_deref(), format, ty)?;
    // The envelope id is what Event Grid retries with; data.id may be absent in some senders.
    if let Some(id) = str_at(v, &["id"]) {
        event.id = id.to_owned();
    }
    out.events.push(event);
    Ok(())
}

/// An Event Grid schema body: a JSON array of events (validation handshake included).
pub fn event_grid(body: &[u8]) -> Result<Parsed, String> {
    let v = json(body)?;
    let items = v
        .as_array()
        .ok_or("an Event Grid body is a JSON array of events")?;
    let mut out = Parsed::default();
    for item in items {
        cloud_event(item, "eventType", "topic", Format::EventGrid, &mut out)?;
    }
    Ok(out)
}

/// A CloudEvents 1.0 body: one event (structured mode) or a batch array.
pub fn cloud_events(body: &[u8]) -> Result<Parsed, String> {
    let v = json(body)?;
    let items: Vec<&Value> = match &v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![&v],
        _ => return Err("a CloudEvents body is an event object or an array of them".into()),
    };
    let mut out = Parsed::default();
    for item in items {
        let version = str_at(item, &["specversion"]).or_else(|| str_at(item, &["specVersion"]));
        if version != Some("1.0") {
            return Err(format!(
                "a CloudEvents event must have specversion \"1.0\", found {version:?}"
            ));
        }
        cloud_event(item, "type", "source", Format::CloudEvents, &mut out)?;
    }
    Ok(out)
}

/// A distribution (docker-registry) notification envelope: `{"events": [...]}`.
pub fn registry_notifications(body: &[u8]) -> Result<Parsed, String> {
    let v = json(body)?;
    let items = v
        .get("events")
        .and_then(Value::as_array)
        .ok_or("a registry notification is an object with an events array")?;
    let mut out = Parsed::default();
    for (i, item) in items.iter().enumerate() {
        let what = format!("events[{i}]");
        let action = match str_at(item, &["action"]) {
            Some("push") => Action::Push,
            Some("delete") => Action::Delete,
            Some("pull") => {
                out.ignored.push("pull");
                continue;
            }
            Some("mount") => {
                out.ignored.push("mount");
                continue;
            }
            Some(other) => {
                return Err(format!(
                    "{what}: unknown action {other:?} (distribution sends push, pull, mount, delete)"
                ));
            }
            None => return Err(format!("{what} has no action")),
        };
        if action == Action::Push && !is_manifest(str_at(item, &["target", "mediaType"])) {
            out.ignored.push("blob");
            continue;
        }
        out.events
            .push(manifest_event(item, action, None, Format::Registry, &what)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_errors_name_the_problem() {
        assert!(acr(b"{").unwrap_err().contains("not JSON"));
        assert!(acr(b"[]").unwrap_err().contains("one JSON object"));
        assert!(
            acr(br#"{"id":"1","action":"retag"}"#)
                .unwrap_err()
                .contains("unknown action \"retag\"")
        );
        let e =
            acr(br#"{"id":"1","action":"push","target":{"repository":"a","digest":"sha256:00"}}"#)
                .unwrap_err();
        assert!(e.contains("request.host"), "{e}");
        let e = acr(
            br#"{"id":"1","action":"push","target":{"repository":"a"},"request":{"host":"r.io"}}"#,
        )
        .unwrap_err();
        assert!(e.contains("without target.digest"), "{e}");
        let p = acr(br#"{"id":"1","action":"ping"}"#).unwrap();
        assert_eq!((p.events.len(), p.ignored), (0, vec!["ping"]));
    }

    #[test]
    fn event_grid_registry_comes_from_the_topic_when_the_request_has_no_host() {
        assert_eq!(
            registry_from_topic("/subscriptions/x/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/MyCR")
                .as_deref(),
            Some("mycr.azurecr.io")
        );
        let body = br#"[{"id":"e","topic":"/s/x/providers/Microsoft.ContainerRegistry/registries/cr","eventType":"Microsoft.ContainerRegistry.ImageDeleted","data":{"id":"d","action":"delete","target":{"repository":"app","digest":"sha256:57a94fc99816c6aa225678b738ac40d85422e75dbb96115f1bb9b6ed77176166"}}}]"#;
        let p = event_grid(body).unwrap();
        assert_eq!(p.events[0].repository.to_string(), "cr.azurecr.io/app");
        assert_eq!(p.events[0].id, "e");
        assert_eq!(p.events[0].action, Action::Delete);
    }

    #[test]
    fn distribution_skips_blobs_pulls_and_mounts() {
        let body = br#"{"events":[
            {"id":"1","action":"pull","target":{"repository":"a","digest":"sha256:57a94fc99816c6aa225678b738ac40d85422e75dbb96115f1bb9b6ed77176166"},"request":{"host":"r:5000"}},
            {"id":"2","action":"push","target":{"mediaType":"application/octet-stream","repository":"a","digest":"sha256:57a94fc99816c6aa225678b738ac40d85422e75dbb96115f1bb9b6ed77176166"},"request":{"host":"r:5000"}},
            {"id":"3","action":"mount","target":{"repository":"a"}}]}"#;
        let p = registry_notifications(body).unwrap();
        assert!(p.events.is_empty());
        assert_eq!(p.ignored, vec!["pull", "blob", "mount"]);
    }
}
