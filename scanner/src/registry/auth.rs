//! Credential providers: anonymous, static, and Docker config files (`~/.docker/config.json` or a
//! mounted Kubernetes `dockerconfigjson` secret). Providers are asked per registry on every token
//! fetch, so rotated files and tokens take effect without restarting.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use base64::Engine as _;
use futures::future::BoxFuture;

use super::RegistryError;

/// Credentials for one registry. `Debug` never prints secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials (anonymous token flow where the registry allows it).
    Anonymous,
    /// User name and password (or an ACR refresh token with the all-zero GUID user).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token server by POST.
    IdentityToken(String),
    /// A registry access token sent as is (`registrytoken`).
    BearerToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => write!(f, "Anonymous"),
            Credentials::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credentials::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
            Credentials::BearerToken(_) => write!(f, "BearerToken(<redacted>)"),
        }
    }
}

/// Supplies credentials per registry host (as written in references, e.g. `docker.io`).
pub trait AuthProvider: Send + Sync + fmt::Debug {
    /// A short name for logs and errors (`anonymous`, `dockerConfig`, ...).
    fn name(&self) -> &str;

    /// The credentials to use for `registry`.
    fn credentials<'a>(
        &'a self,
        registry: &'a str,
    ) -> BoxFuture<'a, Result<Credentials, RegistryError>>;

    /// The credentials for `registry` when its Bearer challenge sent us to `endpoint` (the ACR
    /// provider exchanges an Entra token at the realm's host). Default: [`Self::credentials`].
    fn token_credentials<'a>(
        &'a self,
        registry: &'a str,
        _endpoint: TokenEndpoint<'a>,
    ) -> BoxFuture<'a, Result<Credentials, RegistryError>> {
        self.credentials(registry)
    }

    /// Called when the registry rejected the credentials; providers drop cached state for it.
    fn invalidate(&self, _registry: &str) {}
}

/// Where a registry's Bearer challenge sends clients for tokens.
#[derive(Debug, Clone, Copy)]
pub struct TokenEndpoint<'a> {
    /// `realm`: the token server URL (`https://<registry>/oauth2/token` for ACR).
    pub realm: &'a str,
    /// `service`, if the challenge named one.
    pub service: Option<&'a str>,
}

/// No credentials for any registry.
#[derive(Clone, Copy, Debug, Default)]
pub struct Anonymous;

impl AuthProvider for Anonymous {
    fn name(&self) -> &str {
        "anonymous"
    }
    fn credentials<'a>(
        &'a self,
        _registry: &'a str,
    ) -> BoxFuture<'a, Result<Credentials, RegistryError>> {
        Box::pin(async { Ok(Credentials::Anonymous) })
    }
}

/// Fixed credentials per registry host; anonymous for others.
#[derive(Clone, Debug, Default)]
pub struct StaticCredentials {
    by_host: HashMap<String, Credentials>,
}

impl StaticCredentials {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds credentials for `registry` (normalised like Docker config keys).
    pub fn with(mut self, registry: &str, credentials: Credentials) -> Self {
        self.by_host
            .insert(normalize_registry_key(registry), credentials);
        self
    }
}

impl AuthProvider for StaticCredentials {
    fn name(&self) -> &str {
        "static"
    }
    fn credentials<'a>(
        &'a self,
        registry: &'a str,
    ) -> BoxFuture<'a, Result<Credentials, RegistryError>> {
        let c = self
            .by_host
            .get(&normalize_registry_key(registry))
            .cloned()
            .unwrap_or(Credentials::Anonymous);
        Box::pin(async move { Ok(c) })
    }
}

/// Normalises a Docker config `auths` key or a registry host for lookup: drops the scheme and any
/// path, lowercases, and maps Docker Hub's aliases (`https://index.docker.io/v1/`,
/// `registry-1.docker.io`, `index.docker.io`) to `docker.io`.
pub fn normalize_registry_key(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

/// Credentials from a Docker config file: `~/.docker/config.json`, a mounted Kubernetes secret of
/// type `kubernetes.io/dockerconfigjson` (the `.dockerconfigjson` key as a file), the legacy
/// `.dockercfg` form, or the Secret object itself as JSON. The file is re-read when its
/// modification time or size changes (secret rotation). Credential helpers are not executed.
pub struct DockerConfig {
    path: PathBuf,
    cache: Mutex<Option<Loaded>>,
}

struct Loaded {
    stamp: (Option<SystemTime>, u64),
    entries: HashMap<String, Entry>,
    helpers: HashMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Clone)]
enum Entry {
    Creds(Credentials),
    Invalid(String),
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfig")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DockerConfig {
    /// Reads `path` now (so a bad file fails at startup) and again whenever it changes.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let cfg = DockerConfig {
            path: path.into(),
            cache: Mutex::new(None),
        };
        cfg.load("*")?;
        Ok(cfg)
    }

    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, registry: &str, reason: String) -> RegistryError {
        RegistryError::Credentials {
            registry: registry.to_string(),
            provider: format!("Docker config {}", self.path.display()),
            reason,
        }
    }

    /// Looks `registry` up, re-reading the file if it changed.
    fn load(&self, registry: &str) -> Result<Credentials, RegistryError> {
        let meta = std::fs::metadata(&self.path).map_err(|e| {
            self.error(
                registry,
                format!(
                    "cannot read the file: {e}; mount the dockerconfigjson secret or fix the path"
                ),
            )
        })?;
        let stamp = (meta.modified().ok(), meta.len());
        let mut guard = self
            .cache
            .lock()
            .map_err(|_| self.error(registry, "credential cache lock poisoned".into()))?;
        if guard.as_ref().is_none_or(|l| l.stamp != stamp) {
            let text = std::fs::read(&self.path)
                .map_err(|e| self.error(registry, format!("cannot read the file: {e}")))?;
            let loaded =
                parse_docker_config(&text).map_err(|reason| self.error(registry, reason))?;
            *guard = Some(Loaded { stamp, ..loaded });
        }
        let Some(loaded) = guard.as_ref() else {
            return Err(self.error(registry, "configuration not loaded".into()));
        };
        if registry == "*" {
            return Ok(Credentials::Anonymous);
        }
        let key = normalize_registry_key(registry);
        match loaded.entries.get(&key) {
            Some(Entry::Creds(c)) => return Ok(c.clone()),
            Some(Entry::Invalid(reason)) => return Err(self.error(registry, reason.clone())),
            None => {}
        }
        if let Some(helper) = loaded.helpers.get(&key) {
            return Err(self.error(
                registry,
                format!(
                    "credHelpers names docker-credential-{helper} for this registry; credential \
                     helpers are not run: put the credentials under \"auths\" instead"
                ),
            ));
        }
        if let Some(store) = &loaded.creds_store {
            tracing::warn!(
                registry,
                store,
                "Docker config uses credsStore, which is not run; pulling anonymously"
            );
        }
        Ok(Credentials::Anonymous)
    }
}

impl AuthProvider for DockerConfig {
    fn name(&self) -> &str {
        "dockerConfig"
    }

    fn credentials<'a>(
        &'a self,
        registry: &'a str,
    ) -> BoxFuture<'a, Result<Credentials, RegistryError>> {
        let r = self.load(registry);
        Box::pin(async move { r })
    }

    fn invalidate(&self, _registry: &str) {
        if let Ok(mut g) = self.cache.lock() {
            *g = None;
        }
    }
}

fn parse_docker_config(text: &[u8]) -> Result<Loaded, String> {
    let root: serde_json::Value = serde_json::from_slice(text).map_err(|e| {
        format!("not valid JSON ({e}); expected a Docker config.json or a dockerconfigjson secret")
    })?;
    let obj = root
        .as_object()
        .ok_or("the top level must be a JSON object")?;

    // A Kubernetes Secret object: unwrap data[".dockerconfigjson"] (or stringData).
    if obj.get("kind").and_then(|k| k.as_str()) == Some("Secret") {
        if let Some(s) = obj
            .get("stringData")
            .and_then(|d| d.get(".dockerconfigjson"))
            .and_then(|v| v.as_str())
        {
            return parse_docker_config(s.as_bytes());
        }
        let b64 = obj
            .get("data")
            .and_then(|d| d.get(".dockerconfigjson"))
            .and_then(|v| v.as_str())
            .ok_or("the Secret has no data[\".dockerconfigjson\"]; use a kubernetes.io/dockerconfigjson secret")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("data[\".dockerconfigjson\"] is not base64: {e}"))?;
        return parse_docker_config(&decoded);
    }

    let auths = match obj.get("auths") {
        Some(a) => a.as_object().ok_or("\"auths\" must be an object")?.clone(),
        // Legacy .dockercfg: the top level maps registries to entries.
        None if !obj.contains_key("credHelpers") && !obj.contains_key("credsStore") => obj.clone(),
        None => serde_json::Map::new(),
    };
    let mut entries = HashMap::new();
    for (key, value) in &auths {
        let entry = match parse_entry(value) {
            Ok(c) => Entry::Creds(c),
            Err(reason) => Entry::Invalid(format!("auths[{key:?}]: {reason}")),
        };
        entries.insert(normalize_registry_key(key), entry);
    }
    let mut helpers = HashMap::new();
    if let Some(h) = obj.get("credHelpers").and_then(|h| h.as_object()) {
        for (k, v) in h {
            helpers.insert(
                normalize_registry_key(k),
                v.as_str().unwrap_or_default().to_string(),
            );
        }
    }
    let creds_store = obj
        .get("credsStore")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(Loaded {
        stamp: (None, 0),
        entries,
        helpers,
        creds_store,
    })
}

fn parse_entry(value: &serde_json::Value) -> Result<Credentials, String> {
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if !value.is_object() {
        return Err("an entry must be an object with \"auth\" or \"username\"/\"password\"".into());
    }
    if let Some(token) = field("identitytoken") {
        return Ok(Credentials::IdentityToken(token));
    }
    if let Some(token) = field("registrytoken") {
        return Ok(Credentials::BearerToken(token));
    }
    if let Some(auth) = field("auth") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth.trim()))
            .map_err(|_| "\"auth\" is not base64 of user:password".to_string())?;
        let text = String::from_utf8(decoded)
            .map_err(|_| "\"auth\" does not decode to UTF-8 user:password".to_string())?;
        let (user, pass) = text
            .split_once(':')
            .ok_or("\"auth\" must decode to user:password")?;
        return Ok(Credentials::Basic {
            username: user.to_string(),
            password: pass.to_string(),
        });
    }
    match (field("username"), field("password")) {
        (Some(username), Some(password)) => Ok(Credentials::Basic { username, password }),
        (Some(_), None) | (None, Some(_)) => {
            Err("has only one of \"username\" and \"password\"".into())
        }
        (None, None) => Ok(Credentials::Anonymous),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        p
    }

    #[tokio::test]
    async fn docker_config_forms() {
        let dir = tempfile::tempdir().unwrap();
        let text = serde_json::json!({"auths": {
            "https://index.docker.io/v1/": {"auth": b64("hub:secret")},
            "myacr.azurecr.io": {"username": "00000000-0000-0000-0000-000000000000", "password": "rt"},
            "ghcr.io": {"identitytoken": "refresh"},
            "127.0.0.1:5000": {"auth": "!!!"},
        }})
        .to_string();
        let cfg = DockerConfig::from_file(write(&dir, "config.json", &text)).unwrap();
        assert_eq!(
            cfg.credentials("docker.io").await.unwrap(),
            Credentials::Basic {
                username: "hub".into(),
                password: "secret".into()
            }
        );
        assert!(matches!(
            cfg.credentials("MyAcr.azurecr.io").await.unwrap(),
            Credentials::Basic { .. }
        ));
        assert_eq!(
            cfg.credentials("ghcr.io").await.unwrap(),
            Credentials::IdentityToken("refresh".into())
        );
        assert_eq!(
            cfg.credentials("quay.io").await.unwrap(),
            Credentials::Anonymous
        );
        let err = cfg.credentials("127.0.0.1:5000").await.unwrap_err();
        assert!(err.to_string().contains("base64"), "{err}");
        let dbg = format!("{:?}", cfg.credentials("docker.io").await.unwrap());
        assert!(!dbg.contains("secret"), "{dbg}");
    }

    #[tokio::test]
    async fn secret_object_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let inner =
            serde_json::json!({"auths": {"reg.example": {"auth": b64("a:one")}}}).to_string();
        let secret = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64(&inner)}})
        .to_string();
        let p = write(&dir, "secret.json", &secret);
        let cfg = DockerConfig::from_file(&p).unwrap();
        assert_eq!(
            cfg.credentials("reg.example").await.unwrap(),
            Credentials::Basic {
                username: "a".into(),
                password: "one".into()
            }
        );
        // Rotation: new content (different size) is picked up without rebuilding the provider.
        let inner2 =
            serde_json::json!({"auths": {"reg.example": {"auth": b64("a:rotated")}}}).to_string();
        write(&dir, "secret.json", &inner2);
        assert_eq!(
            cfg.credentials("reg.example").await.unwrap(),
            Credentials::Basic {
                username: "a".into(),
                password: "rotated".into()
            }
        );
    }

    #[test]
    fn bad_files_fail_at_construction() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DockerConfig::from_file(dir.path().join("missing.json")).is_err());
        let p = write(&dir, "bad.json", "not json");
        let err = DockerConfig::from_file(p).unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[tokio::test]
    async fn cred_helpers_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            &dir,
            "c.json",
            r#"{"auths":{},"credHelpers":{"gcr.io":"gcloud"}}"#,
        );
        let cfg = DockerConfig::from_file(p).unwrap();
        let err = cfg.credentials("gcr.io").await.unwrap_err();
        assert!(
            err.to_string().contains("credential helpers are not run"),
            "{err}"
        );
    }
}
