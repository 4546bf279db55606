//! Stateless reset: an endpoint restarted with the same identity tells the
//! peers of its lost connections that they are gone, at their next packet.

mod common;

use std::time::{Duration, Instant};

use common::*;
use peersock_core::{CloseKind, EndpointConfig};

/// A connected pair whose endpoints keep alive every `keep_alive`.
fn open_pair_keeping_alive(keep_alive: Option<Duration>) -> (Node, Node, u32) {
    open_pair_with(EndpointConfig {
        keep_alive,
        ..EndpointConfig::default()
    })
}

#[test]
fn a_restarted_peer_resets_a_connection_with_data_in_flight() {
    let (mut a, b, h) = open_pair_keeping_alive(None);
    drop(b);
    let mut b2 = node(2, 2000); // same seed, same address: the restart
    let s = a.ep.open_stream(h, true).unwrap();
    a.ep.stream_send(h, s, b"hello?", false).unwrap();
    let start = Instant::now();
    assert!(pump(&mut [&mut a, &mut b2], Duration::from_secs(2), |n| n
        [0]
    .closed(h)
    .is_some()));
    let r = a.closed(h).unwrap();
    println!(
        "[reset] data: closed after {:?}: {:?}",
        start.elapsed(),
        r.kind
    );
    assert_eq!(r.kind, CloseKind::StatelessReset);
    assert!(b2.ep.stats().resets_sent >= 1);
    assert_eq!(b2.ep.connection_count(), 0);
}

#[test]
fn a_restarted_peer_resets_an_idle_connection_at_its_keep_alive() {
    // Keep-alive PINGs are the smallest packets a peer sends (about 40
    // bytes); they must trigger a reset too.
    let (mut a, b, h) = open_pair_keeping_alive(Some(Duration::from_millis(100)));
    drop(b);
    let mut b2 = node(2, 2000);
    let start = Instant::now();
    let mut smallest = usize::MAX;
    assert!(pump_tap(
        &mut [&mut a, &mut b2],
        Duration::from_secs(2),
        |d| {
            if d.1.port() == 1000 {
                smallest = smallest.min(d.0.len());
            }
            Some(d)
        },
        |n| n[0].closed(h).is_some()
    ));
    let elapsed = start.elapsed();
    println!("[reset] keep-alive: closed after {elapsed:?}, smallest trigger {smallest} bytes");
    assert_eq!(a.closed(h).unwrap().kind, CloseKind::StatelessReset);
    assert!(elapsed < Duration::from_secs(1));
}

#[test]
fn a_reset_from_another_identity_is_ignored() {
    let (mut a, b, h) = open_pair_keeping_alive(None);
    drop(b);
    let mut other = node(3, 2000); // another identity at the same address
    let s = a.ep.open_stream(h, true).unwrap();
    a.ep.stream_send(h, s, b"hello?", false).unwrap();
    pump(
        &mut [&mut a, &mut other],
        Duration::from_millis(500),
        |_| false,
    );
    assert!(other.ep.stats().resets_sent >= 1);
    assert!(
        a.closed(h).is_none(),
        "a reset with the wrong token closed the connection"
    );
}
