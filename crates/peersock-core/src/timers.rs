//! The endpoint's timer: one deadline over all connections, and what runs
//! when it fires (quiche's loss and idle timers, handshake deadlines,
//! keep-alives).

use std::time::{Duration, Instant};

use crate::conn::State;
use crate::endpoint::Endpoint;
use crate::event::{CloseKind, CloseReason, ConnHandle, Event};

impl Endpoint {
    /// Time from `now` until the earliest deadline over all connections,
    /// `None` if there is none: arm one timer for it, then call
    /// [`Endpoint::on_timeout_at`]. Firing early is harmless.
    pub fn timeout_at(&self, now: Instant) -> Option<Duration> {
        self.conns
            .values()
            .filter_map(|c| c.deadline())
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    /// [`Endpoint::timeout_at`] on the real clock.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout_at(Instant::now())
    }

    /// Runs the timers due at `now`: handshake deadlines and keep-alives
    /// (the core's own, judged by `now`) and quiche's loss and idle timers
    /// (which quiche judges by its own clock). Then drain outgoing.
    pub fn on_timeout_at(&mut self, now: Instant) {
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
                        // The keep-alive of this interval is asked for:
                        // quiche sends it as soon as it may (it keeps the
                        // request until an ack-eliciting packet leaves). Its
                        // congestion window can be full (a peer gone
                        // silent, packets in flight that nobody
                        // acknowledges), and then nothing leaves until its
                        // next probe timeout; were the deadline left in the
                        // past, it would stay due and every timer of the
                        // endpoint would fire again at once until then (a
                        // busy loop, which froze the whole event loop under
                        // the native driver on Node 20).
                        c.last_send = now;
                    }
                }
            }
            self.touch(h);
        }
    }

    /// [`Endpoint::on_timeout_at`] on the real clock.
    pub fn on_timeout(&mut self) {
        self.on_timeout_at(Instant::now());
    }
}
