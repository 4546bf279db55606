//! Key pinning and mutual authentication against hand-built bad peers
//! (quiche + BoringSSL driven directly), in both directions. Every bad
//! credential must fail the handshake with a specific reason within 2 s,
//! let no application data through, and leave no state behind.

mod common;

use std::time::{Duration, Instant};

use common::*;
use peersock_core::{CloseKind, CloseReason, Event};

const LIMIT: Duration = Duration::from_secs(2);
/// Time allowed for the closing connection to drain (3 PTO) after the verdict.
const DRAIN: Duration = Duration::from_secs(5);

/// TLS alerts as QUIC crypto errors.
const BAD_CERTIFICATE: u64 = 0x100 + 42;
const DECRYPT_ERROR: u64 = 0x100 + 51;
const CERTIFICATE_REQUIRED: u64 = 0x100 + 116;
const CONNECTION_REFUSED: u64 = 0x2;

fn seed(b: u8) -> [u8; 32] {
    [b; 32]
}

/// The bad peer's application: as soon as its side thinks the handshake is
/// done, it sends stream data and a datagram.
fn push_data(q: &mut quiche::Connection) {
    if q.is_established() || q.is_in_early_data() {
        let _ = q.stream_send(0, b"must never be delivered", true);
        let _ = q.stream_send(1, b"must never be delivered", true);
        let _ = q.dgram_send(b"\x00must never be delivered");
    }
}

struct Verdict {
    elapsed: Duration,
    freed: Duration,
}

/// A bad client dials a peersock endpoint. Returns what the endpoint
/// reported and the error the bad client was sent.
fn bad_client(cred: Cred, refuse: bool) -> (Node, Option<quiche::ConnectionError>, Verdict) {
    let mut server = node(2, 2000);
    server.auto_accept = !refuse;
    let mut raw = RawPeer::client(raw_config(&cred), addr("127.0.0.1:1000"), server.addr);
    let start = Instant::now();
    let mut refused = false;
    let ok = pump_raw(&mut server, &mut raw, LIMIT, push_data, |n, r| {
        if refuse && !refused {
            if let Some(c) = n.incoming() {
                n.ep.refuse(c, "not on the allow list").unwrap();
                refused = true;
            }
        }
        r.q.as_ref()
            .is_some_and(|q| q.peer_error().is_some() || q.is_closed())
    });
    let elapsed = start.elapsed();
    assert!(ok, "bad client was not turned away within {LIMIT:?}");
    let err = raw.q.as_ref().and_then(|q| q.peer_error().cloned());
    assert!(pump_raw(&mut server, &mut raw, DRAIN, push_data, |n, _| n
        .ep
        .connection_count()
        == 0));
    let freed = start.elapsed();
    (server, err, Verdict { elapsed, freed })
}

/// A peersock endpoint dials a bad server, pinning `pin`. Returns the close
/// reason the endpoint reported.
fn bad_server(cred: Cred, pin: [u8; 32]) -> (Node, peersock_core::CloseReason, Verdict) {
    let mut client = node(1, 1000);
    let mut raw = RawPeer::server(raw_config(&cred), addr("127.0.0.1:2000"));
    let start = Instant::now();
    let h = client.ep.connect(pin, raw.addr, None).unwrap();
    assert!(
        pump_raw(&mut client, &mut raw, LIMIT, push_data, |n, _| n
            .closed(h)
            .is_some()),
        "no verdict within {LIMIT:?}"
    );
    let elapsed = start.elapsed();
    assert!(pump_raw(&mut client, &mut raw, DRAIN, push_data, |n, _| n
        .ep
        .connection_count()
        == 0));
    let freed = start.elapsed();
    let reason = client.closed(h).unwrap();
    (client, reason, Verdict { elapsed, freed })
}

fn report(case: &str, v: &Verdict) {
    println!(
        "[credential table] {case}: verdict after {:?}, state freed after {:?}",
        v.elapsed, v.freed
    );
    assert!(v.elapsed <= LIMIT, "{case}: {:?}", v.elapsed);
}

// ---- bad clients against a peersock acceptor -------------------------------

#[test]
fn acceptor_refuses_a_chain_of_two() {
    let (server, err, v) = bad_client(Cred::Chain(seed(7)), false);
    report("client chain of two", &v);
    assert_eq!(err.unwrap().error_code, BAD_CERTIFICATE);
    assert!(!server.saw_application());
    let closed: Vec<_> = server
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Closed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].kind, CloseKind::BadCertificate);
    assert!(
        closed[0].reason.contains("chain of 2"),
        "{}",
        closed[0].reason
    );
}

#[test]
fn acceptor_refuses_a_non_ed25519_certificate() {
    let (server, err, v) = bad_client(Cred::Ecdsa, false);
    report("client ECDSA P-256", &v);
    assert_eq!(err.unwrap().error_code, BAD_CERTIFICATE);
    assert!(!server.saw_application());
    let r = closed_reason(&server.events);
    assert_eq!(r.kind, CloseKind::BadCertificate);
    assert!(r.reason.contains("not Ed25519"), "{}", r.reason);
}

#[test]
fn acceptor_refuses_a_handshake_signed_by_another_key() {
    let (server, err, v) = bad_client(
        Cred::WrongSigner {
            cert_seed: seed(7),
            signer_seed: seed(8),
        },
        false,
    );
    report("client cert key != CertificateVerify key", &v);
    assert_eq!(err.unwrap().error_code, DECRYPT_ERROR);
    assert!(!server.saw_application());
    let r = closed_reason(&server.events);
    assert_eq!((r.kind, r.code), (CloseKind::BadCertificate, DECRYPT_ERROR));
}

#[test]
fn acceptor_refuses_a_client_without_certificate() {
    let (server, err, v) = bad_client(Cred::Nothing, false);
    report("client without certificate", &v);
    assert_eq!(err.unwrap().error_code, CERTIFICATE_REQUIRED);
    assert!(!server.saw_application());
    let r = closed_reason(&server.events);
    assert_eq!(
        (r.kind, r.code),
        (CloseKind::BadCertificate, CERTIFICATE_REQUIRED)
    );
}

#[test]
fn acceptor_hook_refuses_an_unknown_key_and_reads_nothing() {
    let (server, err, v) = bad_client(Cred::Good(seed(7)), true);
    report("client with a key the accept hook refuses", &v);
    let err = err.unwrap();
    assert_eq!((err.error_code, err.is_app), (CONNECTION_REFUSED, false));
    assert_eq!(err.reason, b"not on the allow list");
    // The key was proven (Incoming), but nothing the client sent was read.
    assert!(server.events.iter().any(|e| matches!(e, Event::Incoming { remote_key, .. } if *remote_key == *peersock_core::Identity::from_secret_key(&seed(7)).unwrap().public_key())));
    assert!(!server
        .events
        .iter()
        .any(|e| matches!(e, Event::StreamReadable { .. } | Event::Datagram { .. })));
}

#[test]
fn acceptor_takes_a_good_raw_client() {
    // The control case: the same harness with a good credential succeeds, so
    // the failures above are about the credentials and nothing else.
    let mut server = node(2, 2000);
    let mut raw = RawPeer::client(
        raw_config(&Cred::Good(seed(7))),
        addr("127.0.0.1:1000"),
        server.addr,
    );
    assert!(pump_raw(&mut server, &mut raw, LIMIT, push_data, |n, _| n
        .events
        .iter()
        .any(|e| matches!(e, Event::StreamReadable { .. }))));
}

// ---- a peersock dialer against bad servers ----------------------------------

fn key_of(s: [u8; 32]) -> [u8; 32] {
    *peersock_core::Identity::from_secret_key(&s)
        .unwrap()
        .public_key()
}

#[test]
fn dialer_rejects_the_wrong_key() {
    let (client, r, v) = bad_server(Cred::Good(seed(9)), key_of(seed(7)));
    report("server with another key", &v);
    assert_eq!(r.kind, CloseKind::IdentityMismatch);
    assert_eq!(r.expected_key, Some(key_of(seed(7))));
    assert_eq!(r.actual_key, Some(key_of(seed(9))));
    assert!(!client.saw_application());
}

#[test]
fn dialer_rejects_a_chain_of_two() {
    let (client, r, v) = bad_server(Cred::Chain(seed(7)), key_of(seed(7)));
    report("server chain of two (leaf = pinned key)", &v);
    assert_eq!(r.kind, CloseKind::BadCertificate);
    assert!(r.reason.contains("chain of 2"), "{}", r.reason);
    assert!(!client.saw_application());
}

#[test]
fn dialer_rejects_a_non_ed25519_certificate() {
    let (client, r, v) = bad_server(Cred::Ecdsa, key_of(seed(7)));
    report("server ECDSA P-256", &v);
    assert_eq!(r.kind, CloseKind::BadCertificate);
    assert!(r.reason.contains("not Ed25519"), "{}", r.reason);
    assert!(!client.saw_application());
}

#[test]
fn dialer_rejects_a_handshake_signed_by_another_key() {
    // The certificate carries the pinned key, so the pin alone would pass:
    // only CertificateVerify shows the server does not hold that key.
    let (client, r, v) = bad_server(
        Cred::WrongSigner {
            cert_seed: seed(7),
            signer_seed: seed(8),
        },
        key_of(seed(7)),
    );
    report(
        "server cert = pinned key, CertificateVerify by another key",
        &v,
    );
    assert_eq!((r.kind, r.code), (CloseKind::BadCertificate, DECRYPT_ERROR));
    assert!(!client.saw_application());
}

#[test]
fn dialer_connects_to_a_good_raw_server_control_case() {
    // A raw quiche server with a good credential gets through the TLS
    // handshake (it does not speak peersock's control stream, so the dial
    // then times out as a handshake, never as a credential failure).
    let mut client = node(1, 1000);
    let mut raw = RawPeer::server(raw_config(&Cred::Good(seed(7))), addr("127.0.0.1:2000"));
    let h = client
        .ep
        .connect(key_of(seed(7)), raw.addr, Some(Duration::from_millis(300)))
        .unwrap();
    assert!(pump_raw(
        &mut client,
        &mut raw,
        LIMIT,
        |_| {},
        |n, _| n.closed(h).is_some()
    ));
    assert!(raw.q.as_ref().unwrap().is_established());
    assert_eq!(client.closed(h).unwrap().kind, CloseKind::HandshakeTimeout);
}

/// The reason of the first `Closed` event (panics when there is none).
fn closed_reason<'a>(events: impl IntoIterator<Item = &'a Event>) -> CloseReason {
    events
        .into_iter()
        .find_map(|e| match e {
            Event::Closed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .expect("a Closed event")
}
