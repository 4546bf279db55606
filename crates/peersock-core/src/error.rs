//! One error type for every fallible call of the core, each with a stable
//! `code()` string that the binding passes to JavaScript unchanged.

use std::fmt;

/// Errors returned by [`crate::Endpoint`] calls. Peer misbehaviour never
/// shows up here: it closes the affected connection and is reported through
/// [`crate::Event::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A caller-supplied value is out of range or malformed.
    InvalidArgument(String),
    /// The connection handle does not name a live connection.
    UnknownConnection,
    /// The connection is closing or closed.
    Closed,
    /// The peer's stream limit is reached; wait for it to grant more.
    StreamLimit,
    /// The stream is unknown, finished, or in a state that forbids the call.
    StreamState(u64),
    /// The datagram exceeds what the path and the peer accept.
    DatagramTooLarge { max: usize },
    /// The peer did not enable QUIC datagrams.
    DatagramDisabled,
    /// A BoringSSL call failed while building credentials.
    Tls(String),
    /// Anything that should not happen.
    Internal(String),
}

impl Error {
    /// The stable code: JavaScript maps it to an error class and never reads
    /// the message.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::UnknownConnection => "UNKNOWN_CONNECTION",
            Error::Closed => "CLOSED",
            Error::StreamLimit => "STREAM_LIMIT",
            Error::StreamState(_) => "STREAM_STATE",
            Error::DatagramTooLarge { .. } => "DATAGRAM_TOO_LARGE",
            Error::DatagramDisabled => "DATAGRAM_DISABLED",
            Error::Tls(_) => "TLS",
            Error::Internal(_) => "INTERNAL",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::UnknownConnection => write!(f, "unknown connection"),
            Error::Closed => write!(f, "connection is closed"),
            Error::StreamLimit => write!(f, "peer's stream limit reached"),
            Error::StreamState(id) => write!(f, "stream {id} cannot do that in its state"),
            Error::DatagramTooLarge { max } => {
                write!(f, "datagram too large (at most {max} bytes fit)")
            }
            Error::DatagramDisabled => write!(f, "peer does not accept datagrams"),
            Error::Tls(m) => write!(f, "TLS setup failed: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result with the core's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
