//! Conversions between JavaScript values and peersock-core types.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use peersock_core::EndpointConfig;

/// Endpoint options as JavaScript passes them (all optional).
#[napi(object)]
#[derive(Default)]
pub struct NativeOptions {
    pub max_udp_payload: Option<u32>,
    /// Path MTU discovery up to `max_udp_payload` (default on).
    pub pmtu_discovery: Option<bool>,
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
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct NativeDialOptions {
    pub handshake_timeout_ms: Option<f64>,
    /// A session ticket from a `session` event of the same key.
    pub session: Option<Uint8Array>,
    /// Send early (0-RTT) data when the session allows it.
    pub early_data: Option<bool>,
    /// Keep-alive of this connection in ms; 0 turns it off.
    pub keep_alive_ms: Option<f64>,
    /// The caller routes this connection's packets (an introduced peer's
    /// virtual address): authentic packets from other addresses are taken
    /// and reported as `path` events.
    pub follow_peer: Option<bool>,
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
        Some(s) if s.len() > MAX_SESSION => return Err(invalid("session ticket too large")),
        s => s.map(|s| s.to_vec()),
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

/// Largest session ticket taken back from JavaScript.
const MAX_SESSION: usize = 32 * 1024;

pub fn config_from(o: NativeOptions) -> Result<EndpointConfig, String> {
    let d = EndpointConfig::default();
    let c = EndpointConfig {
        max_udp_payload: o
            .max_udp_payload
            .map(|v| v as usize)
            .unwrap_or(d.max_udp_payload),
        discover_pmtu: o.pmtu_discovery.unwrap_or(d.discover_pmtu),
        // A maxUdpPayload set by the application holds toward every peer;
        // unset, loopback peers may get bigger packets.
        loopback_udp_payload: o
            .max_udp_payload
            .map(|v| v as usize)
            .unwrap_or(d.loopback_udp_payload),
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
