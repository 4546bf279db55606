//! One connection's state beside its quiche connection, and its own
//! deadlines. The scan that turns its changes into events is in `scan.rs`,
//! why it ended in `close.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quiche::ConnectionId;

use crate::event::{CloseReason, ConnHandle};
use crate::identity::{FailureSlot, PublicKey};
use crate::stats::Refusal;

/// The server's first unidirectional stream carries peersock's control
/// messages; today one: "accepted" (a single byte then FIN).
pub(crate) const CONTROL_STREAM: u64 = 3;
pub(crate) const CONTROL_ACCEPTED: u8 = 1;

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
        now: Instant,
    ) -> Conn {
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
            keep_alive: None,
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
}
