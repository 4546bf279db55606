//! Streams and datagrams of a connection.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use peersock_core::{Direction, StreamRead, StreamWrite};

use crate::convert::{core_err, invalid};
use crate::{to_code, NativeEndpoint};

#[napi]
impl NativeEndpoint {
    /// Opens a stream; returns its id.
    #[napi]
    pub fn open_stream(&mut self, conn: u32, bidirectional: bool) -> Result<f64, String> {
        self.ep
            .open_stream(conn, bidirectional)
            .map(|id| id as f64)
            .map_err(core_err)
    }

    /// Writes; returns bytes taken (>= 0), or -1 when the peer stopped the
    /// stream (its code via `lastCode`).
    pub(crate) fn stream_send(
        &mut self,
        conn: u32,
        stream: u64,
        data: &[u8],
        fin: bool,
    ) -> peersock_core::Result<f64> {
        match self.ep.stream_send(conn, stream, data, fin)? {
            StreamWrite::Written(n) => Ok(n as f64),
            StreamWrite::Stopped(code) => {
                self.last_code = code as f64;
                Ok(-1.0)
            }
        }
    }

    /// Reads into `buf`; returns `2n + fin` (>= 0), -1 when nothing is
    /// readable, -2 when the peer reset the stream (code via `lastCode`).
    pub(crate) fn stream_recv(
        &mut self,
        conn: u32,
        stream: u64,
        buf: &mut [u8],
    ) -> peersock_core::Result<f64> {
        match self.ep.stream_recv(conn, stream, buf)? {
            StreamRead::Data { n, fin } => Ok((n * 2 + fin as usize) as f64),
            StreamRead::Blocked => Ok(-1.0),
            StreamRead::Reset(code) => {
                self.last_code = code as f64;
                Ok(-2.0)
            }
        }
    }

    /// Sets a local stream's send priority (urgency 0..7, lower first).
    #[napi]
    pub fn stream_priority(
        &mut self,
        conn: u32,
        stream: f64,
        urgency: u32,
        incremental: bool,
    ) -> Result<(), String> {
        let urgency = u8::try_from(urgency).map_err(|_| invalid("urgency must be 0..7"))?;
        self.ep
            .stream_priority(conn, stream as u64, urgency, incremental)
            .map_err(core_err)
    }

    /// The application code of the last reset or stop reported.
    #[napi]
    pub fn last_code(&self) -> f64 {
        self.last_code
    }

    /// Abandons one direction of a stream: "read" sends STOP_SENDING,
    /// "write" sends RESET_STREAM.
    #[napi]
    pub fn stream_shutdown(
        &mut self,
        conn: u32,
        stream: f64,
        direction: String,
        code: f64,
    ) -> Result<(), String> {
        let dir = match direction.as_str() {
            "read" => Direction::Read,
            "write" => Direction::Write,
            _ => return Err(invalid("direction must be 'read' or 'write'")),
        };
        self.ep
            .stream_shutdown(conn, stream as u64, dir, to_code(code)?)
            .map_err(core_err)
    }

    /// Queues an unreliable datagram, prefixed with a one-byte channel tag;
    /// false when the queue was full.
    #[napi]
    pub fn send_datagram(&mut self, conn: u32, channel: u32, data: &[u8]) -> Result<bool, String> {
        let tag = u8::try_from(channel).map_err(|_| invalid("channel must be 0..255"))?;
        let mut tagged = Vec::with_capacity(data.len() + 1);
        tagged.push(tag);
        tagged.extend_from_slice(data);
        self.ep.send_datagram(conn, &tagged).map_err(|e| match e {
            // Report the limit for the caller's payload, without the tag.
            peersock_core::Error::DatagramTooLarge { max } => {
                core_err(peersock_core::Error::DatagramTooLarge {
                    max: max.saturating_sub(1),
                })
            }
            e => core_err(e),
        })
    }

    /// Largest datagram payload that fits now (0 if none).
    #[napi]
    pub fn max_datagram_size(&self, conn: u32) -> Result<u32, String> {
        Ok(self
            .ep
            .max_datagram_size(conn)
            .map_err(core_err)?
            .unwrap_or(0) as u32)
    }
}
