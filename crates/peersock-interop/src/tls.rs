//! peersock's identity rules on rustls: one self-signed certificate whose
//! subject key is the peer's Ed25519 key, TLS 1.3 only, ALPN `peersock/1`,
//! mutual authentication, and the dialer pins the key it dialed.
//!
//! Written against the README ("Identity") rather than peersock's code, so
//! that the two implementations check each other.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, PeerMisbehaved,
    SignatureScheme,
};

/// ALPN of the peersock wire protocol.
pub const ALPN: &[u8] = b"peersock/1";

/// Length of an Ed25519 public key: a peer's name.
pub const KEY_LEN: usize = 32;
pub type PublicKey = [u8; KEY_LEN];

/// DER of a PKCS#8 v1 Ed25519 private key up to the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// DER of an Ed25519 SubjectPublicKeyInfo up to the 32-byte key
/// (SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) }).
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// ring, as rustls packages it.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// This peer's credential: its certificate and the key that signs for it.
pub struct Identity {
    /// The Ed25519 public key (all zero for the ECDSA test credential).
    pub public_key: PublicKey,
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// The Ed25519 identity of a 32-byte seed: the same key pair tweetnacl's
    /// `keyPair(seed)` (and so peersock's) makes from it.
    pub fn ed25519(seed: &[u8; 32]) -> Result<Identity, String> {
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(seed);
        let pkcs8 = PrivatePkcs8KeyDer::from(der);
        let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
            .map_err(|e| format!("Ed25519 key: {e}"))?;
        let public_key: PublicKey = kp
            .public_key_raw()
            .try_into()
            .map_err(|_| "Ed25519 public key is not 32 bytes".to_string())?;
        let cert = self_signed(&kp)?;
        Ok(Identity {
            public_key,
            cert,
            key: PrivateKeyDer::Pkcs8(pkcs8),
        })
    }

    /// A fresh ECDSA P-256 credential: a certificate peersock must refuse.
    pub fn ecdsa_p256() -> Result<Identity, String> {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| format!("ECDSA key: {e}"))?;
        let cert = self_signed(&kp)?;
        Ok(Identity {
            public_key: [0; KEY_LEN],
            cert,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(kp.serialize_der())),
        })
    }
}

fn self_signed(kp: &rcgen::KeyPair) -> Result<CertificateDer<'static>, String> {
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "quinn-peer");
    let cert = params
        .self_signed(kp)
        .map_err(|e| format!("self-signed certificate: {e}"))?;
    Ok(cert.der().clone())
}

/// One DER element.
struct Tlv<'a> {
    tag: u8,
    /// The whole element: tag, length and contents.
    whole: &'a [u8],
    contents: &'a [u8],
    /// What follows it.
    rest: &'a [u8],
}

fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 3 {
            return None;
        }
        let (bytes, r) = rest.split_at_checked(n)?;
        rest = r;
        bytes.iter().fold(0usize, |a, &b| (a << 8) | b as usize)
    };
    let (contents, after) = rest.split_at_checked(len)?;
    Some(Tlv {
        tag,
        whole: &input[..input.len() - after.len()],
        contents,
        rest: after,
    })
}

/// The Ed25519 key a certificate carries as its subject key, or `None` when
/// it is not a well-formed certificate with an Ed25519 key.
pub fn ed25519_key_of(cert: &[u8]) -> Option<PublicKey> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const VERSION: u8 = 0xa0; // [0] EXPLICIT
    let cert = tlv(cert).filter(|e| e.tag == SEQUENCE)?;
    let tbs = tlv(cert.contents).filter(|e| e.tag == SEQUENCE)?;
    let mut fields = tbs.contents;
    if fields.first() == Some(&VERSION) {
        fields = tlv(fields)?.rest;
    }
    // serialNumber, signature, issuer, validity, subject
    for want in [INTEGER, SEQUENCE, SEQUENCE, SEQUENCE, SEQUENCE] {
        fields = tlv(fields).filter(|e| e.tag == want)?.rest;
    }
    let spki = tlv(fields)?.whole;
    if spki.len() != SPKI_ED25519_PREFIX.len() + KEY_LEN || !spki.starts_with(&SPKI_ED25519_PREFIX)
    {
        return None;
    }
    spki[SPKI_ED25519_PREFIX.len()..].try_into().ok()
}

/// The key proven by the peer's certificate list, from `quinn::Connection::peer_identity`.
pub fn peer_key(identity: Option<Box<dyn std::any::Any>>) -> Option<PublicKey> {
    let certs = identity?.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    match certs.as_slice() {
        [only] => ed25519_key_of(only),
        _ => None,
    }
}

/// The presented key is valid but not the dialed one.
struct WrongKey {
    expected: PublicKey,
    actual: PublicKey,
}

impl fmt::Display for WrongKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peer's key {} is not the dialed key {}",
            crate::hex(&self.actual),
            crate::hex(&self.expected)
        )
    }
}

// rustls puts the Debug form in the close reason.
impl fmt::Debug for WrongKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for WrongKey {}

/// Both sides' verifier: exactly one certificate, an Ed25519 subject key
/// (the pinned one when `pin` is set), and a TLS 1.3 CertificateVerify
/// signed with Ed25519 and checked by the provider's Ed25519.
#[derive(Debug)]
pub struct PeerVerifier {
    pin: Option<PublicKey>,
    /// Signature schemes offered (ClientHello's signature_algorithms on the
    /// client, CertificateRequest's on the server).
    schemes: Vec<SignatureScheme>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PeerVerifier {
    /// `offer_ed25519 = false` leaves Ed25519 out of the offered schemes
    /// (a refusal test: peersock can then not sign its handshake).
    pub fn new(pin: Option<PublicKey>, offer_ed25519: bool, provider: &CryptoProvider) -> Self {
        let schemes = if offer_ed25519 {
            vec![SignatureScheme::ED25519]
        } else {
            vec![
                SignatureScheme::ECDSA_NISTP256_SHA256,
                SignatureScheme::RSA_PSS_SHA256,
            ]
        };
        PeerVerifier {
            pin,
            schemes,
            algorithms: provider.signature_verification_algorithms,
        }
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<PublicKey, Error> {
        if !intermediates.is_empty() {
            return Err(Error::InvalidCertificate(CertificateError::BadEncoding));
        }
        let key = ed25519_key_of(end_entity)
            .ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        match self.pin {
            Some(expected) if expected != key => Err(Error::InvalidCertificate(
                // Other → alert certificate_unknown, as peersock sends.
                CertificateError::Other(OtherError(Arc::new(WrongKey {
                    expected,
                    actual: key,
                }))),
            )),
            _ => Ok(key),
        }
    }

    fn check_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(Error::PeerMisbehaved(
                PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ));
        }
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.check(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not peersock".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.check(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not peersock".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_gives_the_rfc8032_key_and_a_certificate_carrying_it() {
        // RFC 8032, test 1.
        let seed: [u8; 32] =
            crate::unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap();
        let id = Identity::ed25519(&seed).unwrap();
        assert_eq!(
            crate::hex(&id.public_key),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(ed25519_key_of(&id.cert), Some(id.public_key));
    }

    #[test]
    fn ecdsa_and_garbage_carry_no_key() {
        let id = Identity::ecdsa_p256().unwrap();
        assert_eq!(ed25519_key_of(&id.cert), None);
        assert_eq!(ed25519_key_of(&[0x30, 0x03, 0x02, 0x01]), None);
        assert_eq!(ed25519_key_of(&[]), None);
    }

    #[test]
    fn verifier_pins_and_counts() {
        let p = provider();
        let a = Identity::ed25519(&[1; 32]).unwrap();
        let b = Identity::ed25519(&[2; 32]).unwrap();
        let pinned = PeerVerifier::new(Some(a.public_key), true, &p);
        assert_eq!(pinned.check(&a.cert, &[]).unwrap(), a.public_key);
        assert!(pinned.check(&b.cert, &[]).is_err());
        assert!(pinned
            .check(&a.cert, std::slice::from_ref(&b.cert))
            .is_err());
        let any = PeerVerifier::new(None, true, &p);
        assert_eq!(any.check(&b.cert, &[]).unwrap(), b.public_key);
        let e = Identity::ecdsa_p256().unwrap();
        assert!(any.check(&e.cert, &[]).is_err());
    }
}
