//! Verdicts as they travel between replicas (the verdict stream): each message is sealed with the
//! verdict key like a store entry, so a replica applies only what a holder of the shared key
//! produced, and a message cannot be replayed under another subject.
//!
//! Form: `kind (1 byte) || len(key) (4 bytes, big-endian) || canonical key || sealed payload`,
//! where the seal covers the replica domain, the kind and the key; `kind` 1 carries a verdict
//! (the store's encoding), 2 removes the subject's verdict, 3 says a tag (the key,
//! `registry/repository:tag`) now points to a digest (the payload).

use super::codec;
use super::{MissReason, StoreError, StoredVerdict, SubjectKey, VerdictSigner};
use crate::registry::{Digest, ImageReference};

const KIND_PUT: u8 = 1;
const KIND_REMOVE: u8 = 2;
const KIND_TAG: u8 = 3;
const DOMAIN: &[u8] = b"verdict-replica/v1\0";

/// A change to replicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Replicated {
    /// Store this verdict for the subject.
    Put(SubjectKey, StoredVerdict),
    /// Forget the subject's verdict (deleted, or no longer allowed).
    Remove(SubjectKey),
    /// A tag was pushed: `reference` (with a tag, no digest) now points to `digest`.
    Tag {
        reference: ImageReference,
        digest: Digest,
    },
}

impl Replicated {
    /// The text the message travels under (one verdict-stream subject per key).
    pub fn key_text(&self) -> String {
        match self {
            Replicated::Put(k, _) | Replicated::Remove(k) => k.to_string(),
            Replicated::Tag { reference, .. } => reference.to_string(),
        }
    }
}

fn bound_key(kind: u8, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(DOMAIN.len() + 1 + key.len());
    k.extend_from_slice(DOMAIN);
    k.push(kind);
    k.extend_from_slice(key.as_bytes());
    k
}

/// Seals `change` with `signer` for the verdict stream.
pub fn seal_replicated(signer: &VerdictSigner, change: &Replicated) -> Result<Vec<u8>, StoreError> {
    let key = change.key_text();
    let (kind, payload) = match change {
        Replicated::Put(k, v) => (
            KIND_PUT,
            codec::encode_verdict(k, v).map_err(StoreError::Encode)?,
        ),
        Replicated::Remove(_) => (KIND_REMOVE, Vec::new()),
        Replicated::Tag { digest, .. } => (KIND_TAG, digest.to_string().into_bytes()),
    };
    let sealed = codec::seal(signer, &bound_key(kind, &key), &payload);
    let mut out = Vec::with_capacity(5 + key.len() + sealed.len());
    out.push(kind);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a message of the verdict stream: checks the seal, the encoding and that the verdict is
/// about the key it travels under.
pub fn open_replicated(signer: &VerdictSigner, bytes: &[u8]) -> Result<Replicated, MissReason> {
    let (&kind, rest) = bytes.split_first().ok_or(MissReason::Corrupt)?;
    if rest.len() < 4 {
        return Err(MissReason::Corrupt);
    }
    let (len, rest) = rest.split_at(4);
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if rest.len() < len {
        return Err(MissReason::Corrupt);
    }
    let (key_bytes, sealed) = rest.split_at(len);
    let key_text = std::str::from_utf8(key_bytes).map_err(|_| MissReason::Corrupt)?;
    let payload = codec::unseal(signer, &bound_key(kind, key_text), sealed)?;
    if kind == KIND_TAG {
        let reference = ImageReference::parse(key_text).map_err(|_| MissReason::Corrupt)?;
        let digest = std::str::from_utf8(payload)
            .ok()
            .and_then(|d| Digest::parse(d).ok())
            .ok_or(MissReason::Corrupt)?;
        if reference.tag().is_none() || reference.digest().is_some() {
            return Err(MissReason::Corrupt);
        }
        return Ok(Replicated::Tag { reference, digest });
    }
    let key = SubjectKey::parse(key_text).map_err(|_| MissReason::Corrupt)?;
    match kind {
        KIND_PUT => {
            let (named, verdict) = codec::decode_verdict(payload).ok_or(MissReason::Corrupt)?;
            if named != key_text {
                return Err(MissReason::Corrupt);
            }
            Ok(Replicated::Put(key, verdict))
        }
        KIND_REMOVE if payload.is_empty() => Ok(Replicated::Remove(key)),
        _ => Err(MissReason::Corrupt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Repository;
    use crate::report::{ArtifactPolicy, VerificationResult};
    use crate::store::SignerKind;

    fn key(n: u8) -> SubjectKey {
        SubjectKey::new(
            None,
            Repository::new("reg.example:5000", "team/app").unwrap(),
            Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap(),
        )
    }

    fn verdict(k: &SubjectKey) -> StoredVerdict {
        StoredVerdict::new(VerificationResult::decide(
            k.reference().to_string(),
            k.digest().to_string(),
            Vec::new(),
            Vec::new(),
            &ArtifactPolicy::default(),
            "fp".into(),
            chrono::Utc::now(),
        ))
    }

    #[test]
    fn messages_open_only_with_the_same_key_and_unaltered() {
        let signer = VerdictSigner::generate(SignerKind::HmacSha256).unwrap();
        let put = Replicated::Put(key(1), verdict(&key(1)));
        let bytes = seal_replicated(&signer, &put).unwrap();
        assert_eq!(open_replicated(&signer, &bytes).unwrap(), put);
        let tag = Replicated::Tag {
            reference: ImageReference::parse("reg.example:5000/team/app:v1").unwrap(),
            digest: key(4).digest().clone(),
        };
        let bytes_tag = seal_replicated(&signer, &tag).unwrap();
        assert_eq!(open_replicated(&signer, &bytes_tag).unwrap(), tag);
        let remove = Replicated::Remove(key(2));
        let bytes_rm = seal_replicated(&signer, &remove).unwrap();
        assert_eq!(open_replicated(&signer, &bytes_rm).unwrap(), remove);

        let other = VerdictSigner::generate(SignerKind::HmacSha256).unwrap();
        assert_eq!(
            open_replicated(&other, &bytes),
            Err(MissReason::BadSignature)
        );
        // The same sealed verdict moved under another subject, or its kind flipped, fails.
        let moved =
            String::from_utf8_lossy(&bytes).replace(&key(1).to_string(), &key(3).to_string());
        assert!(open_replicated(&signer, moved.as_bytes()).is_err());
        let mut flipped = bytes_rm.clone();
        flipped[0] = KIND_PUT;
        assert!(open_replicated(&signer, &flipped).is_err());
        for cut in [0, 3, 10, bytes.len() - 1] {
            assert!(
                open_replicated(&signer, &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }
}
