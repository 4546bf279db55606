//! The packet that refuses a dialer at its first Initial: a CONNECTION_CLOSE
//! it receives within one round trip, sent without keeping any state (the
//! decision is made in `front_door.rs`).
//!
//! quiche cannot send this close itself: when the first packet of a
//! connection fails (no common ALPN, no usable signature algorithm), its
//! `close` marks the connection closed at once because no packet was ever
//! processed, so `send` has nothing to send and the dialer waits for its own
//! timeout. Limits (`max_connections`, `max_pending_handshakes`) refuse
//! before any connection exists at all. In both cases the close is built
//! here: one Initial packet under the server's Initial keys (RFC 9001 §5.2),
//! which the dialer derives from the DCID it chose.
//!
//! Amplification (RFC 9000 §8.1): the answer goes to an address nobody has
//! validated, so it must stay within 3× what that address sent. The packet
//! is under 150 bytes and answers a datagram of at least 1200; the bound
//! is checked anyway, per answer.

use boring::symm::{encrypt_aead, Cipher};
use quiche::Header;

use crate::initial::{hp_mask, initial_keys, packet_nonce, Direction, SAMPLE_LEN, TAG_LEN};
use crate::stats::Refusal;

/// Frame type of a transport-level CONNECTION_CLOSE.
const CONNECTION_CLOSE: u8 = 0x1c;
/// The frame that triggers a TLS failure: CRYPTO.
const CRYPTO_FRAME: u64 = 0x06;
/// Packet number length; the number itself is 0 (the first and only packet).
const PN_LEN: usize = 1;
/// Longest reason phrase sent.
const MAX_REASON: usize = 64;
/// RFC 9000 §8.1: bytes sent to an unvalidated address, per byte received.
pub(crate) const AMPLIFICATION: usize = 3;

/// QUIC transport error CONNECTION_REFUSED.
pub(crate) const CONNECTION_REFUSED: u64 = 0x2;

/// Appends `v` (below 2^30) as a QUIC varint of 1, 2 or 4 bytes.
fn put_varint(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=63 => out.push(v as u8),
        64..=16383 => out.extend_from_slice(&(0x4000 | v as u16).to_be_bytes()),
        _ => out.extend_from_slice(&(0x8000_0000 | (v as u32 & 0x3fff_ffff)).to_be_bytes()),
    }
}

/// A server Initial packet carrying only a transport CONNECTION_CLOSE with
/// `code` and `reason`, answering the client Initial whose header is `hdr`.
pub(crate) fn initial_close(hdr: &Header, code: u64, reason: &[u8]) -> Option<Vec<u8>> {
    let reason = &reason[..reason.len().min(MAX_REASON)];
    let keys = initial_keys(&hdr.dcid, Direction::Server)?;
    let mut payload = vec![CONNECTION_CLOSE];
    put_varint(&mut payload, code);
    let frame = if (0x100..0x200).contains(&code) {
        CRYPTO_FRAME
    } else {
        0
    };
    put_varint(&mut payload, frame);
    put_varint(&mut payload, reason.len() as u64);
    payload.extend_from_slice(reason);
    // Header protection samples 16 bytes from 4 bytes past the packet
    // number's start: PADDING frames make room for it.
    while PN_LEN + payload.len() + TAG_LEN < 4 + SAMPLE_LEN {
        payload.push(0);
    }

    // Long header, fixed bit, type Initial, packet number length.
    let mut pkt = vec![0xc0 | (PN_LEN as u8 - 1)];
    pkt.extend_from_slice(&hdr.version.to_be_bytes());
    // To the client's source CID, from the CID it addressed us by.
    pkt.push(hdr.scid.len() as u8);
    pkt.extend_from_slice(&hdr.scid);
    pkt.push(hdr.dcid.len() as u8);
    pkt.extend_from_slice(&hdr.dcid);
    pkt.push(0); // no token
    let length = (PN_LEN + payload.len() + TAG_LEN) as u16;
    pkt.extend_from_slice(&(0x4000 | length).to_be_bytes());
    let pn_off = pkt.len();
    pkt.push(0);

    let nonce = packet_nonce(&keys.iv, 0);
    let mut tag = [0u8; TAG_LEN];
    let sealed = encrypt_aead(
        Cipher::aes_128_gcm(),
        &keys.key,
        Some(&nonce),
        &pkt,
        &payload,
        &mut tag,
    )
    .ok()?;
    pkt.extend_from_slice(&sealed);
    pkt.extend_from_slice(&tag);
    let mask = hp_mask(&keys.hp, &pkt[pn_off + 4..])?;
    pkt[0] ^= mask[0] & 0x0f;
    pkt[pn_off] ^= mask[1];
    Some(pkt)
}

impl Refusal {
    /// The reason phrase sent with a refusal made at the first Initial.
    pub(crate) fn phrase(self) -> &'static [u8] {
        match self {
            Refusal::Alpn => b"no common application protocol (peersock/1)",
            Refusal::Signature => b"handshake failure (peersock signs with Ed25519 only)",
            Refusal::Busy => b"server busy",
            Refusal::Pending => b"too many handshakes in progress",
            _ => b"",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let enc = |v| {
            let mut o = vec![];
            put_varint(&mut o, v);
            o
        };
        assert_eq!(enc(2), [0x02]);
        assert_eq!(enc(0x178), [0x41, 0x78]);
        assert_eq!(enc(16384), [0x80, 0, 0x40, 0]);
    }
}
