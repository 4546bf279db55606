//! One connection's state beside its quiche connection, and the scan that
//! turns quiche's state changes into [`Event`]s.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quiche::ConnectionId;

use crate::event::{CloseKind, CloseReason, ConnHandle, Event};
use crate::identity::{key_from_certificate_der, FailureSlot, IdentityFailure, PublicKey};
use crate::refuse::CONNECTION_REFUSED;
use crate::stats::Refusal;

/// The server's first unidirectional stream carries peersock's control
/// messages; today one: "accepted" (a single byte then FIN).
pub(crate) const CONTROL_STREAM: u64 = 3;
pub(crate) const CONTROL_ACCEPTED: u8 = 1;

/// QUIC transport error PROTOCOL_VIOLATION: a bad control message.
const PROTOCOL_VIOLATION: u64 = 0xa;

/// A blocked writer is woken once this much (or all it wants) fits.
const WAKE_MIN: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// TLS handshake running.
    Handshaking,
    /// Server: `Incoming` emitted, waiting for accept/refuse.
    AwaitingAccept,
    /// Client: handshake done, waiting for the server's "accepted".
    AwaitingConfirm,
    /// Application traffic flows.
    Open,
    /// Closed by us or the peer; draining.
    Closing,
}

pub(crate) struct Conn {
    pub q: quiche::Connection,
    pub handle: ConnHandle,
    pub side: Side,
    pub state: State,
    pub slot: FailureSlot,
    pub remote_key: Option<PublicKey>,
    pub remote_addr: SocketAddr,
    pub handshake_deadline: Instant,
    pub keep_alive: Option<Duration>,
    pub last_send: Instant,
    /// Streams whose writer waits for capacity, with how much it wants.
    pub want_writable: HashMap<u64, usize>,
    /// Next locally initiated stream IDs.
    pub next_bidi: u64,
    pub next_uni: u64,
    /// Connection IDs routed to this connection.
    pub cids: Vec<ConnectionId<'static>>,
    /// Set when the end is decided outside quiche (handshake timeout).
    pub close_override: Option<CloseReason>,
    /// Queued in the endpoint's send / scan queues.
    pub dirty: bool,
    pub scan: bool,
    /// Counted against the endpoint's pending-handshake limit.
    pub pending: bool,
    /// Ever reached Open (distinguishes refusal from a later close).
    pub was_open: bool,
    /// `Event::Closed` has been queued.
    pub reported_closed: bool,
    /// The peer's stateless reset token is registered with the endpoint.
    pub reset_known: bool,
    /// Client: the key dialed. Checked again once the handshake is done,
    /// because a resumed session skips the verify callback.
    pub pin: Option<PublicKey>,
    /// Client: dialed with a session and early data, so streams may be
    /// used before the handshake completes (0-RTT).
    pub early: bool,
    /// Server: the handshake's failure was counted as a refusal.
    pub refusal_counted: bool,
    /// Client: the part of the server's "accepted" received so far.
    pub control: Vec<u8>,
    /// Client: the last session reported in [`Event::Session`].
    pub last_session: Option<Vec<u8>>,
    /// Client: our own key, which prefixes the sessions we report (a
    /// session resumes the identity that made it, so it is only used by
    /// an endpoint with the same key).
    pub local_key: PublicKey,
    /// Client: packets from any address count as from `remote_addr`;
    /// authentic ones from elsewhere are reported (see `DialOptions`).
    pub follow_peer: bool,
    /// The last address reported that way, and when.
    pub seen_at: Option<(SocketAddr, Instant)>,
}

impl Conn {
    pub fn new(
        q: quiche::Connection,
        handle: ConnHandle,
        side: Side,
        slot: FailureSlot,
        remote_addr: SocketAddr,
        handshake_timeout: Duration,
        keep_alive: Option<Duration>,
    ) -> Conn {
        let now = Instant::now();
        let (next_bidi, next_uni) = match side {
            Side::Client => (0, 2),
            Side::Server => (1, CONTROL_STREAM + 4),
        };
        Conn {
            q,
            handle,
            side,
            state: State::Handshaking,
            slot,
            remote_key: None,
            remote_addr,
            handshake_deadline: now + handshake_timeout,
            keep_alive,
            last_send: now,
            want_writable: HashMap::new(),
            next_bidi,
            next_uni,
            cids: Vec::new(),
            close_override: None,
            dirty: false,
            scan: false,
            pending: side == Side::Server,
            was_open: false,
            reported_closed: false,
            reset_known: false,
            pin: None,
            early: false,
            refusal_counted: false,
            control: Vec::new(),
            last_session: None,
            local_key: PublicKey::default(),
            follow_peer: false,
            seen_at: None,
        }
    }

    /// Whether application data may be written now: once open, or before
    /// that on a client that dialed with early data (0-RTT).
    pub fn can_send(&self) -> bool {
        match self.state {
            State::Open => true,
            State::Handshaking | State::AwaitingConfirm => self.early,
            _ => false,
        }
    }

    /// The earliest moment this connection needs `on_timeout`.
    pub fn deadline(&self) -> Option<Instant> {
        let mut d = self.q.timeout_instant();
        let mut merge = |t: Instant| d = Some(d.map_or(t, |x| x.min(t)));
        if self.handshake_unfinished() {
            merge(self.handshake_deadline)
        }
        if self.state == State::Open {
            if let Some(k) = self.keep_alive {
                merge(self.last_send + k)
            }
        }
        d
    }

    /// Whether the handshake deadline still applies: before the connection
    /// is open, and on a server open early for 0-RTT data until its
    /// handshake completes.
    fn handshake_unfinished(&self) -> bool {
        match self.state {
            State::Handshaking | State::AwaitingAccept | State::AwaitingConfirm => true,
            State::Open => !self.q.is_established(),
            State::Closing => false,
        }
    }

    /// Server: the refusal this connection's handshake ended in, once: a
    /// close with an error of ours (a bad credential, most often) before
    /// the application heard of the peer (no `Incoming`).
    pub fn take_refusal(&mut self) -> Option<Refusal> {
        if self.side != Side::Server || self.refusal_counted || self.remote_key.is_some() {
            return None;
        }
        let r = self.q.local_error().and_then(Refusal::from_error)?;
        self.refusal_counted = true;
        Some(r)
    }

    /// Whether the handshake deadline has passed with the handshake unfinished.
    pub fn handshake_overdue(&self, now: Instant) -> bool {
        self.handshake_deadline <= now && self.handshake_unfinished()
    }

    /// Moves the connection along after input and queues what the
    /// application must hear. Returns true when the connection is gone.
    pub fn scan(&mut self, events: &mut VecDeque<Event>) -> bool {
        while let Some(pe) = self.q.path_event_next() {
            if let quiche::PathEvent::PeerMigrated(_, peer) = pe {
                self.remote_addr = peer;
                if self.state == State::Open {
                    events.push_back(Event::PathChanged {
                        conn: self.handle,
                        remote_addr: peer,
                    });
                }
            }
        }
        // A server that accepted 0-RTT knows the client's key (from the
        // resumed session) before the handshake completes: the application
        // may take the early data now. It can be a replay.
        let early_server = self.side == Side::Server && self.q.is_in_early_data();
        if self.state == State::Handshaking
            && (self.q.is_established() || early_server)
            && !self.q.is_closed()
        {
            self.on_established(events);
        }
        if self.side == Side::Client && self.remote_key.is_some() {
            self.report_session(events);
        }
        if self.state == State::AwaitingConfirm {
            self.read_control(events);
        }
        if self.state == State::Open {
            self.drain_streams(events);
        }
        // Report the end as soon as it is decided (draining), and keep the
        // connection until quiche is done with it, so late packets are
        // still answered.
        if !self.reported_closed && (self.q.is_draining() || self.q.is_closed()) {
            self.reported_closed = true;
            self.state = State::Closing;
            events.push_back(Event::Closed {
                conn: self.handle,
                reason: self.close_reason(),
            });
        }
        self.q.is_closed()
    }

    fn on_established(&mut self, events: &mut VecDeque<Event>) {
        let key = match self.q.peer_cert().map(key_from_certificate_der) {
            Some(Ok(k)) => k,
            // The verify callback already enforced this; belt and braces.
            _ => {
                let _ = self.q.close(false, 0x100 + 42, b"bad certificate");
                self.state = State::Closing;
                return;
            }
        };
        self.remote_key = Some(key);
        match self.side {
            Side::Server => {
                self.state = State::AwaitingAccept;
                events.push_back(Event::Incoming {
                    conn: self.handle,
                    remote_key: key,
                    remote_addr: self.remote_addr,
                });
            }
            Side::Client => {
                // A resumed session carries the key it was made with and
                // skips the verify callback: pin it here too.
                if let Some(pin) = self.pin.filter(|p| *p != key) {
                    self.close_override = Some(CloseReason {
                        expected_key: Some(pin),
                        actual_key: Some(key),
                        ..CloseReason::new(
                            CloseKind::IdentityMismatch,
                            0,
                            "peer's key is not the dialed key",
                        )
                    });
                    let _ = self.q.close(false, 0x100 + 42, b"wrong key");
                    self.state = State::Closing;
                    return;
                }
                self.state = State::AwaitingConfirm;
            }
        }
    }

    /// Client: reports a new session (ticket) from the peer, for 0-RTT
    /// reconnects to the same key.
    fn report_session(&mut self, events: &mut VecDeque<Event>) {
        let (Some(s), Some(key)) = (self.q.session(), self.remote_key) else {
            return;
        };
        if self.last_session.as_deref() == Some(s) || self.state == State::Closing {
            return;
        }
        self.last_session = Some(s.to_vec());
        let mut session = self.local_key.to_vec();
        session.extend_from_slice(s);
        events.push_back(Event::Session {
            conn: self.handle,
            remote_key: key,
            session,
        });
    }

    /// Client: waits for the server's "accepted" on the control stream: the
    /// byte CONTROL_ACCEPTED then FIN, in any number of frames and packets.
    /// What has arrived is kept until the FIN; anything else than exactly
    /// that one byte (none, another, more, a reset) closes the connection.
    fn read_control(&mut self, events: &mut VecDeque<Event>) {
        let mut buf = [0u8; 16];
        // Each pass takes at least one byte (two bytes end it), the FIN
        // (ends it) or nothing (returns): at most three passes.
        for _ in 0..3 {
            let (n, fin) = match self.q.stream_recv(CONTROL_STREAM, &mut buf) {
                Ok(r) => r,
                // The server reset it instead of finishing it.
                Err(quiche::Error::StreamReset(_)) => return self.bad_control(),
                // Nothing (more) yet, or no such stream yet.
                Err(_) => return,
            };
            if self.control.len() + n > 1 {
                return self.bad_control();
            }
            self.control.extend_from_slice(&buf[..n]);
            if fin {
                if self.control != [CONTROL_ACCEPTED] {
                    return self.bad_control();
                }
                self.state = State::Open;
                self.was_open = true;
                events.push_back(Event::Connected {
                    conn: self.handle,
                    remote_key: self.remote_key.unwrap_or_default(),
                    remote_addr: self.remote_addr,
                });
                return;
            }
            if n == 0 {
                return;
            }
        }
    }

    fn bad_control(&mut self) {
        let _ = self
            .q
            .close(false, PROTOCOL_VIOLATION, b"bad control message");
        self.state = State::Closing;
    }

    fn drain_streams(&mut self, events: &mut VecDeque<Event>) {
        let conn = self.handle;
        while let Some(stream) = self.q.stream_readable_next() {
            if stream == CONTROL_STREAM && self.side == Side::Client {
                let mut sink = [0u8; 64];
                while let Ok((_, false)) = self.q.stream_recv(stream, &mut sink) {}
                continue;
            }
            events.push_back(Event::StreamReadable { conn, stream });
        }
        // quiche marks stopped streams writable: that is how STOP_SENDING on
        // a stream we are not writing to is noticed.
        while let Some(stream) = self.q.stream_writable_next() {
            if let Err(quiche::Error::StreamStopped(code)) = self.q.stream_capacity(stream) {
                self.want_writable.remove(&stream);
                events.push_back(Event::StreamStopped { conn, stream, code });
            }
        }
        // Blocked writers are checked directly after every input (ACKs,
        // MAX_DATA, MAX_STREAM_DATA all arrive as input), rather than trusting
        // quiche's low-water-mark bookkeeping, which can miss a wake-up.
        if !self.want_writable.is_empty() {
            let q = &mut self.q;
            self.want_writable
                .retain(|&stream, &mut want| match q.stream_capacity(stream) {
                    // Wake on a packet's worth even when less than wanted: the
                    // congestion window can stay below any larger threshold.
                    Ok(cap) if cap < want.min(WAKE_MIN) => true,
                    Err(quiche::Error::StreamStopped(code)) => {
                        events.push_back(Event::StreamStopped { conn, stream, code });
                        false
                    }
                    // Capacity is back, or the stream is gone: the writer retries
                    // and learns which.
                    _ => {
                        events.push_back(Event::StreamWritable { conn, stream });
                        false
                    }
                });
        }
        while let Some(len) = self.q.dgram_recv_front_len() {
            let mut data = vec![0u8; len];
            match self.q.dgram_recv(&mut data) {
                Ok(n) => {
                    data.truncate(n);
                    events.push_back(Event::Datagram { conn, data });
                }
                Err(_) => break,
            }
        }
    }

    /// Works out why the connection ended, from the most specific cause down.
    pub fn close_reason(&self) -> CloseReason {
        if let Some(r) = &self.close_override {
            return r.clone();
        }
        if let Some(f) = self.slot.lock().ok().and_then(|s| s.clone()) {
            return match f {
                IdentityFailure::Mismatch { expected, actual } => CloseReason {
                    expected_key: Some(expected),
                    actual_key: Some(actual),
                    ..CloseReason::new(
                        CloseKind::IdentityMismatch,
                        0,
                        "peer's key is not the dialed key",
                    )
                },
                IdentityFailure::BadCertificate(m) => {
                    CloseReason::new(CloseKind::BadCertificate, 0, m)
                }
            };
        }
        let text = |r: &[u8]| String::from_utf8_lossy(r).into_owned();
        if let Some(e) = self.q.peer_error() {
            let reason = text(&e.reason);
            if e.is_app {
                return CloseReason::new(CloseKind::Peer, e.error_code, reason);
            }
            if e.error_code == CONNECTION_REFUSED && !self.was_open {
                return CloseReason::new(CloseKind::Refused, e.error_code, reason);
            }
            if (0x100..0x200).contains(&e.error_code) && !self.was_open {
                return CloseReason::new(CloseKind::PeerRejectedCredentials, e.error_code, reason);
            }
            return CloseReason::new(CloseKind::PeerTransport, e.error_code, reason);
        }
        if let Some(e) = self.q.local_error() {
            // BoringSSL's own verdicts on the peer's credential (a handshake
            // signature that does not match the certificate's key, no
            // certificate at all) come as TLS alerts, not through the
            // verify callback.
            if !e.is_app && !self.was_open && is_credential_alert(e.error_code) {
                let m = format!(
                    "peer's credential failed TLS verification (alert {})",
                    e.error_code - 0x100
                );
                return CloseReason::new(CloseKind::BadCertificate, e.error_code, m);
            }
            let kind = if e.is_app {
                CloseKind::Local
            } else {
                CloseKind::LocalTransport
            };
            return CloseReason::new(kind, e.error_code, text(&e.reason));
        }
        if self.q.is_timed_out() {
            if self.was_open || self.q.is_established() {
                return CloseReason::new(CloseKind::IdleTimeout, 0, "idle timeout");
            }
            return CloseReason::new(CloseKind::HandshakeTimeout, 0, "handshake timed out");
        }
        CloseReason::new(CloseKind::LocalTransport, 0, "connection closed")
    }
}

/// QUIC crypto errors (0x100 + TLS alert) that mean "your credential is no
/// good": bad/unsupported/unknown certificate, a signature that does not
/// verify (decrypt_error), or no certificate where one is required.
fn is_credential_alert(code: u64) -> bool {
    matches!(code.checked_sub(0x100), Some(42..=46 | 51 | 116))
}
