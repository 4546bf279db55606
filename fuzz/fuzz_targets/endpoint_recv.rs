//! The endpoint's datagram input path: header parsing, routing by CID, the
//! Initial pre-check, retry tokens, version negotiation, stateless resets.
//! Input: a mode byte, then datagrams as (u16 big-endian length, bytes).
//! Mode bit 0 turns retry on; bit 1 feeds a peersock client's real first
//! Initial before the fuzz input, so later datagrams can reach an existing
//! connection's quiche state.
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use peersock_core::{Endpoint, EndpointConfig, Identity};

fn endpoint(seed: u8, port: u16, retry: bool) -> Endpoint {
    let id = Identity::from_secret_key(&[seed; 32]).unwrap();
    let cfg = EndpointConfig {
        retry,
        handshake_timeout: Duration::from_millis(50),
        ..EndpointConfig::default()
    };
    Endpoint::new(id, cfg, SocketAddr::from(([127, 0, 0, 1], port))).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let retry = mode & 1 != 0;
    let mut server = endpoint(2, 2000, retry);
    let peer = SocketAddr::from(([127, 0, 0, 1], 1000 + u16::from(mode >> 2)));
    let mut out = vec![0u8; 1500];
    if mode & 2 != 0 {
        let mut client = endpoint(1, 1000, false);
        client
            .connect(*server.public_key(), server.local_addr(), None)
            .unwrap();
        while let Some((n, _)) = client.poll_transmit(&mut out) {
            let mut pkt = out[..n].to_vec();
            server.recv(&mut pkt, peer);
        }
    }
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let mut pkt = rest[2..2 + len].to_vec();
        rest = &rest[2 + len..];
        let _ = peersock_core::initial_decrypts(&pkt);
        server.recv(&mut pkt, peer);
        while server.poll_transmit(&mut out).is_some() {}
        while server.poll_event().is_some() {}
    }
    server.on_timeout();
    while server.poll_event().is_some() {}
    assert!(server.connection_count() <= 1 + data.len() / 1200);
});
