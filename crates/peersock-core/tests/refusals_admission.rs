//! The refusals that are not TLS's: the application's accept hook, and the
//! endpoint's `max_connections` and `max_pending_handshakes` limits. Each
//! reaches the dialer as a CONNECTION_CLOSE with CONNECTION_REFUSED and a
//! reason phrase, within one round trip of the flight that decides it,
//! counted by reason, within the amplification limit; the limits refuse
//! at the first Initial without keeping any state.
//!
//! The dialer is a hand-driven quiche client run in lockstep with no timer
//! fired (`common/refusal.rs`), except the last case: a peersock dialer.
//! TLS refusals: `refusals_tls.rs`.

mod common;

use std::net::SocketAddr;

use common::refusal::*;
use common::*;
use peersock_core::{EndpointConfig, Event};

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
