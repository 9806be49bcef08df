//! KeyManagementProvider (azurekeyvault, inline) and the deprecated CertificateStore.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::p;
use crate::diag::{Diagnostic, FieldPath};
use crate::model::{CertificateStore, KeyManagementProvider, KeyVaultObject, KmpParameters};

static GO_DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\+?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)$").expect("valid regex")
});
static KV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9a-zA-Z-]{1,127}$").expect("valid regex"));
static KV_VERSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9a-zA-Z]+$").expect("valid regex"));

/// Whether `s` is a Go duration string like `1h30m` (as Ratify parses `refreshInterval`).
pub(crate) fn is_go_duration(s: &str) -> bool {
    GO_DURATION.is_match(s)
}

/// A Go duration string (`300ms`, `1.5h`, `1h30m`, `0`) as a [`std::time::Duration`]; `None`
/// when it is not one (negative durations included) or overflows.
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    if !is_go_duration(s) {
        return None;
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * seconds;
        rest = tail;
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

fn objects(list: &[KeyVaultObject], base: &FieldPath, what: &str, out: &mut Vec<Diagnostic>) {
    let mut seen = HashSet::new();
    for (i, o) in list.iter().enumerate() {
        let path = base.index(i);
        match o.name.as_deref() {
            None | Some("") => out.push(
                Diagnostic::error(
                    "missing-field",
                    path.key("name"),
                    format!("the {what} needs a `name`"),
                )
                .with_fix(format!("set `name:` to the {what}'s name in Key Vault")),
            ),
            Some(n) if !KV_NAME.is_match(n) => out.push(
                Diagnostic::error(
                    "invalid-value",
                    path.key("name"),
                    format!("`{n}` is not a Key Vault {what} name"),
                )
                .with_fix("Key Vault names use letters, digits and `-` (up to 127)"),
            ),
            _ => {}
        }
        if let Some(v) = o.version.as_deref().filter(|v| !v.is_empty())
            && !KV_VERSION.is_match(v)
        {
            out.push(
                    Diagnostic::error("invalid-value", path.key("version"), format!("`{v}` is not a Key Vault version id"))
                        .with_fix("use the 32-character version id from the object's identifier, or remove `version` for the latest"),
                );
        }
        if o.version_history_limit == Some(0) {
            out.push(
                Diagnostic::error(
                    "invalid-value",
                    path.key("versionHistoryLimit"),
                    "`versionHistoryLimit` must be at least 1",
                )
                .with_fix("set it to the number of versions to trust, or remove it"),
            );
        }
        if !seen.insert((o.name.clone(), o.version.clone())) {
            out.push(
                Diagnostic::warning(
                    "duplicate-value",
                    path,
                    format!("this {what} is listed twice"),
                )
                .with_fix("remove the repeated entry"),
            );
        }
    }
}

pub(super) fn validate(o: &KeyManagementProvider, out: &mut Vec<Diagnostic>) {
    let ty = o.spec.type_.as_str();
    match ty {
        "" => {
            out.push(
                Diagnostic::error("missing-field", p("spec.type"), "`spec.type` is required")
                    .with_fix("set `type: azurekeyvault` or `type: inline`"),
            );
            return;
        }
        "azurekeyvault" | "inline" => {}
        other => {
            out.push(
                Diagnostic::error(
                    "invalid-value",
                    p("spec.type"),
                    format!("`{other}` is not a key management provider type"),
                )
                .with_fix("use `azurekeyvault` or `inline`"),
            );
            return;
        }
    }
    if let Some(ri) = o.spec.refresh_interval.as_deref().filter(|s| !s.is_empty()) {
        if !is_go_duration(ri) {
            out.push(
                Diagnostic::error(
                    "invalid-value",
                    p("spec.refreshInterval"),
                    format!("`{ri}` is not a duration"),
                )
                .with_fix("write e.g. `5m`, `1h` or `1h30m`"),
            );
        } else if ty == "inline" {
            out.push(
                Diagnostic::warning(
                    "ignored-field",
                    p("spec.refreshInterval"),
                    "inline providers are not refreshed; `refreshInterval` is ignored",
                )
                .with_fix("remove `refreshInterval`"),
            );
        }
    }
    let base = p("spec.parameters");
    match &o.spec.parameters {
        None => out.push(
            Diagnostic::error("missing-field", base, format!("the {ty} provider needs `parameters`"))
                .with_fix(if ty == "inline" {
                    "add `parameters:` with `contentType: certificate` and `value: |` followed by the PEM"
                } else {
                    "add `parameters:` with vaultURI, tenantID, clientID and certificates or keys"
                }),
        ),
        Some(KmpParameters::AzureKeyVault(a)) => {
            match a.vault_uri.as_deref() {
                None | Some("") => out.push(
                    Diagnostic::error("missing-field", base.key("vaultURI"), "`vaultURI` is required")
                        .with_fix("set `vaultURI: https://<vault name>.vault.azure.net/`"),
                ),
                Some(u) if !u.starts_with("https://") || u.len() <= "https://".len() => out.push(
                    Diagnostic::error("invalid-value", base.key("vaultURI"), format!("`{u}` is not an https URL"))
                        .with_fix("write `https://<vault name>.vault.azure.net/`"),
                ),
                _ => {}
            }
            for (field, v) in [("tenantID", &a.tenant_id), ("clientID", &a.client_id)] {
                if v.as_deref().is_none_or(str::is_empty) {
                    out.push(
                        Diagnostic::error("missing-field", base.key(field), format!("`{field}` is required"))
                            .with_fix(if field == "tenantID" {
                                "set `tenantID:` to your Microsoft Entra tenant ID"
                            } else {
                                "set `clientID:` to the workload identity's client ID"
                            }),
                    );
                }
            }
            let certs = a.certificates.as_deref().unwrap_or_default();
            let keys = a.keys.as_deref().unwrap_or_default();
            if certs.is_empty() && keys.is_empty() {
                out.push(
                    Diagnostic::error("missing-field", base.key("certificates"), "list at least one certificate or key")
                        .with_fix("add `certificates:` with `- name: <certificate name>` (Notation) or `keys:` with `- name: <key name>` (Cosign)"),
                );
            }
            objects(certs, &base.key("certificates"), "certificate", out);
            objects(keys, &base.key("keys"), "key", out);
        }
        Some(KmpParameters::Inline(i)) => {
            let ct = i.content_type.as_deref().unwrap_or("");
            match ct {
                "certificate" | "key" => {}
                "" => out.push(
                    Diagnostic::error("missing-field", base.key("contentType"), "`contentType` is required")
                        .with_fix("set `contentType: certificate` or `contentType: key`"),
                ),
                other => out.push(
                    Diagnostic::error("invalid-value", base.key("contentType"), format!("`{other}` is not an inline content type"))
                        .with_fix("use `certificate` or `key`"),
                ),
            }
            match i.value.as_deref() {
                None | Some("") => out.push(
                    Diagnostic::error("missing-field", base.key("value"), "`value` is required")
                        .with_fix("add `value: |` followed by the PEM text, indented"),
                ),
                Some(v) => {
                    let ok = match ct {
                        "certificate" => v.contains("-----BEGIN CERTIFICATE-----"),
                        "key" => v.contains("-----BEGIN ") && v.contains("PUBLIC KEY-----"),
                        _ => true,
                    };
                    if !ok {
                        out.push(
                            Diagnostic::error(
                                "invalid-value",
                                base.key("value"),
                                format!("`value` does not contain a PEM {}", if ct == "key" { "public key" } else { "certificate" }),
                            )
                            .with_fix(if ct == "key" {
                                "paste the public key PEM (`-----BEGIN PUBLIC KEY-----` ...)"
                            } else {
                                "paste the certificate PEM (`-----BEGIN CERTIFICATE-----` ...)"
                            }),
                        );
                    }
                }
            }
        }
        Some(KmpParameters::Other(_)) => {}
    }
}

pub(super) fn certificate_store(o: &CertificateStore, out: &mut Vec<Diagnostic>) {
    out.push(
        Diagnostic::warning(
            "deprecated-kind",
            p("kind"),
            "CertificateStore is deprecated since Ratify v1.2.0 and removed in v2; Verdict reads it for now",
        )
        .with_fix("replace it with a KeyManagementProvider: `spec.provider` becomes `spec.type`, and list certificates as `parameters.certificates: [{name, version}]`"),
    );
    match o.spec.provider.as_str() {
        "azurekeyvault" | "inline" => {}
        "" => out.push(
            Diagnostic::error(
                "missing-field",
                p("spec.provider"),
                "`spec.provider` is required",
            )
            .with_fix("set `provider: azurekeyvault` or `provider: inline`"),
        ),
        other => out.push(
            Diagnostic::error(
                "invalid-value",
                p("spec.provider"),
                format!("`{other}` is not a certificate store provider"),
            )
            .with_fix("use `azurekeyvault` or `inline`"),
        ),
    }
}

#[cfg(test)]
mod duration_tests {
    use super::parse_go_duration;
    use std::time::Duration;

    #[test]
    fn go_durations_parse_as_go_does() {
        assert_eq!(parse_go_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("+10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration("-1m"), None);
        assert_eq!(parse_go_duration("m"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}

#[cfg(test)]
mod tests {
    use super::is_go_duration;

    #[test]
    fn go_durations() {
        for ok in ["1h", "1h30m", "300ms", "1.5h", "0", "2h45m10s"] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["", "1", "1 h", "5 minutes", "-1h", "h"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }
}
