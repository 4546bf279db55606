//! Session resumption never skips key pinning: a session only ever serves
//! the server key it came from and the client identity that made it; a
//! stale or malformed one means a full handshake (which fails on the pinned
//! key if another key answers). Resumption and 0-RTT that work:
//! `zero_rtt.rs`.

mod common;

use std::time::Duration;

use common::session::*;
use common::*;
use peersock_core::{CloseKind, Event};

#[test]
fn a_session_is_never_offered_for_another_key() {
    // The session of server 1, presented as if it were for key 3, at
    // server 1's address: not offered (no resumption, no early data), and
    // the full handshake fails on the pinned key.
    let mut server = node_with(1, 1000, server_config(true));
    let mut client = node(2, 2000);
    let s = ticket(&mut client, &mut server);
    server.events.clear();
    let other = *node(3, 3000).ep.public_key();
    let h = client
        .ep
        .connect_with(other, server.addr, &early(s))
        .unwrap();
    let info = client.ep.conn_info(h).unwrap();
    assert!(!info.early && !info.resumed);
    assert!(client.ep.open_stream(h, true).is_err());
    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(5),
        |n| n[0].closed(h).is_some()
    ));
    assert_eq!(client.closed(h).unwrap().kind, CloseKind::IdentityMismatch);
    assert!(readable(&server).is_none());
}

#[test]
fn a_stale_session_cannot_reach_another_server_at_the_same_address() {
    let mut server = node_with(1, 1000, server_config(true));
    let mut client = node(2, 2000);
    let s = ticket(&mut client, &mut server);
    let key = *server.ep.public_key();
    drop(server);
    // Another key now answers at that address (it cannot open the ticket).
    let mut impostor = node_with(4, 1000, server_config(true));
    let h = client
        .ep
        .connect_with(key, impostor.addr, &early(s))
        .unwrap();
    let st = client.ep.open_stream(h, true).unwrap();
    client.ep.stream_send(h, st, b"secret early", true).unwrap();
    assert!(pump(
        &mut [&mut client, &mut impostor],
        Duration::from_secs(5),
        |n| n[0].closed(h).is_some()
    ));
    let r = client.closed(h).unwrap();
    assert_eq!(r.kind, CloseKind::IdentityMismatch);
    assert_eq!(r.expected_key, Some(key));
    assert!(readable(&impostor).is_none(), "{:?}", impostor.events);
    assert!(!impostor
        .events
        .iter()
        .any(|e| matches!(e, Event::Incoming { .. })));
}

#[test]
fn a_malformed_session_means_a_full_handshake() {
    let mut server = node_with(1, 1000, server_config(true));
    let mut client = node(2, 2000);
    let h = client
        .ep
        .connect_with(*server.ep.public_key(), server.addr, &early(vec![7; 40]))
        .unwrap();
    assert!(!client.ep.conn_info(h).unwrap().early);
    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(5),
        |n| n[0].connected(h)
    ));
    assert!(!client.ep.conn_info(h).unwrap().resumed);
}

#[test]
fn a_session_only_serves_the_identity_that_made_it() {
    // A session resumes the client's identity too: another key's endpoint
    // must not use it (it would speak to the server as the first key).
    let mut server = node_with(1, 1000, server_config(true));
    let mut client = node(2, 2000);
    let s = ticket(&mut client, &mut server);
    let mut other = node(5, 5000);
    let h = other
        .ep
        .connect_with(*server.ep.public_key(), server.addr, &early(s))
        .unwrap();
    assert!(!other.ep.conn_info(h).unwrap().early);
    server.events.clear();
    assert!(pump(
        &mut [&mut other, &mut server],
        Duration::from_secs(5),
        |n| n[0].connected(h)
    ));
    assert!(!other.ep.conn_info(h).unwrap().resumed);
    let seen = server.events.iter().find_map(|e| match e {
        Event::Incoming { remote_key, .. } => Some(*remote_key),
        _ => None,
    });
    assert_eq!(seen, Some(*other.ep.public_key()));
}
