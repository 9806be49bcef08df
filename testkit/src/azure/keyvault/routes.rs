//! The Key Vault wire: routing, object bundles, version pages, error bodies and headers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    CertEntry, KeyEntry, KvRequest, KvShared, KvState, MAX_RESULTS, NEXT_LINK_API_VERSION,
    NOT_FOUND_HINT,
};
use crate::azure::{Form, VAULT_RESOURCE, b64std, b64url, bearer_token, json_response, uuid};

/// The three collections of the data plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Collection {
    Keys,
    Certificates,
    Secrets,
}

impl Collection {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "keys" => Some(Self::Keys),
            "certificates" => Some(Self::Certificates),
            "secrets" => Some(Self::Secrets),
            _ => None,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Keys => "keys",
            Self::Certificates => "certificates",
            Self::Secrets => "secrets",
        }
    }

    /// Singular, as in error messages.
    fn kind(self) -> &'static str {
        match self {
            Self::Keys => "key",
            Self::Certificates => "certificate",
            Self::Secrets => "secret",
        }
    }

    fn not_found_code(self) -> &'static str {
        match self {
            Self::Keys => "KeyNotFound",
            Self::Certificates => "CertificateNotFound",
            Self::Secrets => "SecretNotFound",
        }
    }
}

pub(super) async fn handle(State(kv): State<Arc<KvShared>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let authorized =
        bearer_token(req.headers()).is_some_and(|t| kv.entra.validate(t, VAULT_RESOURCE).is_some());
    let mut state = kv.lock();
    let resp = answer(&kv, &mut state, &method, &path, &query, authorized);
    state.requests.push(KvRequest {
        method: method.to_string(),
        path,
        query,
        authorized,
        status: resp.status().as_u16(),
    });
    resp
}

fn answer(
    kv: &KvShared,
    state: &mut KvState,
    method: &Method,
    path: &str,
    query: &str,
    authorized: bool,
) -> Response {
    if !authorized {
        return kv_response(
            401,
            &error_body(
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
                None,
            ),
            vec![(
                "www-authenticate",
                format!(
                    "Bearer authorization=\"https://login.windows.net/{}\", resource=\"{VAULT_RESOURCE}\"",
                    kv.entra.tenant
                ),
            )],
        );
    }
    let params = Form::parse(query.as_bytes());
    if params.non_empty("api-version").is_none() {
        return bad_parameter("The 'api-version' query parameter is missing.");
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (collection, name, rest) = match segments.as_slice() {
        [c, name, rest @ ..] if !name.is_empty() && rest.len() <= 1 => match Collection::parse(c) {
            Some(c) => (c, *name, rest.first().copied().unwrap_or_default()),
            None => {
                return bad_parameter(&format!("Method {method} does not allow operation '{c}'"));
            }
        },
        _ => {
            return bad_parameter(&format!(
                "Method {method} does not allow operation '{path}'"
            ));
        }
    };
    if state.deny {
        let permission = if rest == "versions" { "list" } else { "get" };
        let kind = collection.path();
        return kv_response(
            403,
            &error_body(
                "Forbidden",
                &format!(
                    "The user, group or application 'appid={};iss=https://sts.windows.net/{}/' does not have {kind} {permission} permission on key vault 'verdict-fake;location=westus2'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
                    kv.entra.client_id, kv.entra.tenant
                ),
                Some("ForbiddenByRbac"),
            ),
            Vec::new(),
        );
    }
    if let Some(fault) = &mut state.fault
        && fault.remaining > 0
    {
        fault.remaining -= 1;
        let headers = if fault.status == 429 {
            vec![("retry-after", "1".to_string())]
        } else {
            Vec::new()
        };
        return kv_response(
            fault.status,
            &error_body(&fault.code, &fault.message, None),
            headers,
        );
    }
    if *method != Method::GET {
        return bad_parameter(&format!(
            "Method {method} does not allow operation '{}'",
            collection.path()
        ));
    }
    if rest == "versions" {
        return list_versions(kv, state, collection, name, &params);
    }
    let version = (!rest.is_empty()).then_some(rest);
    let found = match collection {
        Collection::Keys => get_key(kv, state, name, version),
        Collection::Certificates => get_certificate(kv, state, name, version),
        Collection::Secrets => get_secret(kv, state, name, version),
    };
    found.unwrap_or_else(|| not_found(collection, name, version))
}

/// The version `version` (or the latest) of a version list.
fn pick<'a, T>(
    versions: Option<&'a Vec<T>>,
    version: Option<&str>,
    v: impl Fn(&T) -> &str,
) -> Option<&'a T> {
    let versions = versions?;
    match version {
        None => versions.last(),
        Some(want) => versions.iter().find(|e| v(e) == want),
    }
}

fn object_id(kv: &KvShared, collection: Collection, name: &str, version: &str) -> String {
    format!("{}/{}/{name}/{version}", kv.base, collection.path())
}

fn get_key(kv: &KvShared, state: &KvState, name: &str, version: Option<&str>) -> Option<Response> {
    let entry = pick(state.keys.get(name), version, |e| &e.version)?;
    if !entry.attributes.enabled {
        return Some(disabled(Collection::Keys, "KeyDisabled"));
    }
    Some(kv_response(200, &key_bundle(kv, name, entry), Vec::new()))
}

fn key_bundle(kv: &KvShared, name: &str, entry: &KeyEntry) -> Value {
    let mut key = entry.jwk.clone();
    key["kid"] = json!(object_id(kv, Collection::Keys, name, &entry.version));
    json!({"key": key, "attributes": entry.attributes.json()})
}

fn get_certificate(
    kv: &KvShared,
    state: &KvState,
    name: &str,
    version: Option<&str>,
) -> Option<Response> {
    let entry = pick(state.certificates.get(name), version, |e| &e.version)?;
    Some(kv_response(
        200,
        &certificate_bundle(kv, name, entry),
        Vec::new(),
    ))
}

fn certificate_bundle(kv: &KvShared, name: &str, entry: &CertEntry) -> Value {
    let v = &entry.version;
    let attrs = entry.attributes.json();
    json!({
        "id": object_id(kv, Collection::Certificates, name, v),
        "kid": object_id(kv, Collection::Keys, name, v),
        "sid": object_id(kv, Collection::Secrets, name, v),
        "x5t": x5t(&entry.cert.leaf_der),
        "cer": b64std(&entry.cert.leaf_der),
        "attributes": attrs,
        "policy": {
            "id": format!("{}/certificates/{name}/policy", kv.base),
            "key_props": {"exportable": true, "kty": key_type(&entry.cert.leaf_der), "reuse_key": false},
            "secret_props": {"contentType": entry.cert.content_type},
            "x509_props": {"ekus": [], "key_usage": [], "validity_months": 12},
            "lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "EmailContacts"}}],
            "issuer": {"name": "Unknown"},
            "attributes": {"enabled": true, "created": entry.attributes.created, "updated": entry.attributes.created},
        },
    })
}

/// base64url SHA-1 of the DER (`x5t`).
fn x5t(der: &[u8]) -> String {
    b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref())
}

/// `EC` if the certificate carries an id-ecPublicKey SPKI, else `RSA`.
fn key_type(der: &[u8]) -> &'static str {
    const ID_EC_PUBLIC_KEY: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    if der
        .windows(ID_EC_PUBLIC_KEY.len())
        .any(|w| w == ID_EC_PUBLIC_KEY)
    {
        "EC"
    } else {
        "RSA"
    }
}

fn get_secret(
    kv: &KvShared,
    state: &KvState,
    name: &str,
    version: Option<&str>,
) -> Option<Response> {
    let body = if state.certificates.contains_key(name) {
        let entry = pick(state.certificates.get(name), version, |e| &e.version)?;
        if !entry.attributes.enabled {
            return Some(disabled(Collection::Secrets, "SecretDisabled"));
        }
        json!({
            "value": entry.cert.secret_value,
            "contentType": entry.cert.content_type,
            "id": object_id(kv, Collection::Secrets, name, &entry.version),
            "managed": true,
            "kid": object_id(kv, Collection::Keys, name, &entry.version),
            "attributes": entry.attributes.json(),
        })
    } else {
        let entry = pick(state.secrets.get(name), version, |e| &e.version)?;
        if !entry.attributes.enabled {
            return Some(disabled(Collection::Secrets, "SecretDisabled"));
        }
        let mut body = json!({
            "value": entry.value,
            "id": object_id(kv, Collection::Secrets, name, &entry.version),
            "attributes": entry.attributes.json(),
        });
        if let Some(ct) = &entry.content_type {
            body["contentType"] = json!(ct);
        }
        body
    };
    Some(kv_response(200, &body, Vec::new()))
}

/// The list items of every version of `name`, oldest first; `None` if there is no such object.
fn version_items(
    kv: &KvShared,
    state: &KvState,
    collection: Collection,
    name: &str,
) -> Option<Vec<Value>> {
    let id = |c, v: &str| object_id(kv, c, name, v);
    Some(match collection {
        Collection::Keys => state
            .keys
            .get(name)?
            .iter()
            .map(|e| json!({"kid": id(Collection::Keys, &e.version), "attributes": e.attributes.json()}))
            .collect(),
        Collection::Certificates => state
            .certificates
            .get(name)?
            .iter()
            .map(|e| {
                json!({
                    "id": id(Collection::Certificates, &e.version),
                    "x5t": x5t(&e.cert.leaf_der),
                    "attributes": e.attributes.json(),
                })
            })
            .collect(),
        Collection::Secrets => match state.certificates.get(name) {
            Some(certs) => certs
                .iter()
                .map(|e| {
                    json!({
                        "id": id(Collection::Secrets, &e.version),
                        "attributes": e.attributes.json(),
                        "contentType": e.cert.content_type,
                        "managed": true,
                    })
                })
                .collect(),
            None => state
                .secrets
                .get(name)?
                .iter()
                .map(|e| {
                    let mut item = json!({
                        "id": id(Collection::Secrets, &e.version),
                        "attributes": e.attributes.json(),
                    });
                    if let Some(ct) = &e.content_type {
                        item["contentType"] = json!(ct);
                    }
                    item
                })
                .collect(),
        },
    })
}

fn list_versions(
    kv: &KvShared,
    state: &KvState,
    collection: Collection,
    name: &str,
    params: &Form,
) -> Response {
    let max_results = match params.get("maxresults") {
        None => MAX_RESULTS,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
            _ => {
                return bad_parameter(&format!(
                    "The value '{s}' of parameter 'maxresults' is not valid: it must be between 1 and {MAX_RESULTS}."
                ));
            }
        },
    };
    let page = max_results.min(state.page_size);
    let skip = match params.get("$skiptoken") {
        None => 0,
        Some(token) => match decode_skiptoken(token) {
            Some(n) => n,
            None => return bad_parameter("The skip token is not valid."),
        },
    };
    let Some(items) = version_items(kv, state, collection, name) else {
        return not_found(collection, name, None);
    };
    let value: Vec<Value> = items.iter().skip(skip).take(page).cloned().collect();
    let next_link = if skip + page < items.len() {
        json!(format!(
            "{}/{}/{name}/versions?api-version={NEXT_LINK_API_VERSION}&$skiptoken={}&maxresults={page}",
            kv.base,
            collection.path(),
            encode_skiptoken(skip + page)
        ))
    } else {
        Value::Null
    };
    kv_response(
        200,
        &json!({"value": value, "nextLink": next_link}),
        Vec::new(),
    )
}

/// An opaque-looking `$skiptoken` (base64url JSON like the service's) holding the next offset.
fn encode_skiptoken(offset: usize) -> String {
    b64url(
        json!({"NextMarker": format!("2!{offset}!"), "TargetLocation": 0})
            .to_string()
            .as_bytes(),
    )
}

fn decode_skiptoken(token: &str) -> Option<usize> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("NextMarker")?
        .as_str()?
        .strip_prefix("2!")?
        .strip_suffix('!')?
        .parse()
        .ok()
}

fn error_body(code: &str, message: &str, inner: Option<&str>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(inner) = inner {
        error["innererror"] = json!({"code": inner});
    }
    json!({"error": error})
}

fn bad_parameter(message: &str) -> Response {
    kv_response(400, &error_body("BadParameter", message, None), Vec::new())
}

fn not_found(collection: Collection, name: &str, version: Option<&str>) -> Response {
    let id = match version {
        Some(v) => format!("{name}/{v}"),
        None => name.to_string(),
    };
    let kind = collection.kind();
    let message = format!(
        "A {kind} with (name/id) {id} was not found in this key vault. {}",
        NOT_FOUND_HINT.replace("{kind}", kind)
    );
    kv_response(
        404,
        &error_body(collection.not_found_code(), &message, None),
        Vec::new(),
    )
}

fn disabled(collection: Collection, inner: &str) -> Response {
    kv_response(
        403,
        &error_body(
            "Forbidden",
            &format!(
                "Operation get is not allowed on a disabled {}.",
                collection.kind()
            ),
            Some(inner),
        ),
        Vec::new(),
    )
}

/// A Key Vault answer with the service's usual headers.
fn kv_response(status: u16, body: &Value, mut headers: Vec<(&'static str, String)>) -> Response {
    headers.extend([
        ("cache-control", "no-cache".to_string()),
        ("pragma", "no-cache".to_string()),
        ("expires", "-1".to_string()),
        ("x-ms-keyvault-region", "westus2".to_string()),
        ("x-ms-request-id", uuid()),
        ("x-ms-keyvault-service-version", "1.9.195.1".to_string()),
        (
            "strict-transport-security",
            "max-age=31536000;includeSubDomains".to_string(),
        ),
        ("x-content-type-options", "nosniff".to_string()),
    ]);
    json_response(status, body, &headers)
}
