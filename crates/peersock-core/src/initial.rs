//! A cheap check that a client's Initial packet decrypts (RFC 9001 §5), made
//! before the endpoint creates any connection for it. Junk with a plausible
//! Initial header (a spoofed flood) then costs a few HMACs and one AES-GCM
//! pass, not a quiche connection and a TLS object.
//!
//! QUIC v1 only: quiche speaks no other version.

use boring::hash::hmac_sha256;
use boring::symm::{decrypt_aead, Cipher, Crypter, Mode};

/// RFC 9001 §5.2.
const INITIAL_SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
pub(crate) const TAG_LEN: usize = 16;
pub(crate) const SAMPLE_LEN: usize = 16;

/// HKDF-Expand-Label (RFC 8446 §7.1) for outputs of at most 32 bytes.
fn expand_label(secret: &[u8], label: &[u8], len: usize) -> Option<[u8; 32]> {
    let mut info = Vec::with_capacity(24);
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(0); // empty context
    info.push(1); // HKDF-Expand's first block counter
    hmac_sha256(secret, &info).ok()
}

fn varint(b: &[u8], off: &mut usize) -> Option<u64> {
    let first = *b.get(*off)?;
    let len = 1usize << (first >> 6);
    let bytes = b.get(*off..*off + len)?;
    let mut v = u64::from(first & 0x3f);
    for &x in &bytes[1..] {
        v = (v << 8) | u64::from(x);
    }
    *off += len;
    Some(v)
}

/// Which side's Initial secret (RFC 9001 §5.2 labels).
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    Client,
    Server,
}

/// One direction's Initial packet protection keys.
pub(crate) struct InitialKeys {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

/// Derives the Initial keys of `dir` from the client's first DCID.
pub(crate) fn initial_keys(dcid: &[u8], dir: Direction) -> Option<InitialKeys> {
    let label: &[u8] = match dir {
        Direction::Client => b"client in",
        Direction::Server => b"server in",
    };
    let prk = hmac_sha256(&INITIAL_SALT_V1, dcid).ok()?;
    let secret = expand_label(&prk, label, 32)?;
    let take = |label: &[u8], n: usize| expand_label(&secret, label, n);
    let (k, i, h) = (
        take(b"quic key", 16)?,
        take(b"quic iv", 12)?,
        take(b"quic hp", 16)?,
    );
    let mut keys = InitialKeys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    keys.key.copy_from_slice(&k[..16]);
    keys.iv.copy_from_slice(&i[..12]);
    keys.hp.copy_from_slice(&h[..16]);
    Some(keys)
}

/// Header protection mask (RFC 9001 §5.4.3): AES-128-ECB of the sample
/// taken 4 bytes past the packet number's start.
pub(crate) fn hp_mask(hp: &[u8; 16], sample: &[u8]) -> Option<[u8; 5]> {
    let mut c = Crypter::new(Cipher::aes_128_ecb(), Mode::Encrypt, hp, None).ok()?;
    c.pad(false);
    let mut out = [0u8; 32];
    if c.update(sample.get(..SAMPLE_LEN)?, &mut out).ok()? < 5 {
        return None;
    }
    let mut mask = [0u8; 5];
    mask.copy_from_slice(&out[..5]);
    Some(mask)
}

/// The AEAD nonce of packet number `pn` (RFC 9001 §5.3).
pub(crate) fn packet_nonce(iv: &[u8; 12], pn: u64) -> [u8; 12] {
    let mut nonce = *iv;
    for (i, b) in pn.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    nonce
}

/// Whether `pkt` starts with a QUIC v1 client Initial that decrypts with
/// the keys derived from its own DCID. Never panics on any input.
pub fn initial_decrypts(pkt: &[u8]) -> bool {
    check(pkt).unwrap_or(false)
}

fn check(pkt: &[u8]) -> Option<bool> {
    // Long header, fixed bit, type Initial, version 1.
    if pkt.len() < 7 || pkt[0] & 0xf0 != 0xc0 || pkt[1..5] != [0, 0, 0, 1] {
        return Some(false);
    }
    let mut off = 5;
    let dcid_len = *pkt.get(off)? as usize;
    off += 1;
    let dcid = pkt.get(off..off + dcid_len)?;
    off += dcid_len;
    let scid_len = *pkt.get(off)? as usize;
    off += 1 + scid_len;
    let token_len = varint(pkt, &mut off)? as usize;
    off = off.checked_add(token_len)?;
    let length = varint(pkt, &mut off)? as usize;
    let pn_off = off;
    let end = pn_off.checked_add(length)?;
    if dcid_len > 20 || scid_len > 20 || end > pkt.len() || length < 4 + SAMPLE_LEN {
        return Some(false);
    }

    let InitialKeys { key, iv, hp } = initial_keys(dcid, Direction::Client)?;
    let mask = hp_mask(&hp, &pkt[pn_off + 4..pn_off + 4 + SAMPLE_LEN])?;
    let first = pkt[0] ^ (mask[0] & 0x0f);
    let pn_len = usize::from(first & 0x03) + 1;
    if length < pn_len + TAG_LEN {
        return Some(false);
    }
    let mut header = pkt[..pn_off + pn_len].to_vec();
    header[0] = first;
    let mut pn = 0u64;
    for i in 0..pn_len {
        header[pn_off + i] ^= mask[1 + i];
        pn = (pn << 8) | u64::from(header[pn_off + i]);
    }
    // Nothing has been acknowledged to a client without state here, so the
    // truncated packet number is the whole number.
    let nonce = packet_nonce(&iv, pn);
    let body = &pkt[pn_off + pn_len..end - TAG_LEN];
    let tag = &pkt[end - TAG_LEN..end];
    Some(
        decrypt_aead(
            Cipher::aes_128_gcm(),
            &key,
            Some(&nonce),
            &header,
            body,
            tag,
        )
        .is_ok(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9001_client_initial_keys() {
        // RFC 9001 Appendix A.1, DCID 0x8394c8f03e515708.
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let prk = hmac_sha256(&INITIAL_SALT_V1, &dcid).unwrap();
        let secret = expand_label(&prk, b"client in", 32).unwrap();
        let key = expand_label(&secret, b"quic key", 16).unwrap();
        let iv = expand_label(&secret, b"quic iv", 12).unwrap();
        let hp = expand_label(&secret, b"quic hp", 16).unwrap();
        assert_eq!(hex(&key[..16]), "1f369613dd76d5467730efcbe3b1a22d");
        assert_eq!(hex(&iv[..12]), "fa044b2f42a3fd3b46fb255c");
        assert_eq!(hex(&hp[..16]), "9f50449e04a0e810283a1e9933adedd2");
    }

    #[test]
    fn rfc9001_server_initial_keys() {
        // RFC 9001 Appendix A.1: the server's side of the same DCID.
        let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08];
        let k = initial_keys(&dcid, Direction::Server).unwrap();
        assert_eq!(hex(&k.key), "cf3a5331653c364c88f0f379b6067e37");
        assert_eq!(hex(&k.iv), "0ac1493ca1905853b0bba03e");
        assert_eq!(hex(&k.hp), "c206b8d9b9f0f37644430b490eeaa314");
    }

    #[test]
    fn junk_and_truncations_are_refused_without_panicking() {
        let mut p = vec![0u8; 1200];
        p[0] = 0xc0;
        p[1..5].copy_from_slice(&1u32.to_be_bytes());
        p[5] = 16;
        for len in 0..p.len() {
            assert!(!initial_decrypts(&p[..len]));
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
