//! Stream and datagram calls on a connection of the endpoint.
//!
//! Reads and writes never block: a write takes what flow control allows
//! and asks for [`crate::Event::StreamWritable`] when cut short; a read
//! returns [`StreamRead::Blocked`] until the next
//! [`crate::Event::StreamReadable`]. Not reading leaves data in quiche, so
//! the peer is held back by flow control.

use crate::conn::CONTROL_STREAM;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::event::ConnHandle;

/// Outcome of a stream read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRead {
    /// `n` bytes were read; `fin` says the peer finished the stream.
    Data { n: usize, fin: bool },
    /// Nothing to read now; wait for `StreamReadable`.
    Blocked,
    /// The peer reset the stream with this application code.
    Reset(u64),
}

/// Outcome of a stream write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamWrite {
    /// This many bytes were taken (maybe fewer than offered; then wait for
    /// `StreamWritable`).
    Written(usize),
    /// The peer asked us to stop sending, with this code.
    Stopped(u64),
}

/// Which half of a stream to shut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Stop receiving: sends STOP_SENDING.
    Read,
    /// Abandon sending: sends RESET_STREAM.
    Write,
}

/// Below this much free space a blocked writer is not woken.
const WRITABLE_LOW_WATER: usize = 16 * 1024;

impl Endpoint {
    /// Opens a locally initiated stream and returns its ID.
    pub fn open_stream(&mut self, h: ConnHandle, bidi: bool) -> Result<u64> {
        let c = self.conn_mut(h)?;
        if !c.can_send() {
            return Err(Error::Closed);
        }
        let left = if bidi {
            c.q.peer_streams_left_bidi()
        } else {
            c.q.peer_streams_left_uni()
        };
        if left == 0 {
            return Err(Error::StreamLimit);
        }
        let id = if bidi { c.next_bidi } else { c.next_uni };
        // An empty write creates the stream, so the peer's limit counts it.
        match c.q.stream_send(id, &[], false) {
            Ok(_) | Err(quiche::Error::Done) => {}
            Err(quiche::Error::StreamLimit) => return Err(Error::StreamLimit),
            Err(e) => return Err(Error::Internal(format!("open stream: {e}"))),
        }
        if bidi {
            c.next_bidi += 4;
        } else {
            c.next_uni += 4;
        }
        Ok(id)
    }

    /// Sets a local stream's send priority: lower `urgency` (0..=7) is sent
    /// first; `incremental` streams of one urgency share the path round
    /// robin, others go one after another. Streams start at 3, incremental.
    pub fn stream_priority(
        &mut self,
        h: ConnHandle,
        stream: u64,
        urgency: u8,
        incremental: bool,
    ) -> Result<()> {
        if urgency > 7 {
            return Err(Error::InvalidArgument("urgency must be 0..7".into()));
        }
        let c = self.conn_mut(h)?;
        match c.q.stream_priority(stream, urgency, incremental) {
            Ok(()) | Err(quiche::Error::Done) => Ok(()),
            Err(quiche::Error::InvalidStreamState(_)) => Err(Error::StreamState(stream)),
            Err(e) => Err(Error::Internal(format!("stream priority: {e}"))),
        }
    }

    /// Writes as much of `data` as flow and congestion control allow; `fin`
    /// finishes the stream once all of `data` is taken.
    pub fn stream_send(
        &mut self,
        h: ConnHandle,
        stream: u64,
        data: &[u8],
        fin: bool,
    ) -> Result<StreamWrite> {
        let c = self.conn_mut(h)?;
        if !c.can_send() {
            return Err(Error::Closed);
        }
        if stream == CONTROL_STREAM {
            return Err(Error::StreamState(stream));
        }
        let r = match c.q.stream_send(stream, data, fin) {
            Ok(n) => {
                if n < data.len() {
                    c.want_writable
                        .insert(stream, (data.len() - n).min(WRITABLE_LOW_WATER));
                }
                StreamWrite::Written(n)
            }
            // quiche also says Done for a stream it has already collected
            // (stopped by the peer and complete): that writer must fail, or
            // it would be woken, take nothing and wait again, forever.
            Err(quiche::Error::Done) => match c.q.stream_capacity(stream) {
                Err(quiche::Error::StreamStopped(code)) => StreamWrite::Stopped(code),
                Err(_) => return Err(Error::StreamState(stream)),
                Ok(_) => {
                    c.want_writable
                        .insert(stream, data.len().clamp(1, WRITABLE_LOW_WATER));
                    StreamWrite::Written(0)
                }
            },
            Err(quiche::Error::StreamStopped(code)) => StreamWrite::Stopped(code),
            Err(quiche::Error::StreamLimit) => return Err(Error::StreamLimit),
            Err(_) => return Err(Error::StreamState(stream)),
        };
        self.touch(h);
        Ok(r)
    }

    /// Reads into `buf`.
    pub fn stream_recv(
        &mut self,
        h: ConnHandle,
        stream: u64,
        buf: &mut [u8],
    ) -> Result<StreamRead> {
        let c = self.conn_mut(h)?;
        if stream == CONTROL_STREAM {
            return Err(Error::StreamState(stream));
        }
        let r = match c.q.stream_recv(stream, buf) {
            Ok((n, fin)) => StreamRead::Data { n, fin },
            Err(quiche::Error::Done) => return Ok(StreamRead::Blocked),
            Err(quiche::Error::StreamReset(code)) => StreamRead::Reset(code),
            Err(_) => return Err(Error::StreamState(stream)),
        };
        // Reading may open the window: let the peer know.
        self.touch(h);
        Ok(r)
    }

    /// Abruptly shuts one direction of a stream with an application code.
    pub fn stream_shutdown(
        &mut self,
        h: ConnHandle,
        stream: u64,
        dir: Direction,
        code: u64,
    ) -> Result<()> {
        let c = self.conn_mut(h)?;
        let how = match dir {
            Direction::Read => quiche::Shutdown::Read,
            Direction::Write => quiche::Shutdown::Write,
        };
        // Done / unknown stream: that half is already gone, which is the goal.
        let _ = c.q.stream_shutdown(stream, how, code);
        c.want_writable.remove(&stream);
        self.touch(h);
        Ok(())
    }

    /// Queues an unreliable datagram. Returns false when the send queue is
    /// full and the datagram was dropped.
    pub fn send_datagram(&mut self, h: ConnHandle, data: &[u8]) -> Result<bool> {
        let c = self.conn_mut(h)?;
        if !c.can_send() {
            return Err(Error::Closed);
        }
        let max =
            c.q.dgram_max_writable_len()
                .ok_or(Error::DatagramDisabled)?;
        if data.len() > max {
            return Err(Error::DatagramTooLarge { max });
        }
        let queued = match c.q.dgram_send(data) {
            Ok(()) => true,
            Err(quiche::Error::Done) => false,
            Err(quiche::Error::BufferTooShort) => return Err(Error::DatagramTooLarge { max }),
            Err(quiche::Error::InvalidState) => return Err(Error::DatagramDisabled),
            Err(e) => return Err(Error::Internal(e.to_string())),
        };
        self.touch(h);
        Ok(queued)
    }

    /// Largest datagram payload that fits now, `None` if the peer takes none.
    pub fn max_datagram_size(&self, h: ConnHandle) -> Result<Option<usize>> {
        Ok(self.conn(h)?.q.dgram_max_writable_len())
    }
}

/// What the application can see of a connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's proven key (once the handshake is done).
    pub remote_key: Option<crate::identity::PublicKey>,
    /// Where the peer's packets come from now.
    pub remote_addr: std::net::SocketAddr,
    /// Whether we dialed it.
    pub is_client: bool,
    /// Smoothed round-trip time.
    pub rtt: std::time::Duration,
    /// Congestion window in bytes.
    pub cwnd: usize,
    /// Largest UDP payload the path carries as far as known: `max_udp_payload`
    /// without path MTU discovery; with it, 1200 until a probe succeeds.
    pub pmtu: usize,
    /// Packets and bytes sent, received and lost so far.
    pub sent_packets: usize,
    pub recv_packets: usize,
    pub lost_packets: usize,
    pub sent_bytes: u64,
    pub recv_bytes: u64,
    /// The handshake resumed an earlier session (a session ticket).
    pub resumed: bool,
    /// Dialed with early data: the application may send before the
    /// handshake completes.
    pub early: bool,
    /// The peer accepted our 0-RTT data.
    pub early_data_accepted: bool,
}

impl Endpoint {
    /// Reads a connection's identity, address and counters.
    pub fn conn_info(&self, h: ConnHandle) -> Result<ConnInfo> {
        let c = self.conn(h)?;
        let st = c.q.stats();
        let path = c.q.path_stats().find(|p| p.active);
        Ok(ConnInfo {
            remote_key: c.remote_key,
            remote_addr: c.remote_addr,
            is_client: c.side == crate::conn::Side::Client,
            rtt: path.as_ref().map(|p| p.rtt).unwrap_or_default(),
            cwnd: path.as_ref().map(|p| p.cwnd).unwrap_or_default(),
            pmtu: path.as_ref().map(|p| p.pmtu).unwrap_or_default(),
            sent_packets: st.sent,
            recv_packets: st.recv,
            lost_packets: st.lost,
            sent_bytes: st.sent_bytes,
            recv_bytes: st.recv_bytes,
            resumed: c.q.is_resumed(),
            early: c.early,
            // BoringSSL's ssl_early_data_accepted.
            early_data_accepted: c.q.early_data_reason() == 2,
        })
    }
}
