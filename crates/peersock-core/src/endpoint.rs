//! The endpoint: every connection of one UDP socket, dialed and accepted
//! alike, behind one sans-IO interface (call order: see the crate docs).
//!
//! Its parts: `input.rs` routes received datagrams, `front_door.rs` answers
//! those of no connection, `cids.rs` keeps the connection IDs, `timers.rs`
//! the deadlines, `dial.rs` dials, `streams.rs` moves application data;
//! each connection's own state is in `conn.rs`, `scan.rs` and `close.rs`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::cids::ConnIds;
use crate::config::EndpointConfig;
use crate::conn::{Conn, Side, State, CONTROL_ACCEPTED, CONTROL_STREAM};
use crate::error::{Error, Result};
use crate::event::{ConnHandle, Event};
use crate::identity::{FailureSlot, Identity, PublicKey};
use crate::refuse::CONNECTION_REFUSED;
use crate::reset::ResetKey;
use crate::retry::RetryKey;
use crate::stats::{EndpointStats, Refusal};

/// All connections of one UDP socket.
pub struct Endpoint {
    pub(crate) identity: Identity,
    pub(crate) config: EndpointConfig,
    pub(crate) server_config: quiche::Config,
    /// The server side toward loopback peers, when they may get bigger
    /// packets (`EndpointConfig::udp_payload_toward`). Its session tickets
    /// are its own: a client that once came over loopback and now comes
    /// from elsewhere (or the reverse) does a full handshake.
    pub(crate) server_config_loopback: Option<quiche::Config>,
    /// Where the accepting side's verify callback (one for all accepted
    /// connections) leaves its verdict; moved to the connection whose
    /// input triggered it, right after that input.
    pub(crate) server_slot: FailureSlot,
    pub(crate) local: SocketAddr,
    pub(crate) reset_key: ResetKey,
    pub(crate) retry_key: RetryKey,
    pub(crate) conns: HashMap<ConnHandle, Conn>,
    /// Which connection each of our connection IDs names.
    pub(crate) ids: ConnIds,
    next_handle: ConnHandle,
    send_queue: VecDeque<ConnHandle>,
    scan_queue: Vec<ConnHandle>,
    pub(crate) events: VecDeque<Event>,
    /// Datagrams made outside any connection (front-door answers, a 0-RTT
    /// dialer's Finished), sent before the connections' own.
    pub(crate) raw_out: VecDeque<(Vec<u8>, SocketAddr)>,
    pub(crate) pending_handshakes: usize,
    pub(crate) stats: EndpointStats,
    /// The real clock at creation, monotonic and wall: retry tokens carry
    /// wall-clock time (they outlive a restart), derived from the `now`
    /// the driver passes (see `front_door.rs`).
    pub(crate) created: (Instant, SystemTime),
}

impl Endpoint {
    /// Creates an endpoint for `identity` bound (by the driver) at `local`.
    pub fn new(identity: Identity, config: EndpointConfig, local: SocketAddr) -> Result<Endpoint> {
        config.validate()?;
        // The server side accepts any single Ed25519 certificate; the
        // application's accept hook decides afterwards.
        let server_slot: FailureSlot = Arc::new(Mutex::new(None));
        let server_config = config.quiche_config(
            &identity,
            false,
            None,
            server_slot.clone(),
            config.max_udp_payload,
        )?;
        let server_config_loopback = if config.largest_udp_payload() > config.max_udp_payload {
            Some(config.quiche_config(
                &identity,
                false,
                None,
                server_slot.clone(),
                config.largest_udp_payload(),
            )?)
        } else {
            None
        };
        let seed = identity.seed()?;
        let reset_key = ResetKey::from_secret(&seed)?;
        let retry_key = RetryKey::from_secret(&seed, config.retry_token_lifetime)?;
        Ok(Endpoint {
            identity,
            config,
            server_config,
            server_config_loopback,
            server_slot,
            local,
            reset_key,
            retry_key,
            conns: HashMap::new(),
            ids: ConnIds::default(),
            next_handle: 1,
            send_queue: VecDeque::new(),
            scan_queue: Vec::new(),
            events: VecDeque::new(),
            raw_out: VecDeque::new(),
            pending_handshakes: 0,
            stats: EndpointStats::default(),
            created: (Instant::now(), SystemTime::now()),
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

    /// Takes in a new connection made at `now` (routed by its source CID),
    /// marked for a send pass; returns its handle.
    pub(crate) fn insert(
        &mut self,
        q: quiche::Connection,
        side: Side,
        slot: FailureSlot,
        addr: SocketAddr,
        handshake_timeout: Duration,
        now: Instant,
    ) -> ConnHandle {
        let h = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1).max(1);
        let scid = q.source_id().into_owned();
        let mut c = Conn::new(q, h, side, slot, addr, handshake_timeout, now);
        c.keep_alive = self.config.keep_alive;
        self.ids.route(scid, &mut c);
        if c.pending {
            self.pending_handshakes += 1;
        }
        self.conns.insert(h, c);
        self.touch(h);
        h
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
    /// `EndpointConfig::largest_udp_payload` bytes) and says where to send it; `None` when
    /// nothing is left to send. Call until `None`, then re-arm the timer.
    /// `now` is when the datagram leaves: keep-alives count from it.
    pub fn poll_transmit_at(
        &mut self,
        out: &mut [u8],
        now: Instant,
    ) -> Option<(usize, SocketAddr)> {
        self.poll_transmit_from_at(out, now)
            .map(|(n, to, _)| (n, to))
    }

    /// [`Endpoint::poll_transmit_at`] on the real clock.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<(usize, SocketAddr)> {
        self.poll_transmit_at(out, Instant::now())
    }

    /// [`Endpoint::poll_transmit_at`] that also says which local address
    /// to send from (the main one unless a connection migrated).
    pub fn poll_transmit_from_at(
        &mut self,
        out: &mut [u8],
        now: Instant,
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
                    c.last_send = now;
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
                        self.ids.maintain(c, &self.reset_key);
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

    /// Forgets a connection that is gone: its routes and its place under
    /// the pending-handshake limit.
    pub(crate) fn remove(&mut self, h: ConnHandle) {
        if let Some(c) = self.conns.remove(&h) {
            self.ids.forget(&c);
            if c.pending {
                self.pending_handshakes -= 1;
            }
        }
    }
}
