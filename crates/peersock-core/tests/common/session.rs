//! The resumption harness: a server that may take early data, a client
//! holding a session ticket from it, a dial with that session and early
//! data, and single flights between the two. Used by `zero_rtt.rs` and
//! `zero_rtt_sessions.rs`.

use std::time::Duration;

use peersock_core::{ConnHandle, DialOptions, EndpointConfig, Event, StreamRead};

use super::{node, node_with, pump, Node};

pub fn server_config(early: bool) -> EndpointConfig {
    EndpointConfig {
        early_data: early,
        ..EndpointConfig::default()
    }
}

pub fn session_of(n: &Node, h: ConnHandle) -> Option<Vec<u8>> {
    n.events.iter().rev().find_map(|e| match e {
        Event::Session { conn, session, .. } if *conn == h => Some(session.clone()),
        _ => None,
    })
}

/// Dials `server` from `client`, waits for a session ticket, closes.
pub fn ticket(client: &mut Node, server: &mut Node) -> Vec<u8> {
    let h = client
        .ep
        .connect(*server.ep.public_key(), server.addr, None)
        .unwrap();
    assert!(pump(&mut [client, server], Duration::from_secs(5), |n| n
        [0]
    .connected(h)
        && session_of(n[0], h).is_some()));
    let s = session_of(client, h).unwrap();
    client.ep.close(h, 0, b"done").unwrap();
    assert!(pump(&mut [client, server], Duration::from_secs(5), |n| n
        [0]
    .closed(h)
    .is_some()));
    s
}

pub fn early(session: Vec<u8>) -> DialOptions {
    DialOptions {
        session: Some(session),
        early_data: true,
        ..DialOptions::default()
    }
}

/// A server (`config`) and a client that holds a session ticket from it;
/// the server's events are cleared.
pub fn resumable(config: EndpointConfig) -> (Node, Node, Vec<u8>) {
    let mut server = node_with(1, 1000, config);
    let mut client = node(2, 2000);
    let s = ticket(&mut client, &mut server);
    server.events.clear();
    (server, client, s)
}

/// Dials `server` again with the session and early data.
pub fn dial_early(client: &mut Node, server: &Node, session: Vec<u8>) -> ConnHandle {
    client
        .ep
        .connect_with(*server.ep.public_key(), server.addr, &early(session))
        .unwrap()
}

/// Moves the datagrams `from` has queued to `to`, once (one flight).
pub fn one_flight(from: &mut Node, to: &mut Node) -> usize {
    let mut buf = vec![0u8; 65535];
    let mut n = 0;
    while let Some((len, dest)) = from.ep.poll_transmit(&mut buf) {
        if dest == to.addr {
            to.ep.recv(&mut buf[..len], from.addr);
            n += 1;
        }
    }
    to.poll();
    n
}

pub fn read_all(n: &mut Node, h: ConnHandle, stream: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(StreamRead::Data { n: k, fin }) = n.ep.stream_recv(h, stream, &mut buf) {
        out.extend_from_slice(&buf[..k]);
        if fin || k == 0 {
            break;
        }
    }
    out
}

pub fn readable(n: &Node) -> Option<(ConnHandle, u64)> {
    n.events.iter().find_map(|e| match e {
        Event::StreamReadable { conn, stream } => Some((*conn, *stream)),
        _ => None,
    })
}
