//! Read-only figures: a connection's details and the endpoint's counters.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::core_err;
use crate::events::Bytes;
use crate::NativeEndpoint;

/// Connection details.
#[napi(object, object_from_js = false)]
pub struct NativeConnInfo {
    /// The peer's proven key (none before the handshake is done).
    #[napi(ts_type = "Uint8Array")]
    pub remote_key: Option<Bytes>,
    pub address: String,
    pub port: u32,
    pub family: u32,
    pub rtt_ms: f64,
    pub cwnd: f64,
    /// Largest UDP payload the path carries as far as known.
    pub pmtu: u32,
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
#[napi(object, object_from_js = false)]
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

#[napi]
impl NativeEndpoint {
    /// A connection's details.
    #[napi]
    pub fn conn_info(&self, conn: u32) -> Result<NativeConnInfo, String> {
        let i = self.ep.conn_info(conn).map_err(core_err)?;
        let local = self.ep.local_addr_of(conn).map_err(core_err)?;
        Ok(NativeConnInfo {
            remote_key: i.remote_key.map(|k| Bytes(k.to_vec())),
            address: i.remote_addr.ip().to_string(),
            port: i.remote_addr.port() as u32,
            family: if i.remote_addr.is_ipv4() { 4 } else { 6 },
            rtt_ms: i.rtt.as_secs_f64() * 1000.0,
            cwnd: i.cwnd as f64,
            pmtu: i.pmtu as u32,
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
    pub fn stats(&self) -> NativeStats {
        let s = self.ep.stats();
        NativeStats {
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
