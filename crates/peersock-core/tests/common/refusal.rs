//! The refusal harness: a hand-driven quiche client dialing an endpoint in
//! lockstep, with no timer ever fired, until it holds the server's
//! CONNECTION_CLOSE; what every refusal must show; and the server's state
//! afterwards. Used by `refusals_tls.rs` and `refusals_admission.rs`.

use std::time::Duration;

use peersock_core::{EndpointConfig, EndpointStats};

use super::{addr, node_with, pump_raw, raw_config, Cred, Node, RawPeer};

pub const NO_APPLICATION_PROTOCOL: u64 = 0x100 + 120;
pub const HANDSHAKE_FAILURE: u64 = 0x100 + 40;
pub const CERTIFICATE_REQUIRED: u64 = 0x100 + 116;
pub const BAD_CERTIFICATE: u64 = 0x100 + 42;
pub const DECRYPT_ERROR: u64 = 0x100 + 51;
pub const CONNECTION_REFUSED: u64 = 0x2;

/// Lockstep rounds tried before giving up (a refusal needs at most 2).
pub const ROUNDS: usize = 4;
/// Time for a closing connection to drain (3 PTO) once the close is sent.
pub const DRAIN: Duration = Duration::from_secs(5);

pub fn seed(b: u8) -> [u8; 32] {
    [b; 32]
}

/// What one refused dial looked like from both sides.
pub struct Outcome {
    /// The lockstep round in which the client held the close.
    pub round: usize,
    pub error: quiche::ConnectionError,
    /// Bytes the server sent to the client's address, and received from
    /// it, before it received a Handshake packet from there (RFC 9000
    /// §8.1: the address is validated then).
    pub unvalidated_sent: usize,
    pub unvalidated_recv: usize,
    /// Connections the server held right after the close arrived.
    pub conns_after: usize,
    pub before: EndpointStats,
    pub after: EndpointStats,
}

/// Whether a datagram carries a Handshake packet (walks the coalesced
/// long-header packets).
pub fn has_handshake_packet(mut d: &[u8]) -> bool {
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
pub fn refused(
    server: &mut Node,
    client: &mut RawPeer,
    mut hook: impl FnMut(&mut Node),
) -> Outcome {
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
pub fn check(o: &Outcome, code: u64, round: usize, reason: impl Fn(&EndpointStats) -> u64) {
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
pub fn drains_and_serves_again(server: &mut Node, client: &mut RawPeer) {
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
pub fn strict_server() -> Node {
    node_with(
        2,
        2000,
        EndpointConfig {
            max_pending_handshakes: 1,
            ..EndpointConfig::default()
        },
    )
}

pub fn client(config: quiche::Config, server: &Node) -> RawPeer {
    RawPeer::client(config, addr("127.0.0.1:1000"), server.addr)
}
