//! Ratify's CRs from the cluster (in-cluster mode): every object of the eight v1beta1 kinds,
//! read through the same loader and validation as files (each object named `Kind/ns/name` in
//! diagnostics), and status written back like Ratify's (`issuccess`, `error`, `brieferror`,
//! and for key management providers `lastfetchedtime` and `properties`).

use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use sha2::{Digest as _, Sha256};

use crate::load::{LoadReport, load_str};
use crate::model::{API_VERSION, GROUP};

/// A kind Verdict reads: its name, plural and whether it is namespaced.
#[derive(Debug, Clone, Copy)]
pub struct ClusterKind {
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

/// The kinds read from the cluster (CertificateStore is not: it is deprecated and refused).
pub const KINDS: [ClusterKind; 8] = [
    ClusterKind {
        kind: "Store",
        plural: "stores",
        namespaced: false,
    },
    ClusterKind {
        kind: "Verifier",
        plural: "verifiers",
        namespaced: false,
    },
    ClusterKind {
        kind: "KeyManagementProvider",
        plural: "keymanagementproviders",
        namespaced: false,
    },
    ClusterKind {
        kind: "Policy",
        plural: "policies",
        namespaced: false,
    },
    ClusterKind {
        kind: "NamespacedStore",
        plural: "namespacedstores",
        namespaced: true,
    },
    ClusterKind {
        kind: "NamespacedVerifier",
        plural: "namespacedverifiers",
        namespaced: true,
    },
    ClusterKind {
        kind: "NamespacedKeyManagementProvider",
        plural: "namespacedkeymanagementproviders",
        namespaced: true,
    },
    ClusterKind {
        kind: "NamespacedPolicy",
        plural: "namespacedpolicies",
        namespaced: true,
    },
];

/// Why the cluster could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to the Kubernetes API (in-cluster service account or KUBECONFIG): {0}")]
    Connect(String),
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
}

impl ClusterError {
    /// API errors other than 4xx (and connection failures) may pass.
    pub fn is_transient(&self) -> bool {
        match self {
            ClusterError::Connect(_) => true,
            ClusterError::Api { source, .. } => match source {
                kube::Error::Api(status) => status.code >= 500 || status.code == 429,
                _ => true,
            },
        }
    }
}

/// One object as read: where it is, and the loader's document name for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub kind: &'static str,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The name diagnostics use (`Kind/name` or `Kind/namespace/name`).
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// What [`Cluster::load`] read.
#[derive(Debug)]
pub struct ClusterRead {
    pub report: LoadReport,
    /// Every object read, in the order of `report.files` (one file per object).
    pub objects: Vec<ObjectRef>,
    /// Changes whenever any object's spec (or an object) appears, changes or goes.
    pub digest: String,
}

/// The cluster's API.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

fn resource(kind: &ClusterKind) -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: "v1beta1".into(),
        api_version: API_VERSION.into(),
        kind: kind.kind.into(),
        plural: kind.plural.into(),
    }
}

impl Cluster {
    /// From the in-cluster service account, or KUBECONFIG outside a cluster.
    pub async fn connect() -> Result<Self, ClusterError> {
        let client = Client::try_default()
            .await
            .map_err(|e| ClusterError::Connect(e.to_string()))?;
        Ok(Cluster { client })
    }

    pub fn from_client(client: Client) -> Self {
        Cluster { client }
    }

    /// Every object of [`KINDS`] (all namespaces), loaded and validated as files are.
    pub async fn load(&self) -> Result<ClusterRead, ClusterError> {
        let mut objects = Vec::new();
        let mut documents = Vec::new();
        for kind in &KINDS {
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource(kind));
            let list =
                api.list(&ListParams::default())
                    .await
                    .map_err(|source| ClusterError::Api {
                        what: format!("listing {}", kind.plural),
                        source,
                    })?;
            for obj in list.items {
                let r = ObjectRef {
                    kind: kind.kind,
                    namespace: obj.metadata.namespace.clone(),
                    name: obj.metadata.name.clone().unwrap_or_default(),
                };
                let mut json = serde_json::json!({
                    "apiVersion": API_VERSION,
                    "kind": kind.kind,
                    "metadata": {"name": r.name},
                });
                if let Some(ns) = &r.namespace {
                    json["metadata"]["namespace"] = ns.clone().into();
                }
                if let Some(spec) = obj.data.get("spec") {
                    json["spec"] = spec.clone();
                }
                documents.push(serde_json::to_string_pretty(&json).unwrap_or_default());
                objects.push(r);
            }
        }
        // One multi-document text, so rules across objects (unique names, provider references)
        // apply as for a directory; each problem is then named by its object.
        let text = documents.join("\n---\n");
        let mut report = load_str("cluster", &text);
        for d in &mut report.diagnostics {
            if let Some(o) = d.document.and_then(|i| objects.get(i)) {
                d.file = Some(o.label().into());
            }
        }
        for l in &mut report.resources {
            if let Some(o) = objects.get(l.source.document) {
                l.source.file = o.label().into();
            }
        }
        let canonical = text;
        Ok(ClusterRead {
            report,
            objects,
            digest: hex::encode(Sha256::digest(canonical.as_bytes())),
        })
    }

    /// Merges `status` into the object's status subresource.
    pub async fn write_status(
        &self,
        object: &ObjectRef,
        status: serde_json::Value,
    ) -> Result<(), ClusterError> {
        let Some(kind) = KINDS.iter().find(|k| k.kind == object.kind) else {
            return Ok(());
        };
        let ar = resource(kind);
        let api: Api<DynamicObject> = match &object.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        };
        let patch = serde_json::json!({"status": status});
        api.patch_status(&object.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| ClusterError::Api {
                what: format!("writing the status of {}", object.label()),
                source,
            })?;
        Ok(())
    }
}

/// The Lease that elects one replica to write status (`coordination.k8s.io/v1`): held by
/// `identity` while it renews it within `duration`; taken over once it has not been renewed.
pub struct Election {
    api: Api<k8s_openapi::api::coordination::v1::Lease>,
    name: String,
    identity: String,
    duration: std::time::Duration,
}

impl Election {
    pub fn new(
        cluster: &Cluster,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: std::time::Duration,
    ) -> Self {
        Election {
            api: Api::namespaced(cluster.client.clone(), namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
        }
    }

    /// Acquires or renews the lease; true while this replica holds it.
    pub async fn try_lead(&self) -> Result<bool, ClusterError> {
        use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
        let now = k8s_openapi::jiff::Timestamp::now();
        let seconds = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX);
        let spec = LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(seconds),
            renew_time: Some(MicroTime(now)),
            ..LeaseSpec::default()
        };
        let api_err = |what: &str| {
            let what = format!("{what} lease {}", self.name);
            move |source| ClusterError::Api { what, source }
        };
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(api_err("reading"))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            return match self.api.create(&Default::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(api_err("creating")(e)),
            };
        };
        let held = lease.spec.as_ref();
        let holder = held.and_then(|s| s.holder_identity.as_deref());
        let expired = held
            .and_then(|s| {
                s.renew_time
                    .as_ref()
                    .map(|t| (t.0, s.lease_duration_seconds.unwrap_or(seconds)))
            })
            .is_none_or(|(renewed, secs)| {
                renewed
                    .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(i64::from(
                        secs,
                    )))
                    .is_ok_and(|until| until < now)
            });
        if holder != Some(self.identity.as_str()) && !expired {
            return Ok(false);
        }
        lease.spec = Some(spec);
        // resourceVersion kept: a concurrent taker makes this a 409, and it leads instead.
        match self
            .api
            .replace(&self.name, &Default::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(api_err("renewing")(e)),
        }
    }
}
