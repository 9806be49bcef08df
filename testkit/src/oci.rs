//! A small OCI distribution client for tests (plain HTTP, deadlines on every call): blobs,
//! manifests, images, artifacts with `subject` plus the referrers tag-schema index, OCI layouts
//! pushed byte-exact, and Cosign's legacy `sha256-<hex>.sig` signature tags.
//!
//! Over 600 lines because a complete small registry client for tests (blobs, manifests, referrers,
//! layouts, Cosign tags).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::process::http_client;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI empty descriptor media type (`{}`).
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Uncompressed OCI layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Notation signature artifact type (and legacy config media type).
pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
/// Cosign simple-signing payload layer.
pub const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 Cosign signature.
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `{}` blob.
pub const EMPTY_JSON: &[u8] = b"{}";
/// Digest of `{}`.
pub const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Every manifest type this client asks for.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.artifact.manifest.v1+json";

/// An OCI content descriptor (`artifactType`/`annotations` only when set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Artifact type (referrers index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    /// Descriptor of `bytes` with `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest: sha256_digest(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        }
    }

    /// The hex part of the digest.
    pub fn hex(&self) -> &str {
        self.digest.split_once(':').map_or("", |(_, h)| h)
    }

    /// As a JSON value with only mediaType, digest and size (the form used for `subject`).
    pub fn plain_json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// A manifest as the registry served it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedManifest {
    /// Body bytes, unchanged.
    pub bytes: Vec<u8>,
    /// `Content-Type`.
    pub media_type: String,
    /// `Docker-Content-Digest` (checked against the body).
    pub digest: String,
}

impl FetchedManifest {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.bytes).context("manifest body is not JSON")
    }

    /// Descriptor (mediaType, digest, size) of this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            artifact_type: None,
            annotations: None,
        }
    }
}

/// One manifest pushed by [`OciClient::push_oci_layout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedManifest {
    /// Tag or digest it was pushed under.
    pub reference: String,
    /// Its descriptor (media type from the manifest body, else from the layout).
    pub descriptor: Descriptor,
}

/// `sha256:<hex of SHA-256(bytes)>`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The referrers tag-schema tag for `digest` (`sha256:abc` → `sha256-abc`): algorithm truncated to
/// 32 chars, encoded part to 64, characters invalid in tags replaced by `-`.
pub fn referrers_tag(digest: &str) -> Result<String> {
    let (alg, enc) = digest
        .split_once(':')
        .ok_or_else(|| anyhow!("digest {digest:?} has no `<algorithm>:` prefix"))?;
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .take(max)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    Ok(format!("{}-{}", clean(alg, 32), clean(enc, 64)))
}

/// Cosign's legacy signature tag for `digest`: `sha256-<hex>.sig`.
pub fn cosign_signature_tag(digest: &str) -> Result<String> {
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| anyhow!("digest {digest:?} has no `<algorithm>:` prefix"))?;
    Ok(format!("{alg}-{hex}.sig"))
}

/// The simple-signing payload real cosign writes: `critical.identity.docker-reference` (repository
/// without tag), `critical.image.docker-manifest-digest`, `optional: null`.
pub fn cosign_payload(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Random bytes from aws-lc-rs.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // Fails only if the OS RNG is unavailable, which makes every test meaningless anyway.
    aws_lc_rs::rand::fill(&mut buf).expect("system random number generator");
    buf
}

/// A test registry client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OciClient {
    base: String,
    http: reqwest::Client,
    bearer: Option<String>,
    maintain_referrers_tag: bool,
}

impl OciClient {
    /// A client for `http://<host_port>` with a 30 s deadline per request; maintains the
    /// referrers tag-schema index when pushing artifacts with `subject`.
    pub fn new(host_port: &str) -> Self {
        Self {
            base: format!("http://{host_port}"),
            http: http_client(Duration::from_secs(30)).expect("reqwest client builds"),
            bearer: None,
            maintain_referrers_tag: true,
        }
    }

    /// Whether [`push_artifact`](Self::push_artifact) updates the `sha256-<hex>` index
    /// (turn off for registries with a native referrers API).
    pub fn with_referrers_tag_schema(mut self, on: bool) -> Self {
        self.maintain_referrers_tag = on;
        self
    }

    /// Sends `Authorization: Bearer <token>` on every request.
    pub fn with_bearer_token(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_string());
        self
    }

    /// Per-request deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = http_client(timeout).expect("reqwest client builds");
        self
    }

    /// `http://host:port`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn req(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, url);
        match &self.bearer {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{}", self.base, location)
        }
    }

    /// `HEAD /v2/<repo>/blobs/<digest>` → exists?
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let resp = self.req(reqwest::Method::HEAD, &url).send().await?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => bail!("HEAD {url}: unexpected status {s}"),
        }
    }

    /// Uploads `bytes` monolithically (POST + PUT) unless the blob exists; returns its digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Result<String> {
        let digest = sha256_digest(bytes);
        if self.blob_exists(repo, &digest).await? {
            return Ok(digest);
        }
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let resp = self.req(reqwest::Method::POST, &url).send().await?;
        let status = resp.status().as_u16();
        ensure!(
            status == 202,
            "POST {url}: expected 202, got {status}: {}",
            resp.text().await.unwrap_or_default()
        );
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow!("POST {url}: 202 without Location"))?;
        let mut put_url = self.absolute(location);
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str("digest=");
        put_url.push_str(&digest);
        let resp = self
            .req(reqwest::Method::PUT, &put_url)
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let got = header(&resp, "docker-content-digest");
        ensure!(
            status == 201,
            "PUT blob {digest} to {repo}: expected 201, got {status}: {}",
            resp.text().await.unwrap_or_default()
        );
        if let Some(got) = got {
            ensure!(
                got == digest,
                "registry stored blob as {got}, expected {digest}"
            );
        }
        Ok(digest)
    }

    /// PUTs `bytes` as a manifest under `reference` (tag or digest) with `Content-Type: media_type`;
    /// checks 201 and that `Docker-Content-Digest` is the SHA-256 of the bytes. Returns the digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let digest = sha256_digest(bytes);
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let resp = self
            .req(reqwest::Method::PUT, &url)
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let got = header(&resp, "docker-content-digest");
        ensure!(
            status == 201,
            "PUT {url} ({media_type}): expected 201, got {status}: {}",
            resp.text().await.unwrap_or_default()
        );
        let got = got.ok_or_else(|| anyhow!("PUT {url}: 201 without Docker-Content-Digest"))?;
        ensure!(
            got == digest,
            "PUT {url}: Docker-Content-Digest {got} != {digest} (registry changed the bytes)"
        );
        Ok(digest)
    }

    /// Serialises `manifest` and pushes it; returns its descriptor.
    pub async fn push_manifest_json(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        manifest: &Value,
    ) -> Result<Descriptor> {
        let bytes = serde_json::to_vec(manifest)?;
        self.push_manifest(repo, reference, media_type, &bytes)
            .await?;
        Ok(Descriptor::of(media_type, &bytes))
    }

    /// Pushes a small image (one random 512-byte layer, an OCI config, an OCI image manifest)
    /// tagged `tag`. Every call makes a different digest.
    pub async fn push_image(&self, repo: &str, tag: &str) -> Result<Descriptor> {
        self.push_image_as(repo, tag, OCI_MANIFEST).await
    }

    /// Like [`push_image`](Self::push_image) with a Docker schema 2 manifest.
    pub async fn push_docker_image(&self, repo: &str, tag: &str) -> Result<Descriptor> {
        self.push_image_as(repo, tag, DOCKER_MANIFEST).await
    }

    async fn push_image_as(
        &self,
        repo: &str,
        tag: &str,
        manifest_type: &str,
    ) -> Result<Descriptor> {
        let (config_type, layer_type) = if manifest_type == DOCKER_MANIFEST {
            (DOCKER_CONFIG, DOCKER_LAYER)
        } else {
            (OCI_CONFIG, OCI_LAYER_TAR)
        };
        let layer = random_bytes(512);
        let layer_digest = self.push_blob(repo, &layer).await?;
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }))?;
        self.push_blob(repo, &config).await?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": Descriptor::of(config_type, &config).plain_json(),
            "layers": [Descriptor::of(layer_type, &layer).plain_json()],
        });
        self.push_manifest_json(repo, tag, manifest_type, &manifest)
            .await
    }

    /// Pushes an OCI image index over `children` (already pushed) tagged `tag`.
    pub async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        children: &[Descriptor],
    ) -> Result<Descriptor> {
        let manifests: Vec<Value> = children
            .iter()
            .map(|c| {
                let mut v = c.plain_json();
                v["platform"] = json!({"architecture": "amd64", "os": "linux"});
                v
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.push_manifest_json(repo, tag, OCI_INDEX, &index).await
    }

    /// Pushes an artifact: an OCI image manifest with `subject`, config `{}` of `config_media_type`
    /// and `layers`; with `artifact_type = Some(t)` it carries `"artifactType": t` (Notation's
    /// current form, config usually [`OCI_EMPTY`]); with `None` it is the legacy form whose type
    /// is the config media type. Pushed by digest; when tag-schema maintenance is on, the
    /// descriptor (with artifactType and annotations) is appended to the `sha256-<hex>` index.
    /// Returns that descriptor.
    pub async fn push_artifact(
        &self,
        repo: &str,
        subject: &Descriptor,
        artifact_type: Option<&str>,
        config_media_type: &str,
        layers: Vec<(String, Vec<u8>)>,
        annotations: BTreeMap<String, String>,
    ) -> Result<Descriptor> {
        self.push_blob(repo, EMPTY_JSON).await?;
        let mut layer_descs = Vec::with_capacity(layers.len());
        for (mt, bytes) in &layers {
            self.push_blob(repo, bytes).await?;
            layer_descs.push(Descriptor::of(mt, bytes).plain_json());
        }
        let mut manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST});
        if let Some(t) = artifact_type {
            manifest["artifactType"] = json!(t);
        }
        manifest["config"] = Descriptor::of(config_media_type, EMPTY_JSON).plain_json();
        if config_media_type == OCI_EMPTY {
            manifest["config"]["data"] = json!("e30=");
        }
        manifest["layers"] = Value::Array(layer_descs);
        manifest["subject"] = subject.plain_json();
        if !annotations.is_empty() {
            manifest["annotations"] = json!(annotations);
        }
        let bytes = serde_json::to_vec(&manifest)?;
        let digest = sha256_digest(&bytes);
        self.push_manifest(repo, &digest, OCI_MANIFEST, &bytes)
            .await?;
        let mut desc = Descriptor::of(OCI_MANIFEST, &bytes);
        desc.artifact_type = Some(artifact_type.unwrap_or(config_media_type).to_string());
        desc.annotations = (!annotations.is_empty()).then_some(annotations);
        if self.maintain_referrers_tag {
            self.add_to_referrers_tag(repo, &subject.digest, &desc)
                .await?;
        }
        Ok(desc)
    }

    /// Appends `referrer` to the tag-schema index `sha256-<subject hex>` (creating it if absent;
    /// no-op if the digest is already listed). Returns the new index descriptor.
    pub async fn add_to_referrers_tag(
        &self,
        repo: &str,
        subject_digest: &str,
        referrer: &Descriptor,
    ) -> Result<Descriptor> {
        let tag = referrers_tag(subject_digest)?;
        let mut index = match self.referrers_tag_index(repo, subject_digest).await? {
            Some(v) => v,
            None => json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
        };
        let manifests = index
            .get_mut("manifests")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| anyhow!("{repo}:{tag} is not an image index (no manifests array)"))?;
        let present = manifests
            .iter()
            .any(|m| m.get("digest").and_then(Value::as_str) == Some(referrer.digest.as_str()));
        if !present {
            manifests.push(serde_json::to_value(referrer)?);
        }
        self.push_manifest_json(repo, &tag, OCI_INDEX, &index).await
    }

    /// The tag-schema referrers index of `subject_digest`, or `None` if the tag does not exist.
    pub async fn referrers_tag_index(
        &self,
        repo: &str,
        subject_digest: &str,
    ) -> Result<Option<Value>> {
        let tag = referrers_tag(subject_digest)?;
        match self.try_get_manifest(repo, &tag).await? {
            Some(m) => Ok(Some(m.json()?)),
            None => Ok(None),
        }
    }

    /// Raw `GET /v2/<repo>/referrers/<digest>`: (status, content type, body).
    pub async fn referrers_api(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<(u16, Option<String>, Vec<u8>)> {
        let url = format!("{}/v2/{repo}/referrers/{digest}", self.base);
        let resp = self.req(reqwest::Method::GET, &url).send().await?;
        let status = resp.status().as_u16();
        let ct = header(&resp, "content-type");
        Ok((status, ct, resp.bytes().await?.to_vec()))
    }

    /// `GET /v2/<repo>/manifests/<reference>`; fails on 404 and checks the digest header against
    /// the body.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<FetchedManifest> {
        self.try_get_manifest(repo, reference)
            .await?
            .ok_or_else(|| anyhow!("manifest {repo}:{reference} not found (404)"))
    }

    /// Like [`get_manifest`](Self::get_manifest) but `None` on 404.
    pub async fn try_get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<FetchedManifest>> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let resp = self
            .req(reqwest::Method::GET, &url)
            .header("accept", MANIFEST_ACCEPT)
            .send()
            .await?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        let media_type = header(&resp, "content-type").unwrap_or_default();
        let got = header(&resp, "docker-content-digest");
        ensure!(
            status == 200,
            "GET {url}: expected 200, got {status}: {}",
            resp.text().await.unwrap_or_default()
        );
        let bytes = resp.bytes().await?.to_vec();
        let digest = sha256_digest(&bytes);
        if let Some(got) = got {
            ensure!(
                got == digest,
                "GET {url}: Docker-Content-Digest {got} != body digest {digest}"
            );
        }
        if reference.starts_with("sha256:") {
            ensure!(
                reference == digest,
                "GET {url}: body digest {digest} != requested digest"
            );
        }
        Ok(Some(FetchedManifest {
            bytes,
            media_type,
            digest,
        }))
    }

    /// `HEAD /v2/<repo>/manifests/<reference>` → descriptor from the headers, `None` on 404.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<Descriptor>> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let resp = self
            .req(reqwest::Method::HEAD, &url)
            .header("accept", MANIFEST_ACCEPT)
            .send()
            .await?;
        match resp.status().as_u16() {
            404 => Ok(None),
            200 => {
                let digest = header(&resp, "docker-content-digest")
                    .ok_or_else(|| anyhow!("HEAD {url}: no Docker-Content-Digest"))?;
                let size = header(&resp, "content-length")
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| anyhow!("HEAD {url}: no Content-Length"))?;
                Ok(Some(Descriptor {
                    media_type: header(&resp, "content-type").unwrap_or_default(),
                    digest,
                    size,
                    artifact_type: None,
                    annotations: None,
                }))
            }
            s => bail!("HEAD {url}: unexpected status {s}"),
        }
    }

    /// `DELETE /v2/<repo>/manifests/<digest>` (expects 202).
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<()> {
        let url = format!("{}/v2/{repo}/manifests/{digest}", self.base);
        let resp = self.req(reqwest::Method::DELETE, &url).send().await?;
        let status = resp.status().as_u16();
        ensure!(
            status == 202,
            "DELETE {url}: expected 202, got {status}: {}",
            resp.text().await.unwrap_or_default()
        );
        Ok(())
    }

    /// `GET /v2/<repo>/blobs/<digest>`, checked against the digest.
    pub async fn get_blob(&self, repo: &str, digest: &str) -> Result<Vec<u8>> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let resp = self.req(reqwest::Method::GET, &url).send().await?;
        let status = resp.status().as_u16();
        ensure!(status == 200, "GET {url}: expected 200, got {status}");
        let bytes = resp.bytes().await?.to_vec();
        let got = sha256_digest(&bytes);
        ensure!(got == digest, "GET {url}: body digest {got} != {digest}");
        Ok(bytes)
    }

    /// `GET /v2/<repo>/tags/list` (empty when the repository has no tags).
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let url = format!("{}/v2/{repo}/tags/list", self.base);
        let resp = self.req(reqwest::Method::GET, &url).send().await?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(Vec::new());
        }
        ensure!(status == 200, "GET {url}: expected 200, got {status}");
        let tags: Tags = resp.json().await.context("tags/list body")?;
        Ok(tags.tags.unwrap_or_default())
    }

    /// Pushes an OCI image layout byte-exact: every blob and manifest unchanged; tags from
    /// `org.opencontainers.image.ref.name` (else by digest); top-level manifests before indexes,
    /// and an index's children (present in the layout) before the index.
    pub async fn push_oci_layout(&self, dir: &Path, repo: &str) -> Result<Vec<PushedManifest>> {
        let index_path = dir.join("index.json");
        let index: Value = serde_json::from_slice(
            &std::fs::read(&index_path)
                .with_context(|| format!("reading {}", index_path.display()))?,
        )
        .with_context(|| format!("parsing {}", index_path.display()))?;
        let mut top: Vec<Descriptor> = serde_json::from_value(
            index
                .get("manifests")
                .cloned()
                .ok_or_else(|| anyhow!("{} has no manifests", index_path.display()))?,
        )?;
        top.sort_by_key(|d| d.media_type.contains("index") || d.media_type.contains("list"));
        let mut state = LayoutPush {
            dir,
            repo,
            done: HashSet::new(),
            pushed: Vec::new(),
        };
        for d in &top {
            let reference = d
                .annotations
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.ref.name"))
                .cloned()
                .unwrap_or_else(|| d.digest.clone());
            self.push_layout_manifest(&mut state, d, &reference).await?;
        }
        Ok(state.pushed)
    }

    async fn push_layout_manifest(
        &self,
        st: &mut LayoutPush<'_>,
        desc: &Descriptor,
        reference: &str,
    ) -> Result<()> {
        let raw = st.blob(&desc.digest)?;
        let m: Value = serde_json::from_slice(&raw)
            .with_context(|| format!("manifest {} in the layout is not JSON", desc.digest))?;
        let media_type = m
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(&desc.media_type)
            .to_string();
        if !st.done.contains(&desc.digest) {
            if let Some(children) = m.get("manifests").and_then(Value::as_array) {
                for child in children {
                    let child: Descriptor = serde_json::from_value(child.clone())?;
                    if st.has_blob(&child.digest) {
                        Box::pin(self.push_layout_manifest(st, &child, &child.digest.clone()))
                            .await?;
                    }
                }
            }
            if let Some(config) = m.get("config") {
                let mut blobs = vec![config.clone()];
                blobs.extend(
                    m.get("layers")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                );
                for b in blobs {
                    let digest = b
                        .get("digest")
                        .and_then(Value::as_str)
                        .ok_or_else(|| anyhow!("descriptor without digest in {}", desc.digest))?;
                    let bytes = st.blob(digest).with_context(|| {
                        format!(
                            "manifest {} references a blob missing from the layout",
                            desc.digest
                        )
                    })?;
                    self.push_blob(st.repo, &bytes).await?;
                }
            }
            st.done.insert(desc.digest.clone());
        }
        let digest = self
            .push_manifest(st.repo, reference, &media_type, &raw)
            .await?;
        ensure!(
            digest == desc.digest,
            "layout blob {} hashes to {digest}",
            desc.digest
        );
        st.pushed.push(PushedManifest {
            reference: reference.to_string(),
            descriptor: Descriptor {
                media_type,
                digest,
                size: raw.len() as u64,
                artifact_type: None,
                annotations: None,
            },
        });
        Ok(())
    }

    /// Adds a Cosign signature in the legacy tag layout: tag `sha256-<hex>.sig` of `subject`,
    /// one `simplesigning` layer per signature (blob = `payload`, annotation
    /// `dev.cosignproject.cosign/signature` = `signature_b64`, plus `extra_annotations` such as
    /// `dev.sigstore.cosign/certificate`). Appends a layer when the tag exists (identical layers
    /// are not duplicated). Returns the new signature manifest descriptor.
    pub async fn push_cosign_signature(
        &self,
        repo: &str,
        subject: &Descriptor,
        payload: &[u8],
        signature_b64: &str,
        extra_annotations: BTreeMap<String, String>,
    ) -> Result<Descriptor> {
        let tag = cosign_signature_tag(&subject.digest)?;
        let mut layers: Vec<Value> = match self.try_get_manifest(repo, &tag).await? {
            Some(existing) => existing
                .json()?
                .get("layers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            None => Vec::new(),
        };
        self.push_blob(repo, payload).await?;
        let mut annotations = extra_annotations;
        annotations.insert(
            COSIGN_SIGNATURE_ANNOTATION.to_string(),
            signature_b64.to_string(),
        );
        let mut layer = Descriptor::of(COSIGN_SIMPLESIGNING, payload).plain_json();
        layer["annotations"] = json!(annotations);
        if !layers.contains(&layer) {
            layers.push(layer);
        }
        let diff_ids: Vec<Value> = layers
            .iter()
            .filter_map(|l| l.get("digest").cloned())
            .collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {},
        }))?;
        self.push_blob(repo, &config).await?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": Descriptor::of(OCI_CONFIG, &config).plain_json(),
            "layers": layers,
        });
        self.push_manifest_json(repo, &tag, OCI_MANIFEST, &manifest)
            .await
    }
}

struct LayoutPush<'a> {
    dir: &'a Path,
    repo: &'a str,
    done: HashSet<String>,
    pushed: Vec<PushedManifest>,
}

impl LayoutPush<'_> {
    fn blob_path(&self, digest: &str) -> Result<std::path::PathBuf> {
        let (alg, hex) = digest
            .split_once(':')
            .ok_or_else(|| anyhow!("bad digest {digest:?} in layout {}", self.dir.display()))?;
        ensure!(
            !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "bad digest {digest:?} in layout {}",
            self.dir.display()
        );
        Ok(self.dir.join("blobs").join(alg).join(hex))
    }

    fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    fn blob(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let got = sha256_digest(&bytes);
        ensure!(got == digest, "{} hashes to {got}", path.display());
        Ok(bytes)
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
