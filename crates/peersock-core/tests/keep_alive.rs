//! Keep-alive: an idle connection sends an ack-eliciting packet every
//! interval, which holds NAT mappings and keeps both idle timers from
//! firing; with keep-alive off the same connection idles out.

mod common;

use std::time::Duration;

use common::*;
use peersock_core::{CloseKind, DialOptions, EndpointConfig};

fn config(keep_alive: Option<Duration>) -> EndpointConfig {
    EndpointConfig {
        keep_alive,
        idle_timeout: Duration::from_secs(1),
        ..EndpointConfig::default()
    }
}

/// Opens a connection from `a` to `b` on `clock`, then idles for `for_`
/// on it counting the datagrams a sends. Returns (still open, datagrams
/// from a).
fn idle_run_on(
    clock: &Clock,
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
        a.ep.connect_with_at(*b.ep.public_key(), b.addr, &dial, clock.now())
            .unwrap();
    assert!(pump_on(
        clock,
        &mut [&mut a, &mut b],
        Duration::from_secs(5),
        Some,
        |n| n[0].connected(h)
    ));
    // Let the handshake's trailing packets (acks, tickets, CIDs) settle.
    pump_on(
        clock,
        &mut [&mut a, &mut b],
        Duration::from_millis(150),
        Some,
        |_| false,
    );
    let mut sent = 0;
    let start = clock.now();
    pump_on(
        clock,
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
        assert!(clock.now().duration_since(start) < for_);
    }
    (open, sent)
}

/// [`idle_run_on`] the real clock: quiche's idle timer runs too.
fn idle_run(
    a_ka: Option<Duration>,
    b_ka: Option<Duration>,
    dial: DialOptions,
    for_: Duration,
) -> (bool, usize) {
    idle_run_on(&Clock::real(), a_ka, b_ka, dial, for_)
}

/// [`idle_run_on`] a simulated clock: only the core's own deadlines
/// (keep-alives) are simulated; quiche's idle timer, on the real clock,
/// never comes due in the milliseconds the run takes.
fn idle_run_simulated(
    a_ka: Option<Duration>,
    b_ka: Option<Duration>,
    dial: DialOptions,
    for_: Duration,
) -> usize {
    let (open, sent) = idle_run_on(&Clock::sim(), a_ka, b_ka, dial, for_);
    assert!(open);
    sent
}

/// Real clock: the keep-alive must beat quiche's idle timer (1 s), which
/// only runs on the real clock.
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

/// Real clock: quiche's idle timer closes what nothing keeps alive.
#[test]
fn without_keep_alive_the_same_connection_idles_out() {
    let (open, sent) = idle_run(None, None, DialOptions::default(), Duration::from_secs(3));
    assert!(!open, "stayed open without keep-alive");
    assert!(sent <= 2, "{sent} datagrams sent while idle");
}

/// Simulated clock: the pings come exactly at their interval, the default
/// one (15 s) included, and nothing is sent without keep-alive.
#[test]
fn keep_alive_pings_at_its_interval_on_simulated_time() {
    let ms = Duration::from_millis;
    let sent = idle_run_simulated(Some(ms(200)), None, DialOptions::default(), ms(3000));
    assert!((14..=16).contains(&sent), "{sent} pings in 3 s at 200 ms");
    let default = EndpointConfig::default().keep_alive;
    let sent = idle_run_simulated(default, None, DialOptions::default(), ms(61_000));
    assert_eq!(sent, 4, "pings in 61 s at 15 s");
    let sent = idle_run_simulated(None, None, DialOptions::default(), ms(3000));
    assert_eq!(sent, 0, "datagrams without keep-alive");
}

/// Simulated clock: a dial's own keep-alive pings where the endpoint's is
/// off, and a dial that turns it off sends nothing where the endpoint's
/// is on (the idle-out that follows is quiche's, checked on the real clock
/// above).
#[test]
fn a_dial_can_set_its_own_keep_alive() {
    let ms = Duration::from_millis;
    let dial = DialOptions {
        keep_alive: Some(Some(ms(200))),
        ..DialOptions::default()
    };
    let sent = idle_run_simulated(None, None, dial, ms(3000));
    assert!(
        (14..=16).contains(&sent),
        "the dial's keep-alive sent {sent} pings in 3 s at 200 ms"
    );
    let off = DialOptions {
        keep_alive: Some(None),
        ..DialOptions::default()
    };
    let sent = idle_run_simulated(Some(ms(200)), None, off, ms(3000));
    assert_eq!(sent, 0, "keep-alive turned off per dial still pinged");
}

/// Real clock: a keep-alive that falls due while quiche may not send (its
/// congestion window full of packets the silent peer never acknowledges)
/// counts as sent. Before, its deadline stayed in the past until quiche's
/// next probe timeout let a packet out, so `timeout_at` answered zero after
/// every `on_timeout_at` and a driver's timer fired again at once: a busy
/// loop (under the native driver on Node 20's libuv it never yielded to the
/// event loop, and a whole process froze).
#[test]
fn a_keep_alive_blocked_by_a_full_congestion_window_does_not_stay_due() {
    let ka = Duration::from_millis(50);
    let (mut a, mut b) = (
        node_with(
            1,
            1000,
            EndpointConfig {
                keep_alive: Some(ka),
                idle_timeout: Duration::from_secs(30),
                ..EndpointConfig::default()
            },
        ),
        node_with(2, 2000, EndpointConfig::default()),
    );
    let h = a.ep.connect(*b.ep.public_key(), b.addr, None).unwrap();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| n
        [0]
    .connected(h)));
    pump(&mut [&mut a, &mut b], Duration::from_millis(100), |_| false);
    // The peer goes silent (nothing reaches it) while a has plenty to send:
    // the window fills with unacknowledged packets.
    let s = a.ep.open_stream(h, true).unwrap();
    let data = vec![7u8; 256 * 1024];
    let _ = a.ep.stream_send(h, s, &data, false);
    let mut buf = vec![0u8; 65535];
    let start = std::time::Instant::now();
    let (mut services, mut still_due) = (0u32, 0u32);
    while start.elapsed() < Duration::from_millis(1500) {
        let now = std::time::Instant::now();
        a.ep.on_timeout_at(now);
        while a.ep.poll_transmit_from_at(&mut buf, now).is_some() {}
        a.poll();
        services += 1;
        let next = a.ep.timeout_at(std::time::Instant::now());
        if next.is_some_and(|d| d.is_zero()) {
            still_due += 1;
        }
        std::thread::sleep(
            next.unwrap_or(ka)
                .clamp(Duration::from_micros(200), Duration::from_millis(5)),
        );
    }
    assert!(a.closed(h).is_none(), "closed: {:?}", a.closed(h));
    println!("[keep-alive blocked] {still_due} of {services} timer services left a deadline due");
    assert!(
        still_due <= 3,
        "{still_due} of {services} timer services left a deadline due"
    );
}
