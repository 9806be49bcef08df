//! The CustomResourceDefinitions of Ratify's v1beta1 kinds, generated from the spec and status
//! types the loader reads (kube's `CustomResource` derive over them), so the CRDs cannot drift
//! from what Verdict understands. Plugin `parameters` (and a plugin source's `authProvider`)
//! are free-form objects in the CRDs (`x-kubernetes-preserve-unknown-fields`), as in Ratify's:
//! the loader types and validates them, with file/line errors.
//!
//! Compatible with objects written for Ratify: the same group, kinds, plurals and scopes, the
//! served version `v1beta1` (Ratify's storage version), the same spec fields, the status
//! subresource and printer columns (`IsSuccess`, `Error`, `LastFetchedTime`), so applying these
//! over Ratify's CRDs adopts the objects a cluster already has.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt as _;
use kube_derive::CustomResource;
use schemars::Schema;

use crate::model::{
    KeyManagementProviderSpec, PluginStatus, PolicySpec, ProviderStatus, StoreSpec, VerifierSpec,
};

/// `{type: object, x-kubernetes-preserve-unknown-fields: true}`.
pub(crate) fn preserve_unknown(_: &mut schemars::SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Any JSON value, kept as is (a status's free-form `properties`).
pub(crate) fn preserve_unknown_any(_: &mut schemars::SchemaGenerator) -> Schema {
    schemars::json_schema!({
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// One kind: a wrapper of the loader's spec type that the derive annotates (the generated
/// object types are not used; their CRDs are). `plugin` kinds (Store, Verifier, Policy) have
/// Ratify's PluginStatus and its two printer columns; `provider` kinds (key management
/// providers) its ProviderStatus and a third column, LastFetchedTime.
macro_rules! crd_kind {
    ($wrapper:ident, $object:literal, $spec:ty, $kind:literal, $plural:literal, plugin $(, $namespaced:ident)?) => {
        crd_kind!(@emit $wrapper, $object, $spec, "PluginStatus", $kind, $plural, [
            r#"{"name":"IsSuccess","type":"boolean","jsonPath":".status.issuccess"}"#,
            r#"{"name":"Error","type":"string","jsonPath":".status.brieferror"}"#
        ] $(, $namespaced)?);
    };
    ($wrapper:ident, $object:literal, $spec:ty, $kind:literal, $plural:literal, provider $(, $namespaced:ident)?) => {
        crd_kind!(@emit $wrapper, $object, $spec, "ProviderStatus", $kind, $plural, [
            r#"{"name":"IsSuccess","type":"boolean","jsonPath":".status.issuccess"}"#,
            r#"{"name":"Error","type":"string","jsonPath":".status.brieferror"}"#,
            r#"{"name":"LastFetchedTime","type":"date","jsonPath":".status.lastfetchedtime"}"#
        ] $(, $namespaced)?);
    };
    (@emit $wrapper:ident, $object:literal, $spec:ty, $status:literal, $kind:literal, $plural:literal, [$($column:literal),*] $(, $namespaced:ident)?) => {
        #[derive(CustomResource, serde::Serialize, serde::Deserialize, Clone, Debug, schemars::JsonSchema)]
        #[kube(
            group = "config.ratify.deislabs.io",
            version = "v1beta1",
            kind = $kind,
            plural = $plural,
            root = $object,
            status = $status,
            $($namespaced,)?
            $(printcolumn = $column,)*
            crates(
                kube_core = "::kube_core",
                k8s_openapi = "::k8s_openapi",
                schemars = "::schemars",
                serde = "::serde",
                serde_json = "::serde_json"
            )
        )]
        pub struct $wrapper {
            #[serde(flatten)]
            pub spec: $spec,
        }
    };
}

#[rustfmt::skip]
#[allow(dead_code)] // the derive's object types: only their CRDs are used
mod generated {
    use super::*;

    crd_kind!(StoreCrd, "StoreObject", StoreSpec, "Store", "stores", plugin);
    crd_kind!(VerifierCrd, "VerifierObject", VerifierSpec, "Verifier", "verifiers", plugin);
    crd_kind!(KmpCrd, "KmpObject", KeyManagementProviderSpec, "KeyManagementProvider", "keymanagementproviders", provider);
    crd_kind!(PolicyCrd, "PolicyObject", PolicySpec, "Policy", "policies", plugin);
    crd_kind!(NamespacedStoreCrd, "NamespacedStoreObject", StoreSpec, "NamespacedStore", "namespacedstores", plugin, namespaced);
    crd_kind!(NamespacedVerifierCrd, "NamespacedVerifierObject", VerifierSpec, "NamespacedVerifier", "namespacedverifiers", plugin, namespaced);
    crd_kind!(NamespacedKmpCrd, "NamespacedKmpObject", KeyManagementProviderSpec, "NamespacedKeyManagementProvider", "namespacedkeymanagementproviders", provider, namespaced);
    crd_kind!(NamespacedPolicyCrd, "NamespacedPolicyObject", PolicySpec, "NamespacedPolicy", "namespacedpolicies", plugin, namespaced);
}

/// Every CRD Verdict reads, cluster kinds then namespaced ones.
pub fn crds() -> Vec<CustomResourceDefinition> {
    use generated::*;
    vec![
        StoreObject::crd(),
        VerifierObject::crd(),
        KmpObject::crd(),
        PolicyObject::crd(),
        NamespacedStoreObject::crd(),
        NamespacedVerifierObject::crd(),
        NamespacedKmpObject::crd(),
        NamespacedPolicyObject::crd(),
    ]
}

/// The CRDs as one multi-document YAML-compatible JSON stream (one JSON object per document,
/// which YAML reads), for `charts/verdict/crds/`.
pub fn crds_yaml() -> String {
    let mut out = String::from(
        "# Generated from the Rust types (crds/src/crd.rs): `cargo run -p verdict-crds --example gen-crds`.\n",
    );
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_json::to_string_pretty(&crd).unwrap_or_default());
        out.push('\n');
    }
    out
}
