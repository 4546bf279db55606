//! Why a connection ended, worked out from the most specific cause down:
//! a decision of ours outside quiche, the verify callback's verdict, the
//! peer's close, our close, a timeout.

use crate::conn::Conn;
use crate::event::{CloseKind, CloseReason};
use crate::identity::IdentityFailure;
use crate::refuse::CONNECTION_REFUSED;

impl Conn {
    /// Works out why the connection ended, from the most specific cause down.
    pub fn close_reason(&self) -> CloseReason {
        if let Some(r) = &self.close_override {
            return r.clone();
        }
        if let Some(f) = self.slot.lock().ok().and_then(|s| s.clone()) {
            return match f {
                IdentityFailure::Mismatch { expected, actual } => CloseReason {
                    expected_key: Some(expected),
                    actual_key: Some(actual),
                    ..CloseReason::new(
                        CloseKind::IdentityMismatch,
                        0,
                        "peer's key is not the dialed key",
                    )
                },
                IdentityFailure::BadCertificate(m) => {
                    CloseReason::new(CloseKind::BadCertificate, 0, m)
                }
            };
        }
        let text = |r: &[u8]| String::from_utf8_lossy(r).into_owned();
        if let Some(e) = self.q.peer_error() {
            let reason = text(&e.reason);
            if e.is_app {
                return CloseReason::new(CloseKind::Peer, e.error_code, reason);
            }
            if e.error_code == CONNECTION_REFUSED && !self.was_open {
                return CloseReason::new(CloseKind::Refused, e.error_code, reason);
            }
            if (0x100..0x200).contains(&e.error_code) && !self.was_open {
                return CloseReason::new(CloseKind::PeerRejectedCredentials, e.error_code, reason);
            }
            return CloseReason::new(CloseKind::PeerTransport, e.error_code, reason);
        }
        if let Some(e) = self.q.local_error() {
            // BoringSSL's own verdicts on the peer's credential (a handshake
            // signature that does not match the certificate's key, no
            // certificate at all) come as TLS alerts, not through the
            // verify callback.
            if !e.is_app && !self.was_open && is_credential_alert(e.error_code) {
                let m = format!(
                    "peer's credential failed TLS verification (alert {})",
                    e.error_code - 0x100
                );
                return CloseReason::new(CloseKind::BadCertificate, e.error_code, m);
            }
            let kind = if e.is_app {
                CloseKind::Local
            } else {
                CloseKind::LocalTransport
            };
            return CloseReason::new(kind, e.error_code, text(&e.reason));
        }
        if self.q.is_timed_out() {
            if self.was_open || self.q.is_established() {
                return CloseReason::new(CloseKind::IdleTimeout, 0, "idle timeout");
            }
            return CloseReason::new(CloseKind::HandshakeTimeout, 0, "handshake timed out");
        }
        CloseReason::new(CloseKind::LocalTransport, 0, "connection closed")
    }
}

/// QUIC crypto errors (0x100 + TLS alert) that mean "your credential is no
/// good": bad/unsupported/unknown certificate, a signature that does not
/// verify (decrypt_error), or no certificate where one is required.
fn is_credential_alert(code: u64) -> bool {
    matches!(code.checked_sub(0x100), Some(42..=46 | 51 | 116))
}
