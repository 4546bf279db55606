//! The shapes that cross the boundary, declared once, here: the numbers of
//! the hot-path buffers (`flush`'s meta, `pollEvents`' slots) as exported
//! constants, and the rare events as a union discriminated by `kind`. napi-rs
//! emits both into `native/binding.d.ts` and the loader; the TypeScript side
//! imports them from there (through `src/native.ts`) and defines none itself.
//!
//! Keys and session tickets cross as bytes ([`Bytes`]: a copied Node
//! Buffer, never an external one, which Electron's memory cage forbids).

use std::net::SocketAddr;
use std::ptr;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use peersock_core::Event;

/// `flush`: numbers in `meta` before the per-datagram `[length, destination]` pairs.
#[napi]
pub const META_HEAD: u32 = 3;
/// `flush`: `meta[1]` bit set when `pollEvents` may have something.
#[napi]
pub const FLUSH_EVENTS: u32 = 1;
/// `flush`: `meta[1]` bit set when everything pending was sent (else call again).
#[napi]
pub const FLUSH_ALL_SENT: u32 = 2;
/// `flush`: `meta[2]` when no timer is due.
#[napi]
pub const NO_TIMEOUT: u32 = u32::MAX;

/// `pollEvents`: numbers per event, `[kind, conn, stream, code, offset, length]`.
#[napi]
pub const EV_SLOTS: u32 = 6;
/// `pollEvents` kind: a stream has data, a FIN or a reset to read (new peer streams first appear so).
#[napi]
pub const EV_READABLE: u32 = 1;
/// `pollEvents` kind: a stream whose write was cut short can take more.
#[napi]
pub const EV_WRITABLE: u32 = 2;
/// `pollEvents` kind: the peer sent STOP_SENDING (`code`).
#[napi]
pub const EV_STOPPED: u32 = 3;
/// `pollEvents` kind: a datagram, at `offset`/`length` of the caller's buffer
/// (its first byte is the channel tag).
#[napi]
pub const EV_DATAGRAM: u32 = 4;
/// `pollEvents` kind: a rare event; `offset` indexes `eventDetail`.
#[napi]
pub const EV_DETAIL: u32 = 5;

/// Bytes handed to JavaScript as a Node Buffer holding a copy (typed
/// `Uint8Array`).
pub struct Bytes(pub Vec<u8>);

impl ToNapiValue for Bytes {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let mut out = ptr::null_mut();
        let mut data = ptr::null_mut();
        // SAFETY: a plain Node-API call with valid out-pointers; the source
        // slice lives for the call.
        let status = unsafe {
            sys::napi_create_buffer_copy(
                env,
                val.0.len(),
                val.0.as_ptr().cast(),
                &mut data,
                &mut out,
            )
        };
        if status != sys::Status::napi_ok {
            return Err(Error::from_reason("cannot create a Buffer"));
        }
        Ok(out)
    }
}

impl TypeName for Bytes {
    fn type_name() -> &'static str {
        "Uint8Array"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

/// How a connection ended (`closed` events), one name per
/// `peersock_core::CloseKind`.
#[napi(string_enum = "snake_case")]
pub enum CloseKind {
    /// We closed it with an application code.
    Local,
    /// The peer closed it with an application code.
    Peer,
    /// We closed it for a protocol violation by the peer.
    LocalTransport,
    /// The peer closed it with a transport error.
    PeerTransport,
    /// No packet from the peer within the idle timeout.
    IdleTimeout,
    /// The handshake did not complete in time.
    HandshakeTimeout,
    /// The peer's key is not the one dialed.
    IdentityMismatch,
    /// The peer's certificate is not a single Ed25519 certificate.
    BadCertificate,
    /// The peer refused our credential during the handshake.
    PeerRejectedCredentials,
    /// The peer's accept hook or limits refused the connection.
    Refused,
    /// The peer answered with a stateless reset (it lost the connection).
    StatelessReset,
}

impl From<peersock_core::CloseKind> for CloseKind {
    fn from(k: peersock_core::CloseKind) -> CloseKind {
        use peersock_core::CloseKind as K;
        match k {
            K::Local => CloseKind::Local,
            K::Peer => CloseKind::Peer,
            K::LocalTransport => CloseKind::LocalTransport,
            K::PeerTransport => CloseKind::PeerTransport,
            K::IdleTimeout => CloseKind::IdleTimeout,
            K::HandshakeTimeout => CloseKind::HandshakeTimeout,
            K::IdentityMismatch => CloseKind::IdentityMismatch,
            K::BadCertificate => CloseKind::BadCertificate,
            K::PeerRejectedCredentials => CloseKind::PeerRejectedCredentials,
            K::Refused => CloseKind::Refused,
            K::StatelessReset => CloseKind::StatelessReset,
        }
    }
}

/// A rare event (the common ones cross as numbers, see `pollEvents`),
/// taken with `eventDetail`. `family` is 4 or 6.
#[napi(
    discriminant = "kind",
    discriminant_case = "lowercase",
    object_from_js = false
)]
pub enum NativeEvent {
    /// Accepting side: a peer completed the handshake and proved its key;
    /// call `accept` or `refuse`.
    Incoming {
        conn: u32,
        #[napi(ts_type = "Uint8Array")]
        remote_key: Bytes,
        address: String,
        port: u32,
        family: u32,
    },
    /// Dialing side: the peer proved the dialed key and accepted us.
    Connected {
        conn: u32,
        #[napi(ts_type = "Uint8Array")]
        remote_key: Bytes,
        address: String,
        port: u32,
        family: u32,
    },
    /// The peer now sends from another address.
    Path {
        conn: u32,
        address: String,
        port: u32,
        family: u32,
    },
    /// A session ticket for resuming with `remoteKey` later (0-RTT).
    Session {
        conn: u32,
        #[napi(ts_type = "Uint8Array")]
        remote_key: Bytes,
        #[napi(ts_type = "Uint8Array")]
        session: Bytes,
    },
    /// The connection is gone; its handle is dead from now on.
    Closed {
        conn: u32,
        close_kind: CloseKind,
        code: f64,
        reason: String,
        /// The key dialed (identity mismatch only).
        #[napi(ts_type = "Uint8Array")]
        expected_key: Option<Bytes>,
        /// The key the peer proved (identity mismatch only).
        #[napi(ts_type = "Uint8Array")]
        actual_key: Option<Bytes>,
    },
}

fn family(a: SocketAddr) -> u32 {
    if a.is_ipv4() {
        4
    } else {
        6
    }
}

impl NativeEvent {
    /// The rare event for a core event; `None` for the kinds that cross as
    /// numbers (stream readable, writable, stopped; datagram).
    pub fn from_event(ev: Event) -> Option<NativeEvent> {
        Some(match ev {
            Event::Incoming {
                conn,
                remote_key,
                remote_addr: a,
            } => NativeEvent::Incoming {
                conn,
                remote_key: Bytes(remote_key.to_vec()),
                address: a.ip().to_string(),
                port: a.port() as u32,
                family: family(a),
            },
            Event::Connected {
                conn,
                remote_key,
                remote_addr: a,
            } => NativeEvent::Connected {
                conn,
                remote_key: Bytes(remote_key.to_vec()),
                address: a.ip().to_string(),
                port: a.port() as u32,
                family: family(a),
            },
            Event::PathChanged {
                conn,
                remote_addr: a,
            } => NativeEvent::Path {
                conn,
                address: a.ip().to_string(),
                port: a.port() as u32,
                family: family(a),
            },
            Event::Session {
                conn,
                remote_key,
                session,
            } => NativeEvent::Session {
                conn,
                remote_key: Bytes(remote_key.to_vec()),
                session: Bytes(session),
            },
            Event::Closed { conn, reason } => NativeEvent::Closed {
                conn,
                close_kind: reason.kind.into(),
                code: reason.code as f64,
                reason: reason.reason,
                expected_key: reason.expected_key.map(|k| Bytes(k.to_vec())),
                actual_key: reason.actual_key.map(|k| Bytes(k.to_vec())),
            },
            Event::StreamReadable { .. }
            | Event::StreamWritable { .. }
            | Event::StreamStopped { .. }
            | Event::Datagram { .. } => return None,
        })
    }
}
