//! For each of Ratify's CRDs: an object setting every property of the served v1beta1 schema
//! loads and serialises back unchanged; an unknown field is reported with its path.

mod common;

use common::*;
use serde_json::{Map, Value, json};
use verdict_crds::{Kind, load_str, parse_yaml};
use verdict_testkit::shared_file;

struct Crd {
    kind: String,
    namespaced: bool,
    schema: Value,
}

fn crds() -> Vec<Crd> {
    let dir = shared_file("reference/examples/ratify-v1/crds");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let (docs, diags) = parse_yaml(&std::fs::read_to_string(&f).unwrap());
        assert!(diags.is_empty(), "{}: {diags:?}", f.display());
        for d in docs {
            let spec = &d["spec"];
            let version = spec["versions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == "v1beta1" && v["served"] == true)
                .unwrap_or_else(|| panic!("{}: no served v1beta1", f.display()));
            out.push(Crd {
                kind: spec["names"]["kind"].as_str().unwrap().to_string(),
                namespaced: spec["scope"] == "Namespaced",
                schema: version["schema"]["openAPIV3Schema"].clone(),
            });
        }
    }
    assert_eq!(out.len(), 9, "Ratify v1 has nine CRDs");
    out
}

fn metadata(crd: &Crd) -> Value {
    let mut m = json!({
        "name": if crd.kind.ends_with("Policy") { "ratify-policy" } else { "example-resource" },
        "generateName": "example-",
        "selfLink": "/apis/config.ratify.deislabs.io/v1beta1/x",
        "uid": "0b1c2d3e-0000-4000-8000-000000000001",
        "resourceVersion": "12345",
        "generation": 3,
        "creationTimestamp": "2024-05-06T07:08:09Z",
        "deletionTimestamp": "2024-05-07T07:08:09Z",
        "deletionGracePeriodSeconds": 30,
        "labels": {"app.kubernetes.io/name": "ratify", "tier": "security"},
        "annotations": {"helm.sh/hook": "pre-install", "note": "text"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                              "uid": "0b1c2d3e-0000-4000-8000-000000000002", "controller": true,
                              "blockOwnerDeletion": false}],
        "finalizers": ["example.com/finalizer"],
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "config.ratify.deislabs.io/v1beta1",
                            "time": "2024-05-06T07:08:09Z", "fieldsType": "FieldsV1",
                            "fieldsV1": {"f:spec": {"f:parameters": {}}}, "subresource": "status"}]
    });
    if crd.namespaced {
        m["namespace"] = json!("gatekeeper-system");
    }
    m
}

/// A value for every property of `schema`.
fn synth(schema: &Value, name: &str) -> Value {
    if schema["x-kubernetes-preserve-unknown-fields"] == true && schema.get("properties").is_none()
    {
        return json!({"exampleKey": "exampleValue", "nested": {"list": [1, "two", true], "n": null}});
    }
    match schema["type"].as_str() {
        Some("object") => {
            let mut m = Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (k, s) in props {
                    m.insert(k.clone(), synth(s, k));
                }
            }
            Value::Object(m)
        }
        Some("string") if schema["format"] == "date-time" => json!("2024-05-06T07:08:09Z"),
        Some("string") => json!(format!("value-of-{name}")),
        Some("boolean") => json!(true),
        Some("integer") => json!(7),
        Some("array") => json!([synth(&schema["items"], name)]),
        other => panic!("schema type {other:?} of `{name}` not handled"),
    }
}

fn full_object(crd: &Crd) -> Value {
    let mut obj = synth(&crd.schema, "");
    obj["apiVersion"] = json!("config.ratify.deislabs.io/v1beta1");
    obj["kind"] = json!(crd.kind);
    obj["metadata"] = metadata(crd);
    obj
}

#[test]
fn every_crd_field_round_trips() {
    let crds = crds();
    for crd in &crds {
        assert!(
            Kind::from_name(&crd.kind).is_some(),
            "{} is not modelled",
            crd.kind
        );
        let obj = full_object(crd);
        // Every property of spec and status is set.
        for part in ["spec", "status"] {
            let props = crd.schema["properties"][part]["properties"]
                .as_object()
                .unwrap();
            assert_eq!(obj[part].as_object().unwrap().len(), props.len());
        }
        let yaml = to_yaml(&obj);
        let r = load_str(format!("{}.yaml", crd.kind), &yaml);
        assert_eq!(r.resources.len(), 1, "{}:\n{}\n{yaml}", crd.kind, dump(&r));
        let bad: Vec<_> = r
            .diagnostics
            .iter()
            .filter(|d| matches!(d.code, "unknown-field" | "invalid-type" | "missing-field"))
            .collect();
        assert!(bad.is_empty(), "{}: {bad:?}", crd.kind);
        assert_eq!(r.resources[0].resource.kind().as_str(), crd.kind);
        assert_eq!(
            r.resources[0].resource.to_json(),
            obj,
            "{} did not round-trip",
            crd.kind
        );
        // Also as one-line JSON (a YAML flow document).
        let r = load_str("flow.json", &obj.to_string());
        assert_eq!(
            r.resources[0].resource.to_json(),
            obj,
            "{} (flow) did not round-trip",
            crd.kind
        );
    }
}

#[test]
fn unknown_fields_are_warnings_with_their_path() {
    let crds = crds();
    for crd in &crds {
        let mut obj = full_object(crd);
        obj["spec"]["extraField"] = json!("x");
        obj["status"]["issucess"] = json!(true);
        obj["metadata"]["nmae"] = json!("typo");
        let yaml = to_yaml(&obj);
        let r = load_str("x.yaml", &yaml);
        assert_eq!(r.resources.len(), 1, "{}", dump(&r));
        let unknown = all(&r, "unknown-field");
        let paths: Vec<String> = unknown.iter().map(|d| d.path.to_string()).collect();
        assert_eq!(
            paths,
            vec!["metadata.nmae", "spec.extraField", "status.issucess"],
            "{}",
            crd.kind
        );
        for d in &unknown {
            assert!(!d.is_error());
            let key = d.path.last_key().unwrap();
            assert_eq!(d.line, line_of(&yaml, &format!("\"{key}\":")), "{d}");
            assert!(d.message.contains(&crd.kind), "{d}");
        }
        assert!(
            unknown[2]
                .fix
                .as_deref()
                .unwrap()
                .contains("did you mean `issuccess`")
        );
        assert!(
            unknown[0]
                .fix
                .as_deref()
                .unwrap()
                .contains("did you mean `name`")
        );
        // Dropped when written back, like the API server does.
        assert!(
            r.resources[0].resource.to_json()["spec"]
                .get("extraField")
                .is_none()
        );
    }
}
