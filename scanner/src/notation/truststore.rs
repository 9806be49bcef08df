//! Named trust stores of type `ca`, `signingAuthority` and `tsa`, filled by callers from inline
//! PEM, files or a key management provider.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use x509_parser::pem::Pem;

use super::certs::Certificate;
use super::crypto;
use super::error::NotationError;

pub use verdict_crds::TrustStoreType;
pub(crate) use verdict_crds::notation::is_valid_store_name;

/// A set of named trust stores. Cheap to clone (certificates are shared).
#[derive(Clone, Default)]
pub struct TrustStores {
    stores: BTreeMap<(TrustStoreType, String), Vec<Arc<Certificate>>>,
}

impl fmt::Debug for TrustStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for ((ty, name), certs) in &self.stores {
            m.entry(
                &format!("{ty}:{name}"),
                &certs
                    .iter()
                    .map(|c| c.subject_string.as_str())
                    .collect::<Vec<_>>(),
            );
        }
        m.finish()
    }
}

impl TrustStores {
    pub fn new() -> Self {
        Self::default()
    }

    fn check_name(ty: TrustStoreType, name: &str) -> Result<(), NotationError> {
        if is_valid_store_name(name) {
            Ok(())
        } else {
            Err(NotationError::InvalidTrustStore {
                store: format!("{ty}:{name}"),
                reason: "named store names must match [a-zA-Z0-9_.-]+".into(),
            })
        }
    }

    /// Makes sure the named store exists, even if it stays empty.
    pub fn create_store(&mut self, ty: TrustStoreType, name: &str) -> Result<(), NotationError> {
        Self::check_name(ty, name)?;
        self.stores.entry((ty, name.to_string())).or_default();
        Ok(())
    }

    /// Adds one DER certificate. Like notation, a trust store accepts only CA certificates or
    /// self-signed certificates (a pinned leaf must at least be self-signed).
    pub fn add_certificate_der(
        &mut self,
        ty: TrustStoreType,
        name: &str,
        der: &[u8],
    ) -> Result<(), NotationError> {
        Self::check_name(ty, name)?;
        let index = self
            .stores
            .get(&(ty, name.to_string()))
            .map_or(0, |v| v.len());
        let store = format!("{ty}:{name}");
        let cert = Certificate::from_der(der).map_err(|reason| {
            NotationError::InvalidTrustStoreCertificate {
                store: store.clone(),
                index,
                reason,
            }
        })?;
        let is_ca = cert.basic_constraints.as_ref().is_some_and(|bc| bc.value.0);
        if !is_ca && cert.verify_signed_by(&cert).is_err() {
            return Err(NotationError::InvalidTrustStoreCertificate {
                store,
                index,
                reason: format!(
                    "certificate {:?} is neither a CA certificate nor a self-signed signing certificate",
                    cert.subject_string
                ),
            });
        }
        let certs = self.stores.entry((ty, name.to_string())).or_default();
        if !certs.iter().any(|c| c.sha256 == cert.sha256) {
            certs.push(Arc::new(cert));
        }
        Ok(())
    }

    /// Adds every certificate of a PEM bundle, or a single DER certificate. Returns how many
    /// certificates were read; input without any certificate is an error.
    pub fn add_certificates(
        &mut self,
        ty: TrustStoreType,
        name: &str,
        data: &[u8],
    ) -> Result<usize, NotationError> {
        Self::check_name(ty, name)?;
        let store = format!("{ty}:{name}");
        let looks_pem = data.windows(11).any(|w| w == b"-----BEGIN ");
        if !looks_pem {
            self.add_certificate_der(ty, name, data)?;
            return Ok(1);
        }
        let mut n = 0;
        for (i, pem) in Pem::iter_from_buffer(data).enumerate() {
            let pem = pem.map_err(|e| NotationError::InvalidTrustStoreCertificate {
                store: store.clone(),
                index: i,
                reason: format!("malformed PEM: {e}"),
            })?;
            if pem.label != "CERTIFICATE" {
                return Err(NotationError::InvalidTrustStoreCertificate {
                    store: store.clone(),
                    index: i,
                    reason: format!("PEM block {:?} is not a CERTIFICATE", pem.label),
                });
            }
            self.add_certificate_der(ty, name, &pem.contents)?;
            n += 1;
        }
        if n == 0 {
            return Err(NotationError::InvalidTrustStoreCertificate {
                store,
                index: 0,
                reason: "no certificate found in the PEM data".into(),
            });
        }
        Ok(n)
    }

    pub fn contains_store(&self, ty: TrustStoreType, name: &str) -> bool {
        self.stores.contains_key(&(ty, name.to_string()))
    }

    /// DER of every certificate of a store, or `None` when the store does not exist.
    pub fn certificates(&self, ty: TrustStoreType, name: &str) -> Option<Vec<&[u8]>> {
        self.stores
            .get(&(ty, name.to_string()))
            .map(|v| v.iter().map(|c| c.der.as_slice()).collect())
    }

    pub(crate) fn store_certs(
        &self,
        ty: TrustStoreType,
        name: &str,
    ) -> Option<&[Arc<Certificate>]> {
        self.stores
            .get(&(ty, name.to_string()))
            .map(|v| v.as_slice())
    }

    /// Every `(type, name)` configured.
    pub fn store_names(&self) -> Vec<(TrustStoreType, String)> {
        self.stores.keys().cloned().collect()
    }

    /// SHA-256 over all stores and their certificates, stable across insertion order: changes
    /// whenever a certificate enters or leaves any store.
    pub fn fingerprint(&self) -> String {
        let mut text = String::new();
        for ((ty, name), certs) in &self.stores {
            let mut fps: Vec<&str> = certs.iter().map(|c| c.sha256.as_str()).collect();
            fps.sort_unstable();
            text.push_str(&format!("{ty}:{name}={}\n", fps.join(",")));
        }
        crypto::sha256_hex(text.as_bytes())
    }
}
