//! The endpoint's counters, and the reasons an incoming handshake is
//! refused (each counted on its own, so an operator can tell a port scan
//! speaking `h3` from an overloaded listener).

/// Counters of what the endpoint saw, for tests, benchmarks and operators.
/// Every field only grows; the names are stable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams handed to `recv`.
    pub datagrams_in: u64,
    /// Datagrams dropped without an answer (garbage, unknown connection,
    /// an Initial that does not decrypt, a bad retry token).
    pub dropped: u64,
    /// Connections accepted (handshake started) on this endpoint.
    pub accepted: u64,
    /// Incoming handshakes refused, all reasons: the sum of the
    /// `refused_*` counters below. Every refusal is sent to the dialer as
    /// a CONNECTION_CLOSE.
    pub refused: u64,
    /// Refused: the dialer offered no ALPN we speak (`no_application_protocol`,
    /// 0x178). Counted per Initial answered.
    pub refused_alpn: u64,
    /// Refused: TLS `handshake_failure` (0x128), which BoringSSL sends for a
    /// ClientHello without an Ed25519 signature algorithm (peersock signs
    /// with nothing else). Counted per Initial answered.
    pub refused_signature: u64,
    /// Refused: the dialer sent no certificate (`certificate_required`, 0x174).
    pub refused_no_cert: u64,
    /// Refused: the dialer's certificate is not one Ed25519 certificate, or
    /// its handshake signature does not match it (`bad_certificate` 0x12a,
    /// `decrypt_error` 0x133 and the other certificate alerts).
    pub refused_bad_cert: u64,
    /// Refused by the application's accept hook ([`crate::Endpoint::refuse`],
    /// CONNECTION_REFUSED 0x2).
    pub refused_by_app: u64,
    /// Refused at the first Initial because `max_connections` connections
    /// are held (CONNECTION_REFUSED 0x2, "server busy"), without state.
    pub refused_busy: u64,
    /// Refused at the first Initial because `max_pending_handshakes`
    /// handshakes are in progress (CONNECTION_REFUSED 0x2), without state.
    pub refused_pending: u64,
    /// Any other handshake the accepting side closed with an error before
    /// the application saw it: another TLS alert, a QUIC protocol violation.
    pub refused_other: u64,
    /// Stateless resets sent.
    pub resets_sent: u64,
    /// Retry packets sent (retry mode).
    pub retries_sent: u64,
    /// Initials dropped for a missing, forged, expired or moved token
    /// (retry mode), without creating state.
    pub invalid_tokens: u64,
}

/// TLS alerts as QUIC crypto errors (RFC 9001 §4.8: 0x100 + alert).
const CRYPTO: u64 = 0x100;
const HANDSHAKE_FAILURE: u64 = CRYPTO + 40;
const CERTIFICATE_REQUIRED: u64 = CRYPTO + 116;
const NO_APPLICATION_PROTOCOL: u64 = CRYPTO + 120;

/// Why an incoming handshake was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Alpn,
    Signature,
    NoCertificate,
    BadCertificate,
    Application,
    Busy,
    Pending,
    Other,
}

impl Refusal {
    /// The refusal a local close with `e` means, if it is one (a close
    /// without error or with an application code is not).
    pub fn from_error(e: &quiche::ConnectionError) -> Option<Refusal> {
        if e.is_app || e.error_code == 0 {
            return None;
        }
        Some(match e.error_code {
            NO_APPLICATION_PROTOCOL => Refusal::Alpn,
            HANDSHAKE_FAILURE => Refusal::Signature,
            CERTIFICATE_REQUIRED => Refusal::NoCertificate,
            // bad, unsupported, revoked, expired, unknown certificate;
            // decrypt_error (CertificateVerify by another key).
            c if matches!(c.checked_sub(CRYPTO), Some(42..=46 | 51)) => Refusal::BadCertificate,
            _ => Refusal::Other,
        })
    }
}

impl EndpointStats {
    /// Counts one refusal under `refused` and its own reason.
    pub(crate) fn count_refusal(&mut self, r: Refusal) {
        self.refused += 1;
        let field = match r {
            Refusal::Alpn => &mut self.refused_alpn,
            Refusal::Signature => &mut self.refused_signature,
            Refusal::NoCertificate => &mut self.refused_no_cert,
            Refusal::BadCertificate => &mut self.refused_bad_cert,
            Refusal::Application => &mut self.refused_by_app,
            Refusal::Busy => &mut self.refused_busy,
            Refusal::Pending => &mut self.refused_pending,
            Refusal::Other => &mut self.refused_other,
        };
        *field += 1;
    }
}
