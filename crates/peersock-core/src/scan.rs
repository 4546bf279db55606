//! The scan that turns a connection's quiche state changes into
//! [`Event`]s after input: the handshake's end and the key it proved, the
//! accepting side's "accepted" on the control stream, session tickets,
//! readable, writable and stopped streams, datagrams, path changes, the end.

use std::collections::VecDeque;

use crate::conn::{Conn, Side, State, CONTROL_ACCEPTED, CONTROL_STREAM};
use crate::event::{CloseKind, CloseReason, Event};
use crate::identity::key_from_certificate_der;

/// QUIC transport error PROTOCOL_VIOLATION: a bad control message.
const PROTOCOL_VIOLATION: u64 = 0xa;

/// A blocked writer is woken once this much (or all it wants) fits.
const WAKE_MIN: usize = 1024;

impl Conn {
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
}
