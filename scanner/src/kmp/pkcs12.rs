//! The certificates of a PKCS#12 archive as Key Vault stores a certificate's secret
//! (`application/x-pkcs12`, base64, no password). Only what that needs: the MAC check, the
//! `pbeWithSHAAnd3-KeyTripleDES-CBC` (PBES1) and PBES2 (PBKDF2 + AES-CBC) encryptions, and
//! certificate bags; private keys are never decrypted.
//!
//! "No password" has two encodings (RFC 7292 says a BMPString with a terminating NUL, `00 00`;
//! Windows and others use zero bytes). Both are tried, as Go's pkcs12 package (Ratify's) does;
//! the Ratify vector needs the second, which `p12-keystore` does not offer.

use aws_lc_rs::{digest, hmac, pbkdf2};

use crate::der::{self, Reader, TAG_INTEGER, TAG_OCTET_STRING, TAG_SEQUENCE, ctx_cons, ctx_prim};

const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const OID_CERT_BAG: &str = "1.2.840.113549.1.12.10.1.3";
const OID_X509_CERTIFICATE: &str = "1.2.840.113549.1.9.22.1";
const OID_PBE_SHA1_3DES: &str = "1.2.840.113549.1.12.1.3";
const OID_PBES2: &str = "1.2.840.113549.1.5.13";
const OID_PBKDF2: &str = "1.2.840.113549.1.5.12";
const OID_HMAC_SHA1: &str = "1.2.840.113549.2.7";
const OID_HMAC_SHA256: &str = "1.2.840.113549.2.9";
const OID_AES128_CBC: &str = "2.16.840.1.101.3.4.1.2";
const OID_AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";
const OID_SHA1: &str = "1.3.14.3.2.26";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
/// Iteration counts above this are refused (a hostile archive could make us spin).
const MAX_ITERATIONS: u64 = 10_000_000;

/// The two encodings of the empty password (RFC 7292 B.1 form first).
const EMPTY_PASSWORDS: [&[u8]; 2] = [&[0, 0], &[]];

/// Every X.509 certificate in the archive, in the order stored.
pub(crate) fn certificates(pfx: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let top = der::parse_single(pfx, TAG_SEQUENCE, "PFX")?;
    let mut r = top.reader();
    r.read(TAG_INTEGER, "PFX version")?;
    let auth_safe = content_data(&mut r, "PFX authSafe")?;
    let password = match r.read_optional(TAG_SEQUENCE, "PFX macData")? {
        None => EMPTY_PASSWORDS[0],
        Some(mac) => EMPTY_PASSWORDS
            .into_iter()
            .find(|pw| verify_mac(&mac, auth_safe, pw).unwrap_or(false))
            .ok_or_else(|| {
                "its MAC does not verify without a password (Key Vault stores PKCS#12 without one)"
                    .to_string()
            })?,
    };
    let mut out = Vec::new();
    let safe = der::parse_single(auth_safe, TAG_SEQUENCE, "AuthenticatedSafe")?;
    let mut infos = safe.reader();
    while !infos.is_empty() {
        let info = infos.read(TAG_SEQUENCE, "ContentInfo")?;
        let mut ir = info.reader();
        let content_type = der::read_oid(&mut ir, "ContentInfo contentType")?;
        let explicit = ir.read(ctx_cons(0), "ContentInfo content")?;
        let bags = match content_type.as_str() {
            OID_DATA => der::parse_single(explicit.value, TAG_OCTET_STRING, "data")?
                .value
                .to_vec(),
            OID_ENCRYPTED_DATA => decrypt_encrypted_data(explicit.value, password)?,
            other => {
                return Err(format!(
                    "it holds content of type {other}, which is not read"
                ));
            }
        };
        certificate_bags(&bags, &mut out)?;
    }
    Ok(out)
}

/// `ContentInfo` of type data: the bytes of its OCTET STRING.
fn content_data<'a>(r: &mut Reader<'a>, what: &str) -> Result<&'a [u8], String> {
    let info = r.read(TAG_SEQUENCE, what)?;
    let mut ir = info.reader();
    let oid = der::read_oid(&mut ir, what)?;
    if oid != OID_DATA {
        return Err(format!(
            "{what} is of type {oid}; only password-integrity (data) archives are read"
        ));
    }
    let explicit = ir.read(ctx_cons(0), what)?;
    Ok(der::parse_single(explicit.value, TAG_OCTET_STRING, what)?.value)
}

fn verify_mac(mac: &der::Tlv<'_>, data: &[u8], password: &[u8]) -> Result<bool, String> {
    let mut r = mac.reader();
    let digest_info = r.read(TAG_SEQUENCE, "MacData mac")?;
    let mut dr = digest_info.reader();
    let alg = der::AlgorithmId::parse(&mut dr, "MacData digest algorithm")?;
    let expected = dr.read(TAG_OCTET_STRING, "MacData digest")?.value;
    let salt = r.read(TAG_OCTET_STRING, "MacData salt")?.value;
    let iterations = match r.read_optional(TAG_INTEGER, "MacData iterations")? {
        Some(t) => der::integer_to_u64(t.value)?,
        None => 1,
    };
    check_iterations(iterations)?;
    let (kdf, algorithm, len) = match alg.oid.as_str() {
        OID_SHA1 => (
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            20,
        ),
        OID_SHA256 => (&digest::SHA256, hmac::HMAC_SHA256, 32),
        other => {
            return Err(format!(
                "its MAC uses digest {other}, which is not supported"
            ));
        }
    };
    let key = pkcs12_kdf(kdf, password, salt, 3, iterations, len);
    let key = hmac::Key::new(algorithm, &key);
    Ok(hmac::verify(&key, data, expected).is_ok())
}

fn check_iterations(n: u64) -> Result<(), String> {
    if n == 0 || n > MAX_ITERATIONS {
        return Err(format!("its iteration count {n} is out of range"));
    }
    Ok(())
}

/// RFC 7292 Appendix B.2: the PKCS#12 key derivation (`id` 1 key, 2 IV, 3 MAC key).
fn pkcs12_kdf(
    alg: &'static digest::Algorithm,
    password: &[u8],
    salt: &[u8],
    id: u8,
    iterations: u64,
    len: usize,
) -> Vec<u8> {
    let u = alg.output_len();
    let v = alg.block_len();
    let d = vec![id; v];
    let fill = |src: &[u8]| -> Vec<u8> {
        if src.is_empty() {
            return Vec::new();
        }
        let n = v * src.len().div_ceil(v);
        src.iter().cycle().take(n).copied().collect()
    };
    let mut i: Vec<u8> = fill(salt);
    i.extend(fill(password));
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let mut ctx = digest::Context::new(alg);
        ctx.update(&d);
        ctx.update(&i);
        let mut a = ctx.finish().as_ref().to_vec();
        for _ in 1..iterations {
            a = digest::digest(alg, &a).as_ref().to_vec();
        }
        out.extend_from_slice(&a[..u.min(len - out.len())]);
        if out.len() >= len {
            break;
        }
        // I_j = (I_j + B + 1) mod 2^(v*8) for each v-byte block of I.
        let b: Vec<u8> = a.iter().cycle().take(v).copied().collect();
        for block in i.chunks_mut(v) {
            let mut carry = 1u16;
            for k in (0..v).rev() {
                let sum = u16::from(block[k]) + u16::from(b[k]) + carry;
                block[k] = sum as u8;
                carry = sum >> 8;
            }
        }
    }
    out
}

/// `EncryptedData` → the decrypted SafeContents.
fn decrypt_encrypted_data(content: &[u8], password: &[u8]) -> Result<Vec<u8>, String> {
    let ed = der::parse_single(content, TAG_SEQUENCE, "EncryptedData")?;
    let mut r = ed.reader();
    r.read(TAG_INTEGER, "EncryptedData version")?;
    let eci = r.read(TAG_SEQUENCE, "EncryptedContentInfo")?;
    let mut er = eci.reader();
    der::read_oid(&mut er, "EncryptedContentInfo contentType")?;
    let alg = der::AlgorithmId::parse(&mut er, "content encryption algorithm")?;
    let encrypted = er
        .read(ctx_prim(0), "encryptedContent")
        .map_err(|e| format!("{e} (constructed BER encodings are not read)"))?
        .value;
    let params = alg.params.as_deref().unwrap_or_default();
    match alg.oid.as_str() {
        OID_PBE_SHA1_3DES => {
            let p = der::parse_single(params, TAG_SEQUENCE, "PBE parameters")?;
            let mut pr = p.reader();
            let salt = pr.read(TAG_OCTET_STRING, "PBE salt")?.value;
            let iterations = der::integer_to_u64(pr.read(TAG_INTEGER, "PBE iterations")?.value)?;
            check_iterations(iterations)?;
            let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
            let key = pkcs12_kdf(sha1, password, salt, 1, iterations, 24);
            let iv = pkcs12_kdf(sha1, password, salt, 2, iterations, 8);
            decrypt_3des(&key, &iv, encrypted)
        }
        OID_PBES2 => decrypt_pbes2(params, password, encrypted),
        other => Err(format!(
            "its certificates are encrypted with {other}, which is not supported (3DES and PBES2/AES are); export the certificate as PEM"
        )),
    }
}

fn decrypt_3des(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
    cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
        .map_err(|_| "3DES key or IV of the wrong length".to_string())?
        .decrypt_padded_vec::<Pkcs7>(data)
        .map_err(|_| "it does not decrypt without a password (bad padding)".to_string())
}

/// PBES2 (RFC 8018): PBKDF2 with HMAC-SHA1/256 and AES-128/256-CBC (OpenSSL 3's default).
/// Its password is the UTF-8 text, so the empty one is always zero bytes.
fn decrypt_pbes2(params: &[u8], _password: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    let p = der::parse_single(params, TAG_SEQUENCE, "PBES2 parameters")?;
    let mut pr = p.reader();
    let kdf = der::AlgorithmId::parse(&mut pr, "PBES2 key derivation")?;
    let enc = der::AlgorithmId::parse(&mut pr, "PBES2 encryption scheme")?;
    if kdf.oid != OID_PBKDF2 {
        return Err(format!("PBES2 key derivation {} is not supported", kdf.oid));
    }
    let kp = der::parse_single(
        kdf.params.as_deref().unwrap_or_default(),
        TAG_SEQUENCE,
        "PBKDF2 parameters",
    )?;
    let mut kr = kp.reader();
    let salt = kr.read(TAG_OCTET_STRING, "PBKDF2 salt")?.value;
    let iterations = der::integer_to_u64(kr.read(TAG_INTEGER, "PBKDF2 iterations")?.value)?;
    check_iterations(iterations)?;
    if kr.peek_tag() == Some(TAG_INTEGER) {
        kr.read(TAG_INTEGER, "PBKDF2 key length")?;
    }
    let prf = if kr.is_empty() {
        OID_HMAC_SHA1.to_string()
    } else {
        der::AlgorithmId::parse(&mut kr, "PBKDF2 PRF")?.oid
    };
    let prf = match prf.as_str() {
        OID_HMAC_SHA1 => pbkdf2::PBKDF2_HMAC_SHA1,
        OID_HMAC_SHA256 => pbkdf2::PBKDF2_HMAC_SHA256,
        other => return Err(format!("PBKDF2 PRF {other} is not supported")),
    };
    let (key_len, algorithm) = match enc.oid.as_str() {
        OID_AES128_CBC => (16, &aws_lc_rs::cipher::AES_128),
        OID_AES256_CBC => (32, &aws_lc_rs::cipher::AES_256),
        other => return Err(format!("PBES2 cipher {other} is not supported")),
    };
    let iv = der::parse_single(
        enc.params.as_deref().unwrap_or_default(),
        TAG_OCTET_STRING,
        "AES IV",
    )?
    .value;
    let mut key = vec![0u8; key_len];
    let rounds = std::num::NonZeroU32::new(u32::try_from(iterations).map_err(|e| e.to_string())?)
        .ok_or("zero PBKDF2 iterations")?;
    pbkdf2::derive(prf, rounds, salt, b"", &mut key);
    let iv: [u8; 16] = iv.try_into().map_err(|_| "AES IV is not 16 bytes")?;
    let key = aws_lc_rs::cipher::UnboundCipherKey::new(algorithm, &key)
        .map_err(|_| "AES key of the wrong length")?;
    let decrypting = aws_lc_rs::cipher::PaddedBlockDecryptingKey::cbc_pkcs7(key)
        .map_err(|_| "cannot set up AES-CBC")?;
    let mut buf = data.to_vec();
    let plain = decrypting
        .decrypt(
            &mut buf,
            aws_lc_rs::cipher::DecryptionContext::Iv128(iv.into()),
        )
        .map_err(|_| "it does not decrypt without a password (bad padding)")?;
    Ok(plain.to_vec())
}

/// Appends the X.509 certificates among the bags of a SafeContents.
fn certificate_bags(safe_contents: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), String> {
    let seq = der::parse_single(safe_contents, TAG_SEQUENCE, "SafeContents")?;
    let mut r = seq.reader();
    while !r.is_empty() {
        let bag = r.read(TAG_SEQUENCE, "SafeBag")?;
        let mut br = bag.reader();
        let bag_id = der::read_oid(&mut br, "SafeBag bagId")?;
        if bag_id != OID_CERT_BAG {
            continue; // keys, secrets, CRLs: not trust material
        }
        let value = br.read(ctx_cons(0), "SafeBag bagValue")?;
        let cert_bag = der::parse_single(value.value, TAG_SEQUENCE, "CertBag")?;
        let mut cr = cert_bag.reader();
        let cert_id = der::read_oid(&mut cr, "CertBag certId")?;
        if cert_id != OID_X509_CERTIFICATE {
            continue;
        }
        let explicit = cr.read(ctx_cons(0), "CertBag certValue")?;
        let der_cert = der::parse_single(explicit.value, TAG_OCTET_STRING, "x509Certificate")?;
        out.push(der_cert.value.to_vec());
    }
    Ok(())
}
