//! Two endpoints exchanging datagrams in memory: the core's test tier.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use peersock_core::{CloseKind, ConnHandle, Event, StreamRead, StreamWrite};

#[test]
fn handshake_exchanges_both_keys() {
    let (mut a, mut b) = (node(1, 1000), node(2, 2000));
    let bkey = *b.ep.public_key();
    let h = a.ep.connect(bkey, b.addr, None).unwrap();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| {
        n[0].connected(h)
    }));
    let Some(Event::Connected { remote_key, .. }) = a
        .events
        .iter()
        .find(|e| matches!(e, Event::Connected { .. }))
        .cloned()
    else {
        panic!()
    };
    assert_eq!(remote_key, bkey);
    let Some(Event::Incoming {
        remote_key,
        remote_addr,
        ..
    }) = b
        .events
        .iter()
        .find(|e| matches!(e, Event::Incoming { .. }))
        .cloned()
    else {
        panic!()
    };
    assert_eq!(&remote_key, a.ep.public_key());
    assert_eq!(remote_addr, a.addr);
    assert_eq!(a.ep.conn_info(h).unwrap().remote_key, Some(bkey));
}

#[test]
fn wrong_key_is_refused_by_the_dialer() {
    let (mut a, mut b) = (node(1, 1000), node(2, 2000));
    let wrong = *node(3, 3000).ep.public_key();
    let h = a.ep.connect(wrong, b.addr, None).unwrap();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| {
        n[0].closed(h).is_some()
    }));
    let r = a.closed(h).unwrap();
    assert_eq!(r.kind, CloseKind::IdentityMismatch);
    assert_eq!(r.expected_key, Some(wrong));
    assert_eq!(r.actual_key.as_ref(), Some(b.ep.public_key()));
    assert!(!a
        .events
        .iter()
        .any(|e| matches!(e, Event::Connected { .. })));
    // The server never saw an authenticated peer.
    assert!(!b.events.iter().any(|e| matches!(e, Event::Incoming { .. })));
}

#[test]
fn accept_hook_refusal_reaches_the_dialer() {
    let (mut a, mut b) = (node(1, 1000), node(2, 2000));
    b.auto_accept = false;
    let h = a.ep.connect(*b.ep.public_key(), b.addr, None).unwrap();
    let mut refused = false;
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| {
        if !refused {
            if let Some(Event::Incoming { conn, .. }) = n[1]
                .events
                .iter()
                .find(|e| matches!(e, Event::Incoming { .. }))
            {
                let c = *conn;
                n[1].ep.refuse(c, "not welcome").unwrap();
                refused = true;
            }
        }
        n[0].closed(h).is_some()
    }));
    let r = a.closed(h).unwrap();
    assert_eq!(r.kind, CloseKind::Refused);
    assert_eq!(r.reason, "not welcome");
    assert!(!a.connected(h));
}

#[test]
fn stream_echo_and_fin() {
    let (mut a, mut b, h) = open_pair();
    let s = a.ep.open_stream(h, true).unwrap();
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut echoed = Vec::new();
    let mut server_got = 0usize;
    let mut pending: Vec<u8> = Vec::new();
    let (mut server_fin, mut server_done) = (false, false);
    let mut buf = vec![0u8; 65536];
    let ok = pump(&mut [&mut a, &mut b], Duration::from_secs(10), |n| {
        if sent < payload.len() {
            if let StreamWrite::Written(w) =
                n[0].ep.stream_send(h, s, &payload[sent..], false).unwrap()
            {
                sent += w;
                if sent == payload.len() {
                    n[0].ep.stream_send(h, s, &[], true).unwrap();
                }
            }
        }
        // Server echoes stream `s`, reading only while its echo is flushed
        // (so flow control holds the client back, as in real use).
        n[1].events.clear();
        loop {
            while !pending.is_empty() {
                match n[1].ep.stream_send(h, s, &pending, false).unwrap() {
                    StreamWrite::Written(0) => break,
                    StreamWrite::Written(w) => {
                        pending.drain(..w);
                    }
                    StreamWrite::Stopped(c) => panic!("stopped {c}"),
                }
            }
            if !pending.is_empty() {
                break;
            }
            if server_fin {
                break;
            }
            match n[1].ep.stream_recv(h, s, &mut buf) {
                Ok(StreamRead::Data { n: k, fin }) => {
                    server_got += k;
                    pending.extend_from_slice(&buf[..k]);
                    if fin {
                        server_fin = true;
                    }
                }
                _ => break,
            }
        }
        if server_fin && pending.is_empty() && !server_done {
            n[1].ep.stream_send(h, s, &[], true).unwrap();
            server_done = true;
        }
        while let Ok(StreamRead::Data { n: k, fin }) = n[0].ep.stream_recv(h, s, &mut buf) {
            echoed.extend_from_slice(&buf[..k]);
            if fin {
                return true;
            }
        }
        false
    });
    assert!(
        ok,
        "echo incomplete: sent {sent}, server got {server_got}, echoed {}",
        echoed.len()
    );
    assert_eq!(echoed, payload);
}

#[test]
fn datagrams_both_ways_and_size_limit() {
    let (mut a, mut b, h) = open_pair();
    assert!(a.ep.send_datagram(h, b"ping").unwrap());
    let max = a.ep.max_datagram_size(h).unwrap().unwrap();
    // Below the largest packet (loopback peers may get bigger packets than
    // max_udp_payload once discovery has probed).
    let largest = a.ep.config().largest_udp_payload();
    assert!(max > 1000 && max < largest, "max datagram {max}");
    let err = a.ep.send_datagram(h, &vec![0u8; max + 1]).unwrap_err();
    assert_eq!(err.code(), "DATAGRAM_TOO_LARGE");
    let mut replied = false;
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| {
        if !replied {
            if let Some(Event::Datagram { conn, data }) = n[1]
                .events
                .iter()
                .find(|e| matches!(e, Event::Datagram { .. }))
                .cloned()
            {
                assert_eq!(data, b"ping");
                n[1].ep.send_datagram(conn, b"pong").unwrap();
                replied = true;
            }
        }
        n[0].events
            .iter()
            .any(|e| matches!(e, Event::Datagram { data, .. } if data == b"pong"))
    }));
}

#[test]
fn graceful_close_carries_code_and_reason() {
    let (mut a, mut b, h) = open_pair();
    a.ep.close(h, 42, b"bye").unwrap();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| {
        n[1].events
            .iter()
            .any(|e| matches!(e, Event::Closed { .. }))
            && n[0].closed(h).is_some()
    }));
    let r = b
        .events
        .iter()
        .find_map(|e| match e {
            Event::Closed { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (r.kind, r.code, r.reason.as_str()),
        (CloseKind::Peer, 42, "bye")
    );
    assert_eq!(a.closed(h).unwrap().kind, CloseKind::Local);
}

#[test]
fn two_hundred_connections_on_one_endpoint() {
    let mut server = node(9, 9000);
    let mut clients: Vec<Node> = (0..200)
        .map(|i| node(100 + (i % 100) as u8, 10_000 + i))
        .collect();
    let skey = *server.ep.public_key();
    let handles: Vec<ConnHandle> = clients
        .iter_mut()
        .map(|c| c.ep.connect(skey, server.addr, None).unwrap())
        .collect();
    let mut all: Vec<&mut Node> = vec![&mut server];
    all.extend(clients.iter_mut());
    assert!(pump(&mut all, Duration::from_secs(30), |n| {
        (1..n.len()).all(|i| n[i].connected(handles[i - 1]))
    }));
    assert_eq!(server.ep.connection_count(), 200);
    let incoming = server
        .events
        .iter()
        .filter(|e| matches!(e, Event::Incoming { .. }))
        .count();
    assert_eq!(incoming, 200);
}

#[test]
fn garbage_is_dropped_without_state() {
    let mut b = node(2, 2000);
    let from: SocketAddr = "127.0.0.1:5555".parse().unwrap();
    let mut seed = 12345u64;
    for len in [0usize, 1, 5, 20, 100, 1199, 1200, 1500] {
        for _ in 0..50 {
            let mut pkt: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 33) as u8
                })
                .collect();
            b.ep.recv(&mut pkt, from);
        }
    }
    assert_eq!(b.ep.connection_count(), 0);
    assert!(b.ep.poll_event().is_none());
}

/// A bare quiche client that presents no certificate at all: the server must
/// refuse it during the handshake (mutual authentication) and never report
/// an `Incoming` peer.
#[test]
fn client_without_certificate_is_rejected() {
    let mut b = node(2, 2000);
    b.auto_accept = false;
    let mut ctx = boring::ssl::SslContextBuilder::new(boring::ssl::SslMethod::tls()).unwrap();
    ctx.set_verify_algorithm_prefs(&[boring::ssl::SslSignatureAlgorithm::ED25519])
        .unwrap();
    ctx.set_custom_verify_callback(boring::ssl::SslVerifyMode::PEER, |_| Ok(()));
    let mut cfg =
        quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, ctx).unwrap();
    cfg.set_application_protos(&[peersock_core::ALPN]).unwrap();
    cfg.set_max_idle_timeout(5000);
    cfg.set_initial_max_data(1 << 20);
    cfg.set_initial_max_streams_uni(4);
    let me: SocketAddr = "127.0.0.1:1000".parse().unwrap();
    let mut raw = RawPeer::client(cfg, me, b.addr);
    pump_raw(
        &mut b,
        &mut raw,
        Duration::from_secs(5),
        |_| {},
        |_, r| {
            r.q.as_ref()
                .is_some_and(|q| q.is_closed() || q.peer_error().is_some())
        },
    );
    let q = raw.q.as_ref().unwrap();
    let err = q.peer_error().expect("server must close the handshake");
    assert!(!err.is_app);
    // TLS alert certificate_required (116) as a QUIC crypto error.
    assert_eq!(err.error_code, 0x100 + 116, "got 0x{:x}", err.error_code);
    assert!(!b.events.iter().any(|e| matches!(e, Event::Incoming { .. })));
}

/// A writer that only retries when told `StreamWritable` must always be
/// woken: 20 fresh connections each push 256 KiB in 64 KiB writes.
#[test]
fn blocked_writer_is_always_woken() {
    for round in 0..20u16 {
        let (mut a, mut b, h) = open_pair();
        let s = a.ep.open_stream(h, true).unwrap();
        let data = vec![round as u8; 256 * 1024];
        let (mut sent, mut received) = (0usize, 0usize);
        let mut may_write = true;
        let mut buf = vec![0u8; 65536];
        let ok = pump(&mut [&mut a, &mut b], Duration::from_secs(10), |n| {
            if n[0]
                .events
                .iter()
                .any(|e| matches!(e, Event::StreamWritable { .. }))
            {
                may_write = true;
            }
            n[0].events.clear();
            while may_write && sent < data.len() {
                let end = (sent + 65536).min(data.len());
                match n[0]
                    .ep
                    .stream_send(h, s, &data[sent..end], end == data.len())
                    .unwrap()
                {
                    StreamWrite::Written(w) => {
                        sent += w;
                        if sent < end {
                            may_write = false; // cut short: wait for the event
                        }
                    }
                    StreamWrite::Stopped(c) => panic!("stopped {c}"),
                }
            }
            n[1].events.clear();
            while let Ok(StreamRead::Data { n: k, .. }) = n[1].ep.stream_recv(h, s, &mut buf) {
                received += k;
                if k == 0 {
                    break;
                }
            }
            received == data.len()
        });
        assert!(
            ok,
            "round {round}: writer stalled after {sent} bytes sent, {received} received"
        );
    }
}

#[test]
fn a_dial_without_a_pin_learns_the_proven_key_and_cannot_resume() {
    let (mut a, mut b) = (node(1, 1000), node(2, 2000));
    let bkey = *b.ep.public_key();
    let opts = peersock_core::DialOptions::default();
    let h =
        a.ep.connect_any_at(b.addr, &opts, std::time::Instant::now())
            .unwrap();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| {
        n[0].connected(h)
    }));
    let learned = a.events.iter().find_map(|e| match e {
        Event::Connected { remote_key, .. } => Some(*remote_key),
        _ => None,
    });
    assert_eq!(learned, Some(bkey));
    assert_eq!(a.ep.conn_info(h).unwrap().remote_key, Some(bkey));
    let resume = peersock_core::DialOptions {
        session: Some(vec![0; 64]),
        ..Default::default()
    };
    assert!(a
        .ep
        .connect_any_at(b.addr, &resume, std::time::Instant::now())
        .is_err());
    let early = peersock_core::DialOptions {
        early_data: true,
        ..Default::default()
    };
    assert!(a
        .ep
        .connect_any_at(b.addr, &early, std::time::Instant::now())
        .is_err());
}
