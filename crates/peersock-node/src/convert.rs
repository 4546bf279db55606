//! Conversions between JavaScript values and peersock-core types.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use peersock_core::{EndpointConfig, Event};

/// Endpoint options as JavaScript passes them (all optional).
#[napi(object)]
#[derive(Default)]
pub struct NativeOptions {
    pub max_udp_payload: Option<u32>,
    pub idle_timeout_ms: Option<f64>,
    pub keep_alive_ms: Option<f64>,
    pub handshake_timeout_ms: Option<f64>,
    pub initial_max_data: Option<f64>,
    pub initial_max_stream_data: Option<f64>,
    pub initial_max_stream_data_uni: Option<f64>,
    pub max_connection_window: Option<f64>,
    pub max_stream_window: Option<f64>,
    pub max_streams_bidi: Option<f64>,
    pub max_streams_uni: Option<f64>,
    pub datagrams: Option<bool>,
    pub datagram_recv_queue: Option<u32>,
    pub datagram_send_queue: Option<u32>,
    pub max_connections: Option<u32>,
    pub max_pending_handshakes: Option<u32>,
    /// Validate client addresses with a Retry round trip (default off).
    pub retry: Option<bool>,
    /// Accept 0-RTT data from dialers resuming a session (default off).
    pub early_data: Option<bool>,
}

/// Per-dial options of `connectWith`.
#[napi(object)]
#[derive(Default)]
pub struct NativeDialOptions {
    pub handshake_timeout_ms: Option<f64>,
    /// A session (hex) from a `session` event of the same key.
    pub session: Option<String>,
    /// Send early (0-RTT) data when the session allows it.
    pub early_data: Option<bool>,
    /// Keep-alive of this connection in ms; 0 turns it off.
    pub keep_alive_ms: Option<f64>,
    /// The caller routes this connection's packets (an introduced peer's
    /// virtual address): authentic packets from other addresses are taken
    /// and reported as `path` events.
    pub follow_peer: Option<bool>,
}

/// One event for JavaScript; which fields are set depends on `kind`.
#[napi(object)]
pub struct NativeEvent {
    /// incoming | connected | readable | writable | stopped | datagram |
    /// path | closed
    pub kind: String,
    pub conn: u32,
    pub stream: Option<f64>,
    pub code: Option<f64>,
    /// Datagram payload position in the caller's buffer.
    pub offset: Option<u32>,
    pub length: Option<u32>,
    pub remote_key: Option<String>,
    pub address: Option<String>,
    pub port: Option<u32>,
    pub family: Option<u32>,
    pub close_kind: Option<String>,
    pub reason: Option<String>,
    pub expected_key: Option<String>,
    pub actual_key: Option<String>,
    /// `session`: the session ticket, hex.
    pub session: Option<String>,
}

/// Connection details.
#[napi(object)]
pub struct NativeConnInfo {
    pub remote_key: Option<String>,
    pub address: String,
    pub port: u32,
    pub family: u32,
    pub rtt_ms: f64,
    pub cwnd: f64,
    pub sent_packets: f64,
    pub recv_packets: f64,
    pub lost_packets: f64,
    pub sent_bytes: f64,
    pub recv_bytes: f64,
    /// The handshake resumed a session.
    pub resumed: bool,
    /// Dialed with early data: may send before the handshake completes.
    pub early: bool,
    /// The peer accepted our 0-RTT data.
    pub early_data_accepted: bool,
    /// The local address this connection sends from.
    pub local_address: String,
    pub local_port: u32,
}

/// Endpoint counters (see `peersock_core::EndpointStats` for each one).
#[napi(object)]
pub struct NativeStats {
    pub connections: u32,
    pub datagrams_in: f64,
    pub dropped: f64,
    pub accepted: f64,
    /// Incoming handshakes refused, all reasons (the sum of `refused*`).
    pub refused: f64,
    /// Refused: no common ALPN (0x178).
    pub refused_alpn: f64,
    /// Refused: handshake_failure (0x128), no Ed25519 signature algorithm.
    pub refused_signature: f64,
    /// Refused: no client certificate (0x174).
    pub refused_no_cert: f64,
    /// Refused: not one Ed25519 certificate, or a signature by another key.
    pub refused_bad_cert: f64,
    /// Refused by the accept hook (CONNECTION_REFUSED).
    pub refused_by_app: f64,
    /// Refused: `maxConnections` reached (CONNECTION_REFUSED).
    pub refused_busy: f64,
    /// Refused: `maxPendingHandshakes` reached (CONNECTION_REFUSED).
    pub refused_pending: f64,
    /// Refused: any other handshake error of ours.
    pub refused_other: f64,
    pub resets_sent: f64,
    /// Retry packets sent (retry mode).
    pub retries_sent: f64,
    /// Initials dropped at the token check (retry mode): forged, expired or moved tokens.
    pub invalid_tokens: f64,
}

impl NativeEvent {
    fn base(kind: &str, conn: u32) -> NativeEvent {
        NativeEvent {
            kind: kind.into(),
            conn,
            stream: None,
            code: None,
            offset: None,
            length: None,
            remote_key: None,
            address: None,
            port: None,
            family: None,
            close_kind: None,
            reason: None,
            expected_key: None,
            actual_key: None,
            session: None,
        }
    }

    fn with_addr(mut self, a: SocketAddr) -> NativeEvent {
        self.address = Some(a.ip().to_string());
        self.port = Some(a.port() as u32);
        self.family = Some(if a.is_ipv4() { 4 } else { 6 });
        self
    }

    pub fn from_event(ev: Event) -> NativeEvent {
        match ev {
            Event::Incoming {
                conn,
                remote_key,
                remote_addr,
            } => NativeEvent {
                remote_key: Some(hex(&remote_key)),
                ..NativeEvent::base("incoming", conn)
            }
            .with_addr(remote_addr),
            Event::Connected {
                conn,
                remote_key,
                remote_addr,
            } => NativeEvent {
                remote_key: Some(hex(&remote_key)),
                ..NativeEvent::base("connected", conn)
            }
            .with_addr(remote_addr),
            Event::StreamReadable { conn, stream } => NativeEvent {
                stream: Some(stream as f64),
                ..NativeEvent::base("readable", conn)
            },
            Event::StreamWritable { conn, stream } => NativeEvent {
                stream: Some(stream as f64),
                ..NativeEvent::base("writable", conn)
            },
            Event::StreamStopped { conn, stream, code } => NativeEvent {
                stream: Some(stream as f64),
                code: Some(code as f64),
                ..NativeEvent::base("stopped", conn)
            },
            Event::Datagram { conn, .. } => NativeEvent::base("datagram", conn),
            Event::PathChanged { conn, remote_addr } => {
                NativeEvent::base("path", conn).with_addr(remote_addr)
            }
            Event::Session {
                conn,
                remote_key,
                session,
            } => NativeEvent {
                remote_key: Some(hex(&remote_key)),
                session: Some(hex(&session)),
                ..NativeEvent::base("session", conn)
            },
            Event::Closed { conn, reason } => NativeEvent {
                code: Some(reason.code as f64),
                close_kind: Some(reason.kind.as_str().into()),
                reason: Some(reason.reason),
                expected_key: reason.expected_key.map(|k| hex(&k)),
                actual_key: reason.actual_key.map(|k| hex(&k)),
                ..NativeEvent::base("closed", conn)
            },
        }
    }
}

/// A core error as a JavaScript error whose `code` is the core's stable code.
pub fn core_err(e: peersock_core::Error) -> Error<String> {
    Error::new(e.code().to_string(), e.to_string())
}

/// An invalid-argument error raised by the binding's own checks.
pub fn invalid(msg: &str) -> Error<String> {
    core_err(peersock_core::Error::InvalidArgument(msg.into()))
}

pub fn parse_addr(address: &str, port: u32) -> Result<SocketAddr, String> {
    let ip: IpAddr = address
        .parse()
        .map_err(|_| invalid("address must be an IP literal"))?;
    let port = u16::try_from(port).map_err(|_| invalid("port must be 0..65535"))?;
    Ok(SocketAddr::new(ip, port))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn ms(v: Option<f64>, default: Duration, name: &str) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x > 0.0 => Ok(Duration::from_secs_f64(x / 1000.0)),
        Some(_) => Err(invalid(&format!(
            "{name} must be a positive number of milliseconds"
        ))),
    }
}

fn count(v: Option<f64>, default: u64, name: &str) -> Result<u64, String> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 9.0e15 => Ok(x as u64),
        Some(_) => Err(invalid(&format!("{name} must be a non-negative integer"))),
    }
}

/// Per-dial options from JavaScript's.
pub fn dial_from(o: NativeDialOptions) -> Result<peersock_core::DialOptions, String> {
    let session = match o.session {
        None => None,
        Some(h) => Some(unhex(&h).ok_or_else(|| invalid("session must be hex"))?),
    };
    Ok(peersock_core::DialOptions {
        handshake_timeout: match o.handshake_timeout_ms {
            None => None,
            v => Some(ms(v, Duration::ZERO, "timeout")?),
        },
        session,
        early_data: o.early_data.unwrap_or(false),
        keep_alive: match o.keep_alive_ms {
            None => None,
            Some(0.0) => Some(None),
            v => Some(Some(ms(v, Duration::ZERO, "keepAlive")?)),
        },
        follow_peer: o.follow_peer.unwrap_or(false),
    })
}

fn unhex(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) || h.len() > 64 * 1024 {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn config_from(o: NativeOptions) -> Result<EndpointConfig, String> {
    let d = EndpointConfig::default();
    let c = EndpointConfig {
        max_udp_payload: o
            .max_udp_payload
            .map(|v| v as usize)
            .unwrap_or(d.max_udp_payload),
        idle_timeout: ms(o.idle_timeout_ms, d.idle_timeout, "idleTimeout")?,
        keep_alive: match o.keep_alive_ms {
            None => d.keep_alive,
            Some(0.0) => None,
            v => Some(ms(v, Duration::ZERO, "keepAlive")?),
        },
        handshake_timeout: ms(
            o.handshake_timeout_ms,
            d.handshake_timeout,
            "handshakeTimeout",
        )?,
        initial_max_data: count(o.initial_max_data, d.initial_max_data, "initialMaxData")?,
        initial_max_stream_data: count(
            o.initial_max_stream_data,
            d.initial_max_stream_data,
            "initialMaxStreamData",
        )?,
        initial_max_stream_data_uni: count(
            o.initial_max_stream_data_uni,
            d.initial_max_stream_data_uni,
            "initialMaxStreamDataUni",
        )?,
        max_connection_window: count(
            o.max_connection_window,
            d.max_connection_window,
            "maxConnectionWindow",
        )?,
        max_stream_window: count(o.max_stream_window, d.max_stream_window, "maxStreamWindow")?,
        max_streams_bidi: count(o.max_streams_bidi, d.max_streams_bidi, "maxStreamsBidi")?,
        max_streams_uni: count(o.max_streams_uni, d.max_streams_uni, "maxStreamsUni")?,
        datagrams: o.datagrams.unwrap_or(d.datagrams),
        datagram_recv_queue: o
            .datagram_recv_queue
            .map(|v| v as usize)
            .unwrap_or(d.datagram_recv_queue),
        datagram_send_queue: o
            .datagram_send_queue
            .map(|v| v as usize)
            .unwrap_or(d.datagram_send_queue),
        max_connections: o
            .max_connections
            .map(|v| v as usize)
            .unwrap_or(d.max_connections),
        max_pending_handshakes: o
            .max_pending_handshakes
            .map(|v| v as usize)
            .unwrap_or(d.max_pending_handshakes),
        retry: o.retry.unwrap_or(d.retry),
        retry_token_lifetime: d.retry_token_lifetime,
        early_data: o.early_data.unwrap_or(d.early_data),
    };
    c.validate().map_err(core_err)?;
    Ok(c)
}
