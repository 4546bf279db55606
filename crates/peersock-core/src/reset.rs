//! Stateless reset tokens (RFC 9000 §10.3): derived from the identity's
//! secret and the connection ID, so an endpoint restarted with the same
//! identity answers for the connections it lost, and their peers learn at
//! their next packet that the connection is gone.

use boring::hash::{hash, hmac_sha256, MessageDigest};
use quiche::ConnectionId;

use crate::error::{Error, Result};

/// Smallest reset we send (RFC 9000 §10.3: 5 bytes then the 16-byte token).
const MIN_RESET_LEN: usize = 21;
/// Smallest packet we answer with a reset. A reset is always one byte
/// shorter than its trigger, so two endpoints can never loop; packets as
/// small as a keep-alive PING (about 38 bytes with our 16-byte connection
/// IDs) must still get one, or an idle peer would learn of the loss only at
/// its idle timeout.
const MIN_RESET_TRIGGER: usize = MIN_RESET_LEN + 1;

pub(crate) struct ResetKey([u8; 32]);

impl ResetKey {
    pub fn from_secret(seed: &[u8]) -> Result<ResetKey> {
        let mut input = b"peersock stateless reset v1".to_vec();
        input.extend_from_slice(seed);
        let digest =
            hash(MessageDigest::sha256(), &input).map_err(|e| Error::Internal(e.to_string()))?;
        let mut k = [0u8; 32];
        k.copy_from_slice(&digest);
        Ok(ResetKey(k))
    }

    /// The token for one of our connection IDs.
    pub fn token(&self, cid: &ConnectionId) -> u128 {
        let digest = hmac_sha256(&self.0, cid).expect("hmac-sha256");
        let mut t = [0u8; 16];
        t.copy_from_slice(&digest[..16]);
        u128::from_be_bytes(t)
    }

    /// A stateless reset answering a short-header packet of `len` bytes to
    /// an unknown connection ID; shorter than the trigger, so two endpoints
    /// can never loop.
    pub fn stateless_reset(&self, dcid: &ConnectionId, len: usize) -> Option<Vec<u8>> {
        if len < MIN_RESET_TRIGGER || dcid.len() != crate::config::CID_LEN {
            return None;
        }
        let n = (len - 1).clamp(MIN_RESET_LEN, MIN_RESET_LEN + 20);
        let mut pkt = vec![0u8; n];
        boring::rand::rand_bytes(&mut pkt[..n - 16]).ok()?;
        pkt[0] = 0x40 | (pkt[0] & 0x3f);
        pkt[n - 16..].copy_from_slice(&self.token(dcid).to_be_bytes());
        Some(pkt)
    }
}
