//! The native I/O driver (`bind({ io: 'native' })`): the addon owns the UDP
//! socket and runs QUIC on Node's own event-loop thread, with no JavaScript
//! call per packet.
//!
//! A libuv poll handle watches the socket. When it is readable, the driver
//! drains it in batches (quinn-udp: `recvmmsg` with UDP GRO on Linux, a
//! `recvmsg` loop elsewhere) and feeds every datagram to the core. Then,
//! when JavaScript has something to do (events to poll, non-QUIC
//! datagrams, datagrams it must send itself, failed sends), it calls into
//! JavaScript once; JavaScript handles the batch and flushes at the end,
//! so an answer leaves in the same packet as the ACK of what it answers
//! (flushing first cost a second packet per request: measured, 2 datagrams
//! per side per round trip instead of 1). Then it flushes what is left
//! (quinn-udp: one `sendmsg` per run of same-size datagrams to one
//! destination with UDP GSO where the kernel has it, one per datagram
//! elsewhere) and re-arms a libuv timer for the core's earliest deadline.
//!
//! What stays in JavaScript: datagrams to addresses a JavaScript transport
//! owns (the NAT path layer's virtual addresses, registered with
//! `ioRouteToJs`) and from local sockets other than this one (a connection
//! migrated to a fresh socket); they wait in `routed` for `ioTakeRouted`.
//! Non-QUIC datagrams, and QUIC packets from sources a JavaScript
//! transport translates (`ioClaimSource`: an introduced peer's real
//! address), wait in `raw_in` for `ioTakeRaw`.
//!
//! Soundness: every libuv callback runs on the loop's thread while no
//! JavaScript runs; the endpoint pointer in the handles' data stays valid
//! until `io_close` (called by `ioClose` and on drop) closes them; no
//! borrow of the endpoint is held across the call into JavaScript.

use std::collections::{HashSet, VecDeque};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ptr;
use std::time::Instant;

use napi::sys;
use napi_derive::napi;
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState, BATCH_SIZE};

use crate::uv::{self, Handle, UV_POLL, UV_READABLE, UV_TIMER};
use crate::NativeEndpoint;

mod callbacks;
mod send;

use callbacks::on_poll;

/// Bytes per receive slot: one GRO super-datagram at most.
const SLOT: usize = 64 * 1024;
/// Receive batches per readable callback before the loop gets a turn.
const READ_BATCHES: usize = 16;
/// Datagrams sent per flush before yielding to the loop (writable polling
/// brings the driver back at once; incoming ACKs get in between).
const MAX_PER_FLUSH: usize = 256;
/// Bytes of one GSO send at most: the kernel refuses a UDP datagram over
/// 65,507 bytes of payload, GSO runs included (EMSGSIZE).
const GSO_MAX_BYTES: usize = 64_000;
/// Kernel socket buffer sizes requested (each way).
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// Queued non-QUIC and routed datagrams kept at most (then dropped, like a full socket buffer).
const MAX_QUEUED: usize = 1024;

/// Counters of the native driver.
#[derive(Default, Clone, Copy)]
pub struct IoCounters {
    pub recv_calls: u64,
    pub datagrams_in: u64,
    pub send_calls: u64,
    pub datagrams_out: u64,
    pub js_calls: u64,
    pub send_errors: u64,
    pub would_block: u64,
}

pub(crate) struct NativeIo {
    socket: UdpSocket,
    state: UdpSocketState,
    env: sys::napi_env,
    callback: sys::napi_ref,
    async_ctx: sys::napi_async_context,
    poll: *mut Handle,
    timer: *mut Handle,
    watching_writable: bool,
    /// When the timer is due (None: not armed).
    timer_at: Option<Instant>,
    recv_buf: Vec<u8>,
    meta: Vec<RecvMeta>,
    send_buf: Vec<u8>,
    /// A batch that met a full socket buffer: `(length, destination, segment size)` in `send_buf`.
    pending: Option<(usize, SocketAddr, Option<usize>)>,
    pub raw_in: VecDeque<(Vec<u8>, SocketAddr)>,
    pub routed: VecDeque<(Vec<u8>, SocketAddr, SocketAddr)>,
    pub errors: Vec<(SocketAddr, String)>,
    js_prefixes: Vec<(IpAddr, u8)>,
    /// Sources whose QUIC packets JavaScript translates (see `ioClaimSource`).
    claimed: HashSet<SocketAddr>,
    pub counters: IoCounters,
}

fn prefix_match(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    let (a, b, bits): (u128, u128, u32) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let len = (len as u32).min(bits);
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    (a >> shift) == (b >> shift)
}

impl NativeIo {
    /// Opens the driver on `socket` (bound, non-blocking) for `ep`, calling
    /// `callback` (a napi reference to a JS function) when JavaScript has work.
    pub(crate) fn open(
        socket: UdpSocket,
        env: sys::napi_env,
        callback: sys::napi_ref,
        ep: *mut NativeEndpoint,
        max_payload: usize,
    ) -> Result<Box<NativeIo>, String> {
        let uv = uv::uv().map_err(str::to_string)?;
        let state = UdpSocketState::new(UdpSockRef::from(&socket)).map_err(|e| e.to_string())?;
        // Room for a few GSO bursts: the kernel's default (~208 KiB on Linux)
        // overflows at loopback speed. Best effort: the kernel may cap it.
        let _ = state.set_recv_buffer_size(UdpSockRef::from(&socket), SOCKET_BUFFER);
        let _ = state.set_send_buffer_size(UdpSockRef::from(&socket), SOCKET_BUFFER);
        let mut lp: *mut sys::uv_loop_s = ptr::null_mut();
        // SAFETY: plain Node-API calls with valid out-pointers.
        unsafe {
            if sys::napi_get_uv_event_loop(env, &mut lp) != sys::Status::napi_ok || lp.is_null() {
                return Err("no libuv loop for this environment".into());
            }
        }
        let mut name = ptr::null_mut();
        let mut ctx = ptr::null_mut();
        unsafe {
            sys::napi_create_string_utf8(env, c"peersock:io".as_ptr(), 11, &mut name);
            if sys::napi_async_init(env, ptr::null_mut(), name, &mut ctx) != sys::Status::napi_ok {
                return Err("napi_async_init failed".into());
            }
        }
        let poll = uv.alloc(UV_POLL);
        let timer = uv.alloc(UV_TIMER);
        #[cfg(unix)]
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        #[cfg(windows)]
        let fd = std::os::windows::io::AsRawSocket::as_raw_socket(&socket) as usize;
        // SAFETY: fresh zeroed handles of the right size on Node's loop; the
        // data pointer is the endpoint, valid until `close`.
        let rc = unsafe {
            let rc = (uv.poll_init_socket)(lp.cast(), poll, fd);
            if rc == 0 {
                (uv.timer_init)(lp.cast(), timer);
                (uv.handle_set_data)(poll, ep.cast());
                (uv.handle_set_data)(timer, ep.cast());
                (uv.poll_start)(poll, UV_READABLE, on_poll)
            } else {
                rc
            }
        };
        if rc != 0 {
            // SAFETY: see close(); a handle that failed init is just freed.
            unsafe {
                uv::free_poll(poll);
                uv::free_timer(timer);
                sys::napi_async_destroy(env, ctx);
            }
            return Err(format!("cannot watch the socket: {}", uv.error(rc)));
        }
        // A GSO run of up to GSO_MAX_BYTES, plus room for one more datagram
        // of the largest size: the one that ends a run by not fitting it
        // (drive_flush). Without GSO, one datagram at a time.
        let send_len = if state.max_gso_segments() > 1 {
            GSO_MAX_BYTES.max(max_payload) + max_payload
        } else {
            max_payload
        };
        Ok(Box::new(NativeIo {
            socket,
            state,
            env,
            callback,
            async_ctx: ctx,
            poll,
            timer,
            watching_writable: false,
            timer_at: None,
            recv_buf: vec![0; SLOT * BATCH_SIZE],
            meta: vec![RecvMeta::default(); BATCH_SIZE],
            send_buf: vec![0; send_len],
            pending: None,
            raw_in: VecDeque::new(),
            routed: VecDeque::new(),
            errors: Vec::new(),
            js_prefixes: Vec::new(),
            claimed: HashSet::new(),
            counters: IoCounters::default(),
        }))
    }

    pub(crate) fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    pub(crate) fn route_to_js(&mut self, net: IpAddr, len: u8) {
        if !self.js_prefixes.contains(&(net, len)) {
            self.js_prefixes.push((net, len));
        }
    }

    pub(crate) fn claim_source(&mut self, from: SocketAddr, claimed: bool) {
        if claimed {
            if self.claimed.len() < 4096 {
                self.claimed.insert(from);
            }
        } else {
            self.claimed.remove(&from);
        }
    }

    fn routed_to_js(&self, to: SocketAddr) -> bool {
        self.js_prefixes.iter().any(|&p| prefix_match(to.ip(), p))
    }

    pub(crate) fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    pub(crate) fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Sends one datagram now (non-QUIC, or routed back by JavaScript).
    pub(crate) fn send_to(&mut self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        let t = Transmit {
            destination: to,
            ecn: None,
            contents: data,
            segment_size: None,
            src_ip: None,
        };
        self.counters.send_calls += 1;
        match self.state.try_send(UdpSockRef::from(&self.socket), &t) {
            Ok(()) => {
                self.counters.datagrams_out += 1;
                Ok(())
            }
            // A full socket buffer drops the datagram, as the network may:
            // the caller (a punch, a relayed packet) already expects loss.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.counters.would_block += 1;
                Ok(())
            }
            Err(e) => {
                self.counters.send_errors += 1;
                Err(e)
            }
        }
    }

    /// Closes the handles (their memory is freed by libuv's close callbacks).
    pub(crate) fn close(&mut self) {
        let Ok(uv) = uv::uv() else { return };
        // SAFETY: the handles are live (initialised in `open`), closed once.
        unsafe {
            (uv.handle_set_data)(self.poll, ptr::null_mut());
            (uv.handle_set_data)(self.timer, ptr::null_mut());
            (uv.close)(self.poll, Some(uv::free_poll));
            (uv.close)(self.timer, Some(uv::free_timer));
            sys::napi_async_destroy(self.env, self.async_ctx);
            sys::napi_delete_reference(self.env, self.callback);
        }
        self.poll = ptr::null_mut();
        self.timer = ptr::null_mut();
    }
}

impl NativeEndpoint {
    /// Drains the socket into the core (bounded); non-QUIC datagrams are queued for JavaScript.
    pub(crate) fn io_read(&mut self) {
        let Some(io) = self.io.as_mut() else { return };
        let now = Instant::now();
        for _ in 0..READ_BATCHES {
            // On the stack: no allocation per system call.
            let mut chunks = io.recv_buf.chunks_mut(SLOT);
            let mut slices: [IoSliceMut<'_>; BATCH_SIZE] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
            io.counters.recv_calls += 1;
            let n = match io
                .state
                .recv(UdpSockRef::from(&io.socket), &mut slices, &mut io.meta)
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors surfacing as ECONNREFUSED and the like: nothing to read.
                Err(_) => break,
            };
            for i in 0..n {
                let m = io.meta[i];
                let slot = &mut io.recv_buf[i * SLOT..i * SLOT + m.len];
                let stride = if m.stride == 0 {
                    m.len.max(1)
                } else {
                    m.stride
                };
                // One lookup per received buffer, not per GRO segment.
                let claimed = !io.claimed.is_empty() && io.claimed.contains(&m.addr);
                for seg in slot.chunks_mut(stride) {
                    io.counters.datagrams_in += 1;
                    if seg.is_empty() || seg[0] & 0x40 == 0 || claimed {
                        if io.raw_in.len() < MAX_QUEUED {
                            io.raw_in.push_back((seg.to_vec(), m.addr));
                        }
                        continue;
                    }
                    self.ep.recv_at(seg, m.addr, now);
                }
            }
            if n < BATCH_SIZE {
                break;
            }
        }
    }

    /// What JavaScript has to do (`WORK_*` bits; 0: nothing, no call).
    pub(crate) fn io_work(&mut self) -> u32 {
        let mut w = 0;
        if self.held.is_some() || self.ep.has_events() {
            w |= WORK_EVENTS;
        }
        if let Some(io) = self.io.as_ref() {
            if !io.raw_in.is_empty() {
                w |= WORK_RAW;
            }
            if !io.routed.is_empty() {
                w |= WORK_ROUTED;
            }
            if !io.errors.is_empty() {
                w |= WORK_ERRORS;
            }
        }
        w
    }
}

/// `ioFlush` and `onWork`: events to take with `pollEvents`.
#[napi]
pub const WORK_EVENTS: u32 = 1;
/// Non-QUIC datagrams to take with `ioTakeRaw`.
#[napi]
pub const WORK_RAW: u32 = 2;
/// Datagrams for JavaScript to send, to take with `ioTakeRouted`.
#[napi]
pub const WORK_ROUTED: u32 = 4;
/// Failed sends, to take with `ioErrors`.
#[napi]
pub const WORK_ERRORS: u32 = 8;
