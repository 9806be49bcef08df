//! In-cluster mode against a mocked Kubernetes API server (an HTTP fake of the list, status and
//! Lease endpoints kube-rs calls): `verdict serve --kubernetes` reads Ratify's CRs, applies
//! their creation, update and deletion while running, and writes their status like Ratify —
//! `issuccess: false` with the error for an invalid CR, while the last good configuration keeps
//! serving.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde_json::{Value, json};
use verdict_testkit::DockerRegistry;
use verdict_testkit::notation::push_notation_signature;
use verdict_testkit::pki::{CertBuilder, KeyAlg, TestCert};
use verdict_testkit::serve::{ServeOptions, VerdictServer};

const GROUP_PATH: &str = "/apis/config.ratify.deislabs.io/v1beta1";

/// The API server's state: objects by plural then name (cluster-scoped kinds only here), the
/// status patches received, the Lease.
#[derive(Default)]
struct Api {
    objects: BTreeMap<String, BTreeMap<String, Value>>,
    status_patches: Vec<(String, String, Value)>,
    lease: Option<Value>,
    version: u64,
}

type Shared = Arc<Mutex<Api>>;

fn kind_of(plural: &str) -> &'static str {
    match plural {
        "stores" => "Store",
        "verifiers" => "Verifier",
        "keymanagementproviders" => "KeyManagementProvider",
        "policies" => "Policy",
        "namespacedstores" => "NamespacedStore",
        "namespacedverifiers" => "NamespacedVerifier",
        "namespacedkeymanagementproviders" => "NamespacedKeyManagementProvider",
        _ => "NamespacedPolicy",
    }
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{what} not found"), "reason": "NotFound", "code": 404}),
        ),
    )
        .into_response()
}

async fn list(State(api): State<Shared>, Path(plural): Path<String>) -> Response {
    let api = api.lock().unwrap();
    let items: Vec<Value> = api
        .objects
        .get(&plural)
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    Json(json!({
        "apiVersion": "config.ratify.deislabs.io/v1beta1",
        "kind": format!("{}List", kind_of(&plural)),
        "metadata": {"resourceVersion": api.version.to_string()},
        "items": items,
    }))
    .into_response()
}

async fn patch_status(
    State(api): State<Shared>,
    Path((plural, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let mut api = api.lock().unwrap();
    let Some(obj) = api.objects.get(&plural).and_then(|m| m.get(&name)).cloned() else {
        return not_found(&name);
    };
    api.status_patches
        .push((plural, name, body["status"].clone()));
    let mut obj = obj;
    obj["status"] = body["status"].clone();
    Json(obj).into_response()
}

async fn get_lease(State(api): State<Shared>) -> Response {
    match api.lock().unwrap().lease.clone() {
        Some(l) => Json(l).into_response(),
        None => not_found("lease"),
    }
}

async fn put_lease(State(api): State<Shared>, Json(mut body): Json<Value>) -> Response {
    let mut api = api.lock().unwrap();
    api.version += 1;
    body["metadata"]["resourceVersion"] = api.version.to_string().into();
    api.lease = Some(body.clone());
    (StatusCode::CREATED, Json(body)).into_response()
}

struct FakeApiServer {
    api: Shared,
    url: String,
    _task: tokio::task::JoinHandle<()>,
}

impl FakeApiServer {
    async fn start() -> Result<Self> {
        let api: Shared = Arc::default();
        let app = axum::Router::new()
            .route(&format!("{GROUP_PATH}/{{plural}}"), get(list))
            .route(
                &format!("{GROUP_PATH}/{{plural}}/{{name}}/status"),
                patch(patch_status),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
                get(get_lease).put(put_lease),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                axum::routing::post(put_lease),
            )
            .with_state(Arc::clone(&api));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeApiServer {
            api,
            url,
            _task: task,
        })
    }

    fn put(&self, plural: &str, object: Value) {
        let mut api = self.api.lock().unwrap();
        api.version += 1;
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut object = object;
        object["metadata"]["resourceVersion"] = api.version.to_string().into();
        api.objects
            .entry(plural.to_owned())
            .or_default()
            .insert(name, object);
    }

    fn delete(&self, plural: &str, name: &str) {
        let mut api = self.api.lock().unwrap();
        api.version += 1;
        if let Some(m) = api.objects.get_mut(plural) {
            m.remove(name);
        }
    }

    /// The last status written for `plural/name`.
    fn status(&self, plural: &str, name: &str) -> Option<Value> {
        self.api
            .lock()
            .unwrap()
            .status_patches
            .iter()
            .rev()
            .find(|(p, n, _)| p == plural && n == name)
            .map(|(_, _, s)| s.clone())
    }

    fn kubeconfig(&self, dir: &std::path::Path) -> Result<std::path::PathBuf> {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: test\n",
                self.url
            ),
        )?;
        Ok(path)
    }
}

fn kmp(name: &str, cert: &TestCert) -> Value {
    json!({"apiVersion": "config.ratify.deislabs.io/v1beta1", "kind": "KeyManagementProvider",
        "metadata": {"name": name, "uid": "u1", "generation": 1},
        "spec": {"type": "inline", "parameters": {"contentType": "certificate", "value": cert.pem()}}})
}

fn verifier(name: &str, kmp: &str) -> Value {
    json!({"apiVersion": "config.ratify.deislabs.io/v1beta1", "kind": "Verifier",
        "metadata": {"name": name},
        "spec": {"name": "notation", "artifactTypes": "application/vnd.cncf.notary.signature",
            "parameters": {"verificationCertStores": {"certs": [kmp]},
                "trustPolicyDoc": {"version": "1.0", "trustPolicies": [{"name": "default",
                    "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
                    "trustStores": ["ca:certs"], "trustedIdentities": ["*"]}]}}}})
}

async fn until<F: Fn() -> Option<bool>>(what: &str, within: Duration, f: F) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < within {
        if f() == Some(true) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} within {within:?}")
}

#[tokio::test]
async fn crs_from_the_cluster_configure_a_running_server_and_get_ratify_status() -> Result<()> {
    let registry = DockerRegistry::start().await?;
    let alice = CertBuilder::code_signing("CN=alice")
        .key_alg(KeyAlg::EcP256)
        .self_signed()?;
    let bob = CertBuilder::code_signing("CN=bob")
        .key_alg(KeyAlg::EcP256)
        .self_signed()?;
    let client = registry.client();
    let image = client.push_image("k8s/app", "v1").await?;
    push_notation_signature(&client, "k8s/app", &image, &alice).await?;
    let key = format!("{}/k8s/app@{}", registry.host_port(), image.digest);

    let api = FakeApiServer::start().await?;
    api.put("keymanagementproviders", kmp("kmp-certs", &alice));
    api.put("verifiers", verifier("verifier-notation", "kmp-certs"));
    let dir = tempfile::tempdir()?;
    let kubeconfig = api.kubeconfig(dir.path())?;
    let server = VerdictServer::start(
        ServeOptions::new(env!("CARGO_BIN_EXE_verdict"), String::new())
            .without_config_files()
            .plain_http(&registry.host_port())
            .envs([("KUBECONFIG", kubeconfig.as_os_str())])
            .args([
                "--kubernetes",
                "--config-poll-ms",
                "200",
                "--deny-ttl-secs",
                "1",
            ]),
    )
    .await
    .context("verdict serve --kubernetes")?;
    assert_eq!(
        server.verify_one(&key).await?,
        Ok(true),
        "{}",
        server.log_tail()
    );

    // Status like Ratify's, written by the leader (this replica, once it took the Lease).
    until("status written", Duration::from_secs(10), || {
        Some(api.status("verifiers", "verifier-notation")?["issuccess"] == true)
    })
    .await?;
    let kmp_status = api
        .status("keymanagementproviders", "kmp-certs")
        .context("KMP status")?;
    assert_eq!(kmp_status["issuccess"], true, "{kmp_status}");
    assert!(kmp_status["lastfetchedtime"].is_string(), "{kmp_status}");

    // Created: a Store (the ORAS store, as the seed's); its status is written, lookups go on.
    api.put(
        "stores",
        json!({"apiVersion": "config.ratify.deislabs.io/v1beta1", "kind": "Store",
            "metadata": {"name": "store-oras"},
            "spec": {"name": "oras", "parameters": {"cosignEnabled": true}}}),
    );
    until("Store status", Duration::from_secs(10), || {
        Some(api.status("stores", "store-oras")?["issuccess"] == true)
    })
    .await?;
    assert_eq!(server.verify_one(&key).await?, Ok(true), "with the Store");

    // Updated: the provider now holds bob's certificate → alice's image is denied.
    api.put("keymanagementproviders", kmp("kmp-certs", &bob));
    let start = Instant::now();
    while server.verify_one(&key).await? != Ok(false) {
        if start.elapsed() > Duration::from_secs(5) {
            bail!("the updated KMP was not applied\n{}", server.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An invalid CR: its status says why; the configuration in force keeps serving.
    let mut broken = verifier("verifier-broken", "kmp-certs");
    broken["spec"]["parameters"]["trustPolicyDoc"]["version"] = json!("9.9");
    api.put("verifiers", broken);
    until("invalid CR status", Duration::from_secs(10), || {
        Some(api.status("verifiers", "verifier-broken")?["issuccess"] == false)
    })
    .await?;
    let s = api
        .status("verifiers", "verifier-broken")
        .context("status")?;
    assert!(
        s["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the error is named: {s}"
    );
    assert_eq!(
        server.verify_one(&key).await?,
        Ok(false),
        "still the last good configuration"
    );

    // Deleted: the invalid CR and the Store are gone, alice's certificate returns → allowed.
    api.delete("verifiers", "verifier-broken");
    api.delete("stores", "store-oras");
    api.put("keymanagementproviders", kmp("kmp-certs", &alice));
    let start = Instant::now();
    while server.verify_one(&key).await? != Ok(true) {
        if start.elapsed() > Duration::from_secs(5) {
            bail!(
                "the fixed configuration was not applied\n{}",
                server.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
