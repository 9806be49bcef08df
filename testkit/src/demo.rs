//! `make demo`: Verdict's main job end to end on one machine. A real docker-registry holds a
//! Notation-signed image and an unsigned one and notifies a real `verdict serve` of each push
//! (verify on push: the verdicts are made before anyone asks); Ratify CRs trust the signing
//! certificate; Verdict then answers Gatekeeper's external-data request for each, the way
//! `kubectl run demo-signed` / `demo-unsigned` would trigger it in a cluster.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::notation::push_notation_signature;
use crate::pki::{CertBuilder, KeyAlg, TestCert};
use crate::process::free_port;
use crate::ratify::{NotationVerifier, inline_kmp_yaml};
use crate::registry::{DockerRegistry, NotificationEndpoint};
pub use crate::serve::default_verdict_bin;
use crate::serve::{ServeOptions, VERIFY_V1, VerdictServer};

/// Subject of the demo signing certificate (the seed's `SUBJECT_DN` shape).
pub const SIGNER_SUBJECT: &str = "C=US, ST=WA, O=Verdict Demo, CN=demo";
/// Name of the inline KeyManagementProvider holding the certificate.
pub const KMP_NAME: &str = "keymanagementprovider-inline";
/// Name of the Notation Verifier CR.
pub const VERIFIER_NAME: &str = "verifier-notation";
/// The signed image (repository, tag).
pub const SIGNED_IMAGE: (&str, &str) = ("ratify-demo/net-monitor", "v1");
/// The unsigned image (repository, tag).
pub const UNSIGNED_IMAGE: (&str, &str) = ("ratify-demo/net-watcher", "v1");

/// What Verdict answered for one pod's image.
#[derive(Clone, Debug)]
pub struct PodVerdict {
    /// Pod name (`demo-signed`, `demo-unsigned`).
    pub pod: String,
    /// The image reference sent as the external-data key.
    pub image: String,
    /// Whether Gatekeeper would admit the pod (`isSuccess` true, no error).
    pub allowed: bool,
    /// Why: the verifier and signer when allowed, the failure reason when denied.
    pub reason: String,
    /// True when the denial came from a transport/system error rather than a verification verdict.
    pub system_error: bool,
    /// What `kubectl run` would print.
    pub kubectl_line: String,
    /// The ProviderResponse item for this key.
    pub item: Value,
}

/// Both verdicts of a demo run.
#[derive(Clone, Debug)]
pub struct DemoOutcome {
    pub signed: PodVerdict,
    pub unsigned: PodVerdict,
}

impl DemoOutcome {
    /// The demo's claim: the signed image is admitted and the unsigned one is denied by a
    /// verification verdict (not by an outage).
    pub fn succeeded(&self) -> bool {
        self.signed.allowed && !self.unsigned.allowed && !self.unsigned.system_error
    }

    /// What went wrong, when [`succeeded`](Self::succeeded) is false.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.signed.allowed {
            out.push(format!(
                "the signed image {} was denied: {}",
                self.signed.image, self.signed.reason
            ));
        }
        if self.unsigned.allowed {
            out.push(format!(
                "the unsigned image {} was allowed: {}",
                self.unsigned.image, self.unsigned.reason
            ));
        } else if self.unsigned.system_error {
            out.push(format!(
                "the unsigned image {} was denied by an error, not a verification verdict: {}",
                self.unsigned.image, self.unsigned.reason
            ));
        }
        out
    }
}

/// Ratify CRs as a user would apply them: the inline KMP with `cert` and the seed's Notation
/// verifier (strict, `ca:certs`, the demo signer's subject as trusted identity).
pub fn ratify_config(cert: &TestCert) -> String {
    let kmp = inline_kmp_yaml(KMP_NAME, None, "certificate", &cert.pem());
    let verifier = NotationVerifier::new(VERIFIER_NAME, KMP_NAME)
        .trusted_identities(&[&format!("x509.subject: {SIGNER_SUBJECT}")])
        .yaml();
    format!("{kmp}---\n{verifier}")
}

/// Runs the demo with `verdict_bin`, reporting progress lines (and the kubectl-style verdicts)
/// to `say`. Everything it starts (docker-registry, verdict) and every temp dir is gone when it
/// returns or when the future is dropped.
pub async fn run(verdict_bin: &Path, mut say: impl FnMut(&str)) -> Result<DemoOutcome> {
    // Verify on push: docker-registry notifies Verdict's event receiver of every push, so by
    // the time Gatekeeper asks, the verdicts are made.
    let secret_dir = tempfile::Builder::new().prefix("verdict-demo-").tempdir()?;
    let secret_file = secret_dir.path().join("webhook.secret");
    std::fs::write(&secret_file, DEMO_WEBHOOK_SECRET)?;
    let events = format!("127.0.0.1:{}", free_port()?);
    say("# starting a local registry (docker-registry) that notifies Verdict of every push");
    let registry = DockerRegistry::builder()
        .notification(
            NotificationEndpoint::new("verdict", &format!("http://{events}/events/registry"))
                .header("Authorization", &format!("Bearer {DEMO_WEBHOOK_SECRET}")),
        )
        .start()
        .await?;
    let host = registry.host_port();
    let client = registry.client();

    say(&format!(
        "# generating the signing certificate: {SIGNER_SUBJECT} (RSA-3072, PS384)"
    ));
    let cert = CertBuilder::code_signing(SIGNER_SUBJECT)
        .key_alg(KeyAlg::Rsa3072)
        .self_signed()
        .context("generating the demo signing certificate")?;

    let mut verdict = VerdictServer::start(
        ServeOptions::new(verdict_bin, ratify_config(&cert))
            .plain_http(&host)
            .args(["--events-listen", &events, "--events-plain-http"])
            .args([
                std::ffi::OsStr::new("--webhook-secret-file"),
                secret_file.as_os_str(),
            ]),
    )
    .await?;
    say(&format!(
        "# Ratify CRs ({KMP_NAME}, {VERIFIER_NAME}) written to {}",
        verdict.config_file().display()
    ));
    say(&format!(
        "# started verdict serve (Gatekeeper API https://{}, registry events http://{events}/events/registry, ops http://{})",
        verdict.listen(),
        verdict.ops()
    ));

    let pushing = std::time::Instant::now();
    let (repo, tag) = SIGNED_IMAGE;
    let signed = client
        .push_image(repo, tag)
        .await
        .with_context(|| format!("pushing {repo}:{tag}"))?;
    let sig = push_notation_signature(&client, repo, &signed, &cert).await?;
    say(&format!(
        "# pushed {host}/{repo}:{tag} ({}) and its Notation signature ({})",
        signed.digest, sig.digest
    ));
    let (urepo, utag) = UNSIGNED_IMAGE;
    let unsigned = client
        .push_image(urepo, utag)
        .await
        .with_context(|| format!("pushing {urepo}:{utag}"))?;
    say(&format!(
        "# pushed {host}/{urepo}:{utag} ({}) without a signature",
        unsigned.digest
    ));
    // Four manifest pushes: two images, the signature, the signature's tag-schema index.
    let applied = wait_for_events(&verdict, 4.0).await?;
    say(&format!(
        "# verdict verified both images on push ({applied} registry events applied {} ms after the first push began)",
        pushing.elapsed().as_millis()
    ));
    say("# asking it what Gatekeeper would ask for each pod\n");

    let mut verdicts = Vec::new();
    for (pod, (repo, tag)) in [
        ("demo-signed", SIGNED_IMAGE),
        ("demo-unsigned", UNSIGNED_IMAGE),
    ] {
        let image = format!("{host}/{repo}:{tag}");
        say(&format!("$ kubectl run {pod} --image={image}"));
        let response = verdict
            .post_keys(VERIFY_V1, &[&image])
            .await
            .with_context(|| format!("verdict log tail:\n{}", verdict.log_tail()))?;
        let verdict_for_pod = judge(pod, &image, &response);
        say(&verdict_for_pod.kubectl_line);
        say("");
        verdicts.push(verdict_for_pod);
    }
    let inline = verdict
        .metric("verdict_inline_verifications_total", &[])
        .await?;
    say(&format!(
        "# {} inline verification(s) at admission: both answers came from verdicts made on push",
        inline as u64
    ));
    verdict.terminate(Duration::from_secs(5));
    drop(registry);

    let unsigned = verdicts.pop().context("no verdict for demo-unsigned")?;
    let signed = verdicts.pop().context("no verdict for demo-signed")?;
    Ok(DemoOutcome { signed, unsigned })
}

/// The webhook secret of the demo's registry notifications.
const DEMO_WEBHOOK_SECRET: &str = "verdict-demo-webhook-secret";

/// Waits until `verdict` has applied `events` registry events (30 s at most).
async fn wait_for_events(verdict: &VerdictServer, events: f64) -> Result<f64> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Applied = verified (an image) or subject_verified (a signature or its tag-schema
        // index); a `retried` event (e.g. an index announced before its tag was linked) is not.
        let processed = "verdict_events_processed_total";
        let applied = verdict.metric(processed, &["result=\"verified\""]).await?
            + verdict
                .metric(processed, &["result=\"subject_verified\""])
                .await?;
        if applied >= events {
            return Ok(applied);
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "verdict applied {applied} of {events} registry events within 30 s; its log:\n{}",
                verdict.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Gatekeeper's reading of a ProviderResponse for one key (fail closed: anything but an item
/// with `isSuccess: true` and no error denies).
fn judge(pod: &str, image: &str, response: &Value) -> PodVerdict {
    let deny = |reason: String, system_error: bool, item: Value| PodVerdict {
        pod: pod.to_string(),
        image: image.to_string(),
        allowed: false,
        kubectl_line: format!(
            "Error from server (Forbidden): admission webhook \"validation.gatekeeper.sh\" denied \
             the request: [ratify-constraint] Subject failed verification: {image} — {reason}"
        ),
        reason,
        system_error,
        item,
    };
    let r = &response["response"];
    if let Some(e) = r["systemError"].as_str().filter(|e| !e.is_empty()) {
        return deny(format!("system error: {e}"), true, Value::Null);
    }
    let Some(item) = r["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["key"] == image))
    else {
        return deny(
            format!("no item for this key in the response: {response}"),
            true,
            Value::Null,
        );
    };
    if let Some(e) = item["error"].as_str().filter(|e| !e.is_empty()) {
        return deny(format!("error: {e}"), true, item.clone());
    }
    let value = &item["value"];
    let reports = value["verifierReports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if value["isSuccess"] == true {
        let by: Vec<String> = reports
            .iter()
            .filter(|r| r["isSuccess"] == true)
            .map(|r| {
                let name = r["verifierName"]
                    .as_str()
                    .or(r["name"].as_str())
                    .unwrap_or("?");
                match r["extensions"]["SN"].as_str() {
                    Some(sn) => format!("signature verified by {name}, signed by {sn}"),
                    None => format!("verified by {name}"),
                }
            })
            .collect();
        let reason = if by.is_empty() {
            "isSuccess without a successful verifier report".to_string()
        } else {
            by.join("; ")
        };
        return PodVerdict {
            pod: pod.to_string(),
            image: image.to_string(),
            allowed: true,
            kubectl_line: format!("pod/{pod} created (allowed: {reason})"),
            reason,
            system_error: false,
            item: item.clone(),
        };
    }
    let reasons: Vec<String> = reports
        .iter()
        .filter(|r| r["isSuccess"] != true)
        .map(|r| {
            let code = r["errorReason"].as_str().filter(|s| !s.is_empty());
            let message = r["message"].as_str().filter(|s| !s.is_empty());
            match (code, message) {
                (Some(c), Some(m)) if !m.contains(c) => format!("{c}: {m}"),
                (_, Some(m)) => m.to_string(),
                (Some(c), None) => c.to_string(),
                (None, None) => "verification failed".to_string(),
            }
        })
        .collect();
    let reason = if reasons.is_empty() {
        "denied without a verifier report".to_string()
    } else {
        reasons.join("; ")
    };
    deny(reason, reports.is_empty(), item.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const IMAGE: &str = "127.0.0.1:5000/app:v1";

    fn item(value: Value) -> Value {
        json!({"response": {"items": [{"key": IMAGE, "value": value}]}})
    }

    #[test]
    fn allowed_only_with_is_success_and_a_report() {
        let v = judge(
            "p",
            IMAGE,
            &item(
                json!({"isSuccess": true, "verifierReports": [{"isSuccess": true,
                "verifierName": "verifier-notation", "extensions": {"SN": "CN=demo"}}]}),
            ),
        );
        assert!(v.allowed);
        assert_eq!(
            v.kubectl_line,
            "pod/p created (allowed: signature verified by verifier-notation, signed by CN=demo)"
        );
        let v = judge(
            "p",
            IMAGE,
            &item(
                json!({"isSuccess": false, "verifierReports": [{"isSuccess": false,
                "errorReason": "NOTATION_TRUST_FAILURE", "message": "untrusted"}]}),
            ),
        );
        assert!(!v.allowed && !v.system_error);
        assert!(
            v.kubectl_line
                .ends_with("Subject failed verification: 127.0.0.1:5000/app:v1 — NOTATION_TRUST_FAILURE: untrusted"),
            "{}",
            v.kubectl_line
        );
    }

    #[test]
    fn errors_and_missing_items_deny_as_system_errors() {
        for response in [
            json!({"response": {"systemError": "boom", "items": []}}),
            json!({"response": {"items": [{"key": "other", "value": {"isSuccess": true}}]}}),
            json!({"response": {"items": [{"key": IMAGE, "error": "timeout", "value": {"isSuccess": true}}]}}),
            item(json!({"isSuccess": false})),
        ] {
            let v = judge("p", IMAGE, &response);
            assert!(!v.allowed && v.system_error, "{response}");
        }
    }
}
