//! peersock-core: a sans-IO QUIC endpoint (on cloudflare quiche) whose peers
//! are named by Ed25519 public keys instead of certificate authorities.
//!
//! The crate opens no socket, spawns no thread and arms no timer. A driver
//! (the Node binding, or a test) owns the I/O and calls, in this order:
//! input ([`Endpoint::recv`] / [`Endpoint::on_timeout`]) → drain
//! [`Endpoint::poll_event`] and act on the events → drain outgoing
//! ([`Endpoint::poll_transmit`] until `None`) → repeat while there were
//! events → re-arm one timer from [`Endpoint::timeout`]. An early timer fire
//! is a harmless no-op.
//!
//! Identity: each endpoint presents a self-signed certificate carrying its
//! Ed25519 key; both sides must present one (mutual authentication). The
//! dialer pins the key it dialed; the acceptor learns the dialer's key and
//! decides with [`Endpoint::accept`] / [`Endpoint::refuse`].

mod cids;
mod close;
mod config;
mod conn;
mod dial;
mod endpoint;
mod error;
mod event;
mod front_door;
mod identity;
mod initial;
mod input;
mod refuse;
mod reset;
mod retry;
mod scan;
mod stats;
mod streams;
mod timers;

pub use config::{EndpointConfig, ALPN, CID_LEN};
pub use dial::DialOptions;
pub use endpoint::Endpoint;
pub use error::{Error, Result};
pub use event::{CloseKind, CloseReason, ConnHandle, Event};
pub use identity::{key_from_certificate_der, Identity, IdentityFailure, PublicKey, KEY_LEN};
pub use initial::initial_decrypts;
pub use retry::{RetryKey, MAX_TOKEN_LEN};
pub use stats::EndpointStats;
pub use streams::{ConnInfo, Direction, StreamRead, StreamWrite};
