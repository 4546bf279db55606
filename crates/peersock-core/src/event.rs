//! What the endpoint tells its driver after input: drained with
//! [`crate::Endpoint::poll_event`] once the outgoing datagrams are flushed.

use std::net::SocketAddr;

use crate::identity::PublicKey;

/// Names one connection of an endpoint; never reused within the endpoint.
pub type ConnHandle = u32;

/// Something the application must hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Accepting side: a peer completed the handshake and proved its key.
    /// Call [`crate::Endpoint::accept`] or [`crate::Endpoint::refuse`].
    Incoming {
        conn: ConnHandle,
        remote_key: PublicKey,
        remote_addr: SocketAddr,
    },
    /// Dialing side: the peer proved the dialed key and accepted us.
    Connected {
        conn: ConnHandle,
        remote_key: PublicKey,
        remote_addr: SocketAddr,
    },
    /// A stream has data, a FIN or a reset to read; new peer streams first
    /// appear here.
    StreamReadable { conn: ConnHandle, stream: u64 },
    /// A stream whose write was cut short can take more data.
    StreamWritable { conn: ConnHandle, stream: u64 },
    /// The peer asked us to stop sending on a stream (STOP_SENDING).
    StreamStopped {
        conn: ConnHandle,
        stream: u64,
        code: u64,
    },
    /// An unreliable datagram arrived.
    Datagram { conn: ConnHandle, data: Vec<u8> },
    /// The peer now sends from another address (NAT rebinding, migration).
    PathChanged {
        conn: ConnHandle,
        remote_addr: SocketAddr,
    },
    /// Dialing side: the peer gave a session ticket. Pass `session` to a
    /// later dial of `remote_key` ([`crate::DialOptions`]) to resume with
    /// 0-RTT; use it for no other key.
    Session {
        conn: ConnHandle,
        remote_key: PublicKey,
        session: Vec<u8>,
    },
    /// The connection is gone; its handle is dead from now on.
    Closed {
        conn: ConnHandle,
        reason: CloseReason,
    },
}

impl Event {
    /// The connection the event is about.
    pub fn conn(&self) -> ConnHandle {
        match self {
            Event::Incoming { conn, .. }
            | Event::Connected { conn, .. }
            | Event::StreamReadable { conn, .. }
            | Event::StreamWritable { conn, .. }
            | Event::StreamStopped { conn, .. }
            | Event::Datagram { conn, .. }
            | Event::PathChanged { conn, .. }
            | Event::Session { conn, .. }
            | Event::Closed { conn, .. } => *conn,
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// What kind of end it was.
    pub kind: CloseKind,
    /// The application or transport error code, where there is one.
    pub code: u64,
    /// The reason phrase sent with the close, or a description.
    pub reason: String,
    /// The key the dialer expected (identity mismatch only).
    pub expected_key: Option<PublicKey>,
    /// The key the peer presented (identity mismatch only).
    pub actual_key: Option<PublicKey>,
}

/// The kinds of connection end, each with a stable string for JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The peer answered with a stateless reset: it lost the connection's
    /// state (it restarted, or it never had the connection).
    StatelessReset,
}

impl CloseKind {
    /// The stable string the binding hands to JavaScript.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseKind::Local => "local",
            CloseKind::Peer => "peer",
            CloseKind::LocalTransport => "local_transport",
            CloseKind::PeerTransport => "peer_transport",
            CloseKind::IdleTimeout => "idle_timeout",
            CloseKind::HandshakeTimeout => "handshake_timeout",
            CloseKind::IdentityMismatch => "identity_mismatch",
            CloseKind::BadCertificate => "bad_certificate",
            CloseKind::PeerRejectedCredentials => "peer_rejected_credentials",
            CloseKind::Refused => "refused",
            CloseKind::StatelessReset => "stateless_reset",
        }
    }
}

impl CloseReason {
    pub(crate) fn new(kind: CloseKind, code: u64, reason: impl Into<String>) -> CloseReason {
        CloseReason {
            kind,
            code,
            reason: reason.into(),
            expected_key: None,
            actual_key: None,
        }
    }
}
