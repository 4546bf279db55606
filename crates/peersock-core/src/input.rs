//! Received datagrams: routed to their connection by destination CID (or
//! by a peer's stateless reset token), or handed to the front door.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::CID_LEN;
use crate::conn::State;
use crate::endpoint::Endpoint;
use crate::event::{CloseKind, CloseReason, ConnHandle, Event};

/// A driver-routed peer seen at a new address is reported at most this
/// often per address (see `DialOptions::follow_peer`).
const SEEN_REPORT_INTERVAL: Duration = Duration::from_millis(100);

impl Endpoint {
    /// Feeds one datagram received at `now` (decrypted in place: `buf` is
    /// scratch afterwards). Garbage, unknown and hostile input is dropped
    /// or closes only the connection it belongs to; it never errors. Then
    /// drain outgoing and events, and re-arm the timer.
    pub fn recv_at(&mut self, buf: &mut [u8], from: SocketAddr, now: Instant) {
        self.recv_on_at(buf, from, self.local, now);
    }

    /// [`Endpoint::recv_at`] on the real clock.
    pub fn recv(&mut self, buf: &mut [u8], from: SocketAddr) {
        self.recv_at(buf, from, Instant::now());
    }

    /// [`Endpoint::recv_on_at`] on the real clock.
    pub fn recv_on(&mut self, buf: &mut [u8], from: SocketAddr, to: SocketAddr) {
        self.recv_on_at(buf, from, to, Instant::now());
    }

    /// [`Endpoint::recv_at`] for a datagram that arrived on another local
    /// address `to` than the main one (a connection that migrated to it).
    pub fn recv_on_at(&mut self, buf: &mut [u8], from: SocketAddr, to: SocketAddr, now: Instant) {
        self.stats.datagrams_in += 1;
        let hdr = match quiche::Header::from_slice(buf, CID_LEN) {
            Ok(h) => h,
            Err(_) => {
                self.stats.dropped += 1;
                return;
            }
        };
        match self
            .ids
            .lookup(&hdr.dcid)
            .or_else(|| self.ids.reset_from(hdr.ty, buf))
        {
            Some(h) => self.recv_routed(h, buf, from, to, now),
            None => self.front_door(buf, &hdr, from, now),
        }
    }

    fn recv_routed(
        &mut self,
        h: ConnHandle,
        buf: &mut [u8],
        from: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) {
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
                let mut out = vec![0u8; self.config.largest_udp_payload()];
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
}
