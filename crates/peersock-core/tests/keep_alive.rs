//! Keep-alive: an idle connection sends an ack-eliciting packet every
//! interval, which holds NAT mappings and keeps both idle timers from
//! firing; with keep-alive off the same connection idles out.

mod common;

use std::time::{Duration, Instant};

use common::*;
use peersock_core::{CloseKind, DialOptions, EndpointConfig};

fn config(keep_alive: Option<Duration>) -> EndpointConfig {
    EndpointConfig {
        keep_alive,
        idle_timeout: Duration::from_secs(1),
        ..EndpointConfig::default()
    }
}

/// Opens a connection from `a` to `b`, then idles for `for_` counting the
/// datagrams a sends. Returns (still open, datagrams from a).
fn idle_run(
    a_ka: Option<Duration>,
    b_ka: Option<Duration>,
    dial: DialOptions,
    for_: Duration,
) -> (bool, usize) {
    let (mut a, mut b) = (
        node_with(1, 1000, config(a_ka)),
        node_with(2, 2000, config(b_ka)),
    );
    let h =
        a.ep.connect_with(*b.ep.public_key(), b.addr, &dial)
            .unwrap();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| n
        [0]
    .connected(h)));
    // Let the handshake's trailing packets (acks, tickets, CIDs) settle.
    pump(&mut [&mut a, &mut b], Duration::from_millis(150), |_| false);
    let mut sent = 0;
    let start = Instant::now();
    pump_tap(
        &mut [&mut a, &mut b],
        for_,
        |d| {
            if d.1.port() == 1000 {
                sent += 1;
            }
            Some(d)
        },
        |n| n[0].closed(h).is_some(),
    );
    let open = a.closed(h).is_none();
    if !open {
        assert_eq!(a.closed(h).unwrap().kind, CloseKind::IdleTimeout);
        assert!(start.elapsed() < for_);
    }
    (open, sent)
}

#[test]
fn keep_alive_holds_an_idle_connection_open_and_pings_at_its_interval() {
    let ka = Some(Duration::from_millis(200));
    let (open, sent) = idle_run(ka, None, DialOptions::default(), Duration::from_secs(3));
    assert!(open, "closed despite keep-alive");
    // 3 s at one ping per 200 ms without sending: about 15 (ACKs of the
    // peer's ACK-only replies are not sent, so pings dominate).
    println!("[keep-alive] {sent} datagrams in 3 s at 200 ms");
    assert!((10..=20).contains(&sent), "{sent} datagrams in 3 s");
}

#[test]
fn without_keep_alive_the_same_connection_idles_out() {
    let (open, sent) = idle_run(None, None, DialOptions::default(), Duration::from_secs(3));
    assert!(!open, "stayed open without keep-alive");
    assert!(sent <= 2, "{sent} datagrams sent while idle");
}

#[test]
fn a_dial_can_set_its_own_keep_alive() {
    let dial = DialOptions {
        keep_alive: Some(Some(Duration::from_millis(200))),
        ..DialOptions::default()
    };
    let (open, _) = idle_run(None, None, dial, Duration::from_secs(3));
    assert!(open, "the dial's keep-alive did not hold the connection");
    let off = DialOptions {
        keep_alive: Some(None),
        ..DialOptions::default()
    };
    let (open, _) = idle_run(
        Some(Duration::from_millis(200)),
        None,
        off,
        Duration::from_secs(3),
    );
    assert!(!open, "keep-alive turned off per dial still pinged");
}
