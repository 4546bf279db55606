//! Endpoint settings and the quiche/BoringSSL configuration built from them.

use std::time::Duration;

use boring::ssl::{SslContextBuilder, SslMethod, SslSignatureAlgorithm, SslVerifyMode, SslVersion};

use crate::error::{Error, Result};
use crate::identity::{verify_callback, FailureSlot, Identity, PublicKey};

/// ALPN of the peersock wire protocol; bump on incompatible changes.
pub const ALPN: &[u8] = b"peersock/1";

/// Length of the connection IDs this endpoint mints.
pub const CID_LEN: usize = 16;

/// Values below this encode as QUIC varints of at most 4 bytes.
const VARINT4: u64 = 1 << 30;
/// Stream limits stay 2-byte varints (one is raised by 1 for the control stream).
const MAX_STREAMS: u64 = (1 << 14) - 1;

/// Default `loopback_udp_payload` (see there).
pub const LOOPBACK_UDP_PAYLOAD: usize = if cfg!(target_vendor = "apple") {
    9216
} else {
    16383
};

/// Tunables of one endpoint. Every field has a sensible non-zero default.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Largest UDP payload sent (and advertised for receiving). With
    /// `discover_pmtu` it is the most path MTU discovery probes for.
    pub max_udp_payload: usize,
    /// Path MTU discovery (RFC 8899, quiche's): packets start at 1,200
    /// bytes and grow to the largest probe size the path carried, up to
    /// `max_udp_payload` (default on, see README "Packet size"). Off: every
    /// packet may be `max_udp_payload` bytes, and a narrower path drops them.
    pub discover_pmtu: bool,
    /// With `discover_pmtu`, the most discovery probes for toward a
    /// loopback peer (127.0.0.0/8, ::1) when that is above
    /// `max_udp_payload`: such a path never leaves the host, and its
    /// interface carries far more than an Ethernet link (Linux `lo`: 65,536
    /// bytes). Default 16,383, the most quiche puts in an established
    /// connection's packet; 9,216 on Apple systems (their default
    /// `net.inet.udp.maxdgram`). Ignored without `discover_pmtu`.
    pub loopback_udp_payload: usize,
    /// Close a connection after this long without any packet from the peer.
    pub idle_timeout: Duration,
    /// Send an ack-eliciting packet after this long without sending; `None`
    /// disables keep-alive.
    pub keep_alive: Option<Duration>,
    /// Give up on a handshake after this long (dials may override it).
    pub handshake_timeout: Duration,
    /// Connection-level receive window offered at the start.
    pub initial_max_data: u64,
    /// Receive window offered at the start to each bidirectional stream.
    pub initial_max_stream_data: u64,
    /// Receive window offered at the start to each unidirectional stream
    /// (the dispatch layer's messages travel on these). Smaller than the
    /// bidirectional one: a big message in flight then queues less in
    /// front of small ones; auto-tuning grows it where the path needs more.
    pub initial_max_stream_data_uni: u64,
    /// Upper bound of the auto-tuned connection window.
    pub max_connection_window: u64,
    /// Upper bound of the auto-tuned stream window.
    pub max_stream_window: u64,
    /// Concurrent bidirectional streams the peer may open.
    pub max_streams_bidi: u64,
    /// Concurrent unidirectional streams the peer may open.
    pub max_streams_uni: u64,
    /// Whether QUIC DATAGRAM frames are offered.
    pub datagrams: bool,
    /// Received datagrams queued before the oldest is dropped.
    pub datagram_recv_queue: usize,
    /// Datagrams queued for sending before new ones are refused.
    pub datagram_send_queue: usize,
    /// Connections (dialed and accepted) this endpoint holds at most.
    pub max_connections: usize,
    /// Handshakes in progress on the accepting side at most.
    pub max_pending_handshakes: usize,
    /// Validate every client's address with a Retry round trip before
    /// creating any state for it (costs one round trip per handshake).
    pub retry: bool,
    /// How long a retry token stays valid.
    pub retry_token_lifetime: Duration,
    /// Accept 0-RTT data from dialers resuming a session. Early data can be
    /// replayed by an attacker; only idempotent requests belong in it.
    pub early_data: bool,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            max_udp_payload: 1452,
            discover_pmtu: true,
            loopback_udp_payload: LOOPBACK_UDP_PAYLOAD,
            idle_timeout: Duration::from_secs(30),
            // Below the common 30 s UDP timeout of NATs and firewalls.
            keep_alive: Some(Duration::from_secs(15)),
            handshake_timeout: Duration::from_secs(10),
            initial_max_data: 4 * 1024 * 1024,
            initial_max_stream_data: 1024 * 1024,
            initial_max_stream_data_uni: 256 * 1024,
            max_connection_window: 24 * 1024 * 1024,
            max_stream_window: 16 * 1024 * 1024,
            max_streams_bidi: 128,
            max_streams_uni: 128,
            datagrams: true,
            datagram_recv_queue: 1024,
            datagram_send_queue: 1024,
            max_connections: 10_000,
            max_pending_handshakes: 2_000,
            retry: false,
            retry_token_lifetime: Duration::from_secs(10),
            early_data: false,
        }
    }
}

impl EndpointConfig {
    /// The largest UDP payload any connection of this endpoint may send or
    /// receive: what buffers are sized by.
    pub fn largest_udp_payload(&self) -> usize {
        if self.discover_pmtu {
            self.max_udp_payload.max(self.loopback_udp_payload)
        } else {
            self.max_udp_payload
        }
    }

    /// The largest UDP payload of a connection with a peer at `ip`:
    /// `largest_udp_payload` toward a loopback address, `max_udp_payload`
    /// elsewhere.
    pub fn udp_payload_toward(&self, ip: std::net::IpAddr) -> usize {
        if ip.to_canonical().is_loopback() {
            self.largest_udp_payload()
        } else {
            self.max_udp_payload
        }
    }

    /// Rejects settings quiche would misbehave with.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(m.into()));
        if !(1200..=65507).contains(&self.max_udp_payload) {
            return bad(
                "maxUdpPayload must be between 1200 and 65507 (the most an IPv4 datagram carries)",
            );
        }
        if !(1200..=65507).contains(&self.loopback_udp_payload) {
            // Only Rust callers set it apart from maxUdpPayload (JavaScript has no such option).
            return bad("EndpointConfig::loopback_udp_payload must be between 1200 and 65507");
        }
        if self.idle_timeout.is_zero()
            || self.handshake_timeout.is_zero()
            || self.retry_token_lifetime.is_zero()
        {
            return bad("timeouts must be positive");
        }
        if matches!(self.keep_alive, Some(k) if k.is_zero()) {
            return bad("keepAlive must be positive");
        }
        if self.initial_max_data == 0
            || self.initial_max_stream_data == 0
            || self.initial_max_stream_data_uni == 0
        {
            return bad("flow-control windows must be positive");
        }
        if self.max_connections == 0 || self.max_pending_handshakes == 0 {
            return bad("connection limits must be positive");
        }
        // quiche encodes the transport parameters into 128 bytes. With these
        // bounds every value is a varint of at most 4 bytes, and the worst
        // case (retry on, a client's 20-byte original DCID) is 127 bytes.
        if self.max_streams_bidi >= MAX_STREAMS || self.max_streams_uni >= MAX_STREAMS {
            return bad("stream limits must be below 16383");
        }
        if self.initial_max_data >= VARINT4
            || self.initial_max_stream_data >= VARINT4
            || self.initial_max_stream_data_uni >= VARINT4
        {
            return bad("initial flow-control windows must be below 1 GiB");
        }
        if self.idle_timeout.as_millis() >= VARINT4 as u128 {
            return bad("idleTimeout too large");
        }
        Ok(())
    }

    /// Builds a quiche config for one role. `pin` is the dialed key on the
    /// client side (`None` on the server side, and for a client dial that
    /// learns the key instead of pinning it); the verify verdict lands in
    /// `slot`. The server side
    /// accepts 0-RTT when `early_data` is set (the client side enables it
    /// per dial).
    pub(crate) fn quiche_config(
        &self,
        identity: &Identity,
        is_client: bool,
        pin: Option<PublicKey>,
        slot: FailureSlot,
        udp_payload: usize,
    ) -> Result<quiche::Config> {
        let tls = |e: boring::error::ErrorStack| Error::Tls(e.to_string());
        let mut ctx = SslContextBuilder::new(SslMethod::tls()).map_err(tls)?;
        ctx.set_min_proto_version(Some(SslVersion::TLS1_3))
            .map_err(tls)?;
        ctx.set_max_proto_version(Some(SslVersion::TLS1_3))
            .map_err(tls)?;
        ctx.set_certificate(&identity.cert).map_err(tls)?;
        ctx.set_private_key(&identity.pkey).map_err(tls)?;
        ctx.check_private_key().map_err(tls)?;
        // We sign with Ed25519 only. `set_sigalgs_list` sets the verify
        // preferences too, so it comes first.
        ctx.set_sigalgs_list("ed25519").map_err(tls)?;
        // BoringSSL leaves Ed25519 out of its verify preferences by default.
        // ECDSA and RSA-PSS are offered only so that a peer holding such a
        // certificate sends it and the verify callback rejects it with a
        // precise reason ("not Ed25519"), instead of the peer aborting with
        // a generic handshake failure; no such signature is ever checked,
        // because the callback runs before CertificateVerify.
        ctx.set_verify_algorithm_prefs(&[
            SslSignatureAlgorithm::ED25519,
            SslSignatureAlgorithm::ECDSA_SECP256R1_SHA256,
            SslSignatureAlgorithm::RSA_PSS_RSAE_SHA256,
        ])
        .map_err(tls)?;
        let mode = if is_client {
            SslVerifyMode::PEER
        } else {
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
        };
        ctx.set_custom_verify_callback(mode, verify_callback(pin, slot));

        // Never call `verify_peer` on the result: it would reset the callback.
        let mut c = quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, ctx)
            .map_err(|e| Error::Tls(e.to_string()))?;
        c.set_application_protos(&[ALPN])
            .map_err(|e| Error::Tls(e.to_string()))?;
        c.set_max_idle_timeout(self.idle_timeout.as_millis() as u64);
        c.set_max_recv_udp_payload_size(udp_payload);
        c.set_max_send_udp_payload_size(udp_payload);
        c.discover_pmtu(self.discover_pmtu);
        c.set_initial_max_data(self.initial_max_data);
        c.set_initial_max_stream_data_bidi_local(self.initial_max_stream_data);
        c.set_initial_max_stream_data_bidi_remote(self.initial_max_stream_data);
        c.set_initial_max_stream_data_uni(self.initial_max_stream_data_uni);
        c.set_initial_max_streams_bidi(self.max_streams_bidi);
        // One extra: the server's first unidirectional stream is peersock's
        // control stream.
        c.set_initial_max_streams_uni(self.max_streams_uni + 1);
        c.set_max_connection_window(self.max_connection_window);
        c.set_max_stream_window(self.max_stream_window);
        c.set_active_connection_id_limit(4);
        c.set_disable_active_migration(false);
        if self.datagrams {
            c.enable_dgram(true, self.datagram_recv_queue, self.datagram_send_queue);
        }
        if self.early_data && !is_client {
            c.enable_early_data();
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn loopback_peers_get_the_bigger_payload_only_with_discovery() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let c = EndpointConfig::default();
        assert_eq!(c.largest_udp_payload(), LOOPBACK_UDP_PAYLOAD);
        for lo in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(c.udp_payload_toward(ip(lo)), LOOPBACK_UDP_PAYLOAD, "{lo}");
        }
        for far in ["10.0.0.1", "192.0.2.7", "2001:db8::1", "::ffff:10.0.0.1"] {
            assert_eq!(c.udp_payload_toward(ip(far)), 1452, "{far}");
        }
        let off = EndpointConfig {
            discover_pmtu: false,
            ..EndpointConfig::default()
        };
        assert_eq!(off.largest_udp_payload(), 1452);
        assert_eq!(off.udp_payload_toward(ip("127.0.0.1")), 1452);
        let big = EndpointConfig {
            max_udp_payload: 30000,
            ..EndpointConfig::default()
        };
        assert_eq!(big.udp_payload_toward(ip("127.0.0.1")), 30000);
        assert_eq!(big.udp_payload_toward(ip("10.0.0.1")), 30000);
    }

    #[test]
    fn validate_names_the_field_a_rust_caller_set_out_of_range() {
        assert!(EndpointConfig::default().validate().is_ok());
        for bad in [1199, 65508] {
            let c = EndpointConfig {
                loopback_udp_payload: bad,
                ..EndpointConfig::default()
            };
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.contains("loopback_udp_payload"), "{msg}");
            let c = EndpointConfig {
                max_udp_payload: bad,
                ..EndpointConfig::default()
            };
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.contains("maxUdpPayload"), "{msg}");
        }
    }
}
