//! Stateless retry tokens (RFC 9000 §8.1.2): with retry on, a client's first
//! Initial gets a Retry packet carrying a token, and only an Initial that
//! echoes a valid token creates a connection. That proves the client can
//! receive at its source address before the endpoint spends any state on it.
//!
//! A token is `version (1) | minted-at ms since the Unix epoch (8) |
//! original DCID length (1) | original DCID | tag (16)`, where the tag is a
//! truncated HMAC-SHA256 over everything before it plus the client's IP and
//! port. The key is derived from the identity's secret (as the reset key
//! is), so a restarted endpoint with the same identity accepts its tokens.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boring::hash::{hash, hmac_sha256, MessageDigest};
use boring::memcmp;
use quiche::ConnectionId;

use crate::error::{Error, Result};

const TOKEN_VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Largest connection ID QUIC v1 allows.
const MAX_CID_LEN: usize = 20;
/// Tokens minted up to this far in the future (clock steps) still pass.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// Longest token this module mints or accepts.
pub const MAX_TOKEN_LEN: usize = 1 + 8 + 1 + MAX_CID_LEN + TAG_LEN;

/// Mints and checks retry tokens for one endpoint.
pub struct RetryKey {
    key: [u8; 32],
    lifetime: Duration,
}

impl RetryKey {
    /// Derives the token key from the identity's secret seed.
    pub fn from_secret(seed: &[u8], lifetime: Duration) -> Result<RetryKey> {
        let mut input = b"peersock retry token v1".to_vec();
        input.extend_from_slice(seed);
        let digest =
            hash(MessageDigest::sha256(), &input).map_err(|e| Error::Internal(e.to_string()))?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&digest);
        Ok(RetryKey { key, lifetime })
    }

    /// A token binding `peer` and the client's original DCID, minted `now`.
    pub fn mint(&self, peer: SocketAddr, odcid: &[u8], now: SystemTime) -> Vec<u8> {
        let odcid = &odcid[..odcid.len().min(MAX_CID_LEN)];
        let ms = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let mut t = Vec::with_capacity(MAX_TOKEN_LEN);
        t.push(TOKEN_VERSION);
        t.extend_from_slice(&ms.to_be_bytes());
        t.push(odcid.len() as u8);
        t.extend_from_slice(odcid);
        let tag = self.tag(&t, peer);
        t.extend_from_slice(&tag);
        t
    }

    /// The original DCID if `token` was minted by this key for `peer`, has
    /// not expired at `now`, and is intact; `None` for anything else.
    pub fn validate(
        &self,
        token: &[u8],
        peer: SocketAddr,
        now: SystemTime,
    ) -> Option<ConnectionId<'static>> {
        if token.len() < 1 + 8 + 1 + TAG_LEN
            || token.len() > MAX_TOKEN_LEN
            || token[0] != TOKEN_VERSION
        {
            return None;
        }
        let cid_len = token[9] as usize;
        if cid_len > MAX_CID_LEN || token.len() != 1 + 8 + 1 + cid_len + TAG_LEN {
            return None;
        }
        let (body, tag) = token.split_at(token.len() - TAG_LEN);
        if !memcmp::eq(&self.tag(body, peer), tag) {
            return None;
        }
        let minted =
            UNIX_EPOCH + Duration::from_millis(u64::from_be_bytes(body[1..9].try_into().ok()?));
        let now_ms = now.duration_since(UNIX_EPOCH).ok()?;
        let minted_ms = minted.duration_since(UNIX_EPOCH).ok()?;
        if minted_ms > now_ms + CLOCK_SLACK || now_ms.saturating_sub(minted_ms) > self.lifetime {
            return None;
        }
        Some(ConnectionId::from_vec(body[10..].to_vec()))
    }

    fn tag(&self, body: &[u8], peer: SocketAddr) -> [u8; TAG_LEN] {
        let mut input = Vec::with_capacity(body.len() + 18);
        input.extend_from_slice(body);
        match peer.ip() {
            std::net::IpAddr::V4(ip) => input.extend_from_slice(&ip.to_ipv6_mapped().octets()),
            std::net::IpAddr::V6(ip) => input.extend_from_slice(&ip.octets()),
        }
        input.extend_from_slice(&peer.port().to_be_bytes());
        let digest = hmac_sha256(&self.key, &input).expect("hmac-sha256");
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&digest[..TAG_LEN]);
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RetryKey {
        RetryKey::from_secret(&[5u8; 32], Duration::from_secs(10)).unwrap()
    }

    #[test]
    fn round_trip_and_binding() {
        let k = key();
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let now = SystemTime::now();
        let t = k.mint(a, &[9u8; 16], now);
        assert_eq!(k.validate(&t, a, now).unwrap().as_ref(), &[9u8; 16]);
        // Another port, another IP, another family.
        for other in ["127.0.0.1:4001", "127.0.0.2:4000", "[::1]:4000"] {
            assert!(
                k.validate(&t, other.parse().unwrap(), now).is_none(),
                "{other}"
            );
        }
        // Another key (another identity).
        let k2 = RetryKey::from_secret(&[6u8; 32], Duration::from_secs(10)).unwrap();
        assert!(k2.validate(&t, a, now).is_none());
        // Every single-bit flip is caught.
        for i in 0..t.len() * 8 {
            let mut f = t.clone();
            f[i / 8] ^= 1 << (i % 8);
            assert!(k.validate(&f, a, now).is_none(), "bit {i}");
        }
        // Truncated and extended.
        assert!(k.validate(&t[..t.len() - 1], a, now).is_none());
        let mut long = t.clone();
        long.push(0);
        assert!(k.validate(&long, a, now).is_none());
        assert!(k.validate(&[], a, now).is_none());
    }

    #[test]
    fn expiry_and_future() {
        let k = key();
        let a: SocketAddr = "[::1]:9".parse().unwrap();
        let now = SystemTime::now();
        let t = k.mint(a, &[1u8; 8], now);
        assert!(k.validate(&t, a, now + Duration::from_secs(9)).is_some());
        assert!(k.validate(&t, a, now + Duration::from_secs(11)).is_none());
        // Minted "in the future" (beyond the clock slack): refused.
        assert!(k.validate(&t, a, now - Duration::from_secs(5)).is_none());
    }
}
