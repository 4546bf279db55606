//! The driver's send path: runs of same-size datagrams to one destination
//! go out as one GSO `sendmsg`; a full socket buffer parks the batch and
//! waits for the socket to turn writable; the timer follows the core's
//! earliest deadline.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use quinn_udp::{Transmit, UdpSockRef};

use super::callbacks::{on_poll, on_timer};
use super::{NativeIo, GSO_MAX_BYTES, MAX_PER_FLUSH, MAX_QUEUED};
use crate::uv::{self, UV_READABLE, UV_WRITABLE};
use crate::NativeEndpoint;

impl NativeEndpoint {
    /// Sends what the core has queued (bounded; writable polling resumes
    /// it), then re-arms the timer.
    pub(crate) fn drive_flush(&mut self) {
        let Some(io) = self.io.as_mut() else { return };
        let max = self.ep.config().largest_udp_payload();
        let main = self.ep.local_addr();
        let now = Instant::now();
        let mut sent = 0usize;
        let mut blocked = false;
        if let Some((len, to, seg)) = io.pending.take() {
            match io_send(io, len, to, seg) {
                Ok(k) => sent += k,
                Err(()) => blocked = true,
            }
        }
        // Datagrams of one GSO run at most: the kernel's limit (1 without
        // GSO, where send_buf holds one datagram); GSO_MAX_BYTES bounds a
        // run's bytes below.
        let segments = if io.send_buf.len() >= 2 * max {
            io.state.max_gso_segments().max(1)
        } else {
            1
        };
        // The batch being built in send_buf: destination, segment size, bytes, count.
        let mut batch: Option<(SocketAddr, usize)> = None;
        let mut off = 0usize;
        let mut count = 0usize;
        let mut done = false;
        while !blocked && sent < MAX_PER_FLUSH {
            let Some((n, to, from)) = self
                .ep
                .poll_transmit_from_at(&mut io.send_buf[off..off + max], now)
            else {
                done = true;
                break;
            };
            if from != main || io.routed_to_js(to) {
                if io.routed.len() < MAX_QUEUED {
                    io.routed
                        .push_back((io.send_buf[off..off + n].to_vec(), to, from));
                }
                continue;
            }
            match batch {
                Some((dest, seg)) if dest == to && n <= seg && off + n <= GSO_MAX_BYTES => {
                    off += n;
                    count += 1;
                    // A shorter datagram ends a GSO run; so does a full
                    // batch, one more of this size over the GSO byte limit,
                    // or no room for one more of the largest size (the
                    // connections of one socket may differ in packet size:
                    // loopback peers get bigger ones).
                    if n < seg
                        || count == segments
                        || off + seg > GSO_MAX_BYTES
                        || off + max > io.send_buf.len()
                    {
                        let r = io_send(io, off, dest, (count > 1).then_some(seg));
                        batch = None;
                        (off, count) = (0, 0);
                        match r {
                            Ok(k) => sent += k,
                            Err(()) => blocked = true,
                        }
                    }
                }
                Some((dest, seg)) => {
                    // Another destination, a bigger datagram, or one the
                    // run has no room for: send the run, keep this one.
                    let r = io_send(io, off, dest, (count > 1).then_some(seg));
                    match r {
                        Ok(k) => {
                            sent += k;
                            io.send_buf.copy_within(off..off + n, 0);
                            batch = Some((to, n));
                            (off, count) = (n, 1);
                        }
                        Err(()) => {
                            // The run waits in send_buf; the new datagram after it is lost (QUIC retransmits).
                            blocked = true;
                            batch = None;
                        }
                    }
                }
                None => {
                    batch = Some((to, n));
                    (off, count) = (n, 1);
                    if segments == 1 {
                        let r = io_send(io, off, to, None);
                        batch = None;
                        (off, count) = (0, 0);
                        match r {
                            Ok(k) => sent += k,
                            Err(()) => blocked = true,
                        }
                    }
                }
            }
        }
        if let Some((dest, seg)) = batch.filter(|_| !blocked) {
            if io_send(io, off, dest, (count > 1).then_some(seg)).is_err() {
                blocked = true;
            }
        }
        let want_writable = blocked || !done;
        if want_writable != io.watching_writable {
            if let Ok(uv) = uv::uv() {
                let events = UV_READABLE | if want_writable { UV_WRITABLE } else { 0 };
                // SAFETY: the poll handle is live while `io` is.
                unsafe { (uv.poll_start)(io.poll, events, on_poll) };
            }
            io.watching_writable = want_writable;
        }
        self.io_arm();
    }

    /// Arms the timer for the core's earliest deadline (only earlier deadlines re-arm).
    fn io_arm(&mut self) {
        let Some(io) = self.io.as_mut() else { return };
        let now = Instant::now();
        let Some(d) = self.ep.timeout_at(now) else {
            return;
        };
        let at = now + d;
        if let Some(t) = io.timer_at {
            if t > now && t <= at + Duration::from_millis(1) {
                return;
            }
        }
        let Ok(uv) = uv::uv() else { return };
        // At least 1 ms: a deadline that stays due after the timer ran (a
        // core bug, or a timeout that cannot act yet) must not become a
        // 0 ms re-arm loop, which on libuv < 1.47 (Node 20) starves the
        // whole event loop (libuv #4245).
        let ms = (d.as_micros().div_ceil(1000) as u64).max(1);
        io.timer_at = Some(at);
        // SAFETY: the timer handle is live while `io` is.
        unsafe { (uv.timer_start)(io.timer, on_timer, ms, 0) };
    }
}

/// Sends `send_buf[..len]` to `to` (a GSO run when `seg` is set); Ok(datagrams)
/// or Err(()) when the socket buffer is full (then it waits in `pending`).
fn io_send(io: &mut NativeIo, len: usize, to: SocketAddr, seg: Option<usize>) -> Result<usize, ()> {
    let count = seg.map_or(1, |s| len.div_ceil(s));
    let t = Transmit {
        destination: to,
        ecn: None,
        contents: &io.send_buf[..len],
        segment_size: seg,
        src_ip: None,
    };
    io.counters.send_calls += 1;
    match io.state.try_send(UdpSockRef::from(&io.socket), &t) {
        Ok(()) => {
            io.counters.datagrams_out += count as u64;
            Ok(count)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            io.counters.would_block += 1;
            io.pending = Some((len, to, seg));
            Err(())
        }
        Err(e) => {
            // A failed send is a lost packet (QUIC retransmits); JavaScript reports it.
            io.counters.send_errors += 1;
            if io.errors.len() < 64 {
                io.errors.push((to, e.to_string()));
            }
            Ok(count)
        }
    }
}
