//! Every way a handshake fails in TLS on the accepting side (no common
//! ALPN, no usable signature algorithm, no certificate, a bad one, a
//! handshake signed by another key) reaches the dialer as a
//! CONNECTION_CLOSE with the matching code, within one round trip of the
//! flight that decides it, counted by reason, within the amplification
//! limit, and leaving no state behind.
//!
//! The dialer is a hand-driven quiche client. The exchange runs in lockstep
//! with no timer ever fired: the client's flight goes in, the server's
//! answer comes back, and the round in which the client first holds the
//! server's CONNECTION_CLOSE is recorded. Round 1 answers the ClientHello;
//! round 2 answers the client's certificate and Finished. (The harness:
//! `common/refusal.rs`; refusals by the application and the endpoint's
//! limits: `refusals_admission.rs`.)

mod common;

use boring::ssl::SslSignatureAlgorithm;
use common::refusal::*;
use common::*;
use peersock_core::EndpointConfig;

#[test]
fn no_common_alpn_is_refused_with_no_application_protocol() {
    let mut server = strict_server();
    let mut cfg = raw_config(&Cred::Good(seed(7)));
    cfg.set_application_protos(&[b"h3"]).unwrap();
    let mut c = client(cfg, &server);
    let o = refused(&mut server, &mut c, |_| {});
    check(&o, NO_APPLICATION_PROTOCOL, 1, |s| s.refused_alpn);
    assert_eq!(o.conns_after, 0, "no state for a refused ClientHello");
    drains_and_serves_again(&mut server, &mut c);
}

#[test]
fn a_client_hello_in_two_datagrams_is_refused_by_the_connection_it_made() {
    // The first datagram holds only part of the ClientHello, so a connection
    // exists when the second one fails; quiche's own close goes out, and
    // the connection drains away and frees its pending slot.
    let mut server = strict_server();
    let long: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 200]).collect();
    let protos: Vec<&[u8]> = long.iter().map(|p| p.as_slice()).collect();
    let mut cfg = raw_config(&Cred::Good(seed(7)));
    cfg.set_application_protos(&protos).unwrap();
    let mut c = client(cfg, &server);
    let o = refused(&mut server, &mut c, |_| {});
    check(&o, NO_APPLICATION_PROTOCOL, 1, |s| s.refused_alpn);
    assert!(
        o.unvalidated_recv >= 2400,
        "one datagram: {}",
        o.unvalidated_recv
    );
    drains_and_serves_again(&mut server, &mut c);
}

#[test]
fn in_retry_mode_the_refusal_follows_the_retry() {
    // Round 1 is the Retry; the close answers the Initial with the token,
    // under the Initial keys of the DCID the Retry gave the client.
    let mut server = node_with(
        2,
        2000,
        EndpointConfig {
            retry: true,
            ..EndpointConfig::default()
        },
    );
    let mut cfg = raw_config(&Cred::Good(seed(7)));
    cfg.set_application_protos(&[b"h3"]).unwrap();
    let mut c = client(cfg, &server);
    let o = refused(&mut server, &mut c, |_| {});
    check(&o, NO_APPLICATION_PROTOCOL, 2, |s| s.refused_alpn);
    assert_eq!((o.after.retries_sent, o.conns_after), (1, 0));
}

#[test]
fn no_ed25519_signature_algorithm_is_refused_with_handshake_failure() {
    // BoringSSL cannot sign with our only key for this client and sends
    // handshake_failure (SSL_R_NO_COMMON_SIGNATURE_ALGORITHMS).
    let mut server = strict_server();
    let cfg = raw_config_verifying(
        &Cred::Ecdsa,
        &[
            SslSignatureAlgorithm::ECDSA_SECP256R1_SHA256,
            SslSignatureAlgorithm::RSA_PSS_RSAE_SHA256,
        ],
    );
    let mut c = client(cfg, &server);
    let o = refused(&mut server, &mut c, |_| {});
    check(&o, HANDSHAKE_FAILURE, 1, |s| s.refused_signature);
    assert_eq!(o.conns_after, 0, "no state for a refused ClientHello");
    drains_and_serves_again(&mut server, &mut c);
}

#[test]
fn a_client_without_certificate_is_refused_with_certificate_required() {
    let mut server = strict_server();
    let mut c = client(raw_config(&Cred::Nothing), &server);
    let o = refused(&mut server, &mut c, |_| {});
    check(&o, CERTIFICATE_REQUIRED, 2, |s| s.refused_no_cert);
    drains_and_serves_again(&mut server, &mut c);
}

#[test]
fn an_ecdsa_certificate_is_refused_with_bad_certificate() {
    let mut server = strict_server();
    let mut c = client(raw_config(&Cred::Ecdsa), &server);
    let o = refused(&mut server, &mut c, |_| {});
    check(&o, BAD_CERTIFICATE, 2, |s| s.refused_bad_cert);
    drains_and_serves_again(&mut server, &mut c);
}

#[test]
fn a_handshake_signed_by_another_key_is_refused_with_decrypt_error() {
    let mut server = strict_server();
    let cred = Cred::WrongSigner {
        cert_seed: seed(7),
        signer_seed: seed(9),
    };
    let mut c = client(raw_config(&cred), &server);
    let o = refused(&mut server, &mut c, |_| {});
    check(&o, DECRYPT_ERROR, 2, |s| s.refused_bad_cert);
    drains_and_serves_again(&mut server, &mut c);
}
