//! JSON value → typed resource, with field paths on every error and warnings for unknown
//! fields. Positions are added later by the loader (this works for cluster objects too).
//!
//! Over 600 lines because one decoder per resource kind, all following the same path-and-warning
//! rules.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diag::{Diagnostic, FieldPath, Segment};
use crate::model::{
    API_VERSION, AzureKeyVaultParameters, CertificateStore, ConfigPolicyParameters,
    CosignParameters, GROUP, InlineParameters, KeyManagementProvider, Kind, KmpParameters,
    NotationParameters, OrasParameters, Policy, PolicyParameters, RegoPolicyParameters, Resource,
    Store, StoreParameters, Verifier, VerifierParameters,
};
use crate::validate;

/// Every field name of the typed model, for "did you mean" hints on unknown fields.
const KNOWN_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "status",
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "version",
    "address",
    "source",
    "artifact",
    "authProvider",
    "parameters",
    "artifactTypes",
    "type",
    "refreshInterval",
    "provider",
    "issuccess",
    "error",
    "brieferror",
    "lastfetchedtime",
    "properties",
    "useHttp",
    "cosignEnabled",
    "localCachePath",
    "cacheEnabled",
    "ttl",
    "clientID",
    "endpoints",
    "serviceAccountName",
    "secrets",
    "secretName",
    "configPath",
    "verificationCerts",
    "verificationCertStores",
    "trustPolicyDoc",
    "trustPolicies",
    "registryScopes",
    "signatureVerification",
    "level",
    "override",
    "verifyTimestamp",
    "trustStores",
    "trustedIdentities",
    "key",
    "rekorURL",
    "scopes",
    "keys",
    "keyless",
    "tLogVerify",
    "file",
    "ctLogVerify",
    "certificateIdentity",
    "certificateIdentityRegExp",
    "certificateOIDCIssuer",
    "certificateOIDCIssuerRegExp",
    "vaultURI",
    "tenantID",
    "certificates",
    "resource",
    "versionHistoryLimit",
    "contentType",
    "value",
    "artifactVerificationPolicies",
    "passthroughEnabled",
    "policy",
    "policyPath",
];

/// Result of decoding one object.
#[derive(Debug)]
pub struct Decoded {
    /// The typed resource, when the object is a Ratify resource that could be typed.
    pub resource: Option<Resource>,
    /// Errors and warnings, with field paths (no positions).
    pub diagnostics: Vec<Diagnostic>,
    /// False when the object is not a Ratify v1 configuration resource and was skipped.
    pub is_ratify: bool,
}

fn convert_ignored(p: &serde_ignored::Path<'_>, out: &mut Vec<Segment>) {
    match p {
        serde_ignored::Path::Root => {}
        serde_ignored::Path::Seq { parent, index } => {
            convert_ignored(parent, out);
            out.push(Segment::Index(*index));
        }
        serde_ignored::Path::Map { parent, key } => {
            convert_ignored(parent, out);
            out.push(Segment::Key(key.clone()));
        }
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => convert_ignored(parent, out),
    }
}

fn convert_error_path(p: &serde_path_to_error::Path) -> FieldPath {
    FieldPath(
        p.iter()
            .filter_map(|s| match s {
                serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
                _ => None,
            })
            .collect(),
    )
}

/// Edit distance counting a swap of two neighbouring characters as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The known field name closest to `name`, if it is a plausible typo.
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    KNOWN_FIELDS
        .iter()
        .copied()
        .filter(|k| *k != name)
        .map(|k| {
            let d = if k.to_ascii_lowercase() == lower {
                0
            } else {
                edit_distance(k, name)
            };
            (d, k)
        })
        .filter(|(d, k)| *d <= 2.min(k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn value_at<'a>(root: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    let mut v = root;
    for s in &path.0 {
        v = match s {
            Segment::Key(k) => v.get(k)?,
            Segment::Index(i) => v.get(i)?,
        };
    }
    Some(v)
}

fn human_expected(exp: &str) -> String {
    if let Some(name) = exp.strip_prefix("struct ") {
        return format!("a mapping of fields ({name})");
    }
    match exp {
        "a string" => "text".into(),
        "a boolean" => "`true` or `false`".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        "u64" | "u32" | "u16" | "u8" => "a whole number (0 or more)".into(),
        "i64" | "i32" => "a whole number".into(),
        other => other.into(),
    }
}

fn translate_error(err: serde_json::Error, path: FieldPath, root: &Value) -> Diagnostic {
    let msg = err.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    let field = path
        .last_key()
        .map(str::to_string)
        .unwrap_or_else(|| path.to_string());
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        return Diagnostic::error(
            "missing-field",
            path.key(name),
            format!("required field `{name}` is missing"),
        )
        .with_fix(format!("add `{name}:` under `{path}`"));
    }
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (found, exp) = rest
            .split_once(", expected ")
            .unwrap_or((rest, "another type"));
        let expected = human_expected(exp);
        let shown = value_at(root, &path)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let fix = if found == "null" {
            if exp.starts_with("struct") || exp == "a map" {
                format!(
                    "`{field}:` has no value: indent the lines that belong to it deeper than `{field}:`"
                )
            } else {
                format!("write a value after `{field}:`")
            }
        } else if exp == "a string" {
            if found.starts_with("boolean") {
                format!(
                    "put the value in double quotes (`\"{shown}\"`): unquoted yes/no/on/off/y/n/true/false are booleans in Kubernetes YAML"
                )
            } else {
                format!("put the value in double quotes (`\"{shown}\"`) so YAML keeps it as text")
            }
        } else if exp == "a sequence" {
            if found.starts_with("map") {
                "write a list: each entry on its own line starting with `- `".to_string()
            } else {
                format!("write a list: put `- {shown}` on its own line, indented under `{field}:`")
            }
        } else if exp.starts_with("struct") || exp == "a map" {
            if found == "sequence" {
                "remove the `- ` list markers: this is a mapping of `field: value` lines"
                    .to_string()
            } else {
                format!("give `{field}:` nested `field: value` lines, indented under it")
            }
        } else if exp == "a boolean" {
            "write `true` or `false` without quotes".to_string()
        } else {
            format!("change the value to {expected}")
        };
        return Diagnostic::error(
            "invalid-type",
            path.clone(),
            format!("`{field}` must be {expected}, but it is {found}"),
        )
        .with_fix(fix);
    }
    if msg.contains("untagged enum CertStoreEntry") {
        return Diagnostic::error(
            "invalid-type",
            path,
            "a verificationCertStores entry must be a list of KeyManagementProvider names, or \
             (under `ca`, `signingAuthority` or `tsa`) a mapping of store name to such a list",
        )
        .with_fix("write `<store>:` followed by `- <provider name>` lines, optionally grouped under `ca:`");
    }
    Diagnostic::error("invalid-value", path, msg).with_fix("correct the value")
}

/// Deserialises `value` (found at `base`) into `T`. Unknown fields become warnings that say
/// `ignored` (what happens to them); type errors become one error with the exact field path.
pub(crate) fn decode<T: DeserializeOwned>(
    value: &Value,
    base: &FieldPath,
    ignored: &str,
    out: &mut Vec<Diagnostic>,
) -> Option<T> {
    let mut unknown: Vec<FieldPath> = Vec::new();
    let result = {
        let mut cb = |p: serde_ignored::Path<'_>| {
            let mut segs = Vec::new();
            convert_ignored(&p, &mut segs);
            unknown.push(FieldPath(segs));
        };
        let de = serde_ignored::Deserializer::new(value, &mut cb);
        serde_path_to_error::deserialize::<_, T>(de)
    };
    for rel in unknown {
        let name = rel.last_key().unwrap_or("?").to_string();
        let mut d = Diagnostic::warning(
            "unknown-field",
            base.join(&rel),
            format!("unknown field `{name}` {ignored}"),
        );
        d = match suggest(&name) {
            Some(s) => d.with_fix(format!("did you mean `{s}`? otherwise remove it")),
            None => d.with_fix("remove it, or check its indentation"),
        };
        out.push(d);
    }
    match result {
        Ok(t) => Some(t),
        Err(e) => {
            let rel = convert_error_path(e.path());
            let mut d = translate_error(e.into_inner(), rel, value);
            d.path = base.join(&d.path);
            out.push(d);
            None
        }
    }
}

enum Header {
    Ratify(Kind),
    Skip(Diagnostic),
}

fn header(obj: &serde_json::Map<String, Value>, out: &mut Vec<Diagnostic>) -> Header {
    let api = obj.get("apiVersion").and_then(Value::as_str);
    let kind = obj.get("kind").and_then(Value::as_str);
    let Some(kind_s) = kind else {
        return Header::Skip(
            Diagnostic::error(
                "missing-kind",
                FieldPath::root().key("kind"),
                "`kind` is missing",
            )
            .with_fix("add `kind: Store`, `Verifier`, `KeyManagementProvider` or `Policy`"),
        );
    };
    let Some(api) = api else {
        return Header::Skip(
            Diagnostic::error(
                "missing-api-version",
                FieldPath::root().key("apiVersion"),
                "`apiVersion` is missing",
            )
            .with_fix(format!("add `apiVersion: {API_VERSION}`")),
        );
    };
    let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
    let known = Kind::from_name(kind_s);
    if group == "config.ratify.sh" {
        return Header::Skip(
            Diagnostic::warning(
                "ratify-v2",
                FieldPath::root().key("apiVersion"),
                format!("`{api}` {kind_s} is a Ratify v2 resource; Verdict reads Ratify v1 resources and skips it"),
            )
            .with_fix(format!(
                "describe the configuration with {API_VERSION} Store, Verifier and KeyManagementProvider resources"
            )),
        );
    }
    if group != GROUP {
        return Header::Skip(match known {
            Some(k) => Diagnostic::error(
                "wrong-api-version",
                FieldPath::root().key("apiVersion"),
                format!("`{api}` is not Ratify's API group for `{k}`"),
            )
            .with_fix(format!("set `apiVersion: {API_VERSION}`")),
            None => Diagnostic::warning(
                "not-ratify",
                FieldPath::root().key("kind"),
                format!("`{api}` `{kind_s}` is not a Ratify configuration resource; skipped"),
            )
            .with_fix("nothing to do if this file is meant for something else"),
        });
    }
    let Some(k) = known else {
        let hint = Kind::ALL
            .iter()
            .map(|k| k.as_str())
            .min_by_key(|k| edit_distance(k, kind_s))
            .unwrap_or("Verifier");
        return Header::Skip(
            Diagnostic::error(
                "unknown-kind",
                FieldPath::root().key("kind"),
                format!("`{kind_s}` is not a kind of {GROUP}"),
            )
            .with_fix(format!(
                "did you mean `{hint}`? kinds: Store, Verifier, KeyManagementProvider, Policy, their Namespaced forms, CertificateStore"
            )),
        );
    };
    match version {
        "v1beta1" => {}
        "v1alpha1" if k.has_v1alpha1() => out.push(
            Diagnostic::warning(
                "deprecated-api-version",
                FieldPath::root().key("apiVersion"),
                format!("`{api}` is deprecated; read as v1beta1"),
            )
            .with_fix(format!("set `apiVersion: {API_VERSION}`")),
        ),
        _ => {
            return Header::Skip(
                Diagnostic::error(
                    "wrong-api-version",
                    FieldPath::root().key("apiVersion"),
                    format!("{k} has no version `{version}` in Ratify's CRD"),
                )
                .with_fix(format!("set `apiVersion: {API_VERSION}`")),
            );
        }
    }
    Header::Ratify(k)
}

const META_KEYS: &[&str] = &["name", "namespace", "labels", "annotations", "generateName"];

fn spec_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Store | Kind::NamespacedStore => {
            &["name", "version", "address", "source", "parameters"]
        }
        Kind::Verifier | Kind::NamespacedVerifier => &[
            "name",
            "version",
            "artifactTypes",
            "address",
            "source",
            "parameters",
        ],
        Kind::KeyManagementProvider | Kind::NamespacedKeyManagementProvider => {
            &["type", "refreshInterval", "parameters"]
        }
        Kind::Policy | Kind::NamespacedPolicy => &["type", "parameters"],
        Kind::CertificateStore => &["provider", "parameters"],
    }
}

fn list_keys(keys: &[&str]) -> String {
    let q: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    q.join(", ")
}

/// Detects `metadata:` / `spec:` whose children were not indented under them.
fn shape(kind: Kind, obj: &serde_json::Map<String, Value>, out: &mut Vec<Diagnostic>) -> bool {
    let mut ok = true;
    let meta = obj.get("metadata");
    let meta_broken = !meta_is_object(meta);
    let stray_meta: Vec<&str> = if meta_broken {
        META_KEYS
            .iter()
            .copied()
            .filter(|k| obj.contains_key(*k))
            .collect()
    } else {
        Vec::new()
    };
    let spec_fields = spec_keys(kind);
    let stray_spec: Vec<&str> = spec_fields
        .iter()
        .copied()
        .filter(|k| obj.contains_key(*k) && !stray_meta.contains(k))
        .collect();
    if meta_broken {
        ok = false;
        let has_meta_key = obj.contains_key("metadata");
        if let Some(first) = stray_meta.first() {
            let where_ = if has_meta_key {
                "`metadata:` has no value"
            } else {
                "there is no `metadata:`"
            };
            out.push(
                Diagnostic::error(
                    "flattened-metadata",
                    FieldPath::root().key("metadata").key("name"),
                    format!(
                        "`metadata.name` is missing: {where_} and {} {} at the top level of the document",
                        list_keys(&stray_meta),
                        sit(&stray_meta)
                    ),
                )
                .with_fix(if has_meta_key {
                    format!(
                        "indent {} two spaces so {} under `metadata:`",
                        list_keys(&stray_meta),
                        if stray_meta.len() == 1 { "it sits" } else { "they sit" }
                    )
                } else {
                    format!("add `metadata:` above {} and indent them under it", list_keys(&stray_meta))
                })
                .anchored(FieldPath::root().key(*first)),
            );
        } else {
            out.push(
                Diagnostic::error(
                    "missing-field",
                    FieldPath::root().key("metadata").key("name"),
                    "`metadata.name` is missing",
                )
                .with_fix("add `metadata:` with an indented `name: <name>`"),
            );
        }
    } else if meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        ok = false;
        out.push(
            Diagnostic::error(
                "missing-field",
                FieldPath::root().key("metadata").key("name"),
                "`metadata.name` is missing",
            )
            .with_fix("add `name: <name>` under `metadata:`"),
        );
    }
    let spec = obj.get("spec");
    if spec.is_none() || spec.is_some_and(Value::is_null) {
        ok = false;
        let has_spec_key = obj.contains_key("spec");
        if let Some(first) = stray_spec.first() {
            let where_ = if has_spec_key {
                "`spec:` has no value"
            } else {
                "there is no `spec:`"
            };
            out.push(
                Diagnostic::error(
                    "flattened-spec",
                    FieldPath::root().key("spec"),
                    format!(
                        "`spec` is empty: {where_} and {} {} at the top level of the document",
                        list_keys(&stray_spec),
                        sit(&stray_spec)
                    ),
                )
                .with_fix(if has_spec_key {
                    format!(
                        "indent {} (and the lines under {}) two more spaces so {} under `spec:`",
                        list_keys(&stray_spec),
                        if stray_spec.len() == 1 { "it" } else { "them" },
                        if stray_spec.len() == 1 {
                            "it sits"
                        } else {
                            "they sit"
                        }
                    )
                } else {
                    format!(
                        "add `spec:` above {} and indent them under it",
                        list_keys(&stray_spec)
                    )
                })
                .anchored(FieldPath::root().key(*first)),
            );
        } else {
            out.push(
                Diagnostic::error(
                    "missing-field",
                    FieldPath::root().key("spec"),
                    "`spec` is missing",
                )
                .with_fix(format!("add `spec:` with {}", list_keys(spec_fields))),
            );
        }
    }
    ok
}

fn sit(keys: &[&str]) -> &'static str {
    if keys.len() == 1 { "sits" } else { "sit" }
}

fn meta_is_object(meta: Option<&Value>) -> bool {
    meta.is_some_and(Value::is_object)
}

fn params_value<P: serde::Serialize>(p: &Option<P>) -> Option<Value> {
    p.as_ref().and_then(|p| serde_json::to_value(p).ok())
}

fn params_path() -> FieldPath {
    FieldPath::root().key("spec").key("parameters")
}

fn typed<T: DeserializeOwned>(raw: &Value, what: &str, out: &mut Vec<Diagnostic>) -> Option<T> {
    if raw.is_null() {
        return None;
    }
    decode::<T>(
        raw,
        &params_path(),
        &format!("is not a parameter of {what}; it is ignored"),
        out,
    )
}

fn check_raw_params(raw: &Option<Value>, out: &mut Vec<Diagnostic>) {
    if let Some(v) = raw
        && !v.is_object()
        && !v.is_null()
    {
        out.push(
            Diagnostic::error(
                "invalid-type",
                params_path(),
                "`parameters` must be a mapping",
            )
            .with_fix("write the parameters as indented `field: value` lines under `parameters:`"),
        );
    }
}

fn type_store(o: &mut Store, out: &mut Vec<Diagnostic>) {
    let raw = params_value(&o.spec.parameters);
    if o.spec.name == "oras" {
        if let Some(p) = raw
            .as_ref()
            .and_then(|r| typed::<OrasParameters>(r, "the oras store", out))
        {
            o.spec.parameters = Some(StoreParameters::Oras(p));
        }
    } else {
        check_raw_params(&raw, out);
    }
}

fn type_verifier(o: &mut Verifier, out: &mut Vec<Diagnostic>) {
    let raw = params_value(&o.spec.parameters);
    let Some(r) = raw.as_ref() else { return };
    match o.spec.name.as_str() {
        "notation" => {
            if let Some(p) = typed::<NotationParameters>(r, "the notation verifier", out) {
                o.spec.parameters = Some(VerifierParameters::Notation(p));
            }
        }
        "cosign" => {
            if let Some(p) = typed::<CosignParameters>(r, "the cosign verifier", out) {
                o.spec.parameters = Some(VerifierParameters::Cosign(p));
            }
        }
        _ => check_raw_params(&raw, out),
    }
}

fn type_kmp(o: &mut KeyManagementProvider, out: &mut Vec<Diagnostic>) {
    let raw = params_value(&o.spec.parameters);
    let Some(r) = raw.as_ref() else { return };
    match o.spec.type_.as_str() {
        "azurekeyvault" => {
            if let Some(p) = typed::<AzureKeyVaultParameters>(r, "the azurekeyvault provider", out)
            {
                o.spec.parameters = Some(KmpParameters::AzureKeyVault(p));
            }
        }
        "inline" => {
            if let Some(p) = typed::<InlineParameters>(r, "the inline provider", out) {
                o.spec.parameters = Some(KmpParameters::Inline(p));
            }
        }
        _ => check_raw_params(&raw, out),
    }
}

fn type_policy(o: &mut Policy, out: &mut Vec<Diagnostic>) {
    let raw = params_value(&o.spec.parameters);
    let Some(r) = raw.as_ref() else { return };
    match o.spec.type_.as_str() {
        "config-policy" => {
            if let Some(p) = typed::<ConfigPolicyParameters>(r, "config-policy", out) {
                o.spec.parameters = Some(PolicyParameters::Config(p));
            }
        }
        "rego-policy" => {
            if let Some(p) = typed::<RegoPolicyParameters>(r, "rego-policy", out) {
                o.spec.parameters = Some(PolicyParameters::Rego(p));
            }
        }
        _ => check_raw_params(&raw, out),
    }
}

fn object<T: DeserializeOwned>(value: &Value, kind: Kind, out: &mut Vec<Diagnostic>) -> Option<T> {
    let first = out.len();
    let t = decode::<T>(
        value,
        &FieldPath::root(),
        &format!(
            "is not in the {kind} CRD schema; the Kubernetes API server would drop it and Verdict ignores it"
        ),
        out,
    );
    // Ratify v2 and some docs say `type:` where the v1beta1 Store/Verifier CRD has `name:`.
    let plugin_by_name = matches!(
        kind,
        Kind::Store | Kind::NamespacedStore | Kind::Verifier | Kind::NamespacedVerifier
    );
    for d in &mut out[first..] {
        if plugin_by_name && d.code == "unknown-field" && d.path == FieldPath::parse("spec.type") {
            d.fix = Some(format!(
                "{kind} v1beta1 names its plugin with `spec.name`: rename `type:` to `name:`"
            ));
        }
    }
    t
}

/// Decodes and validates one object (a JSON value from a YAML document or from the cluster).
pub fn decode_resource(value: &Value) -> Decoded {
    let mut out = Vec::new();
    let Some(obj) = value.as_object() else {
        out.push(
            Diagnostic::error(
                "not-an-object",
                FieldPath::root(),
                "the document is not a mapping; a Kubernetes object needs `apiVersion`, `kind`, `metadata` and `spec`",
            )
            .with_fix(format!("start the document with `apiVersion: {API_VERSION}`")),
        );
        return Decoded {
            resource: None,
            diagnostics: out,
            is_ratify: false,
        };
    };
    let kind = match header(obj, &mut out) {
        Header::Ratify(k) => k,
        Header::Skip(d) => {
            let is_ratify = d.is_error();
            out.push(d);
            return Decoded {
                resource: None,
                diagnostics: out,
                is_ratify,
            };
        }
    };
    validate::shell_variables(value, &FieldPath::root(), &mut out);
    if !shape(kind, obj, &mut out) {
        return Decoded {
            resource: None,
            diagnostics: out,
            is_ratify: true,
        };
    }
    let resource = match kind {
        Kind::Store | Kind::NamespacedStore => {
            object::<Store>(value, kind, &mut out).map(|mut o| {
                type_store(&mut o, &mut out);
                if kind == Kind::Store {
                    Resource::Store(o)
                } else {
                    Resource::NamespacedStore(o)
                }
            })
        }
        Kind::Verifier | Kind::NamespacedVerifier => {
            object::<Verifier>(value, kind, &mut out).map(|mut o| {
                type_verifier(&mut o, &mut out);
                if kind == Kind::Verifier {
                    Resource::Verifier(o)
                } else {
                    Resource::NamespacedVerifier(o)
                }
            })
        }
        Kind::KeyManagementProvider | Kind::NamespacedKeyManagementProvider => {
            object::<KeyManagementProvider>(value, kind, &mut out).map(|mut o| {
                type_kmp(&mut o, &mut out);
                if kind == Kind::KeyManagementProvider {
                    Resource::KeyManagementProvider(o)
                } else {
                    Resource::NamespacedKeyManagementProvider(o)
                }
            })
        }
        Kind::Policy | Kind::NamespacedPolicy => {
            object::<Policy>(value, kind, &mut out).map(|mut o| {
                type_policy(&mut o, &mut out);
                if kind == Kind::Policy {
                    Resource::Policy(o)
                } else {
                    Resource::NamespacedPolicy(o)
                }
            })
        }
        Kind::CertificateStore => {
            object::<CertificateStore>(value, kind, &mut out).map(Resource::CertificateStore)
        }
    };
    if let Some(r) = &resource {
        validate::resource(r, &mut out);
    }
    Decoded {
        resource,
        diagnostics: out,
        is_ratify: true,
    }
}

/// Checks that still make sense on the part of a document read before a syntax error:
/// the kind, and `metadata`/`spec` whose children were not indented under them.
pub(crate) fn partial_checks(value: &Value) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if let Some(obj) = value.as_object()
        && let Header::Ratify(kind) = header(obj, &mut out)
    {
        shape(kind, obj, &mut out);
    }
    out.retain(|d| d.code == "flattened-metadata" || d.code == "flattened-spec");
    out
}

impl Resource {
    /// Types and validates a JSON object (e.g. read from the Kubernetes API). Diagnostics carry
    /// field paths but no positions.
    pub fn from_json(value: &Value) -> Decoded {
        decode_resource(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_suggestions() {
        assert_eq!(suggest("artifactType"), Some("artifactTypes"));
        assert_eq!(suggest("vaultUri"), Some("vaultURI"));
        assert_eq!(suggest("completelyDifferent"), None);
    }
}
