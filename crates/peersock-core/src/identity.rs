//! Zooko-style identities: a peer's name is its Ed25519 public key.
//!
//! The TLS credential is a self-signed X.509 certificate whose subject public
//! key *is* the identity key. TLS 1.3's CertificateVerify then proves that the
//! peer holds the matching secret key, so checking the certificate's key is
//! all the authentication there is: no chains, no names, no CAs.

use std::sync::{Arc, Mutex};

use boring::asn1::{Asn1Integer, Asn1Time};
use boring::bn::BigNum;
use boring::hash::MessageDigest;
use boring::pkey::{Id, PKey, Private};
use boring::ssl::{SslAlert, SslRef, SslVerifyError};
use boring::x509::{X509Name, X509};

use crate::error::Error;

/// Length of an Ed25519 public key, the peer's name.
pub const KEY_LEN: usize = 32;

/// A peer's name: its Ed25519 public key.
pub type PublicKey = [u8; KEY_LEN];

/// DER prefix of a PKCS#8 Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// This endpoint's own identity: the key pair and the certificate made from it.
pub struct Identity {
    public_key: PublicKey,
    pub(crate) pkey: PKey<Private>,
    pub(crate) cert: X509,
}

impl Identity {
    /// Builds an identity from a secret key: either the 32-byte Ed25519 seed
    /// or tweetnacl's 64-byte form (seed followed by the public key, which is
    /// checked against the seed).
    pub fn from_secret_key(secret: &[u8]) -> Result<Identity, Error> {
        let seed = match secret.len() {
            32 | 64 => &secret[..32],
            n => {
                return Err(Error::InvalidArgument(format!(
                    "secret key must be 32 or 64 bytes, got {n}"
                )))
            }
        };
        let mut der = Vec::with_capacity(48);
        der.extend_from_slice(&PKCS8_ED25519_PREFIX);
        der.extend_from_slice(seed);
        let pkey = PKey::private_key_from_der(&der).map_err(|e| Error::Tls(e.to_string()))?;
        let mut public_key = [0u8; KEY_LEN];
        pkey.raw_public_key(&mut public_key)
            .map_err(|e| Error::Tls(e.to_string()))?;
        if secret.len() == 64 && secret[32..] != public_key {
            return Err(Error::InvalidArgument(
                "secret key's second half is not the public key of its seed".into(),
            ));
        }
        let cert = self_signed_certificate(&pkey)?;
        Ok(Identity {
            public_key,
            pkey,
            cert,
        })
    }

    /// The 32-byte Ed25519 seed (secret).
    pub(crate) fn seed(&self) -> Result<[u8; 32], Error> {
        let mut seed = [0u8; 32];
        self.pkey
            .raw_private_key(&mut seed)
            .map_err(|e| Error::Tls(e.to_string()))?;
        Ok(seed)
    }

    /// The public key: this endpoint's name.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
}

/// Makes the self-signed certificate that carries `pkey` as its subject key.
fn self_signed_certificate(pkey: &PKey<Private>) -> Result<X509, Error> {
    let tls = |e: boring::error::ErrorStack| Error::Tls(e.to_string());
    let mut name = X509Name::builder().map_err(tls)?;
    name.append_entry_by_text("CN", "peersock").map_err(tls)?;
    let name = name.build();
    let mut b = X509::builder().map_err(tls)?;
    b.set_version(2).map_err(tls)?;
    let mut serial = [0u8; 16];
    boring::rand::rand_bytes(&mut serial).map_err(tls)?;
    serial[0] &= 0x7f;
    let serial = BigNum::from_slice(&serial).map_err(tls)?;
    let serial = Asn1Integer::from_bn(&serial).map_err(tls)?;
    b.set_serial_number(&serial).map_err(tls)?;
    b.set_subject_name(&name).map_err(tls)?;
    b.set_issuer_name(&name).map_err(tls)?;
    // Validity is not checked by peersock (the key is the name); the dates
    // only have to be well formed.
    let not_before = Asn1Time::from_unix(0).map_err(tls)?;
    let not_after = Asn1Time::from_unix(253_402_300_799).map_err(tls)?;
    b.set_not_before(&not_before).map_err(tls)?;
    b.set_not_after(&not_after).map_err(tls)?;
    b.set_pubkey(pkey).map_err(tls)?;
    // Ed25519 signs the message itself: X509_sign takes no digest (NULL).
    // SAFETY: BoringSSL accepts a null EVP_MD for Ed25519 keys.
    let no_digest = unsafe { MessageDigest::from_ptr(std::ptr::null()) };
    b.sign(pkey, no_digest).map_err(tls)?;
    Ok(b.build())
}

/// Why a peer's credential was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityFailure {
    /// The certificate's key is a valid Ed25519 key, but not the dialed one.
    Mismatch {
        expected: PublicKey,
        actual: PublicKey,
    },
    /// The peer sent no certificate, more than one, or one whose key is not
    /// Ed25519.
    BadCertificate(String),
}

/// Where a verify callback leaves its verdict for the connection to read.
pub(crate) type FailureSlot = Arc<Mutex<Option<IdentityFailure>>>;

/// Extracts the Ed25519 key from a DER certificate.
pub fn key_from_certificate_der(der: &[u8]) -> Result<PublicKey, IdentityFailure> {
    let cert = X509::from_der(der)
        .map_err(|_| IdentityFailure::BadCertificate("unparsable certificate".into()))?;
    key_from_certificate(&cert)
}

fn key_from_certificate(cert: &boring::x509::X509Ref) -> Result<PublicKey, IdentityFailure> {
    let pkey = cert
        .public_key()
        .map_err(|_| IdentityFailure::BadCertificate("unreadable public key".into()))?;
    if pkey.id() != Id::ED25519 {
        return Err(IdentityFailure::BadCertificate(
            "certificate key is not Ed25519".into(),
        ));
    }
    let mut key = [0u8; KEY_LEN];
    match pkey.raw_public_key(&mut key) {
        Ok(k) if k.len() == KEY_LEN => Ok(key),
        _ => Err(IdentityFailure::BadCertificate("bad Ed25519 key".into())),
    }
}

/// Checks the peer's certificate list: exactly one certificate, Ed25519, and
/// (when `expected` is given) the dialed key.
fn check_peer(ssl: &SslRef, expected: Option<&PublicKey>) -> Result<PublicKey, IdentityFailure> {
    let leaf = ssl
        .peer_certificate()
        .ok_or_else(|| IdentityFailure::BadCertificate("no certificate".into()))?;
    if let Some(chain) = ssl.peer_cert_chain() {
        // BoringSSL includes the leaf on the client side and leaves it out on
        // the server side; count everything that is not the leaf.
        let leaf_der = leaf.to_der().unwrap_or_default();
        let others = chain
            .iter()
            .filter(|c| c.to_der().map(|d| d != leaf_der).unwrap_or(true))
            .count();
        if others > 0 {
            return Err(IdentityFailure::BadCertificate(format!(
                "expected one certificate, got a chain of {}",
                others + 1
            )));
        }
    }
    let key = key_from_certificate(&leaf)?;
    if let Some(expected) = expected {
        if &key != expected {
            return Err(IdentityFailure::Mismatch {
                expected: *expected,
                actual: key,
            });
        }
    }
    Ok(key)
}

/// Builds the verify callback. `expected` pins the dialed key (client side);
/// `None` accepts any single Ed25519 certificate (server side, where the
/// application's accept hook decides afterwards).
pub(crate) fn verify_callback(
    expected: Option<PublicKey>,
    slot: FailureSlot,
) -> impl Fn(&mut SslRef) -> Result<(), SslVerifyError> + Send + Sync + 'static {
    move |ssl: &mut SslRef| match check_peer(ssl, expected.as_ref()) {
        Ok(_) => Ok(()),
        Err(failure) => {
            let alert = match failure {
                IdentityFailure::Mismatch { .. } => SslAlert::CERTIFICATE_UNKNOWN,
                IdentityFailure::BadCertificate(_) => SslAlert::BAD_CERTIFICATE,
            };
            if let Ok(mut s) = slot.lock() {
                *s = Some(failure);
            }
            Err(SslVerifyError::Invalid(alert))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_and_tweetnacl_forms_agree() {
        let seed = [7u8; 32];
        let a = Identity::from_secret_key(&seed).unwrap();
        let mut full = seed.to_vec();
        full.extend_from_slice(a.public_key());
        let b = Identity::from_secret_key(&full).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let der = a.cert.to_der().unwrap();
        assert_eq!(&key_from_certificate_der(&der).unwrap(), a.public_key());
    }

    #[test]
    fn rejects_inconsistent_secret() {
        let mut full = vec![1u8; 64];
        full[40] = 9;
        assert_eq!(
            Identity::from_secret_key(&full).err().unwrap().code(),
            "INVALID_ARGUMENT"
        );
        assert!(Identity::from_secret_key(&[0u8; 31]).is_err());
    }

    #[test]
    fn known_vector() {
        // RFC 8032 test 1: secret key 9d61b19d..., public key d75a9801...
        let seed = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let id = Identity::from_secret_key(&seed).unwrap();
        assert_eq!(
            id.public_key().to_vec(),
            hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
