//! napi-rs binding of peersock-core: conversions only.
//!
//! The boundary is coarse on purpose. JavaScript calls, per event-loop turn,
//! the core's order (see peersock-core's crate docs): `recv` once per
//! received datagram (or `onTimeout`) → `flush` until everything is sent
//! (each call writes many datagrams into a JS-owned buffer, and the last
//! one reports the next deadline, so the timer is re-armed from it) →
//! `pollEvents`, acting on them → again while there were events. Buffers
//! are always JavaScript's (`&mut [u8]`); this crate never creates an
//! external buffer (Electron's V8 memory cage forbids them).
//!
//! The core takes the time as an argument; this crate reads the real clock
//! at each call and passes it on.

#![deny(clippy::all)]
// Test builds leave out napi-rs's registration, which is what reaches the
// hot-path functions: everything they use would look unused there.
#![cfg_attr(test, allow(dead_code))]

mod addr;
mod convert;
mod hot;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use peersock_core::{Direction, Endpoint, Event, Identity, StreamRead, StreamWrite, KEY_LEN};

use crate::addr::AddrTable;
use crate::convert::{
    config_from, core_err, dial_from, hex, invalid, parse_addr, NativeDialOptions, NativeEvent,
    NativeOptions,
};

/// One endpoint: all QUIC connections of one UDP socket.
#[napi]
pub struct NativeEndpoint {
    ep: Endpoint,
    addrs: AddrTable,
    /// An event that did not fit the caller's datagram buffer last time.
    held: Option<Event>,
    /// Code of the last reset/stop seen by `streamRecv`/`streamSend`.
    last_code: f64,
    /// Events of the last `pollEvents` that carry strings.
    details: Vec<Option<NativeEvent>>,
    /// Further local addresses (sockets a connection migrated to); index
    /// `i` here is local index `i + 1` (0 is the main address).
    locals: Vec<SocketAddr>,
}

/// `flush`'s `meta` numbers before the per-datagram pairs.
const META_HEAD: usize = 3;
/// `flush`'s `meta[2]` when no timer is due.
pub const NO_TIMEOUT: u32 = u32::MAX;

/// Numbers per event in `pollEvents`' output.
pub const EV_SLOTS: usize = 6;
const EV_READABLE: f64 = 1.0;
const EV_WRITABLE: f64 = 2.0;
const EV_STOPPED: f64 = 3.0;
const EV_DATAGRAM: f64 = 4.0;
const EV_DETAIL: f64 = 5.0;

#[napi]
impl NativeEndpoint {
    /// Creates an endpoint for a 32- or 64-byte Ed25519 secret key, bound
    /// (by the caller's socket) at `address:port`.
    #[napi(constructor)]
    pub fn new(
        secret_key: &[u8],
        address: String,
        port: u32,
        options: Option<NativeOptions>,
    ) -> Result<Self, String> {
        let identity = Identity::from_secret_key(secret_key).map_err(core_err)?;
        let local = parse_addr(&address, port)?;
        let config = config_from(options.unwrap_or_default())?;
        let ep = Endpoint::new(identity, config, local).map_err(core_err)?;
        Ok(NativeEndpoint {
            ep,
            addrs: AddrTable::default(),
            held: None,
            last_code: 0.0,
            details: Vec::new(),
            locals: Vec::new(),
        })
    }

    /// This endpoint's public key (copied).
    #[napi]
    pub fn public_key(&self) -> Vec<u8> {
        self.ep.public_key().to_vec()
    }

    /// Tells the endpoint the address its socket is bound to.
    #[napi]
    pub fn set_local_address(&mut self, address: String, port: u32) -> Result<(), String> {
        self.ep.set_local_addr(parse_addr(&address, port)?);
        Ok(())
    }

    /// Largest datagram this endpoint sends; size `flush` buffers by it.
    #[napi]
    pub fn max_udp_payload(&self) -> u32 {
        self.ep.config().max_udp_payload as u32
    }

    /// Dials `key` at `address:port`; returns the connection handle.
    /// `Connected` or `Closed` follows as an event.
    #[napi]
    pub fn connect(
        &mut self,
        key: &[u8],
        address: String,
        port: u32,
        handshake_timeout_ms: Option<f64>,
    ) -> Result<u32, String> {
        let key: [u8; KEY_LEN] = key
            .try_into()
            .map_err(|_| invalid("public key must be 32 bytes"))?;
        let addr = parse_addr(&address, port)?;
        let t = match handshake_timeout_ms {
            Some(ms) if ms.is_finite() && ms > 0.0 => Some(Duration::from_secs_f64(ms / 1000.0)),
            Some(_) => return Err(invalid("timeout must be a positive number of milliseconds")),
            None => None,
        };
        self.ep
            .connect_at(key, addr, t, Instant::now())
            .map_err(core_err)
    }

    /// Dials `key` at `address:port` with per-dial options (session
    /// resumption, 0-RTT, keep-alive); returns the connection handle.
    #[napi]
    pub fn connect_with(
        &mut self,
        key: &[u8],
        address: String,
        port: u32,
        options: NativeDialOptions,
    ) -> Result<u32, String> {
        let key: [u8; KEY_LEN] = key
            .try_into()
            .map_err(|_| invalid("public key must be 32 bytes"))?;
        let addr = parse_addr(&address, port)?;
        let opts = dial_from(options)?;
        self.ep
            .connect_with_at(key, addr, &opts, Instant::now())
            .map_err(core_err)
    }

    /// Registers another local address (a socket the caller bound) and
    /// returns its local index for `recvOn` and `migrate`.
    #[napi]
    pub fn add_local_address(&mut self, address: String, port: u32) -> Result<u32, String> {
        let a = parse_addr(&address, port)?;
        if self.locals.len() >= 64 {
            return Err(invalid("too many local addresses"));
        }
        self.locals.push(a);
        Ok(self.locals.len() as u32)
    }

    /// Dialing side: moves a connection to the local address of `local`
    /// (an index from `addLocalAddress`; 0 is the main address).
    #[napi]
    pub fn migrate(&mut self, conn: u32, local: u32) -> Result<(), String> {
        let to = self
            .local_at(local)
            .ok_or_else(|| invalid("unknown local index"))?;
        self.ep.migrate(conn, to).map_err(core_err)
    }

    fn local_at(&self, index: u32) -> Option<SocketAddr> {
        match index {
            0 => Some(self.ep.local_addr()),
            i => self.locals.get(i as usize - 1).copied(),
        }
    }

    fn local_index(&self, a: SocketAddr) -> u32 {
        if a == self.ep.local_addr() {
            return 0;
        }
        self.locals
            .iter()
            .position(|x| *x == a)
            .map_or(0, |i| i as u32 + 1)
    }

    /// Registers this endpoint for the hot-path functions of `hotApi()` and
    /// returns the handle they take. Valid while this object lives.
    #[napi]
    pub fn hot_handle(&mut self) -> u32 {
        hot::register(self as *mut NativeEndpoint)
    }

    /// Feeds one received datagram (decrypted in place: the buffer is
    /// scratch afterwards). Never throws for bad packets.
    pub(crate) fn recv(&mut self, data: &mut [u8], from: SocketAddr) {
        self.ep.recv_at(data, from, Instant::now());
    }

    /// `recv` for a datagram that arrived on local address `local` (an
    /// index from `addLocalAddress`).
    pub(crate) fn recv_on(
        &mut self,
        data: &mut [u8],
        from: SocketAddr,
        local: u32,
    ) -> peersock_core::Result<()> {
        let to = self
            .local_at(local)
            .ok_or_else(|| peersock_core::Error::InvalidArgument("unknown local index".into()))?;
        self.ep.recv_on_at(data, from, to, Instant::now());
        Ok(())
    }

    /// Writes pending datagrams back to back into `out` and returns their
    /// count. `meta` gets: `[0]` the address-table generation; `[1]` flags:
    /// 1 when `pollEvents` may have something, 2 when everything pending was
    /// sent (else call again); `[2]` when flag 2 is set, µs until
    /// `onTimeout` is due (`NO_TIMEOUT` for none, capped below it); then per datagram `[3 + 2i]` its length and
    /// `[4 + 2i]` its destination id (see `address`). One call does what
    /// otherwise takes three crossings: sending, asking for events, and
    /// asking for the timer.
    pub(crate) fn flush(&mut self, out: &mut [u8], meta: &mut [u32]) -> peersock_core::Result<u32> {
        if meta.len() < META_HEAD + 2 {
            return Err(peersock_core::Error::InvalidArgument(
                "meta must hold at least 5 numbers".into(),
            ));
        }
        let max = self.ep.config().max_udp_payload;
        let mut off = 0usize;
        let mut count = 0usize;
        let mut all_sent = false;
        // One clock read per batch: the core's keep-alives count from it.
        let now = Instant::now();
        while out.len() - off >= max && META_HEAD + 2 * count + 1 < meta.len() {
            match self.ep.poll_transmit_from_at(&mut out[off..off + max], now) {
                Some((n, to, from)) => {
                    let local = self.local_index(from);
                    meta[META_HEAD + 2 * count] = n as u32;
                    meta[META_HEAD + 2 * count + 1] = self.addrs.id((to, local));
                    off += n;
                    count += 1;
                }
                None => {
                    all_sent = true;
                    break;
                }
            }
        }
        meta[0] = self.addrs.generation();
        // Events and the timer only matter once everything is sent (the
        // timeout is a scan of every connection: once per drain, not per batch).
        let events = !all_sent || self.held.is_some() || self.ep.has_events();
        meta[1] = events as u32 | (all_sent as u32) << 1;
        meta[2] = match self.ep.timeout_at(Instant::now()).filter(|_| all_sent) {
            None => NO_TIMEOUT,
            Some(d) => d.as_micros().min(NO_TIMEOUT as u128 - 1) as u32,
        };
        Ok(count as u32)
    }

    /// The address behind a destination id from `flush`:
    /// `[address, port, family, local]` with family 4 or 6 and the local
    /// index to send from (0: the main socket; see `addLocalAddress`).
    #[napi]
    pub fn address(&self, id: u32) -> Option<(String, u32, u32, u32)> {
        self.addrs.get(id).map(|(a, local): (SocketAddr, u32)| {
            (
                a.ip().to_string(),
                a.port() as u32,
                if a.is_ipv4() { 4 } else { 6 },
                local,
            )
        })
    }

    /// Milliseconds until `onTimeout` is due (0 = now), or null for none.
    #[napi]
    pub fn timeout(&self) -> Option<f64> {
        self.ep
            .timeout_at(Instant::now())
            .map(|d| d.as_secs_f64() * 1000.0)
    }

    /// Runs due timers; harmless when called early.
    #[napi]
    pub fn on_timeout(&mut self) {
        self.ep.on_timeout_at(Instant::now());
    }

    /// Drains events into `out`, [`EV_SLOTS`] numbers per event:
    /// `[kind, conn, stream, code, offset, length]` (kinds are the `EV_*`
    /// constants). Datagram payloads are copied into `dgram_buf` at
    /// `offset`/`length`. Rare events that carry strings (incoming,
    /// connected, path, closed) are `EV_DETAIL` with `offset` indexing
    /// `eventDetail`, valid until the next call. Returns the event count;
    /// when `out` or `dgram_buf` is full the rest waits for the next call.
    /// Plain numbers instead of one object per event: creating objects with
    /// named properties from native code costs more than handling the event.
    pub(crate) fn poll_events(&mut self, dgram_buf: &mut [u8], out: &mut [f64]) -> u32 {
        self.details.clear();
        let cap = out.len() / EV_SLOTS;
        let mut n = 0usize;
        let mut off = 0usize;
        while n < cap {
            let Some(ev) = self.held.take().or_else(|| self.ep.poll_event()) else {
                break;
            };
            let slot = &mut out[n * EV_SLOTS..(n + 1) * EV_SLOTS];
            match ev {
                Event::StreamReadable { conn, stream } => {
                    slot.copy_from_slice(&[EV_READABLE, conn as f64, stream as f64, 0.0, 0.0, 0.0])
                }
                Event::StreamWritable { conn, stream } => {
                    slot.copy_from_slice(&[EV_WRITABLE, conn as f64, stream as f64, 0.0, 0.0, 0.0])
                }
                Event::StreamStopped { conn, stream, code } => slot.copy_from_slice(&[
                    EV_STOPPED,
                    conn as f64,
                    stream as f64,
                    code as f64,
                    0.0,
                    0.0,
                ]),
                Event::Datagram { conn, data } => {
                    if dgram_buf.len() - off < data.len() {
                        if n == 0 && data.len() > dgram_buf.len() {
                            continue; // cannot ever fit: drop (datagrams are lossy)
                        }
                        self.held = Some(Event::Datagram { conn, data });
                        break;
                    }
                    dgram_buf[off..off + data.len()].copy_from_slice(&data);
                    slot.copy_from_slice(&[
                        EV_DATAGRAM,
                        conn as f64,
                        0.0,
                        0.0,
                        off as f64,
                        data.len() as f64,
                    ]);
                    off += data.len();
                }
                ev => {
                    let conn = ev.conn();
                    slot.copy_from_slice(&[
                        EV_DETAIL,
                        conn as f64,
                        0.0,
                        0.0,
                        self.details.len() as f64,
                        0.0,
                    ]);
                    self.details.push(Some(NativeEvent::from_event(ev)));
                }
            }
            n += 1;
        }
        n as u32
    }

    /// The full event behind an `EV_DETAIL` slot of the last `pollEvents`
    /// (each can be taken once).
    #[napi]
    pub fn event_detail(&mut self, index: u32) -> Option<NativeEvent> {
        self.details.get_mut(index as usize).and_then(Option::take)
    }

    /// Accepting side: admits the peer of an `incoming` event.
    #[napi]
    pub fn accept(&mut self, conn: u32) -> Result<(), String> {
        self.ep.accept(conn).map_err(core_err)
    }

    /// Accepting side: refuses the peer of an `incoming` event.
    #[napi]
    pub fn refuse(&mut self, conn: u32, reason: String) -> Result<(), String> {
        self.ep.refuse(conn, &reason).map_err(core_err)
    }

    /// Closes a connection with an application code and reason.
    #[napi]
    pub fn close(&mut self, conn: u32, code: f64, reason: String) -> Result<(), String> {
        self.ep
            .close(conn, to_code(code)?, reason.as_bytes())
            .map_err(core_err)
    }

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

    /// Connection details: `[remoteKeyHex, address, port, family, rttMs,
    /// cwnd, sentPackets, recvPackets, lostPackets, sentBytes, recvBytes]`.
    #[napi]
    pub fn conn_info(&self, conn: u32) -> Result<convert::NativeConnInfo, String> {
        let i = self.ep.conn_info(conn).map_err(core_err)?;
        let local = self.ep.local_addr_of(conn).map_err(core_err)?;
        Ok(convert::NativeConnInfo {
            remote_key: i.remote_key.map(|k| hex(&k)),
            address: i.remote_addr.ip().to_string(),
            port: i.remote_addr.port() as u32,
            family: if i.remote_addr.is_ipv4() { 4 } else { 6 },
            rtt_ms: i.rtt.as_secs_f64() * 1000.0,
            cwnd: i.cwnd as f64,
            sent_packets: i.sent_packets as f64,
            recv_packets: i.recv_packets as f64,
            lost_packets: i.lost_packets as f64,
            sent_bytes: i.sent_bytes as f64,
            recv_bytes: i.recv_bytes as f64,
            resumed: i.resumed,
            early: i.early,
            early_data_accepted: i.early_data_accepted,
            local_address: local.ip().to_string(),
            local_port: local.port() as u32,
        })
    }

    /// Endpoint counters: `{ connections, datagramsIn, dropped, accepted,
    /// refused, refusedAlpn, refusedSignature, refusedNoCert, refusedBadCert,
    /// refusedByApp, refusedBusy, refusedPending, refusedOther, resetsSent }`.
    #[napi]
    pub fn stats(&self) -> convert::NativeStats {
        let s = self.ep.stats();
        convert::NativeStats {
            connections: self.ep.connection_count() as u32,
            datagrams_in: s.datagrams_in as f64,
            dropped: s.dropped as f64,
            accepted: s.accepted as f64,
            refused: s.refused as f64,
            refused_alpn: s.refused_alpn as f64,
            refused_signature: s.refused_signature as f64,
            refused_no_cert: s.refused_no_cert as f64,
            refused_bad_cert: s.refused_bad_cert as f64,
            refused_by_app: s.refused_by_app as f64,
            refused_busy: s.refused_busy as f64,
            refused_pending: s.refused_pending as f64,
            refused_other: s.refused_other as f64,
            resets_sent: s.resets_sent as f64,
            retries_sent: s.retries_sent as f64,
            invalid_tokens: s.invalid_tokens as f64,
        }
    }
}

impl Drop for NativeEndpoint {
    fn drop(&mut self) {
        hot::forget(self as *mut NativeEndpoint);
    }
}

fn to_code(code: f64) -> Result<u64, String> {
    if code.is_finite() && code >= 0.0 && code.fract() == 0.0 && code < 4_611_686_018_427_387_904.0
    {
        Ok(code as u64)
    } else {
        Err(invalid("code must be an integer between 0 and 2^62-1"))
    }
}
