//! The pump's entry points: datagrams in, datagrams out with the next
//! deadline, events out. See the crate docs for the order of calls.

use std::net::SocketAddr;
use std::time::Instant;

use napi_derive::napi;
use peersock_core::Event;

use crate::events::{
    NativeEvent, EV_DATAGRAM, EV_DETAIL, EV_READABLE, EV_SLOTS, EV_STOPPED, EV_WRITABLE,
    FLUSH_ALL_SENT, FLUSH_EVENTS, META_HEAD, NO_TIMEOUT,
};
use crate::NativeEndpoint;

#[napi]
impl NativeEndpoint {
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
        const HEAD: usize = META_HEAD as usize;
        if meta.len() < HEAD + 2 {
            return Err(peersock_core::Error::InvalidArgument(
                "meta must hold at least 5 numbers".into(),
            ));
        }
        let max = self.ep.config().largest_udp_payload();
        let mut off = 0usize;
        let mut count = 0usize;
        let mut all_sent = false;
        // One clock read per batch: the core's keep-alives count from it.
        let now = Instant::now();
        while out.len() - off >= max && HEAD + 2 * count + 1 < meta.len() {
            match self.ep.poll_transmit_from_at(&mut out[off..off + max], now) {
                Some((n, to, from)) => {
                    let local = self.local_index(from);
                    meta[HEAD + 2 * count] = n as u32;
                    meta[HEAD + 2 * count + 1] = self.addrs.id((to, local));
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
        meta[1] = if events { FLUSH_EVENTS } else { 0 } | if all_sent { FLUSH_ALL_SENT } else { 0 };
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
        const SLOTS: usize = EV_SLOTS as usize;
        let cap = out.len() / SLOTS;
        let mut n = 0usize;
        let mut off = 0usize;
        while n < cap {
            let Some(ev) = self.held.take().or_else(|| self.ep.poll_event()) else {
                break;
            };
            let slot = &mut out[n * SLOTS..(n + 1) * SLOTS];
            match ev {
                Event::StreamReadable { conn, stream } => slot.copy_from_slice(&[
                    EV_READABLE as f64,
                    conn as f64,
                    stream as f64,
                    0.0,
                    0.0,
                    0.0,
                ]),
                Event::StreamWritable { conn, stream } => slot.copy_from_slice(&[
                    EV_WRITABLE as f64,
                    conn as f64,
                    stream as f64,
                    0.0,
                    0.0,
                    0.0,
                ]),
                Event::StreamStopped { conn, stream, code } => slot.copy_from_slice(&[
                    EV_STOPPED as f64,
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
                        EV_DATAGRAM as f64,
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
                        EV_DETAIL as f64,
                        conn as f64,
                        0.0,
                        0.0,
                        self.details.len() as f64,
                        0.0,
                    ]);
                    self.details.push(NativeEvent::from_event(ev));
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
}
