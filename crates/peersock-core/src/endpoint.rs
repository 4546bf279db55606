//! The endpoint: every connection of one UDP socket, dialed and accepted
//! alike, behind one sans-IO interface.
//!
//! Call order, on every input (a datagram or a timer):
//! 1. [`Endpoint::recv`] each datagram (or [`Endpoint::on_timeout`]);
//! 2. [`Endpoint::poll_event`] until `None`, acting on each event;
//! 3. [`Endpoint::poll_transmit`] until it returns `None`, sending each;
//! 4. repeat 2–3 while step 2 produced events, then re-arm one timer for
//!    [`Endpoint::timeout`].
//!
//! Draining events before transmitting lets replies the application writes
//! in step 2 share a packet with the ACK of the request. Either order is
//! correct; nothing is lost if the driver flushes first.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use quiche::ConnectionId;

use crate::config::{EndpointConfig, CID_LEN};
use crate::conn::{Conn, Side, State, CONTROL_ACCEPTED, CONTROL_STREAM};
use crate::error::{Error, Result};
use crate::event::{CloseKind, CloseReason, ConnHandle, Event};
use crate::identity::{FailureSlot, Identity, PublicKey};
use crate::refuse::CONNECTION_REFUSED;
use crate::reset::ResetKey;
use crate::retry::RetryKey;
use crate::stats::{EndpointStats, Refusal};

/// Length of the source CID of our Retry packets (see `send_retry`).
const RETRY_CID_LEN: usize = 8;
/// A driver-routed peer seen at a new address is reported at most this
/// often per address (see `DialOptions::follow_peer`).
const SEEN_REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// All connections of one UDP socket.
pub struct Endpoint {
    pub(crate) identity: Identity,
    pub(crate) config: EndpointConfig,
    server_config: quiche::Config,
    /// Where the accepting side's verify callback (one for all accepted
    /// connections) leaves its verdict; moved to the connection whose
    /// input triggered it, right after that input.
    server_slot: FailureSlot,
    pub(crate) local: SocketAddr,
    reset_key: ResetKey,
    retry_key: RetryKey,
    pub(crate) conns: HashMap<ConnHandle, Conn>,
    routes: HashMap<ConnectionId<'static>, ConnHandle>,
    next_handle: ConnHandle,
    send_queue: VecDeque<ConnHandle>,
    scan_queue: Vec<ConnHandle>,
    events: VecDeque<Event>,
    pub(crate) raw_out: VecDeque<(Vec<u8>, SocketAddr)>,
    pending_handshakes: usize,
    /// The stateless reset token each established connection's peer gave
    /// us, to recognise its resets (they carry no routable CID).
    peer_resets: HashMap<u128, ConnHandle>,
    pub(crate) stats: EndpointStats,
}

impl Endpoint {
    /// Creates an endpoint for `identity` bound (by the driver) at `local`.
    pub fn new(identity: Identity, config: EndpointConfig, local: SocketAddr) -> Result<Endpoint> {
        config.validate()?;
        // The server side accepts any single Ed25519 certificate; the
        // application's accept hook decides afterwards.
        let server_slot: FailureSlot = Arc::new(Mutex::new(None));
        let server_config = config.quiche_config(&identity, None, server_slot.clone())?;
        let seed = identity.seed()?;
        let reset_key = ResetKey::from_secret(&seed)?;
        let retry_key = RetryKey::from_secret(&seed, config.retry_token_lifetime)?;
        Ok(Endpoint {
            identity,
            config,
            server_config,
            server_slot,
            local,
            reset_key,
            retry_key,
            conns: HashMap::new(),
            routes: HashMap::new(),
            next_handle: 1,
            send_queue: VecDeque::new(),
            scan_queue: Vec::new(),
            events: VecDeque::new(),
            raw_out: VecDeque::new(),
            pending_handshakes: 0,
            peer_resets: HashMap::new(),
            stats: EndpointStats::default(),
        })
    }

    /// This endpoint's name.
    pub fn public_key(&self) -> &PublicKey {
        self.identity.public_key()
    }

    /// The address the driver's socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Updates the local address (after the driver binds or rebinds).
    pub fn set_local_addr(&mut self, local: SocketAddr) {
        self.local = local;
    }

    /// The settings in force.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Live connections (all states).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Counters since creation.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Dials `remote_key` at `addr`. The connection is usable after
    /// [`Event::Connected`]; failure arrives as [`Event::Closed`].
    pub fn connect(
        &mut self,
        remote_key: PublicKey,
        addr: SocketAddr,
        handshake_timeout: Option<Duration>,
    ) -> Result<ConnHandle> {
        let opts = crate::dial::DialOptions {
            handshake_timeout,
            ..Default::default()
        };
        self.connect_with(remote_key, addr, &opts)
    }

    pub(crate) fn insert(
        &mut self,
        q: quiche::Connection,
        side: Side,
        slot: crate::identity::FailureSlot,
        addr: SocketAddr,
        handshake_timeout: Duration,
        scid: ConnectionId<'static>,
    ) -> ConnHandle {
        let h = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1).max(1);
        let mut c = Conn::new(
            q,
            h,
            side,
            slot,
            addr,
            handshake_timeout,
            self.config.keep_alive,
        );
        self.routes.insert(scid.clone(), h);
        c.cids.push(scid);
        if c.pending {
            self.pending_handshakes += 1;
        }
        self.conns.insert(h, c);
        self.touch(h);
        h
    }

    pub(crate) fn fresh_cid(&self) -> Result<ConnectionId<'static>> {
        loop {
            let mut cid = [0u8; CID_LEN];
            boring::rand::rand_bytes(&mut cid).map_err(|e| Error::Internal(e.to_string()))?;
            let cid = ConnectionId::from_vec(cid.to_vec());
            if !self.routes.contains_key(&cid) {
                return Ok(cid);
            }
        }
    }

    /// Marks a connection for a send pass and an event scan.
    pub(crate) fn touch(&mut self, h: ConnHandle) {
        if let Some(c) = self.conns.get_mut(&h) {
            if !c.dirty {
                c.dirty = true;
                self.send_queue.push_back(h);
            }
            if !c.scan {
                c.scan = true;
                self.scan_queue.push(h);
            }
        }
    }

    pub(crate) fn conn_mut(&mut self, h: ConnHandle) -> Result<&mut Conn> {
        self.conns.get_mut(&h).ok_or(Error::UnknownConnection)
    }

    pub(crate) fn conn(&self, h: ConnHandle) -> Result<&Conn> {
        self.conns.get(&h).ok_or(Error::UnknownConnection)
    }

    /// Feeds one received datagram. Garbage, unknown and hostile input is
    /// dropped or closes only the connection it belongs to; it never errors.
    pub fn recv(&mut self, buf: &mut [u8], from: SocketAddr) {
        self.recv_on(buf, from, self.local);
    }

    /// [`Endpoint::recv`] for a datagram that arrived on another local
    /// address than the main one (a connection that migrated to it).
    pub fn recv_on(&mut self, buf: &mut [u8], from: SocketAddr, to: SocketAddr) {
        self.stats.datagrams_in += 1;
        let hdr = match quiche::Header::from_slice(buf, CID_LEN) {
            Ok(h) => h,
            Err(_) => {
                self.stats.dropped += 1;
                return;
            }
        };
        if let Some(&h) = self.routes.get(&hdr.dcid) {
            self.recv_routed(h, buf, from, to);
            return;
        }
        // A stateless reset looks like a short-header packet with a random
        // CID; its last 16 bytes name the connection.
        if hdr.ty == quiche::Type::Short && buf.len() >= 21 && !self.peer_resets.is_empty() {
            let tail: [u8; 16] = buf[buf.len() - 16..].try_into().expect("16 bytes");
            if let Some(&h) = self.peer_resets.get(&u128::from_be_bytes(tail)) {
                // quiche checks the token again (in constant time) and
                // closes the connection.
                self.recv_routed(h, buf, from, to);
                return;
            }
        }
        match hdr.ty {
            quiche::Type::Initial => self.accept_initial(buf, &hdr, from),
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

    fn recv_routed(&mut self, h: ConnHandle, buf: &mut [u8], from: SocketAddr, local: SocketAddr) {
        if let Some(c) = self.conns.get_mut(&h) {
            let was_closed = c.q.is_closed();
            let was_established = c.q.is_established();
            // A driver-routed peer (DialOptions::follow_peer) seen at another
            // address: quiche takes the packet as from the dialed address.
            let elsewhere = c.follow_peer && from != c.remote_addr;
            let recv_before = if elsewhere { c.q.stats().recv } else { 0 };
            let peer = if elsewhere { c.remote_addr } else { from };
            // Errors here are the peer's or the packet's; quiche closes
            // the connection itself when it must.
            let _ = c.q.recv(
                buf,
                quiche::RecvInfo {
                    from: peer,
                    to: local,
                },
            );
            // Reported only when quiche counted it: decrypted, not a replay.
            if elsewhere && c.state == State::Open && c.q.stats().recv > recv_before {
                let now = Instant::now();
                let due = match c.seen_at {
                    Some((a, t)) => a != from || now.duration_since(t) >= SEEN_REPORT_INTERVAL,
                    None => true,
                };
                if due {
                    c.seen_at = Some((from, now));
                    self.events.push_back(Event::PathChanged {
                        conn: h,
                        remote_addr: from,
                    });
                }
            }
            // A 0-RTT dialer must send its Finished before it takes the
            // next datagram: quiche 0.29 otherwise never sends it when 1-RTT
            // packets (the server's 0.5-RTT replies) are read first, and the
            // server's handshake never completes.
            if c.early && !was_established && c.q.is_established() {
                let mut out = vec![0u8; self.config.max_udp_payload];
                while let Ok((n, info)) = c.q.send(&mut out) {
                    self.raw_out.push_back((out[..n].to_vec(), info.to));
                }
            }
            if let Some(r) = c.take_refusal() {
                self.stats.count_refusal(r);
            }
            // Input is handled one datagram at a time, so a verdict of
            // the shared server callback belongs to this connection.
            if let Some(f) = self.server_slot.lock().ok().and_then(|mut s| s.take()) {
                if let Ok(mut own) = c.slot.lock() {
                    *own = Some(f);
                }
            }
            // quiche closes without an error only on a stateless reset:
            // the peer lost the connection (e.g. it restarted).
            if !was_closed
                && c.q.is_closed()
                && c.q.local_error().is_none()
                && c.q.peer_error().is_none()
                && !c.q.is_timed_out()
                && c.close_override.is_none()
            {
                c.close_override = Some(CloseReason::new(
                    CloseKind::StatelessReset,
                    0,
                    "stateless reset: the peer no longer knows this connection",
                ));
            }
        }
        self.touch(h);
    }

    fn accept_initial(&mut self, buf: &mut [u8], hdr: &quiche::Header, from: SocketAddr) {
        if !quiche::version_is_supported(hdr.version) {
            let mut out = vec![0u8; 256];
            if let Ok(n) = quiche::negotiate_version(&hdr.scid, &hdr.dcid, &mut out) {
                out.truncate(n);
                self.raw_out.push_back((out, from));
            }
            return;
        }
        // RFC 9000 §14.1: a client Initial comes in a datagram of 1200+ bytes.
        if buf.len() < 1200 || hdr.dcid.len() < 8 {
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
                self.send_retry(hdr, from);
                return;
            }
            match self.retry_key.validate(token, from, SystemTime::now()) {
                Some(cid) => odcid = Some(cid),
                None => {
                    self.stats.invalid_tokens += 1;
                    self.stats.dropped += 1;
                    return;
                }
            }
        }
        // Over a limit: refused at once, without state (see `refuse`). The
        // pending cap is the flood defence: its refusal costs what the
        // `initial_decrypts` check already cost, and is smaller than the
        // Initial it answers.
        if self.pending_handshakes >= self.config.max_pending_handshakes {
            let n = buf.len();
            self.refuse_initial(hdr, n, from, Refusal::Pending, CONNECTION_REFUSED);
            return;
        }
        if self.conns.len() >= self.config.max_connections {
            let n = buf.len();
            self.refuse_initial(hdr, n, from, Refusal::Busy, CONNECTION_REFUSED);
            return;
        }
        let Ok(scid) = self.fresh_cid() else { return };
        self.server_config
            .set_stateless_reset_token(Some(self.reset_key.token(&scid)));
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
                &mut self.server_config,
            ),
            None => quiche::accept(&scid, None, self.local, from, &mut self.server_config),
        };
        let mut q = match accepted {
            Ok(q) => q,
            Err(_) => {
                self.stats.dropped += 1;
                return;
            }
        };
        // An Initial that does not decrypt (junk with a plausible header)
        // creates no state: only a real client hello gets a connection.
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
            scid,
        );
        let odcid = hdr.dcid.clone().into_owned();
        self.routes.insert(odcid.clone(), h);
        if let Some(c) = self.conns.get_mut(&h) {
            c.cids.push(odcid);
        }
        self.stats.accepted += 1;
    }

    /// Answers a token-less Initial with a Retry carrying a fresh token.
    fn send_retry(&mut self, hdr: &quiche::Header, from: SocketAddr) {
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
        let token = self.retry_key.mint(from, &hdr.dcid, SystemTime::now());
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

    /// Accepting side: lets a peer in after [`Event::Incoming`].
    pub fn accept(&mut self, h: ConnHandle) -> Result<()> {
        let c = self.conn_mut(h)?;
        if c.state != State::AwaitingAccept {
            return Err(Error::Closed);
        }
        c.q.stream_send(CONTROL_STREAM, &[CONTROL_ACCEPTED], true)
            .map_err(|e| Error::Internal(format!("control stream: {e}")))?;
        c.state = State::Open;
        c.was_open = true;
        self.touch(h);
        Ok(())
    }

    /// Accepting side: turns a peer away with a reason it will see.
    pub fn refuse(&mut self, h: ConnHandle, reason: &str) -> Result<()> {
        let c = self.conn_mut(h)?;
        let awaiting = c.state == State::AwaitingAccept;
        let _ = c.q.close(false, CONNECTION_REFUSED, reason.as_bytes());
        c.state = State::Closing;
        if awaiting {
            self.stats.count_refusal(Refusal::Application);
        }
        self.touch(h);
        Ok(())
    }

    /// Closes a connection with an application code and reason; the
    /// [`Event::Closed`] follows once the close is sent and drained.
    pub fn close(&mut self, h: ConnHandle, code: u64, reason: &[u8]) -> Result<()> {
        let c = self.conn_mut(h)?;
        match c.q.close(true, code, reason) {
            Ok(()) | Err(quiche::Error::Done) => {}
            Err(e) => return Err(Error::Internal(e.to_string())),
        }
        c.state = State::Closing;
        self.touch(h);
        Ok(())
    }

    /// Writes the next outgoing datagram into `out` (at least
    /// `max_udp_payload` bytes) and says where to send it; `None` when
    /// nothing is left to send.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<(usize, SocketAddr)> {
        self.poll_transmit_from(out).map(|(n, to, _)| (n, to))
    }

    /// [`Endpoint::poll_transmit`] that also says which local address to
    /// send from (the main one unless a connection migrated).
    pub fn poll_transmit_from(
        &mut self,
        out: &mut [u8],
    ) -> Option<(usize, SocketAddr, SocketAddr)> {
        if let Some((pkt, to)) = self.raw_out.pop_front() {
            let n = pkt.len().min(out.len());
            out[..n].copy_from_slice(&pkt[..n]);
            return Some((n, to, self.local));
        }
        while let Some(&h) = self.send_queue.front() {
            let Some(c) = self.conns.get_mut(&h) else {
                self.send_queue.pop_front();
                continue;
            };
            match c.q.send(out) {
                Ok((n, info)) => {
                    c.last_send = Instant::now();
                    // Round robin: one datagram per connection per turn.
                    self.send_queue.rotate_left(1);
                    return Some((n, info.to, info.from));
                }
                Err(_) => {
                    c.dirty = false;
                    self.send_queue.pop_front();
                    if (c.q.is_closed() || c.q.is_draining()) && !c.reported_closed && !c.scan {
                        c.scan = true;
                        self.scan_queue.push(h);
                    }
                }
            }
        }
        None
    }

    /// Time until the earliest deadline over all connections, `None` if
    /// there is none. Firing early is harmless.
    pub fn timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        self.conns
            .values()
            .filter_map(|c| c.deadline())
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    /// Runs the timers that are due: quiche's (loss, idle), handshake
    /// deadlines and keep-alives.
    pub fn on_timeout(&mut self) {
        let now = Instant::now();
        let due: Vec<ConnHandle> = self
            .conns
            .values()
            .filter(|c| c.deadline().is_some_and(|d| d <= now))
            .map(|c| c.handle)
            .collect();
        for h in due {
            let Some(c) = self.conns.get_mut(&h) else {
                continue;
            };
            if c.q.timeout_instant().is_some_and(|t| t <= now) {
                c.q.on_timeout();
            }
            if c.handshake_overdue(now) {
                c.close_override = Some(
                    c.slot
                        .lock()
                        .ok()
                        .and_then(|s| s.is_some().then(|| c.close_reason()))
                        .unwrap_or_else(|| {
                            CloseReason::new(CloseKind::HandshakeTimeout, 0, "handshake timed out")
                        }),
                );
                let _ = c.q.close(false, 0x0, b"handshake timeout");
                let reason = c.close_override.clone().unwrap();
                self.remove(h);
                self.events.push_back(Event::Closed { conn: h, reason });
                continue;
            }
            if c.state == State::Open {
                if let Some(k) = c.keep_alive {
                    if c.last_send + k <= now {
                        let _ = c.q.send_ack_eliciting();
                    }
                }
            }
            self.touch(h);
        }
    }

    /// Whether [`Endpoint::poll_event`] has something. Runs the pending
    /// connection scans, so it is exact.
    pub fn has_events(&mut self) -> bool {
        self.run_scans();
        !self.events.is_empty()
    }

    /// Next event, or `None` when there is nothing to report.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.run_scans();
        self.events.pop_front()
    }

    /// Turns the connections marked for a scan into events (once the
    /// queue of events already found is empty).
    fn run_scans(&mut self) {
        if !self.events.is_empty() || self.scan_queue.is_empty() {
            return;
        }
        let queue = std::mem::take(&mut self.scan_queue);
        for h in queue {
            let gone = match self.conns.get_mut(&h) {
                Some(c) => {
                    c.scan = false;
                    let was_pending = c.pending;
                    let gone = c.scan(&mut self.events);
                    if let Some(r) = c.take_refusal() {
                        self.stats.count_refusal(r);
                    }
                    if was_pending && c.state != State::Handshaking {
                        c.pending = false;
                        self.pending_handshakes -= 1;
                    }
                    if !gone {
                        self.issue_cids(h);
                    }
                    gone
                }
                None => false,
            };
            if gone {
                self.remove(h);
            }
        }
    }

    /// Gives the peer spare connection IDs so it can migrate.
    fn issue_cids(&mut self, h: ConnHandle) {
        if let Some(c) = self.conns.get_mut(&h) {
            if !c.reset_known && c.q.is_established() {
                c.reset_known = true;
                if let Some(t) =
                    c.q.peer_transport_params()
                        .and_then(|p| p.stateless_reset_token)
                {
                    self.peer_resets.insert(t, h);
                }
            }
        }
        loop {
            let Some(c) = self.conns.get(&h) else { return };
            if !c.q.is_established() || c.q.scids_left() == 0 || c.state == State::Closing {
                break;
            }
            let Ok(cid) = self.fresh_cid() else { return };
            let token = self.reset_key.token(&cid);
            let c = self.conns.get_mut(&h).unwrap();
            if c.q.new_scid(&cid, token, false).is_err() {
                break;
            }
            c.cids.push(cid.clone());
            self.routes.insert(cid, h);
        }
        let c = self.conns.get_mut(&h).unwrap();
        let mut retired = Vec::new();
        while let Some(cid) = c.q.retired_scid_next() {
            retired.push(cid);
        }
        c.cids.retain(|x| !retired.contains(x));
        for cid in retired {
            self.routes.remove(&cid);
        }
    }

    fn remove(&mut self, h: ConnHandle) {
        if let Some(c) = self.conns.remove(&h) {
            if let Some(t) =
                c.q.peer_transport_params()
                    .and_then(|p| p.stateless_reset_token)
            {
                if self.peer_resets.get(&t) == Some(&h) {
                    self.peer_resets.remove(&t);
                }
            }
            if c.pending {
                self.pending_handshakes -= 1;
            }
            for cid in &c.cids {
                if self.routes.get(cid) == Some(&h) {
                    self.routes.remove(cid);
                }
            }
        }
    }
}
