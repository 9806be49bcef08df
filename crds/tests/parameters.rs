//! Typed plugin parameters: every field loads into the typed model and serialises back.

mod common;

use common::*;
use verdict_crds::{
    KmpParameters, PolicyParameters, Resource, StoreParameters, TrustStoreType, VerifierParameters,
    load_str, parse_yaml,
};

const ALL_FIELDS: &str = r#"
apiVersion: config.ratify.deislabs.io/v1beta1
kind: Store
metadata:
  name: store-k8s-secrets
spec:
  name: oras
  version: 1.0.0
  parameters:
    useHttp: false
    cosignEnabled: true
    localCachePath: /.ratify/local_oras_cache
    cacheEnabled: true
    ttl: 10
    authProvider:
      name: k8Secrets
      serviceAccountName: ratify-admin
      secrets:
        - secretName: pull-secret
          namespace: gatekeeper-system
        - secretName: other-secret
---
apiVersion: config.ratify.deislabs.io/v1beta1
kind: NamespacedStore
metadata:
  name: store-wi
  namespace: team-a
spec:
  name: oras
  parameters:
    authProvider:
      name: azureWorkloadIdentity
      clientID: 11111111-2222-3333-4444-555555555555
      endpoints: ["*.azurecr.io", "*.azurecr.cn"]
---
apiVersion: config.ratify.deislabs.io/v1beta1
kind: Store
metadata:
  name: store-docker-config
spec:
  name: oras
  parameters:
    authProvider:
      name: dockerConfig
      configPath: /home/user/.docker/config.json
---
apiVersion: config.ratify.deislabs.io/v1beta1
kind: KeyManagementProvider
metadata:
  name: akv
spec:
  type: azurekeyvault
  refreshInterval: 1h30m
  parameters:
    vaultURI: https://myvault.vault.azure.net/
    tenantID: aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
    clientID: 11111111-2222-3333-4444-555555555555
    resource: https://vault.azure.net
    certificates:
      - name: signing-cert
        version: 0123456789abcdef0123456789abcdef
      - name: other-cert
        versionHistoryLimit: 3
    keys:
      - name: cosign-key
        version: fedcba9876543210fedcba9876543210
        versionHistoryLimit: 2
---
apiVersion: config.ratify.deislabs.io/v1beta1
kind: KeyManagementProvider
metadata:
  name: inline-ca
spec:
  type: inline
  parameters:
    contentType: certificate
    value: |
      -----BEGIN CERTIFICATE-----
      MIIBszCCAVmgAwIBAgIUQ
      -----END CERTIFICATE-----
---
apiVersion: config.ratify.deislabs.io/v1beta1
kind: Verifier
metadata:
  name: verifier-notation
spec:
  name: notation
  version: 1.0.0
  artifactTypes: application/vnd.cncf.notary.signature
  parameters:
    verificationCerts:
      - /usr/local/ratify-certs/notation/truststore
    verificationCertStores:
      ca:
        ca-certs:
          - akv
          - inline-ca
      signingAuthority:
        sa-certs:
          - akv
      tsa:
        tsa-certs:
          - inline-ca
    trustPolicyDoc:
      version: "1.0"
      trustPolicies:
        - name: production
          registryScopes:
            - myregistry.azurecr.io/app
            - localhost:5000/app/sub
          signatureVerification:
            level: strict
            override:
              revocation: log
              expiry: enforce
            verifyTimestamp: afterCertExpiry
          trustStores:
            - ca:ca-certs
            - tsa:tsa-certs
          trustedIdentities:
            - "x509.subject: C=US, ST=WA, L=Seattle, O=Example, CN=signer"
        - name: unsigned-tools
          registryScopes: ["myregistry.azurecr.io/tools/debug"]
          signatureVerification:
            level: skip
---
apiVersion: config.ratify.deislabs.io/v1beta1
kind: Verifier
metadata:
  name: verifier-cosign
spec:
  name: cosign
  artifactTypes: application/vnd.dev.cosign.artifact.sig.v1+json
  parameters:
    trustPolicies:
      - name: with-keys
        version: 1.0.0
        scopes:
          - myregistry.azurecr.io/app
          - otherregistry.io/team/*
        keys:
          - provider: akv
            name: cosign-key
            version: fedcba9876543210fedcba9876543210
          - file: /etc/keys/cosign.pub
        tLogVerify: false
        rekorURL: https://rekor.example.com
      - name: keyless-exact
        scopes: ["ghcr.io/org/app"]
        keyless:
          ctLogVerify: true
          certificateIdentity: release@example.com
          certificateOIDCIssuerRegExp: "^https://token\\.actions\\.githubusercontent\\.com$"
      - name: keyless-regexp
        scopes: ["*"]
        keyless:
          certificateIdentityRegExp: "^https://github.com/org/.*$"
          certificateOIDCIssuer: https://token.actions.githubusercontent.com
---
apiVersion: config.ratify.deislabs.io/v1beta1
kind: Policy
metadata:
  name: ratify-policy
spec:
  type: config-policy
  parameters:
    artifactVerificationPolicies:
      default: all
      application/vnd.cncf.notary.signature: any
    passthroughEnabled: false
---
apiVersion: config.ratify.deislabs.io/v1beta1
kind: NamespacedPolicy
metadata:
  name: ratify-policy
  namespace: team-a
spec:
  type: rego-policy
  parameters:
    passthroughEnabled: true
    policy: |
      package ratify.policy
      default valid := false
---
apiVersion: config.ratify.deislabs.io/v1beta1
kind: NamespacedPolicy
metadata:
  name: ratify-policy
  namespace: team-b
spec:
  type: rego-policy
  parameters:
    policyPath: /policies/ratify.rego
"#;

#[test]
fn every_typed_parameter_round_trips() {
    let r = load_str("all.yaml", ALL_FIELDS);
    assert!(!r.has_errors(), "{}", dump(&r));
    let bad: Vec<_> = r
        .diagnostics
        .iter()
        .filter(|d| d.code != "external-plugin")
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    let (docs, _) = parse_yaml(ALL_FIELDS);
    assert_eq!(r.resources.len(), docs.len());
    for (loaded, doc) in r.resources.iter().zip(&docs) {
        assert_eq!(
            &loaded.resource.to_json(),
            doc,
            "{} did not round-trip",
            loaded.resource.name()
        );
        // Parameters are typed, not kept as raw JSON.
        let typed = match &loaded.resource {
            Resource::Store(s) | Resource::NamespacedStore(s) => {
                matches!(s.spec.parameters, Some(StoreParameters::Oras(_)))
            }
            Resource::Verifier(v) => {
                !matches!(v.spec.parameters, Some(VerifierParameters::Other(_)) | None)
            }
            Resource::KeyManagementProvider(k) => {
                !matches!(k.spec.parameters, Some(KmpParameters::Other(_)) | None)
            }
            Resource::Policy(p) | Resource::NamespacedPolicy(p) => {
                !matches!(p.spec.parameters, Some(PolicyParameters::Other(_)) | None)
            }
            other => panic!("unexpected {other:?}"),
        };
        assert!(typed, "{} parameters not typed", loaded.resource.name());
    }
}

#[test]
fn typed_values_are_exact() {
    let r = load_str("all.yaml", ALL_FIELDS);
    let notation = r.resources[5]
        .resource
        .as_verifier()
        .unwrap()
        .spec
        .parameters
        .as_ref()
        .unwrap()
        .as_notation()
        .unwrap()
        .clone();
    let by_type = notation.cert_stores_by_type().unwrap();
    assert_eq!(
        by_type[&TrustStoreType::Ca]["ca-certs"],
        vec!["akv", "inline-ca"]
    );
    assert_eq!(
        by_type[&TrustStoreType::Tsa]["tsa-certs"],
        vec!["inline-ca"]
    );
    let pol = &notation.trust_policy_doc.unwrap().trust_policies.unwrap()[0];
    let sv = pol.signature_verification.as_ref().unwrap();
    assert_eq!(sv.override_.as_ref().unwrap()["revocation"], "log");
    assert_eq!(sv.verify_timestamp.as_deref(), Some("afterCertExpiry"));

    let cosign = r.resources[6]
        .resource
        .as_verifier()
        .unwrap()
        .spec
        .parameters
        .as_ref()
        .unwrap()
        .as_cosign()
        .unwrap()
        .clone();
    let pols = cosign.trust_policies.unwrap();
    assert_eq!(pols[0].t_log_verify, Some(false));
    assert_eq!(
        pols[0].keys.as_ref().unwrap()[1].file.as_deref(),
        Some("/etc/keys/cosign.pub")
    );
    let kl = pols[1].keyless.as_ref().unwrap();
    assert_eq!(
        kl.certificate_identity.as_deref(),
        Some("release@example.com")
    );
    assert_eq!(
        kl.certificate_oidc_issuer_reg_exp.as_deref(),
        Some("^https://token\\.actions\\.githubusercontent\\.com$")
    );

    let akv = r.resources[3]
        .resource
        .as_key_management_provider()
        .unwrap();
    assert_eq!(akv.spec.refresh_interval.as_deref(), Some("1h30m"));
    let a = akv
        .spec
        .parameters
        .as_ref()
        .unwrap()
        .as_azure_key_vault()
        .unwrap();
    assert_eq!(
        a.certificates.as_ref().unwrap()[1].version_history_limit,
        Some(3)
    );
    assert_eq!(a.resource.as_deref(), Some("https://vault.azure.net"));

    let store = r.resources[0]
        .resource
        .as_store()
        .unwrap()
        .spec
        .parameters
        .as_ref()
        .unwrap()
        .as_oras()
        .unwrap()
        .clone();
    assert_eq!(store.ttl, Some(10));
    let ap = store.auth_provider.unwrap();
    assert_eq!(
        ap.secrets.as_ref().unwrap()[0].namespace.as_deref(),
        Some("gatekeeper-system")
    );
    assert_eq!(r.resources[1].resource.namespace(), Some("team-a"));
}

#[test]
fn unknown_parameters_are_warnings_with_their_path() {
    let text = ALL_FIELDS.replace(
        "            level: skip\n",
        "            level: skip\n            levle: strict\n",
    );
    let text = text.replace(
        "    useHttp: false\n",
        "    useHttp: false\n    cosignEnable: true\n",
    );
    let r = load_str("all.yaml", &text);
    let unknown = all(&r, "unknown-field");
    assert_eq!(unknown.len(), 2, "{}", dump(&r));
    assert_eq!(unknown[0].path.to_string(), "spec.parameters.cosignEnable");
    assert_eq!(unknown[0].line, line_of(&text, "cosignEnable:"));
    assert!(unknown[0].message.contains("oras store"), "{}", unknown[0]);
    assert!(
        unknown[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("`cosignEnabled`")
    );
    assert_eq!(
        unknown[1].path.to_string(),
        "spec.parameters.trustPolicyDoc.trustPolicies[1].signatureVerification.levle"
    );
    assert!(unknown[1].fix.as_deref().unwrap().contains("`level`"));
}

#[test]
fn unknown_plugins_keep_their_parameters_as_json() {
    let text = "apiVersion: config.ratify.deislabs.io/v1beta1\nkind: Verifier\nmetadata:\n  name: sbom\nspec:\n  name: sbom\n  artifactTypes: application/spdx+json\n  parameters:\n    disallowedLicenses: [GPL-3.0]\n    nestedReferences: application/vnd.cncf.notary.signature\n";
    let r = load_str("sbom.yaml", text);
    assert!(!r.has_errors(), "{}", dump(&r));
    let d = only(&r, "unsupported-plugin");
    assert_eq!(d.path.to_string(), "spec.name");
    let v = r.resources[0].resource.as_verifier().unwrap();
    let Some(VerifierParameters::Other(raw)) = &v.spec.parameters else {
        panic!("raw parameters expected")
    };
    assert_eq!(raw["disallowedLicenses"][0], "GPL-3.0");
    assert_eq!(r.resources[0].resource.to_json(), parse_yaml(text).0[0]);
}
