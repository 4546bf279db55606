//! Explicit migration: a dialed connection moves to another local address;
//! the peer reports the new address and the streams keep flowing.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use peersock_core::{Error, Event, StreamRead, StreamWrite};

#[test]
fn a_client_moves_to_another_local_address_mid_stream() {
    let mut client = node(1, 1000);
    let mut server = node(2, 2000);
    let second: SocketAddr = "127.0.0.2:1001".parse().unwrap();
    client.locals.push(second);
    let h = client
        .ep
        .connect(*server.ep.public_key(), server.addr, None)
        .unwrap();
    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(5),
        |n| n[0].connected(h)
    ));
    // Spare connection IDs arrive right after the handshake.
    let _ = pump(
        &mut [&mut client, &mut server],
        Duration::from_millis(200),
        |_| false,
    );
    let st = client.ep.open_stream(h, true).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut off = 0;
    let mut got = Vec::new();
    let mut migrated = false;
    let ok = pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(10),
        |n| {
            let [c, s] = n else { unreachable!() };
            if off < data.len() {
                if let Ok(StreamWrite::Written(n)) = c.ep.stream_send(h, st, &data[off..], false) {
                    off += n;
                }
                if off == data.len() {
                    c.ep.stream_send(h, st, &[], true).unwrap();
                }
            }
            if !migrated && off >= data.len() / 2 {
                c.ep.migrate(h, second).unwrap();
                assert_eq!(c.ep.local_addr_of(h).unwrap(), second);
                migrated = true;
            }
            let readable: Vec<(u32, u64)> = s
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::StreamReadable { conn, stream } => Some((*conn, *stream)),
                    _ => None,
                })
                .collect();
            s.events
                .retain(|e| !matches!(e, Event::StreamReadable { .. }));
            let mut fin = false;
            let mut b = [0u8; 65536];
            for (sc, ss) in readable {
                while let Ok(StreamRead::Data { n, fin: f }) = s.ep.stream_recv(sc, ss, &mut b) {
                    got.extend_from_slice(&b[..n]);
                    fin |= f;
                    if n == 0 || f {
                        break;
                    }
                }
            }
            fin || got.len() == data.len()
        },
    );
    assert!(
        ok,
        "transfer stalled at {} of {} bytes",
        got.len(),
        data.len()
    );
    assert!(migrated);
    assert_eq!(got, data);
    let moved_to = server.events.iter().find_map(|e| match e {
        Event::PathChanged { remote_addr, .. } => Some(*remote_addr),
        _ => None,
    });
    assert_eq!(moved_to, Some(second));
    assert_eq!(server.ep.connection_count(), 1);
}

#[test]
fn only_the_dialing_side_migrates() {
    let mut client = node(1, 1000);
    let mut server = node(2, 2000);
    let h = client
        .ep
        .connect(*server.ep.public_key(), server.addr, None)
        .unwrap();
    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(5),
        |n| n[0].connected(h)
    ));
    let sh = server.incoming().unwrap();
    let there: SocketAddr = "127.0.0.2:2001".parse().unwrap();
    assert!(matches!(
        server.ep.migrate(sh, there),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        client.ep.migrate(999, there),
        Err(Error::UnknownConnection)
    ));
}

/// Where the dialing side's driver keeps a routed peer (its stand-in address).
const STAND_IN: &str = "192.0.2.1:1";

/// The addresses reported by PathChanged, repeats of one address folded.
fn path_changes(n: &Node) -> Vec<SocketAddr> {
    let mut seen: Vec<SocketAddr> = n
        .events
        .iter()
        .filter_map(|e| match e {
            Event::PathChanged { remote_addr, .. } => Some(*remote_addr),
            _ => None,
        })
        .collect();
    seen.dedup();
    seen
}

/// Dials the server at the stand-in address (the driver forwards it to the
/// server); the server's packets reach the client from `server_seen_as`.
fn routed_dial(follow_peer: bool) -> (Node, Node, peersock_core::ConnHandle, bool) {
    let (mut client, mut server) = (node(1, 1000), node(2, 2000));
    let stand_in = addr(STAND_IN);
    let opts = peersock_core::DialOptions {
        follow_peer,
        ..Default::default()
    };
    let h = client
        .ep
        .connect_with(*server.ep.public_key(), stand_in, &opts)
        .unwrap();
    let server_addr = server.addr;
    let ok = pump_tap(
        &mut [&mut client, &mut server],
        Duration::from_secs(2),
        |(pkt, from, to)| Some((pkt, from, if to == stand_in { server_addr } else { to })),
        |n| n[0].connected(h),
    );
    (client, server, h, ok)
}

#[test]
fn a_routed_peer_is_followed_to_new_addresses_only_on_authentic_packets() {
    // Without follow_peer the client drops the server's packets (they come
    // from an address it did not dial): no connection.
    let (_, _, _, ok) = routed_dial(false);
    assert!(!ok, "connected without follow_peer");

    let (mut client, mut server, h, ok) = routed_dial(true);
    assert!(ok, "no handshake through the stand-in address");
    let hs = server.incoming().unwrap();
    // Traffic both ways, so the server keeps sending.
    let ping = |client: &mut Node, server: &mut Node, via: SocketAddr| {
        let s = client.ep.open_stream(h, true).unwrap();
        client.ep.stream_send(h, s, b"ping", true).unwrap();
        let stand_in = addr(STAND_IN);
        let server_addr = server.addr;
        let mut copies: Vec<Vec<u8>> = Vec::new();
        pump_tap(
            &mut [client, server],
            Duration::from_millis(300),
            |(pkt, from, to)| {
                if to == stand_in {
                    return Some((pkt, from, server_addr));
                }
                if from == server_addr {
                    copies.push(pkt.clone());
                    return Some((pkt, via, to));
                }
                Some((pkt, from, to))
            },
            |_| false,
        );
        copies
    };
    let server_addr = server.addr;
    let copies = ping(&mut client, &mut server, server_addr);
    assert_eq!(
        path_changes(&client),
        vec![server_addr],
        "the first authentic packet from the server's own address"
    );
    assert!(!copies.is_empty());

    // A replayed packet and a tampered one, each from a new address: not authentic, not reported.
    let mut replay = copies[0].clone();
    client.ep.recv(&mut replay, addr("127.0.0.8:8"));
    let mut tampered = copies.last().unwrap().clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x55;
    client.ep.recv(&mut tampered, addr("127.0.0.9:9"));
    client.poll();
    assert_eq!(path_changes(&client), vec![server_addr]);
    assert!(
        client.connected(h) && client.closed(h).is_none(),
        "bad packets close nothing"
    );

    // The server's packets now come from a new address (its NAT rebound it).
    let moved = addr("127.0.0.7:7777");
    ping(&mut client, &mut server, moved);
    assert_eq!(path_changes(&client), vec![server_addr, moved]);
    assert!(server.closed(hs).is_none() && client.closed(h).is_none());
}
