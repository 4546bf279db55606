//! The server's "accepted" (control stream 3: the byte CONTROL_ACCEPTED,
//! then FIN) is read as a stream: QUIC may deliver the byte and the FIN in
//! separate packets, reordered or late, and the dialer must take it however
//! it comes. Anything else than that one byte then FIN is refused.
//!
//! The server is quiche driven by hand (peersock's ALPN, a good Ed25519
//! credential), in lockstep with a peersock dialer; no timer is fired.

mod common;

use common::*;
use peersock_core::{CloseKind, ConnHandle, Event};

const CONTROL_STREAM: u64 = 3;
const ACCEPTED: u8 = 1;
const PROTOCOL_VIOLATION: u64 = 0xa;
/// Lockstep rounds allowed for the TLS handshake.
const HANDSHAKE_ROUNDS: usize = 10;

struct Pair {
    client: Node,
    server: RawPeer,
    h: ConnHandle,
    buf: Vec<u8>,
}

impl Pair {
    /// A peersock dialer and a hand-driven server, through the TLS handshake
    /// (both sides established), before any control message.
    fn new() -> Pair {
        let mut client = node(1, 1000);
        let server = RawPeer::server(raw_config(&Cred::Good([7; 32])), addr("127.0.0.1:2000"));
        let key = *peersock_core::Identity::from_secret_key(&[7; 32])
            .unwrap()
            .public_key();
        let h = client.ep.connect(key, server.addr, None).unwrap();
        let mut p = Pair {
            client,
            server,
            h,
            buf: vec![0u8; 65535],
        };
        for _ in 0..HANDSHAKE_ROUNDS {
            p.flush_client();
            let out = p.take_server_out();
            p.deliver(out);
            if p.q().is_established() && p.q().stats().sent > 0 {
                p.flush_client(); // the client's ACK of HANDSHAKE_DONE
                return p;
            }
        }
        panic!("no handshake in {HANDSHAKE_ROUNDS} rounds");
    }

    fn q(&mut self) -> &mut quiche::Connection {
        self.server.q.as_mut().unwrap()
    }

    /// Everything the client has to send, into the server.
    fn flush_client(&mut self) {
        let from = self.client.addr;
        // Bounded: a flight without timers is a few datagrams.
        for _ in 0..64 {
            let Some((n, _)) = self.client.ep.poll_transmit(&mut self.buf) else {
                return;
            };
            let mut d = self.buf[..n].to_vec();
            self.server.recv(&mut d, from);
        }
    }

    /// Everything the server has to send now, held back.
    fn take_server_out(&mut self) -> Vec<Vec<u8>> {
        let mut out = vec![];
        for _ in 0..64 {
            let Ok((n, _)) = self.server.q.as_mut().unwrap().send(&mut self.buf) else {
                break;
            };
            out.push(self.buf[..n].to_vec());
        }
        out
    }

    /// Datagrams into the client, then its events.
    fn deliver(&mut self, dgrams: Vec<Vec<u8>>) {
        let from = self.server.addr;
        for mut d in dgrams {
            self.client.ep.recv(&mut d, from);
        }
        self.client.poll();
    }

    /// The server writes `data` on the control stream (with `fin`) and
    /// sends it in packets of its own.
    fn control(&mut self, data: &[u8], fin: bool) -> Vec<Vec<u8>> {
        let q = self.q();
        assert_eq!(
            q.stream_send(CONTROL_STREAM, data, fin).unwrap(),
            data.len()
        );
        let out = self.take_server_out();
        assert!(!out.is_empty());
        out
    }

    /// A round trip with nothing on the control stream: a PING, its ACK.
    fn ping_round(&mut self) {
        self.q().send_ack_eliciting().unwrap();
        let out = self.take_server_out();
        self.deliver(out);
        self.flush_client();
    }

    fn connected(&self) -> bool {
        self.client.connected(self.h)
    }

    fn closed(&self) -> Option<peersock_core::CloseReason> {
        self.client.closed(self.h)
    }

    /// Neither side has seen a close.
    fn still_open(&mut self) -> bool {
        self.closed().is_none() && self.q().peer_error().is_none() && !self.q().is_closed()
    }
}

#[test]
fn byte_then_fin_in_later_packets_connects() {
    let mut p = Pair::new();
    let byte = p.control(&[ACCEPTED], false);
    p.deliver(byte);
    p.flush_client();
    assert!(!p.connected(), "connected before the FIN");
    assert!(p.still_open(), "closed on a partial control message");
    // The FIN comes a few round trips later.
    for _ in 0..3 {
        p.ping_round();
        assert!(!p.connected() && p.still_open());
    }
    let fin = p.control(&[], true);
    p.deliver(fin);
    assert!(p.connected(), "{:?}", p.client.events);
    assert!(p.still_open());
}

#[test]
fn fin_before_the_byte_connects_once_the_byte_arrives() {
    let mut p = Pair::new();
    let byte = p.control(&[ACCEPTED], false);
    let fin = p.control(&[], true);
    // The FIN-carrying packet overtakes the byte's.
    p.deliver(fin);
    p.flush_client();
    assert!(!p.connected(), "connected without the byte");
    assert!(p.still_open(), "closed on a FIN ahead of its data");
    // The byte's packet arrives a round trip later (the server may have
    // retransmitted it meanwhile; either copy completes the message).
    p.ping_round();
    p.deliver(byte);
    assert!(p.connected(), "{:?}", p.client.events);
    assert!(p.still_open());
}

/// The server sends `parts` (data, fin) on the control stream, each in its
/// own packets and delivered alone; the dialer must refuse the whole.
fn refused(parts: &[(&[u8], bool)]) {
    let mut p = Pair::new();
    for (data, fin) in parts {
        let d = p.control(data, *fin);
        p.deliver(d);
    }
    // The close is reported once it is sent.
    p.flush_client();
    p.client.poll();
    assert!(!p.connected());
    let r = p.closed().expect("no close after a bad control message");
    assert_eq!(
        (r.kind, r.code),
        (CloseKind::LocalTransport, PROTOCOL_VIOLATION)
    );
    let e = p
        .q()
        .peer_error()
        .cloned()
        .expect("the close reached the server");
    assert_eq!(e.error_code, PROTOCOL_VIOLATION);
    assert_eq!(e.reason, b"bad control message");
    assert!(!p
        .client
        .events
        .iter()
        .any(|e| matches!(e, Event::Connected { .. })));
}

#[test]
fn a_fin_without_the_byte_is_refused() {
    refused(&[(&[], true)]);
}

#[test]
fn another_byte_is_refused() {
    refused(&[(&[2], false), (&[], true)]);
}

#[test]
fn two_bytes_in_two_packets_are_refused() {
    refused(&[(&[ACCEPTED], false), (&[ACCEPTED], true)]);
}

#[test]
fn a_reset_control_stream_is_refused() {
    let mut p = Pair::new();
    let byte = p.control(&[ACCEPTED], false);
    p.deliver(byte);
    p.q()
        .stream_shutdown(CONTROL_STREAM, quiche::Shutdown::Write, 9)
        .unwrap();
    let reset = p.take_server_out();
    p.deliver(reset);
    p.flush_client();
    p.client.poll();
    assert!(!p.connected());
    let r = p.closed().expect("no close after a reset control stream");
    assert_eq!(
        (r.kind, r.code),
        (CloseKind::LocalTransport, PROTOCOL_VIOLATION)
    );
}
