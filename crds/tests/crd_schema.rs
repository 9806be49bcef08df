//! The CustomResourceDefinitions generated from the Rust types (`verdict_crds::crd`): the
//! chart ships exactly them, they name and scope every kind as Ratify's CRDs do with the same
//! spec fields and printer columns (so Ratify's objects are adopted as they are), and their
//! schemas accept every Ratify resource of the seed walkthrough.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use verdict_testkit::shared_file;

fn generated() -> Vec<Value> {
    verdict_crds::crd::crds()
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect()
}

fn v1beta1(crd: &Value) -> &Value {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1beta1")
        .unwrap_or_else(|| panic!("no v1beta1 in {}", crd["metadata"]["name"]))
}

#[test]
fn the_chart_ships_the_generated_crds() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/verdict/crds/verdict-crds.yaml");
    let shipped = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        shipped,
        verdict_crds::crd::crds_yaml(),
        "{} is stale: cargo run -p verdict-crds --example gen-crds > {}",
        path.display(),
        path.display()
    );
}

#[test]
fn every_kind_matches_ratifys_crd() {
    let ours = generated();
    assert_eq!(ours.len(), 8);
    for crd in &ours {
        let name = crd["metadata"]["name"].as_str().unwrap();
        let file = format!(
            "reference/examples/ratify-v1/crds/{}-customresourcedefinition.yaml",
            crd["spec"]["names"]["singular"].as_str().unwrap()
        );
        let text = std::fs::read_to_string(shared_file(&file)).unwrap();
        let (docs, _) = verdict_crds::parse_yaml(&text);
        let ratify = &docs[0];
        assert_eq!(ratify["metadata"]["name"], name);
        for field in ["group", "scope"] {
            assert_eq!(crd["spec"][field], ratify["spec"][field], "{name}: {field}");
        }
        for field in ["kind", "plural", "singular"] {
            assert_eq!(
                crd["spec"]["names"][field], ratify["spec"]["names"][field],
                "{name}: names.{field}"
            );
        }
        let (ours_v, theirs_v) = (v1beta1(crd), v1beta1(ratify));
        assert_eq!(
            ours_v["storage"], true,
            "{name}: v1beta1 is the storage version"
        );
        let keys = |v: &Value, part: &str| -> BTreeSet<String> {
            v["schema"]["openAPIV3Schema"]["properties"][part]["properties"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(
            keys(ours_v, "spec"),
            keys(theirs_v, "spec"),
            "{name}: spec fields"
        );
        let status_ours = keys(ours_v, "status");
        for f in keys(theirs_v, "status") {
            assert!(status_ours.contains(&f), "{name}: status.{f} missing");
        }
        let columns = |v: &Value| -> Vec<(String, String)> {
            v["additionalPrinterColumns"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|c| {
                            (
                                c["name"].as_str().unwrap_or_default().to_owned(),
                                c["jsonPath"].as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(
            columns(ours_v),
            columns(theirs_v),
            "{name}: printer columns"
        );
        assert_eq!(
            ours_v["subresources"],
            json!({"status": {}}),
            "{name}: status subresource"
        );
    }
}

/// A structural-schema check as the API server applies it: types, known fields (unless
/// preserve-unknown), required fields.
fn validate(v: &Value, schema: &Value, path: &str) -> Result<(), String> {
    if v.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    match schema["type"].as_str() {
        Some("object") => {
            let obj = v.as_object().ok_or(format!("{path}: not an object"))?;
            let props = schema["properties"].as_object();
            for (k, val) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => validate(val, s, &format!("{path}.{k}"))?,
                    None if preserve || props.is_none() => {}
                    None => return Err(format!("{path}.{k}: unknown field")),
                }
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap_or_default();
                if !obj.contains_key(r) {
                    return Err(format!("{path}.{r}: required"));
                }
            }
            Ok(())
        }
        Some("string") if !v.is_string() => Err(format!("{path}: not a string")),
        Some("boolean") if !v.is_boolean() => Err(format!("{path}: not a boolean")),
        Some("integer") if !v.is_i64() && !v.is_u64() => Err(format!("{path}: not an integer")),
        Some("array") => {
            let items = v.as_array().ok_or(format!("{path}: not an array"))?;
            for (i, item) in items.iter().enumerate() {
                validate(item, &schema["items"], &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[test]
fn the_schemas_accept_every_ratify_resource_of_the_seed() {
    let ours = generated();
    let md = std::fs::read_to_string(shared_file("seeds/ratify-on-azure.md")).unwrap();
    let mut checked = 0;
    for block in verdict_testkit::seeds::resource_blocks(&md) {
        // As the shell expands the variables (values are irrelevant to the schema).
        let mut text = block.clone();
        for var in [
            "IDENTITY_CLIENT_ID",
            "CLIENT_ID",
            "TENANT_ID",
            "AKV_NAME",
            "CERT_NAME",
            "KEY_ID",
            "KEY_NAME",
            "KEY_VER_NEW",
            "KEY_VER",
            "SUBJECT_DN",
            "ACR_NAME1",
            "ACR_NAME2",
        ] {
            text = text
                .replace(&format!("${{{var}}}"), "x")
                .replace(&format!("${var}"), "x");
        }
        let (docs, diags) = verdict_crds::parse_yaml(&text);
        if diags.iter().any(|d| d.is_error()) {
            continue; // the seed's mis-indented examples (crds/tests/seeds.rs covers them)
        }
        for doc in docs {
            let kind = doc["kind"].as_str().unwrap_or_default();
            let crd = ours
                .iter()
                .find(|c| c["spec"]["names"]["kind"] == kind)
                .unwrap_or_else(|| panic!("no CRD for kind {kind}"));
            let schema = &v1beta1(crd)["schema"]["openAPIV3Schema"];
            // apiVersion, kind and metadata are the API server's; the rest is the CRD's.
            let mut body = doc.clone();
            for k in ["apiVersion", "kind", "metadata"] {
                body.as_object_mut().unwrap().remove(k);
            }
            validate(&body, schema, kind).unwrap_or_else(|e| panic!("{e}\n{text}"));
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} seed resources checked");
    // And what the schema refuses: a misspelt spec field.
    let crd = ours
        .iter()
        .find(|c| c["spec"]["names"]["kind"] == "Store")
        .unwrap();
    let schema = &v1beta1(crd)["schema"]["openAPIV3Schema"];
    let bad = json!({"spec": {"name": "oras", "paramters": {}}});
    assert!(
        validate(&bad, schema, "Store")
            .unwrap_err()
            .contains("paramters")
    );
}

/// Objects as the loader writes them back (a round trip through the Rust types) still satisfy
/// the schema generated from those types.
#[test]
fn loaded_resources_round_trip_through_the_schema() {
    let ours = generated();
    let cert = verdict_testkit::pki::CertBuilder::code_signing("CN=round trip")
        .self_signed()
        .unwrap();
    let text = format!(
        "{}---\n{}",
        verdict_testkit::ratify::inline_kmp_yaml("k", None, "certificate", &cert.pem()),
        verdict_testkit::ratify::NotationVerifier::new("v", "k").yaml()
    );
    let report = verdict_crds::load_str("x.yaml", &text);
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    assert_eq!(report.resources.len(), 2);
    for l in &report.resources {
        let mut json = l.resource.to_json();
        let kind = json["kind"].as_str().unwrap().to_owned();
        let crd = ours
            .iter()
            .find(|c| c["spec"]["names"]["kind"] == kind.as_str())
            .unwrap();
        for k in ["apiVersion", "kind", "metadata"] {
            json.as_object_mut().unwrap().remove(k);
        }
        validate(&json, &v1beta1(crd)["schema"]["openAPIV3Schema"], &kind).unwrap();
    }
}
