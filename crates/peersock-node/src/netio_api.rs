//! JavaScript's side of the native I/O driver (see `netio.rs`): open the
//! socket, flush after JavaScript queued something, take what the driver
//! left for it, send a datagram, close.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::convert::{invalid, parse_addr};
use crate::netio::NativeIo;
use crate::NativeEndpoint;

/// A send the native driver could not make (a lost packet).
#[napi(object, object_from_js = false)]
pub struct NativeIoError {
    pub address: String,
    pub port: u32,
    pub message: String,
}

/// Counters of the native I/O driver.
#[napi(object, object_from_js = false)]
pub struct NativeIoStats {
    /// recvmmsg/recvmsg calls.
    pub recv_calls: f64,
    pub datagrams_in: f64,
    /// sendmsg calls (one per GSO run).
    pub send_calls: f64,
    pub datagrams_out: f64,
    /// Calls into JavaScript.
    pub js_calls: f64,
    pub send_errors: f64,
    /// Sends that met a full socket buffer.
    pub would_block: f64,
    /// Datagrams per sendmsg the kernel takes (1: no GSO).
    pub max_gso_segments: u32,
    /// Datagrams per received buffer (1: no GRO).
    pub gro_segments: u32,
}

fn io_err(e: std::io::Error) -> Error<String> {
    Error::new("IO".to_string(), e.to_string())
}

/// A non-blocking UDP socket bound at `addr` (dual-stack when it is `::`).
fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        // Like node:dgram's 'udp6' by default: IPv4-mapped peers too.
        let _ = s.set_only_v6(false);
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

#[napi]
impl NativeEndpoint {
    /// Opens the native I/O driver: binds a UDP socket at `address:port`,
    /// watches it on Node's loop, and calls `onWork(work)` when JavaScript
    /// has something to do: `work` has a `WORK_*` bit for each of events
    /// (`pollEvents`), `ioTakeRaw`, `ioTakeRouted` and `ioErrors`.
    /// Returns the bound `[address, port]`.
    #[napi(ts_args_type = "address: string, port: number, onWork: (work: number) => void")]
    pub fn io_open(
        &mut self,
        env: Env,
        address: String,
        port: u32,
        on_work: Unknown,
    ) -> Result<(String, u32), String> {
        if self.io.is_some() {
            return Err(invalid("the native driver is already open"));
        }
        if on_work.get_type().map_err(|e| invalid(&e.to_string()))? != ValueType::Function {
            return Err(invalid("onWork must be a function"));
        }
        let socket = bind(parse_addr(&address, port)?).map_err(io_err)?;
        let local = socket.local_addr().map_err(io_err)?;
        let mut cb = std::ptr::null_mut();
        // SAFETY: a strong reference to the callback, deleted in NativeIo::close.
        if unsafe { sys::napi_create_reference(env.raw(), on_work.raw(), 1, &mut cb) }
            != sys::Status::napi_ok
        {
            return Err(invalid("cannot keep the callback"));
        }
        let max = self.ep.config().largest_udp_payload();
        let me = self as *mut NativeEndpoint;
        match NativeIo::open(socket, env.raw(), cb, me, max) {
            Ok(io) => self.io = Some(io),
            Err(msg) => {
                unsafe { sys::napi_delete_reference(env.raw(), cb) };
                return Err(Error::new("IO".to_string(), msg));
            }
        }
        self.ep.set_local_addr(local);
        Ok((local.ip().to_string(), local.port() as u32))
    }

    /// Sends what the core has queued and re-arms the timer; returns what
    /// JavaScript has to take or poll (`WORK_*` bits, 0 for nothing).
    #[napi]
    pub fn io_flush(&mut self) -> u32 {
        self.drive_flush();
        self.io_work()
    }

    /// Moves queued non-QUIC datagrams into `buf`: `meta[2i]` the length,
    /// `meta[2i + 1]` the sender's address id (see `address`). Returns the count.
    #[napi]
    pub fn io_take_raw(
        &mut self,
        mut buf: Uint8ArraySlice<'_>,
        mut meta: Uint32ArraySlice<'_>,
    ) -> u32 {
        // SAFETY: JavaScript is blocked in this call; nothing else touches the arrays.
        let (buf, meta) = unsafe { (buf.as_mut(), meta.as_mut()) };
        let Some(io) = self.io.as_mut() else { return 0 };
        let (mut off, mut n) = (0usize, 0usize);
        while let Some((d, from)) = io.raw_in.front() {
            if off + d.len() > buf.len() || 2 * n + 1 >= meta.len() {
                break;
            }
            buf[off..off + d.len()].copy_from_slice(d);
            meta[2 * n] = d.len() as u32;
            meta[2 * n + 1] = self.addrs.id((*from, 0));
            off += d.len();
            n += 1;
            io.raw_in.pop_front();
        }
        n as u32
    }

    /// Moves datagrams JavaScript must send itself (to a routed prefix, or
    /// from another local socket) into `buf`: `meta[2i]` the length,
    /// `meta[2i + 1]` the destination id (see `address`). Returns the count.
    #[napi]
    pub fn io_take_routed(
        &mut self,
        mut buf: Uint8ArraySlice<'_>,
        mut meta: Uint32ArraySlice<'_>,
    ) -> u32 {
        // SAFETY: JavaScript is blocked in this call; nothing else touches the arrays.
        let (buf, meta) = unsafe { (buf.as_mut(), meta.as_mut()) };
        let (mut off, mut n) = (0usize, 0usize);
        while let Some((d, to, from)) = self.io.as_mut().and_then(|io| io.routed.front()) {
            if off + d.len() > buf.len() || 2 * n + 1 >= meta.len() {
                break;
            }
            let (d, to, from) = (d.clone(), *to, *from);
            if let Some(io) = self.io.as_mut() {
                io.routed.pop_front();
            }
            buf[off..off + d.len()].copy_from_slice(&d);
            let local = self.local_index(from);
            meta[2 * n] = d.len() as u32;
            meta[2 * n + 1] = self.addrs.id((to, local));
            off += d.len();
            n += 1;
        }
        n as u32
    }

    /// Sends that failed since the last call (lost packets).
    #[napi]
    pub fn io_errors(&mut self) -> Vec<NativeIoError> {
        let Some(io) = self.io.as_mut() else {
            return Vec::new();
        };
        io.errors
            .drain(..)
            .map(|(a, message)| NativeIoError {
                address: a.ip().to_string(),
                port: a.port() as u32,
                message,
            })
            .collect()
    }

    /// Sends one datagram from the driver's socket now (non-QUIC, or a
    /// datagram JavaScript routed). Throws (code `IO`) when the socket
    /// refuses it, a full buffer included.
    #[napi]
    pub fn io_send_to(&mut self, data: &[u8], address: String, port: u32) -> Result<(), String> {
        let to = parse_addr(&address, port)?;
        let io = self
            .io
            .as_mut()
            .ok_or_else(|| invalid("the native driver is not open"))?;
        io.send_to(data, to).map_err(io_err)
    }

    /// Sets the TTL (IPv4) or hop limit (IPv6) of the driver's outgoing datagrams.
    #[napi]
    pub fn io_set_ttl(&mut self, ttl: u32) -> Result<(), String> {
        let io = self
            .io
            .as_ref()
            .ok_or_else(|| invalid("the native driver is not open"))?;
        if !(1..=255).contains(&ttl) {
            return Err(invalid("ttl must be 1..255"));
        }
        let s = socket2::SockRef::from(io.socket());
        let r = if io.socket().local_addr().map_err(io_err)?.is_ipv6() {
            s.set_unicast_hops_v6(ttl)
        } else {
            s.set_ttl_v4(ttl)
        };
        r.map_err(io_err)
    }

    /// Datagrams to `address/prefixLen` are handed to JavaScript
    /// (`ioTakeRouted`) instead of being sent by the driver.
    #[napi]
    pub fn io_route_to_js(&mut self, address: String, prefix_len: u32) -> Result<(), String> {
        let ip: IpAddr = address
            .parse()
            .map_err(|_| invalid("address must be an IP literal"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(invalid("prefix length out of range"));
        }
        let io = self
            .io
            .as_mut()
            .ok_or_else(|| invalid("the native driver is not open"))?;
        io.route_to_js(ip, prefix_len as u8);
        Ok(())
    }

    /// QUIC packets from `address:port` go to JavaScript (`ioTakeRaw`)
    /// while claimed, for a transport above that translates their source.
    #[napi]
    pub fn io_claim_source(
        &mut self,
        address: String,
        port: u32,
        claimed: bool,
    ) -> Result<(), String> {
        let from = parse_addr(&address, port)?;
        let io = self
            .io
            .as_mut()
            .ok_or_else(|| invalid("the native driver is not open"))?;
        io.claim_source(from, claimed);
        Ok(())
    }

    /// The driver's counters (null when it is not open).
    #[napi]
    pub fn io_stats(&self) -> Option<NativeIoStats> {
        self.io.as_ref().map(|io| {
            let c = io.counters;
            NativeIoStats {
                recv_calls: c.recv_calls as f64,
                datagrams_in: c.datagrams_in as f64,
                send_calls: c.send_calls as f64,
                datagrams_out: c.datagrams_out as f64,
                js_calls: c.js_calls as f64,
                send_errors: c.send_errors as f64,
                would_block: c.would_block as f64,
                max_gso_segments: io.max_gso_segments() as u32,
                gro_segments: io.gro_segments() as u32,
            }
        })
    }

    /// Closes the driver's socket and handles (idempotent).
    #[napi]
    pub fn io_close(&mut self) {
        if let Some(mut io) = self.io.take() {
            io.close();
        }
    }
}
