//! The credentials a bad peer presents, and quiche configs carrying them.

use boring::asn1::{Asn1Integer, Asn1Time};
use boring::bn::BigNum;
use boring::ec::{EcGroup, EcKey};
use boring::hash::MessageDigest;
use boring::nid::Nid;
use boring::pkey::{PKey, Private};
use boring::sign::Signer;
use boring::ssl::{
    PrivateKeyMethod, PrivateKeyMethodError, SslContextBuilder, SslMethod, SslRef,
    SslSignatureAlgorithm, SslVerifyMode, SslVersion,
};
use boring::x509::{X509Name, X509};
use peersock_core::ALPN;

/// The credentials a bad peer presents.
pub enum Cred {
    /// A well-formed peersock credential for this seed.
    Good([u8; 32]),
    /// A leaf (key = seed) issued by a separate Ed25519 CA, sent with the CA
    /// certificate: a chain of two.
    Chain([u8; 32]),
    /// A self-signed ECDSA P-256 certificate.
    Ecdsa,
    /// A certificate carrying key `cert_seed` while CertificateVerify is
    /// signed with key `signer_seed`.
    WrongSigner {
        cert_seed: [u8; 32],
        signer_seed: [u8; 32],
    },
    /// No certificate at all.
    Nothing,
}

pub fn ed25519(seed: &[u8; 32]) -> PKey<Private> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    PKey::private_key_from_der(&der).unwrap()
}

fn p256() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A certificate for `subject_key`, named `cn`, signed by `issuer_key`
/// under `issuer_cn`.
pub fn certificate(
    subject_key: &PKey<Private>,
    cn: &str,
    issuer_key: &PKey<Private>,
    issuer_cn: &str,
) -> X509 {
    let name = |cn: &str| {
        let mut n = X509Name::builder().unwrap();
        n.append_entry_by_text("CN", cn).unwrap();
        n.build()
    };
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = Asn1Integer::from_bn(&BigNum::from_u32(7).unwrap()).unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    b.set_issuer_name(&name(issuer_cn)).unwrap();
    b.set_not_before(&Asn1Time::from_unix(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(253_402_300_799).unwrap())
        .unwrap();
    b.set_pubkey(subject_key).unwrap();
    let digest = if issuer_key.id() == boring::pkey::Id::ED25519 {
        // SAFETY: BoringSSL takes a null digest for Ed25519 (it signs the
        // message itself).
        unsafe { MessageDigest::from_ptr(std::ptr::null()) }
    } else {
        MessageDigest::sha256()
    };
    b.sign(issuer_key, digest).unwrap();
    b.build()
}

/// Signs every handshake with a key of its own, whatever the certificate says.
struct ForeignSigner(PKey<Private>);

impl PrivateKeyMethod for ForeignSigner {
    fn sign(
        &self,
        _ssl: &mut SslRef,
        input: &[u8],
        _alg: SslSignatureAlgorithm,
        output: &mut [u8],
    ) -> Result<usize, PrivateKeyMethodError> {
        let mut s =
            Signer::new_without_digest(&self.0).map_err(|_| PrivateKeyMethodError::FAILURE)?;
        s.sign_oneshot(output, input)
            .map_err(|_| PrivateKeyMethodError::FAILURE)
    }

    fn decrypt(
        &self,
        _: &mut SslRef,
        _: &[u8],
        _: &mut [u8],
    ) -> Result<usize, PrivateKeyMethodError> {
        Err(PrivateKeyMethodError::FAILURE)
    }

    fn complete(&self, _: &mut SslRef, _: &mut [u8]) -> Result<usize, PrivateKeyMethodError> {
        Err(PrivateKeyMethodError::FAILURE)
    }
}

/// A quiche config speaking peersock's ALPN with the given credential; it
/// asks for the other side's certificate and accepts anything.
pub fn raw_config(cred: &Cred) -> quiche::Config {
    raw_config_verifying(cred, &[SslSignatureAlgorithm::ED25519])
}

/// [`raw_config`] offering `verify` as the signature algorithms it accepts
/// from the other side (a client's `signature_algorithms` extension).
pub fn raw_config_verifying(cred: &Cred, verify: &[SslSignatureAlgorithm]) -> quiche::Config {
    let mut ctx = SslContextBuilder::new(SslMethod::tls()).unwrap();
    ctx.set_min_proto_version(Some(SslVersion::TLS1_3)).unwrap();
    ctx.set_max_proto_version(Some(SslVersion::TLS1_3)).unwrap();
    match cred {
        Cred::Good(seed) => {
            let k = ed25519(seed);
            ctx.set_certificate(&certificate(&k, "peersock", &k, "peersock"))
                .unwrap();
            ctx.set_private_key(&k).unwrap();
        }
        Cred::Chain(seed) => {
            let ca = ed25519(&[0xca; 32]);
            let leaf = ed25519(seed);
            ctx.set_certificate(&certificate(&leaf, "leaf", &ca, "ca"))
                .unwrap();
            ctx.set_private_key(&leaf).unwrap();
            ctx.add_extra_chain_cert(certificate(&ca, "ca", &ca, "ca"))
                .unwrap();
        }
        Cred::Ecdsa => {
            let k = p256();
            ctx.set_certificate(&certificate(&k, "peersock", &k, "peersock"))
                .unwrap();
            ctx.set_private_key(&k).unwrap();
        }
        Cred::WrongSigner {
            cert_seed,
            signer_seed,
        } => {
            let k = ed25519(cert_seed);
            ctx.set_certificate(&certificate(&k, "peersock", &k, "peersock"))
                .unwrap();
            ctx.set_private_key_method(ForeignSigner(ed25519(signer_seed)));
        }
        Cred::Nothing => {}
    }
    let sign = if matches!(cred, Cred::Ecdsa) {
        "ECDSA+SHA256"
    } else {
        "ed25519"
    };
    ctx.set_sigalgs_list(sign).unwrap();
    ctx.set_verify_algorithm_prefs(verify).unwrap();
    ctx.set_custom_verify_callback(SslVerifyMode::PEER, |_| Ok(()));
    let mut c = quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, ctx).unwrap();
    c.set_application_protos(&[ALPN]).unwrap();
    c.set_max_idle_timeout(5000);
    c.set_initial_max_data(1 << 20);
    c.set_initial_max_stream_data_bidi_local(1 << 18);
    c.set_initial_max_stream_data_bidi_remote(1 << 18);
    c.set_initial_max_stream_data_uni(1 << 18);
    c.set_initial_max_streams_bidi(16);
    c.set_initial_max_streams_uni(16);
    c.enable_dgram(true, 16, 16);
    c
}
