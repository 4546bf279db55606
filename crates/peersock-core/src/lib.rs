//! peersock-core: a sans-IO QUIC endpoint (on cloudflare quiche) whose peers
//! are named by Ed25519 public keys instead of certificate authorities.
//!
//! The crate opens no socket, spawns no thread and arms no timer. A driver
//! (the Node binding, or a test) owns the I/O and the clock, and calls, in
//! this order:
//! 1. input: [`Endpoint::recv_at`] per datagram, or [`Endpoint::on_timeout_at`]
//!    when the timer fires;
//! 2. drain outgoing: [`Endpoint::poll_transmit_at`] until `None`;
//! 3. re-arm its one timer for [`Endpoint::timeout_at`];
//! 4. drain events: [`Endpoint::poll_event`] until `None`, acting on each
//!    (what the application writes there is sent by the next step 2);
//! 5. repeat 2–4 while step 4 produced events.
//!
//! The binding does steps 2 and 3 in one call (`flush`). Draining events
//! before transmitting is correct too. An early timer fire is a harmless
//! no-op, so no margin is added to the timer.
//!
//! Time: every call whose outcome depends on the core's own deadlines
//! (handshake deadline, keep-alive, retry-token age, how often a routed
//! peer's new address is reported) takes the driver's `now`, so tests run
//! them on simulated time. quiche's own timers (loss recovery, idle
//! timeout) read the real clock inside quiche; [`Endpoint::timeout_at`]
//! includes them and [`Endpoint::on_timeout_at`] runs them when quiche
//! finds them due. `recv`, `recv_on`, `poll_transmit`, `timeout`,
//! `on_timeout`, `connect` and `connect_with` are wrappers of the `*_at`
//! methods that read the real clock (for tests and fuzzers).
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
