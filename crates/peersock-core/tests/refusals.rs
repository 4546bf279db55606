//! Every way a handshake fails on the accepting side reaches the dialer as a
//! CONNECTION_CLOSE with the matching code, within one round trip of the
//! flight that decides it, counted by reason, within the amplification
//! limit, and leaving no state behind.
//!
//! The dialer is a hand-driven quiche client. The exchange runs in lockstep
//! with no timer ever fired: the client's flight goes in, the server's
//! answer comes back, and the round in which the client first holds the
//! server's CONNECTION_CLOSE is recorded. Round 1 answers the ClientHello;
//! round 2 answers the client's certificate and Finished.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use boring::ssl::SslSignatureAlgorithm;
use common::*;
use peersock_core::{EndpointConfig, EndpointStats, Event};

const NO_APPLICATION_PROTOCOL: u64 = 0x100 + 120;
const HANDSHAKE_FAILURE: u64 = 0x100 + 40;
const CERTIFICATE_REQUIRED: u64 = 0x100 + 116;
const BAD_CERTIFICATE: u64 = 0x100 + 42;
const DECRYPT_ERROR: u64 = 0x100 + 51;
const CONNECTION_REFUSED: u64 = 0x2;

/// Lockstep rounds tried before giving up (a refusal needs at most 2).
const ROUNDS: usize = 4;
/// Time for a closing connection to drain (3 PTO) once the close is sent.
const DRAIN: Duration = Duration::from_secs(5);

fn seed(b: u8) -> [u8; 32] {
    [b; 32]
}

/// What one refused dial looked like from both sides.
struct Outcome {
    /// The lockstep round in which the client held the close.
    round: usize,
    error: quiche::ConnectionError,
    /// Bytes the server sent to the client's address, and received from
    /// it, before it received a Handshake packet from there (RFC 9000
    /// §8.1: the address is validated then).
    unvalidated_sent: usize,
    unvalidated_recv: usize,
    /// Connections the server held right after the close arrived.
    conns_after: usize,
    before: EndpointStats,
    after: EndpointStats,
}

/// Whether a datagram carries a Handshake packet (walks the coalesced
/// long-header packets).
fn has_handshake_packet(mut d: &[u8]) -> bool {
    fn varint(b: &[u8], off: &mut usize) -> Option<usize> {
        let first = *b.get(*off)?;
        let len = 1usize << (first >> 6);
        let mut v = usize::from(first & 0x3f);
        for &x in b.get(*off + 1..*off + len)? {
            v = (v << 8) | usize::from(x);
        }
        *off += len;
        Some(v)
    }
    // At most as many packets as bytes.
    for _ in 0..d.len() {
        let Some(&first) = d.first() else {
            return false;
        };
        if first & 0x80 == 0 {
            return false; // short header: the rest of the datagram
        }
        if (first >> 4) & 0x03 == 2 {
            return true;
        }
        let mut off = 5;
        let Some(&dl) = d.get(off) else { return false };
        off += 1 + usize::from(dl);
        let Some(&sl) = d.get(off) else { return false };
        off += 1 + usize::from(sl);
        if (first >> 4) & 0x03 == 0 {
            let Some(t) = varint(d, &mut off) else {
                return false;
            };
            off += t;
        }
        let Some(len) = varint(d, &mut off) else {
            return false;
        };
        let Some(rest) = d.get(off + len..) else {
            return false;
        };
        d = rest;
    }
    false
}

/// Runs `client` against `server` in lockstep until the client holds the
/// server's close. `hook` is the server's application, run after every
/// input (it may refuse `Incoming` peers).
fn refused(server: &mut Node, client: &mut RawPeer, mut hook: impl FnMut(&mut Node)) -> Outcome {
    let before = server.ep.stats();
    let (mut sent, mut recv, mut validated) = (0, 0, false);
    let mut buf = vec![0u8; 65535];
    for round in 1..=ROUNDS {
        let q = client.q.as_mut().unwrap();
        // Bounded: a quiche flight without timers is a few datagrams.
        for _ in 0..64 {
            let Ok((n, info)) = q.send(&mut buf) else {
                break;
            };
            assert_eq!(info.to, server.addr);
            if !validated {
                recv += n;
            }
            validated |= has_handshake_packet(&buf[..n]);
            server.ep.recv(&mut buf[..n], client.addr);
        }
        server.poll();
        hook(server);
        for _ in 0..64 {
            let Some((n, to)) = server.ep.poll_transmit(&mut buf) else {
                break;
            };
            if to != client.addr {
                continue; // to another client of the server's: lost
            }
            if !validated {
                sent += n;
            }
            let from = server.addr;
            let _ = q.recv(&mut buf[..n], quiche::RecvInfo { from, to });
        }
        if let Some(error) = q.peer_error().cloned() {
            return Outcome {
                round,
                error,
                unvalidated_sent: sent,
                unvalidated_recv: recv,
                conns_after: server.ep.connection_count(),
                before,
                after: server.ep.stats(),
            };
        }
    }
    panic!(
        "no CONNECTION_CLOSE within {ROUNDS} rounds; client closed: {:?}, server: {:?}",
        client.q.as_ref().unwrap().is_closed(),
        server.ep.stats()
    );
}

/// What every refusal must show: the code, the round, the amplification
/// bound, one more refusal of this reason and nothing dropped.
fn check(o: &Outcome, code: u64, round: usize, reason: impl Fn(&EndpointStats) -> u64) {
    println!(
        "[refusals] code {:#x} in round {}, {} bytes sent for {} received before validation",
        o.error.error_code, o.round, o.unvalidated_sent, o.unvalidated_recv
    );
    assert_eq!((o.error.error_code, o.error.is_app), (code, false));
    assert_eq!(o.round, round, "close arrived in round {}", o.round);
    assert!(o.unvalidated_recv >= 1200);
    assert!(
        o.unvalidated_sent <= 3 * o.unvalidated_recv,
        "{} > 3 x {}",
        o.unvalidated_sent,
        o.unvalidated_recv
    );
    assert_eq!(reason(&o.after), reason(&o.before) + 1);
    assert_eq!(o.after.refused, o.before.refused + 1);
    assert_eq!(o.after.dropped, o.before.dropped, "answered, not dropped");
}

/// The server holds nothing once the refused connection drained, and its
/// single pending-handshake slot is free again: a good client gets in.
fn drains_and_serves_again(server: &mut Node, client: &mut RawPeer) {
    assert!(
        pump_raw(
            server,
            client,
            DRAIN,
            |_| {},
            |n, _| n.ep.connection_count() == 0
        ),
        "still {} connections",
        server.ep.connection_count()
    );
    let mut good = RawPeer::client(
        raw_config(&Cred::Good(seed(8))),
        addr("127.0.0.1:1001"),
        server.addr,
    );
    server.events.clear();
    server.auto_accept = true;
    assert!(pump_raw(
        server,
        &mut good,
        DRAIN,
        |_| {},
        |n, _| n.incoming().is_some()
    ));
}

/// One pending handshake at most: a leaked slot shows up at once.
fn strict_server() -> Node {
    node_with(
        2,
        2000,
        EndpointConfig {
            max_pending_handshakes: 1,
            ..EndpointConfig::default()
        },
    )
}

fn client(config: quiche::Config, server: &Node) -> RawPeer {
    RawPeer::client(config, addr("127.0.0.1:1000"), server.addr)
}

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

#[test]
fn the_accept_hook_refusal_is_sent_with_connection_refused() {
    let mut server = strict_server();
    server.auto_accept = false;
    let mut c = client(raw_config(&Cred::Good(seed(7))), &server);
    let o = refused(&mut server, &mut c, |n| {
        if let Some(h) = n.incoming() {
            let _ = n.ep.refuse(h, "not on the allow list");
        }
    });
    check(&o, CONNECTION_REFUSED, 2, |s| s.refused_by_app);
    assert_eq!(o.error.reason, b"not on the allow list");
    drains_and_serves_again(&mut server, &mut c);
}

/// A good client that got as far as the server's `Incoming`.
fn occupy(server: &mut Node, port: u16) -> RawPeer {
    let mut c = RawPeer::client(
        raw_config(&Cred::Good(seed(6))),
        addr(&format!("127.0.0.1:{port}")),
        server.addr,
    );
    assert!(pump_raw(
        server,
        &mut c,
        DRAIN,
        |_| {},
        |n, _| n.incoming().is_some()
    ));
    c
}

#[test]
fn max_connections_refuses_at_the_first_initial_without_state() {
    let mut server = node_with(
        2,
        2000,
        EndpointConfig {
            max_connections: 1,
            ..EndpointConfig::default()
        },
    );
    let _held = occupy(&mut server, 1500);
    assert_eq!(server.ep.connection_count(), 1);
    let mut c = client(raw_config(&Cred::Good(seed(7))), &server);
    let o = refused(&mut server, &mut c, |_| {});
    check(&o, CONNECTION_REFUSED, 1, |s| s.refused_busy);
    assert_eq!(o.error.reason, b"server busy");
    assert_eq!(o.conns_after, 1, "the refused dial left no state");
    assert!(!server
        .events
        .iter()
        .any(|e| matches!(e, Event::Closed { .. })));
}

#[test]
fn max_pending_handshakes_refuses_at_the_first_initial_without_state() {
    let mut server = strict_server();
    // A half-open handshake: the client's Initial is answered, then the
    // client goes silent, holding the only pending slot.
    let mut half = RawPeer::client(
        raw_config(&Cred::Good(seed(6))),
        addr("127.0.0.1:1500"),
        server.addr,
    );
    let mut buf = vec![0u8; 65535];
    let q = half.q.as_mut().unwrap();
    let (n, _) = q.send(&mut buf).unwrap();
    server.ep.recv(&mut buf[..n], half.addr);
    assert_eq!(server.ep.connection_count(), 1);
    let mut c = client(raw_config(&Cred::Good(seed(7))), &server);
    let o = refused(&mut server, &mut c, |_| {});
    check(&o, CONNECTION_REFUSED, 1, |s| s.refused_pending);
    assert_eq!(o.conns_after, 1, "the refused dial left no state");
}

#[test]
fn a_peersock_dialer_refused_at_the_first_initial_reports_the_reason() {
    // The close built by hand is one that quiche-based peersock takes as a
    // refusal, with the phrase, at once.
    let mut server = node_with(
        2,
        2000,
        EndpointConfig {
            max_connections: 1,
            ..EndpointConfig::default()
        },
    );
    let _held = occupy(&mut server, 1500);
    let mut dialer = node(1, 1000);
    let h = dialer
        .ep
        .connect(*server.ep.public_key(), server.addr, None)
        .unwrap();
    let mut buf = vec![0u8; 65535];
    // One round trip, no timers.
    let mut to_server: Vec<(Vec<u8>, SocketAddr)> = vec![];
    while let Some((n, to)) = dialer.ep.poll_transmit(&mut buf) {
        to_server.push((buf[..n].to_vec(), to));
    }
    for (mut d, _) in to_server {
        server.ep.recv(&mut d, dialer.addr);
    }
    while let Some((n, _)) = server.ep.poll_transmit(&mut buf) {
        dialer.ep.recv(&mut buf[..n], server.addr);
    }
    dialer.poll();
    let r = dialer.closed(h).expect("refused within one round trip");
    assert_eq!(r.kind, peersock_core::CloseKind::Refused);
    assert_eq!(
        (r.code, r.reason.as_str()),
        (CONNECTION_REFUSED, "server busy")
    );
}
