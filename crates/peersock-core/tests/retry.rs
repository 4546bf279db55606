//! Retry mode (address validation): a client gets in only with a token
//! minted for its address, recently, by this identity; forged, expired and
//! moved tokens are dropped before any state exists.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use common::*;
use peersock_core::{EndpointConfig, Event, RetryKey};

fn retry_server(lifetime: Duration) -> Node {
    node_with(
        2,
        2000,
        EndpointConfig {
            retry: true,
            retry_token_lifetime: lifetime,
            ..EndpointConfig::default()
        },
    )
}

fn is_retry(pkt: &[u8]) -> bool {
    !pkt.is_empty() && pkt[0] & 0xf0 == 0xf0
}

fn is_initial(pkt: &[u8]) -> bool {
    !pkt.is_empty() && pkt[0] & 0xf0 == 0xc0
}

#[test]
fn a_client_gets_in_after_one_retry() {
    let (mut a, mut b) = (node(1, 1000), retry_server(Duration::from_secs(10)));
    let h = a.ep.connect(*b.ep.public_key(), b.addr, None).unwrap();
    let mut retries = 0;
    assert!(pump_tap(
        &mut [&mut a, &mut b],
        Duration::from_secs(5),
        |d| {
            retries += is_retry(&d.0) as u32;
            Some(d)
        },
        |n| n[0].connected(h)
    ));
    assert_eq!(retries, 1);
    let s = b.ep.stats();
    assert_eq!((s.retries_sent, s.invalid_tokens, s.accepted), (1, 0, 1));
    // The connection works as usual.
    let st = a.ep.open_stream(h, true).unwrap();
    a.ep.stream_send(h, st, b"after retry", true).unwrap();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| n
        [1]
    .events
    .iter()
    .any(|e| matches!(e, Event::StreamReadable { .. }))));
}

#[test]
fn a_tokenless_initial_creates_no_state() {
    let (mut a, mut b) = (node(1, 1000), retry_server(Duration::from_secs(10)));
    a.ep.connect(*b.ep.public_key(), b.addr, None).unwrap();
    let mut buf = vec![0u8; 1500];
    let (n, _) = a.ep.poll_transmit(&mut buf).unwrap();
    for _ in 0..100 {
        let mut pkt = buf[..n].to_vec();
        b.ep.recv(&mut pkt, a.addr);
    }
    assert_eq!(b.ep.connection_count(), 0);
    assert_eq!(b.ep.stats().retries_sent, 100);
    let mut out = vec![0u8; 1500];
    let (k, to) = b.ep.poll_transmit(&mut out).unwrap();
    assert!(is_retry(&out[..k]) && to == a.addr);
    // The Retry is small: no amplification.
    assert!(k < n / 3, "retry of {k} bytes for an Initial of {n}");
    assert!(!b.poll());
}

/// Runs a dial against a retry server while `rewrite` replaces the Retry
/// the client sees, or `moved` changes where its second Initial comes from;
/// the server must drop that Initial and keep no state.
fn dropped(
    mut rewrite: impl FnMut(&[u8], &SocketAddr) -> Vec<u8>,
    moved: Option<SocketAddr>,
) -> Node {
    let (mut a, mut b) = (node(1, 1000), retry_server(Duration::from_secs(10)));
    let h = a.ep.connect(*b.ep.public_key(), b.addr, None).unwrap();
    let mut first_initial: Option<Vec<u8>> = None;
    let done = pump_tap(
        &mut [&mut a, &mut b],
        Duration::from_millis(400),
        |(pkt, from, to)| {
            if is_initial(&pkt) && first_initial.is_none() {
                first_initial = Some(pkt.clone());
            }
            if is_retry(&pkt) {
                return Some((rewrite(&pkt, &to), from, to));
            }
            if is_initial(&pkt) && first_initial.as_deref() != Some(&pkt[..]) {
                // The client's later Initials carry the token.
                return Some((pkt, moved.unwrap_or(from), to));
            }
            Some((pkt, from, to))
        },
        |n| n[0].connected(h),
    );
    assert!(!done, "the client got in with a bad token");
    assert_eq!(b.ep.connection_count(), 0, "a bad token created state");
    assert!(!b.events.iter().any(|e| matches!(e, Event::Incoming { .. })));
    assert!(b.ep.stats().invalid_tokens >= 1);
    assert_eq!(b.ep.stats().accepted, 0);
    b
}

/// Builds a Retry as the server would, but carrying `token`.
fn retry_with(token: &[u8], original: &[u8]) -> Vec<u8> {
    let hdr = quiche::Header::from_slice(&mut original.to_vec(), 16).unwrap();
    // `original` is the server's Retry: dcid = client SCID, scid = the new
    // server CID. The integrity tag needs the client's original DCID, which
    // the test stored in the token's plaintext: take it from there.
    let odcid_len = ORIGINAL_DCID.with(|o| o.borrow().clone());
    let mut out = vec![0u8; 512];
    let n = quiche::retry(
        &hdr.dcid,
        &quiche::ConnectionId::from_vec(odcid_len),
        &hdr.scid,
        token,
        hdr.version,
        &mut out,
    )
    .unwrap();
    out.truncate(n);
    out
}

thread_local! {
    static ORIGINAL_DCID: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The original DCID and the token, read from a genuine Retry's token.
fn token_of(retry: &[u8]) -> Vec<u8> {
    let hdr = quiche::Header::from_slice(&mut retry.to_vec(), 16).unwrap();
    let token = hdr.token.unwrap();
    let len = token[9] as usize;
    ORIGINAL_DCID.with(|o| *o.borrow_mut() = token[10..10 + len].to_vec());
    token
}

#[test]
fn a_forged_token_is_dropped() {
    // Same layout, tag flipped.
    dropped(
        |retry, _| {
            let mut t = token_of(retry);
            let last = t.len() - 1;
            t[last] ^= 1;
            retry_with(&t, retry)
        },
        None,
    );
}

#[test]
fn a_token_minted_by_another_identity_is_dropped() {
    dropped(
        |retry, to| {
            let t = token_of(retry);
            let odcid = t[10..10 + t[9] as usize].to_vec();
            let other = RetryKey::from_secret(&[3u8; 32], Duration::from_secs(10)).unwrap();
            retry_with(&other.mint(*to, &odcid, SystemTime::now()), retry)
        },
        None,
    );
}

#[test]
fn an_expired_token_is_dropped() {
    // Minted by the server's own key (same seed), but 11 s ago.
    dropped(
        |retry, to| {
            let t = token_of(retry);
            let odcid = t[10..10 + t[9] as usize].to_vec();
            let own = RetryKey::from_secret(&[2u8; 32], Duration::from_secs(10)).unwrap();
            retry_with(
                &own.mint(*to, &odcid, SystemTime::now() - Duration::from_secs(11)),
                retry,
            )
        },
        None,
    );
}

/// Dials a retry server whose tokens live 100 ms, holding the client's
/// answer to the Retry back for `hold` on a simulated clock (the token's
/// age is the core's own deadline). Returns whether the client got in.
fn dial_holding_the_retry(hold: Duration) -> (bool, Node) {
    let clock = Clock::sim();
    let (mut a, mut b) = (node(1, 1000), retry_server(Duration::from_millis(100)));
    let h =
        a.ep.connect_at(*b.ep.public_key(), b.addr, None, clock.now())
            .unwrap();
    let mut held = false;
    let ok = pump_on(
        &clock,
        &mut [&mut a, &mut b],
        Duration::from_millis(600),
        |d| {
            if is_retry(&d.0) && !held {
                held = true;
                clock.advance(hold);
            }
            Some(d)
        },
        |n| n[0].connected(h),
    );
    (ok, b)
}

#[test]
fn an_expired_token_is_dropped_on_simulated_time() {
    // A 100 ms lifetime, and the client's answer held back for 300 ms.
    let (ok, b) = dial_holding_the_retry(Duration::from_millis(300));
    assert!(!ok);
    assert_eq!(b.ep.connection_count(), 0);
    assert!(b.ep.stats().invalid_tokens >= 1);
    // Held back 50 ms, the same token is still good.
    let (ok, b) = dial_holding_the_retry(Duration::from_millis(50));
    assert!(ok, "a token within its lifetime was refused");
    assert_eq!(b.ep.stats().invalid_tokens, 0);
}

#[test]
fn a_token_used_from_another_address_is_dropped() {
    for moved in ["127.0.0.1:1001", "127.0.0.9:1000", "[::1]:1000"] {
        let b = dropped(|retry, _| retry.to_vec(), Some(moved.parse().unwrap()));
        assert_eq!(b.ep.stats().retries_sent, 1, "{moved}");
    }
}

#[test]
fn a_token_for_another_original_dcid_cannot_complete_a_handshake() {
    // A genuine token (right key, address and age) carried into a handshake
    // it was not minted for, as a replayed token would be: the client checks
    // the original-DCID transport parameter and aborts, and the server's
    // state is bounded by the handshake timeout.
    let (mut a, mut b) = (
        node(1, 1000),
        node_with(
            2,
            2000,
            EndpointConfig {
                retry: true,
                handshake_timeout: Duration::from_millis(300),
                ..EndpointConfig::default()
            },
        ),
    );
    let h = a.ep.connect(*b.ep.public_key(), b.addr, None).unwrap();
    // The server drains the refused connection for 3 PTO (RFC 9000 §10.2).
    let ok = pump_tap(
        &mut [&mut a, &mut b],
        Duration::from_secs(5),
        |(pkt, from, to)| {
            if is_retry(&pkt) {
                token_of(&pkt);
                let own = RetryKey::from_secret(&[2u8; 32], Duration::from_secs(10)).unwrap();
                let wrong = own.mint(to, &[0xee; 16], SystemTime::now());
                return Some((retry_with(&wrong, &pkt), from, to));
            }
            Some((pkt, from, to))
        },
        |n| n[0].closed(h).is_some() && n[1].ep.connection_count() == 0,
    );
    assert!(
        ok,
        "{:?} {:?} {}",
        a.events,
        b.events,
        b.ep.connection_count()
    );
    assert_eq!(a.closed(h).unwrap().code, 0x8, "TRANSPORT_PARAMETER_ERROR");
    assert!(!a.connected(h));
    assert!(!b.events.iter().any(|e| matches!(e, Event::Incoming { .. })));
}

#[test]
fn retry_fits_quiche_transport_parameters_at_the_largest_settings() {
    // quiche encodes transport parameters into 128 bytes; the retry CID and
    // the validation bounds keep the worst case inside.
    let big = EndpointConfig {
        retry: true,
        idle_timeout: Duration::from_millis((1 << 30) - 1),
        initial_max_data: (1 << 30) - 1,
        initial_max_stream_data: (1 << 30) - 1,
        initial_max_stream_data_uni: (1 << 30) - 1,
        max_streams_bidi: 16382,
        max_streams_uni: 16382,
        max_udp_payload: 65507,
        ..EndpointConfig::default()
    };
    let (mut a, mut b) = (node_with(1, 1000, big.clone()), node_with(2, 2000, big));
    let h = a.ep.connect(*b.ep.public_key(), b.addr, None).unwrap();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| n
        [0]
    .connected(h)));
    let too_big = EndpointConfig {
        max_streams_bidi: 16383,
        ..EndpointConfig::default()
    };
    assert!(too_big.validate().is_err());
    let too_big = EndpointConfig {
        initial_max_data: 1 << 30,
        ..EndpointConfig::default()
    };
    assert!(too_big.validate().is_err());
}
