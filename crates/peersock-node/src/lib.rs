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
mod events;
mod hot;
mod info;
mod io;
mod netio;
mod netio_api;
mod streams;
mod uv;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use peersock_core::{Endpoint, Event, Identity, KEY_LEN};

use crate::addr::AddrTable;
use crate::convert::{
    config_from, core_err, dial_from, invalid, parse_addr, NativeDialOptions, NativeOptions,
};
use crate::events::{Bytes, NativeEvent};

/// One endpoint: all QUIC connections of one UDP socket.
#[napi]
pub struct NativeEndpoint {
    ep: Endpoint,
    addrs: AddrTable,
    /// An event that did not fit the caller's datagram buffer last time.
    held: Option<Event>,
    /// Code of the last reset/stop seen by `streamRecv`/`streamSend`.
    last_code: f64,
    /// The rare events of the last `pollEvents` (see `eventDetail`).
    details: Vec<Option<NativeEvent>>,
    /// Further local addresses (sockets a connection migrated to); index
    /// `i` here is local index `i + 1` (0 is the main address).
    locals: Vec<SocketAddr>,
    /// The native I/O driver, when this endpoint owns its socket.
    io: Option<Box<netio::NativeIo>>,
}

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
            io: None,
        })
    }

    /// This endpoint's public key (copied).
    #[napi(ts_return_type = "Uint8Array")]
    pub fn public_key(&self) -> Bytes {
        Bytes(self.ep.public_key().to_vec())
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
        self.ep.config().largest_udp_payload() as u32
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

    /// Dials whoever answers at `address:port`, learning its key from the
    /// handshake (`Connected` reports it) instead of pinning one; returns the
    /// connection handle. No session resumption.
    #[napi]
    pub fn connect_any(
        &mut self,
        address: String,
        port: u32,
        options: NativeDialOptions,
    ) -> Result<u32, String> {
        let addr = parse_addr(&address, port)?;
        let opts = dial_from(options)?;
        self.ep
            .connect_any_at(addr, &opts, Instant::now())
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

    pub(crate) fn local_index(&self, a: SocketAddr) -> u32 {
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
}

impl Drop for NativeEndpoint {
    fn drop(&mut self) {
        if let Some(mut io) = self.io.take() {
            io.close();
        }
        hot::forget(self as *mut NativeEndpoint);
    }
}

pub(crate) fn to_code(code: f64) -> Result<u64, String> {
    if code.is_finite() && code >= 0.0 && code.fract() == 0.0 && code < 4_611_686_018_427_387_904.0
    {
        Ok(code as u64)
    } else {
        Err(invalid("code must be an integer between 0 and 2^62-1"))
    }
}
