//! Retry tokens: any bytes are refused or accepted without panicking, a
//! token is only ever accepted for the address it was minted for, and what
//! is minted always validates.
#![no_main]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use peersock_core::RetryKey;

fuzz_target!(|data: &[u8]| {
    let key = RetryKey::from_secret(&[4u8; 32], Duration::from_secs(10)).unwrap();
    let now = SystemTime::now();
    let a = SocketAddr::from(([127, 0, 0, 1], 4433));
    // Arbitrary bytes as a token: no panic; a forged token never passes.
    assert!(key.validate(data, a, now).is_none());
    // Arbitrary address and original DCID: mint then validate.
    if data.len() >= 18 {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&data[..16]);
        let port = u16::from_be_bytes([data[16], data[17]]);
        let peer = SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port);
        let odcid = &data[18..data.len().min(38)];
        let token = key.mint(peer, odcid, now);
        let back = key
            .validate(&token, peer, now)
            .expect("a fresh token validates");
        assert_eq!(back.as_ref(), odcid);
        let other = SocketAddr::new(peer.ip(), port.wrapping_add(1));
        assert!(key.validate(&token, other, now).is_none());
        assert!(key
            .validate(&token, peer, now + Duration::from_secs(11))
            .is_none());
    }
});
