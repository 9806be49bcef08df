//! `WWW-Authenticate` challenges and the access-token cache of the Docker token flow.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The auth scheme a registry asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    Basic,
    Bearer,
}

/// One parsed challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: Scheme,
    pub realm: Option<String>,
    pub service: Option<String>,
}

/// Parses every challenge in the given `WWW-Authenticate` values; unknown schemes are skipped.
pub(crate) fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for v in values {
        for (scheme, params) in split_challenges(v) {
            let scheme = match scheme.to_ascii_lowercase().as_str() {
                "basic" => Scheme::Basic,
                "bearer" => Scheme::Bearer,
                _ => continue,
            };
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(pk, _)| pk.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            out.push(Challenge {
                scheme,
                realm: get("realm"),
                service: get("service"),
            });
        }
    }
    out
}

type Params = Vec<(String, String)>;

/// RFC 7235 challenge list: `scheme [param=value | "quoted"] (, ...)`, schemes separated by commas.
fn split_challenges(input: &str) -> Vec<(String, Params)> {
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut out: Vec<(String, Params)> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
            *i += 1;
        }
    };
    let read_token = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && !chars[*i].is_whitespace() && !matches!(chars[*i], ',' | '=') {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let tok = read_token(&mut i);
        if tok.is_empty() {
            i += 1;
            continue;
        }
        // Look past spaces: `=` makes `tok` a parameter name of the current challenge.
        let mut j = i;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if j < chars.len() && chars[j] == '=' && !out.is_empty() {
            i = j + 1;
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            let value = if i < chars.len() && chars[i] == '"' {
                i += 1;
                let mut v = String::new();
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    v.push(chars[i]);
                    i += 1;
                }
                i += 1;
                v
            } else {
                read_token(&mut i)
            };
            if let Some(last) = out.last_mut() {
                last.1.push((tok, value));
            }
        } else if j < chars.len() && chars[j] == '=' {
            // token68 or parameter before any scheme: ignore it.
            i = j + 1;
            let _ = read_token(&mut i);
        } else {
            out.push((tok, Vec::new()));
        }
    }
    out
}

/// A cached `Authorization` value.
#[derive(Clone)]
pub(crate) struct CachedToken {
    pub header: String,
    pub expires: Instant,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("header", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

/// Per-registry auth state: the last challenge seen and access tokens per (registry, scope).
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
}

impl AuthState {
    pub fn challenge(&self, registry: &str) -> Option<Challenge> {
        self.challenges.lock().ok()?.get(registry).cloned()
    }

    pub fn set_challenge(&self, registry: &str, c: Challenge) {
        if let Ok(mut m) = self.challenges.lock() {
            m.insert(registry.to_string(), c);
        }
    }

    pub fn token(&self, registry: &str, scope: &str) -> Option<String> {
        let m = self.tokens.lock().ok()?;
        let t = m.get(&(registry.to_string(), scope.to_string()))?;
        (t.expires > Instant::now()).then(|| t.header.clone())
    }

    pub fn set_token(&self, registry: &str, scope: &str, header: String, lifetime: Duration) {
        // Refresh a little early so a token does not expire between check and use.
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        let expires = Instant::now() + lifetime.saturating_sub(margin);
        if let Ok(mut m) = self.tokens.lock() {
            m.retain(|_, t| t.expires > Instant::now());
            m.insert(
                (registry.to_string(), scope.to_string()),
                CachedToken { header, expires },
            );
        }
    }

    /// Drops every token for `registry` (after a rejection or credential change).
    pub fn forget_registry(&self, registry: &str) {
        if let Ok(mut m) = self.tokens.lock() {
            m.retain(|(r, _), _| r != registry);
        }
    }
}

/// The token server's answer (distribution token spec).
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// Tokens without `expires_in` are valid for 60 s per the token spec.
pub(crate) const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// How long a JWT access token has left by its own `exp` claim (`None`: not a JWT, no `exp`, or
/// already expired). ACR's token endpoint answers without `expires_in`, and its tokens — unlike
/// the spec's default 60 s — live about an hour; reading `exp` saves a token request per minute.
/// Header and signature are not needed (ACR refresh tokens have empty ones); base64url padding
/// is tolerated (ACR pads).
pub fn jwt_lifetime(token: &str, now_unix: i64) -> Option<Duration> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?.trim_end_matches('=');
    // base64url as JWTs are written; ACR's refresh tokens use the standard alphabet, padded.
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(payload))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims
        .get("exp")
        .and_then(|e| e.as_i64().or_else(|| e.as_f64().map(|f| f as i64)))?;
    let left = exp.checked_sub(now_unix)?;
    (left > 0).then(|| Duration::from_secs(left as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_lifetimes_come_from_the_exp_claim() {
        use base64::Engine as _;
        let enc = |v: &serde_json::Value, pad: bool| {
            let e = if pad {
                base64::engine::general_purpose::URL_SAFE
            } else {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
            };
            e.encode(serde_json::to_vec(v).unwrap())
        };
        let now = 1_800_000_000;
        let claims = serde_json::json!({"exp": now + 3600, "aud": "myacr.azurecr.io"});
        let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", enc(&claims, false));
        assert_eq!(jwt_lifetime(&jwt, now), Some(Duration::from_secs(3600)));
        // ACR's refresh-token form: empty header and signature, padded payload.
        let acr = format!(".{}.", enc(&claims, true));
        assert_eq!(jwt_lifetime(&acr, now), Some(Duration::from_secs(3600)));
        let expired = format!(".{}.", enc(&serde_json::json!({"exp": now - 1}), false));
        assert_eq!(jwt_lifetime(&expired, now), None);
        assert_eq!(jwt_lifetime("opaque-token", now), None);
        assert_eq!(jwt_lifetime("a.!!.b", now), None);
    }

    #[test]
    fn parses_docker_hub_challenge() {
        let c = parse_challenges([
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        ]);
        assert_eq!(
            c,
            vec![Challenge {
                scheme: Scheme::Bearer,
                realm: Some("https://auth.docker.io/token".into()),
                service: Some("registry.docker.io".into()),
            }]
        );
    }

    #[test]
    fn parses_multiple_and_unquoted() {
        let c = parse_challenges([
            r#"Basic realm="Registry Realm", Bearer realm=https://x/token, service=x"#,
        ]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, Scheme::Basic);
        assert_eq!(c[0].realm.as_deref(), Some("Registry Realm"));
        assert_eq!(c[1].scheme, Scheme::Bearer);
        assert_eq!(c[1].realm.as_deref(), Some("https://x/token"));
        assert_eq!(c[1].service.as_deref(), Some("x"));
        assert!(parse_challenges(["Negotiate"]).is_empty());
    }

    #[test]
    fn token_cache_expires() {
        let s = AuthState::default();
        s.set_token(
            "r",
            "repository:a:pull",
            "Bearer t".into(),
            Duration::from_secs(60),
        );
        assert_eq!(
            s.token("r", "repository:a:pull").as_deref(),
            Some("Bearer t")
        );
        assert!(s.token("r", "repository:b:pull").is_none());
        s.set_token("r", "repository:c:pull", "Bearer u".into(), Duration::ZERO);
        assert!(s.token("r", "repository:c:pull").is_none());
        s.forget_registry("r");
        assert!(s.token("r", "repository:a:pull").is_none());
    }
}
