//! Session resumption and 0-RTT: a dialer keeps the session a peer gave it
//! and reconnects with early data, which the server reads from the first
//! flight; the resumed connection then behaves like any other. (The
//! harness: `common/session.rs`; which sessions are never used:
//! `zero_rtt_sessions.rs`.)

mod common;

use std::time::Duration;

use common::session::*;
use common::*;
use peersock_core::{CloseKind, DialOptions, EndpointConfig, Event};

#[test]
fn a_resumed_dial_delivers_early_data_in_its_first_flight() {
    let mut server = node_with(1, 1000, server_config(true));
    let mut client = node(2, 2000);
    let s = ticket(&mut client, &mut server);
    server.events.clear();

    let h = client
        .ep
        .connect_with(*server.ep.public_key(), server.addr, &early(s))
        .unwrap();
    assert!(client.ep.conn_info(h).unwrap().early);
    let st = client.ep.open_stream(h, true).unwrap();
    client
        .ep
        .stream_send(h, st, b"GET /idempotent", true)
        .unwrap();
    // Only the client's first flight has reached the server: its early
    // data is already readable there (the server knows the client's key
    // from the resumed session).
    assert!(one_flight(&mut client, &mut server) >= 1);
    assert!(
        server
            .events
            .iter()
            .any(|e| matches!(e, Event::Incoming { .. })),
        "incoming after one flight: {:?}",
        server.events
    );
    let (sh, sst) = readable(&server).expect("early stream readable after the first flight");
    assert_eq!(read_all(&mut server, sh, sst), b"GET /idempotent");
    assert!(!client.connected(h));

    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(5),
        |n| n[0].connected(h)
    ));
    let info = client.ep.conn_info(h).unwrap();
    assert!(info.resumed, "resumed");
    assert!(info.early_data_accepted, "0-RTT accepted");
}

#[test]
fn without_early_data_a_resumed_dial_sends_nothing_early() {
    let mut server = node_with(1, 1000, server_config(true));
    let mut client = node(2, 2000);
    let s = ticket(&mut client, &mut server);
    server.events.clear();
    let opts = DialOptions {
        session: Some(s),
        ..DialOptions::default()
    };
    let h = client
        .ep
        .connect_with(*server.ep.public_key(), server.addr, &opts)
        .unwrap();
    assert!(!client.ep.conn_info(h).unwrap().early);
    assert!(
        client.ep.open_stream(h, true).is_err(),
        "no streams before the handshake"
    );
    one_flight(&mut client, &mut server);
    assert!(server.events.is_empty(), "{:?}", server.events);
    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(5),
        |n| n[0].connected(h)
    ));
    let info = client.ep.conn_info(h).unwrap();
    assert!(info.resumed);
    assert!(!info.early_data_accepted);
}

#[test]
fn a_server_without_early_data_gets_the_data_after_the_handshake() {
    let (mut server, mut client, s) = resumable(server_config(false));
    let h = dial_early(&mut client, &server, s);
    let st = client.ep.open_stream(h, true).unwrap();
    client.ep.stream_send(h, st, b"hello", true).unwrap();
    one_flight(&mut client, &mut server);
    assert!(
        readable(&server).is_none(),
        "0-RTT refused: nothing readable yet"
    );
    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(5),
        |n| readable(n[1]).is_some()
    ));
    let (sh, sst) = readable(&server).unwrap();
    assert_eq!(read_all(&mut server, sh, sst), b"hello");
    let info = client.ep.conn_info(h).unwrap();
    assert!(info.resumed && !info.early_data_accepted);
}

#[test]
fn a_resumed_connection_closes_like_any_other() {
    let (mut server, mut client, s) = resumable(server_config(true));
    let h = dial_early(&mut client, &server, s);
    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(5),
        |n| n[0].connected(h)
    ));
    client.ep.close(h, 7, b"bye").unwrap();
    assert!(
        pump(
            &mut [&mut client, &mut server],
            Duration::from_secs(5),
            |n| n[0].closed(h).is_some()
        ),
        "no Closed event after close"
    );
    assert_eq!(client.closed(h).unwrap().kind, CloseKind::Local);
}

#[test]
fn a_resumed_client_keeps_sending_after_its_handshake() {
    let (mut server, mut client, s) = resumable(server_config(true));
    let h = dial_early(&mut client, &server, s);
    let st = client.ep.open_stream(h, true).unwrap();
    client.ep.stream_send(h, st, b"early", false).unwrap();
    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(5),
        |n| n[0].connected(h)
    ));
    let sent = client.ep.conn_info(h).unwrap().sent_packets;
    client.ep.stream_send(h, st, b" and late", true).unwrap();
    let mut got = Vec::new();
    assert!(
        pump(
            &mut [&mut client, &mut server],
            Duration::from_secs(5),
            |n| {
                if let Some((sh, sst)) = readable(n[1]) {
                    got.extend(read_all(n[1], sh, sst));
                    n[1].events.clear();
                }
                got.ends_with(b"late")
            }
        ),
        "client sent {} packets before, {} after",
        sent,
        client.ep.conn_info(h).unwrap().sent_packets
    );
}

#[test]
fn a_zero_rtt_client_that_reads_its_reply_first_still_finishes_its_handshake() {
    // The server's flight and its 0.5-RTT reply all arrive, and the client
    // reads the reply, before the client sends anything (one event-loop
    // turn in Node). The client's Finished must still go out. (In Node,
    // through the lab relay, quiche then stopped sending at all until the
    // endpoint sent the Finished right away; this in-memory sequence does
    // not reproduce that stall, see bench/RELIABILITY.md.)
    let mut server = node_with(1, 1000, server_config(true));
    let mut client = node(2, 2000);
    let s = ticket(&mut client, &mut server);
    server.events.clear();
    client.events.clear();
    let h = client
        .ep
        .connect_with(*server.ep.public_key(), server.addr, &early(s))
        .unwrap();
    let st = client.ep.open_stream(h, false).unwrap();
    client.ep.stream_send(h, st, b"GET", true).unwrap();
    // 50 ms each way, as through the lab relay.
    std::thread::sleep(Duration::from_millis(50));
    one_flight(&mut client, &mut server);
    let (sh, sst) = readable(&server).expect("early data at the server");
    read_all(&mut server, sh, sst);
    let reply = server.ep.open_stream(sh, false).unwrap();
    server.ep.stream_send(sh, reply, b"VALUE", true).unwrap();
    // Everything the server has goes to the client, which reads it all
    // before it transmits.
    let mut buf = vec![0u8; 65535];
    let mut n_in = 0;
    std::thread::sleep(Duration::from_millis(50));
    while let Some((n, _)) = server.ep.poll_transmit(&mut buf) {
        client.ep.recv(&mut buf[..n], server.addr);
        n_in += 1;
    }
    client.poll();
    let evs: Vec<Event> = client.events.drain(..).collect();
    for e in evs {
        if let Event::StreamReadable { conn, stream } = e {
            read_all(&mut client, conn, stream);
        }
    }
    assert!(n_in >= 2, "server flight of {n_in} datagrams");
    assert!(client.connected(h) || client.ep.conn_info(h).is_ok());
    let sent = client.ep.conn_info(h).unwrap().sent_packets;
    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(2),
        |n| n[0].ep.conn_info(h).unwrap().sent_packets > sent + 1
            && n[1].ep.conn_info(sh).is_ok_and(|i| i.sent_packets > 0)
    ));
    // The server completed its handshake: it hands out spare connection
    // IDs only then, so the client can migrate.
    assert!(pump(
        &mut [&mut client, &mut server],
        Duration::from_secs(2),
        |n| n[0]
            .ep
            .migrate(h, "127.0.0.3:2000".parse().unwrap())
            .is_ok()
    ));
}

#[test]
fn a_server_that_took_early_data_still_ends_a_handshake_that_never_completes() {
    // The server accepts the client's 0-RTT flight (the connection is open
    // for the application before the handshake completes); nothing the
    // client sends after that arrives. The handshake deadline must still
    // end it, as for any handshake: the idle timer alone would not, while
    // a client keeps sending 0-RTT packets.
    let timeout = Duration::from_millis(500);
    let (mut server, mut client, s) = resumable(EndpointConfig {
        handshake_timeout: timeout,
        ..server_config(true)
    });
    let h = dial_early(&mut client, &server, s);
    let st = client.ep.open_stream(h, true).unwrap();
    client.ep.stream_send(h, st, b"early", true).unwrap();
    let start = std::time::Instant::now();
    assert!(one_flight(&mut client, &mut server) >= 1);
    let sh = server.incoming().expect("the server took the early flight");
    let client_addr = client.addr;
    let ended = pump_tap(
        &mut [&mut server, &mut client],
        Duration::from_secs(5),
        |d| (d.1 != client_addr).then_some(d),
        |n| n[0].closed(sh).is_some(),
    );
    let elapsed = start.elapsed();
    println!("[zero-rtt] early-data server connection with no handshake: closed after {elapsed:?} (handshake timeout {timeout:?})");
    assert!(
        ended,
        "the server kept the never-completed handshake for 5 s"
    );
    assert_eq!(server.closed(sh).unwrap().kind, CloseKind::HandshakeTimeout);
    assert!(elapsed < timeout * 4, "{elapsed:?}");
}
