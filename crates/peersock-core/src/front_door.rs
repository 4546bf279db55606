//! The stateless front door: what the endpoint does with a datagram that
//! routes to no connection. It answers without keeping state where it can
//! (version negotiation, Retry, stateless reset, refusal), and creates a
//! connection only for a client Initial that decrypts, carries a valid
//! token in retry mode, and fits under the limits.
//!
//! The order of the checks is the cost order: header, size, one AES-GCM
//! pass (`initial.rs`), token (`retry.rs`), limits, and only then quiche
//! and TLS.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use quiche::{ConnectionId, Header};

use crate::conn::Side;
use crate::endpoint::Endpoint;
use crate::refuse::{initial_close, AMPLIFICATION, CONNECTION_REFUSED};
use crate::stats::Refusal;

/// Length of the source CID of our Retry packets (see `send_retry`).
const RETRY_CID_LEN: usize = 8;
/// RFC 9000 §14.1: a client Initial comes in a datagram of 1200+ bytes.
const MIN_INITIAL_DATAGRAM: usize = 1200;

impl Endpoint {
    /// Handles a datagram whose destination CID routes nowhere.
    pub(crate) fn front_door(
        &mut self,
        buf: &mut [u8],
        hdr: &Header,
        from: SocketAddr,
        now: Instant,
    ) {
        match hdr.ty {
            quiche::Type::Initial => self.accept_initial(buf, hdr, from, now),
            // A packet of a connection we lost (a restart): tell the peer.
            quiche::Type::Short => {
                self.stats.dropped += 1;
                if let Some(pkt) = self.reset_key.stateless_reset(&hdr.dcid, buf.len()) {
                    self.stats.resets_sent += 1;
                    self.raw_out.push_back((pkt, from));
                }
            }
            _ => self.stats.dropped += 1,
        }
    }

    fn accept_initial(&mut self, buf: &mut [u8], hdr: &Header, from: SocketAddr, now: Instant) {
        if !quiche::version_is_supported(hdr.version) {
            let mut out = vec![0u8; 256];
            if let Ok(n) = quiche::negotiate_version(&hdr.scid, &hdr.dcid, &mut out) {
                out.truncate(n);
                self.raw_out.push_back((out, from));
            }
            return;
        }
        if buf.len() < MIN_INITIAL_DATAGRAM || hdr.dcid.len() < 8 {
            self.stats.dropped += 1;
            return;
        }
        // Junk with a plausible header stops here, cheaply: no Retry, no
        // connection, no TLS object.
        if !crate::initial::initial_decrypts(buf) {
            self.stats.dropped += 1;
            return;
        }
        // Retry mode: no state before the client proved its address.
        let mut odcid = None;
        if self.config.retry {
            let token = hdr.token.as_deref().unwrap_or(&[]);
            if token.is_empty() {
                self.send_retry(hdr, from, now);
                return;
            }
            match self.retry_key.validate(token, from, self.wall_time(now)) {
                Some(cid) => odcid = Some(cid),
                None => {
                    self.stats.invalid_tokens += 1;
                    self.stats.dropped += 1;
                    return;
                }
            }
        }
        // Over a limit: refused at once, without state. The pending cap is
        // the flood defence: its refusal costs what the `initial_decrypts`
        // check already cost, and is smaller than the Initial it answers.
        if self.pending_handshakes >= self.config.max_pending_handshakes {
            self.refuse_initial(hdr, buf.len(), from, Refusal::Pending, CONNECTION_REFUSED);
            return;
        }
        if self.conns.len() >= self.config.max_connections {
            self.refuse_initial(hdr, buf.len(), from, Refusal::Busy, CONNECTION_REFUSED);
            return;
        }
        self.create_accepted(buf, hdr, from, odcid, now);
    }

    /// Creates the connection of a client Initial that passed every check,
    /// unless quiche refuses its client hello.
    fn create_accepted(
        &mut self,
        buf: &mut [u8],
        hdr: &Header,
        from: SocketAddr,
        odcid: Option<ConnectionId<'static>>,
        now: Instant,
    ) {
        let Ok(scid) = self.ids.fresh() else { return };
        let loopback = self.config.udp_payload_toward(from.ip()) > self.config.max_udp_payload;
        let config = match self.server_config_loopback.as_mut() {
            Some(c) if loopback => c,
            _ => &mut self.server_config,
        };
        config.set_stateless_reset_token(Some(self.reset_key.token(&scid)));
        let accepted = match &odcid {
            // The Retry's source CID is the DCID the client now uses.
            Some(o) => quiche::accept_with_retry(
                &scid,
                quiche::RetryConnectionIds {
                    original_destination_cid: o,
                    retry_source_cid: &hdr.dcid,
                },
                self.local,
                from,
                config,
            ),
            None => quiche::accept(&scid, None, self.local, from, config),
        };
        let mut q = match accepted {
            Ok(q) => q,
            Err(_) => {
                self.stats.dropped += 1;
                return;
            }
        };
        let received = buf.len();
        let ok = q
            .recv(
                buf,
                quiche::RecvInfo {
                    from,
                    to: self.local,
                },
            )
            .is_ok();
        // A client hello we cannot serve (no common ALPN, no Ed25519
        // signature algorithm...): the close goes out, the connection not in.
        if self.refuse_failed_initial(&q, hdr, received, from) {
            return;
        }
        if !ok || q.stats().recv == 0 || q.is_closed() {
            self.stats.dropped += 1;
            return;
        }
        let h = self.insert(
            q,
            Side::Server,
            Arc::new(Mutex::new(None)),
            from,
            self.config.handshake_timeout,
            now,
        );
        // The client addresses its next Initials to the DCID it chose.
        if let Some(c) = self.conns.get_mut(&h) {
            self.ids.route(hdr.dcid.clone().into_owned(), c);
        }
        self.stats.accepted += 1;
    }

    /// Answers a token-less Initial with a Retry carrying a fresh token.
    fn send_retry(&mut self, hdr: &Header, from: SocketAddr, now: Instant) {
        // The Retry's source CID comes back as the client's DCID, and quiche
        // echoes it in a transport parameter. quiche encodes its transport
        // parameters into 128 bytes, and with three 16-byte CIDs, a reset
        // token and our windows they do not fit: 8 random bytes do. The CID
        // only routes the next Initial; the connection then mints its own.
        let mut cid = [0u8; RETRY_CID_LEN];
        if boring::rand::rand_bytes(&mut cid).is_err() {
            return;
        }
        let new_scid = ConnectionId::from_ref(&cid);
        let token = self.retry_key.mint(from, &hdr.dcid, self.wall_time(now));
        let mut out = vec![0u8; 256];
        if let Ok(n) = quiche::retry(
            &hdr.scid,
            &hdr.dcid,
            &new_scid,
            &token,
            hdr.version,
            &mut out,
        ) {
            out.truncate(n);
            self.stats.retries_sent += 1;
            self.raw_out.push_back((out, from));
        }
    }

    /// The wall-clock time of `now` for retry tokens: the wall clock read
    /// at creation moved by the monotonic time since, so a token's age is
    /// judged on the driver's clock (simulated in tests) and a wall-clock
    /// step while the endpoint runs changes nothing.
    fn wall_time(&self, now: Instant) -> SystemTime {
        let (mono, wall) = self.created;
        match now.checked_duration_since(mono) {
            Some(d) => wall + d,
            None => wall - mono.duration_since(now),
        }
    }

    /// Answers the Initial `hdr` (a datagram of `received` bytes from
    /// `from`) with a CONNECTION_CLOSE of `code`, counting it as `why`. No
    /// state is kept; a retransmitted Initial is answered (and counted) again.
    fn refuse_initial(
        &mut self,
        hdr: &Header,
        received: usize,
        from: SocketAddr,
        why: Refusal,
        code: u64,
    ) {
        self.stats.count_refusal(why);
        if let Some(pkt) = initial_close(hdr, code, why.phrase()) {
            if pkt.len() <= AMPLIFICATION * received {
                self.raw_out.push_back((pkt, from));
            }
        }
    }

    /// The first Initial failed inside quiche with a close quiche cannot
    /// send (see `refuse.rs`): sends that close, with quiche's code.
    fn refuse_failed_initial(
        &mut self,
        q: &quiche::Connection,
        hdr: &Header,
        received: usize,
        from: SocketAddr,
    ) -> bool {
        let Some(e) = q.local_error() else {
            return false;
        };
        let why = Refusal::from_error(e).unwrap_or(Refusal::Other);
        let code = if e.is_app { 0x0c } else { e.error_code };
        self.refuse_initial(hdr, received, from, why, code);
        true
    }
}
