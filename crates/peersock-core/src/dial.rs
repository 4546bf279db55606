//! Dialing with per-connection options (session resumption, 0-RTT,
//! keep-alive) and moving a dialed connection to another local address.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::conn::{Side, State};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::event::ConnHandle;
use crate::identity::{key_from_certificate_der, PublicKey};

/// Settings of one dial beyond the endpoint's.
#[derive(Clone, Debug, Default)]
pub struct DialOptions {
    /// Give up on the handshake after this long (default: the endpoint's).
    pub handshake_timeout: Option<Duration>,
    /// A session from an earlier connection to the same key
    /// ([`crate::Event::Session`]). It is used only if it was made by this
    /// endpoint's key and the certificate it holds carries the dialed key;
    /// otherwise the dial is a full handshake.
    pub session: Option<Vec<u8>>,
    /// With a usable `session`: send application data in 0-RTT, before the
    /// handshake completes (the peer may receive it more than once).
    pub early_data: bool,
    /// Overrides the endpoint's keep-alive: `Some(None)` turns it off.
    pub keep_alive: Option<Option<Duration>>,
    /// The driver routes this connection's packets itself, to and from a
    /// stand-in peer address (peersock's introduced peers: a virtual address
    /// whose packets travel on a punched path or through a relay). Packets
    /// for this connection from any address are then taken as from the
    /// dialed one, and one that proves authentic (decrypted and new) from an
    /// address other than the dialed one is reported as
    /// [`crate::Event::PathChanged`] with that address (at most every
    /// 100 ms per address), so the driver can follow a peer whose NAT moved
    /// it. A QUIC client would otherwise drop them (RFC 9000 §9: servers do
    /// not migrate).
    pub follow_peer: bool,
}

impl Endpoint {
    /// Dials `remote_key` at `addr` at `now` (the handshake deadline counts
    /// from it). The connection is usable after [`crate::Event::Connected`];
    /// failure arrives as [`crate::Event::Closed`]. Then drain outgoing.
    pub fn connect_at(
        &mut self,
        remote_key: PublicKey,
        addr: SocketAddr,
        handshake_timeout: Option<Duration>,
        now: Instant,
    ) -> Result<ConnHandle> {
        let opts = DialOptions {
            handshake_timeout,
            ..Default::default()
        };
        self.connect_with_at(remote_key, addr, &opts, now)
    }

    /// [`Endpoint::connect_at`] on the real clock.
    pub fn connect(
        &mut self,
        remote_key: PublicKey,
        addr: SocketAddr,
        handshake_timeout: Option<Duration>,
    ) -> Result<ConnHandle> {
        self.connect_at(remote_key, addr, handshake_timeout, Instant::now())
    }

    /// [`Endpoint::connect_with_at`] on the real clock.
    pub fn connect_with(
        &mut self,
        remote_key: PublicKey,
        addr: SocketAddr,
        opts: &DialOptions,
    ) -> Result<ConnHandle> {
        self.connect_with_at(remote_key, addr, opts, Instant::now())
    }

    /// Dials `remote_key` at `addr` with `opts`, at `now`. As
    /// [`Endpoint::connect_at`]; with early data the streams can be used
    /// at once (see [`crate::ConnInfo::early`]).
    pub fn connect_with_at(
        &mut self,
        remote_key: PublicKey,
        addr: SocketAddr,
        opts: &DialOptions,
        now: Instant,
    ) -> Result<ConnHandle> {
        self.dial(Some(remote_key), addr, opts, now)
    }

    /// Dials whoever answers at `addr`, learning its key from the handshake
    /// instead of pinning one: the peer must still prove it holds the key of
    /// its single Ed25519 certificate, and [`crate::Event::Connected`]
    /// reports that key for the caller to judge. For addresses found with no
    /// key attached (a DHT topic, a LAN announcement). No session resumption
    /// (a session belongs to a key): `opts.session` and `opts.early_data`
    /// are refused.
    pub fn connect_any_at(
        &mut self,
        addr: SocketAddr,
        opts: &DialOptions,
        now: Instant,
    ) -> Result<ConnHandle> {
        if opts.session.is_some() || opts.early_data {
            return Err(Error::InvalidArgument(
                "a dial that learns the key cannot resume a session".into(),
            ));
        }
        self.dial(None, addr, opts, now)
    }

    fn dial(
        &mut self,
        pin: Option<PublicKey>,
        addr: SocketAddr,
        opts: &DialOptions,
        now: Instant,
    ) -> Result<ConnHandle> {
        if self.conns.len() >= self.config.max_connections {
            return Err(Error::InvalidArgument("maxConnections reached".into()));
        }
        if addr.port() == 0 {
            return Err(Error::InvalidArgument("port 0 cannot be dialed".into()));
        }
        if matches!(opts.keep_alive, Some(Some(k)) if k.is_zero()) {
            return Err(Error::InvalidArgument("keepAlive must be positive".into()));
        }
        let slot = Arc::new(Mutex::new(None));
        let mut cfg = self.config.quiche_config(
            &self.identity,
            true,
            pin,
            slot.clone(),
            self.config.udp_payload_toward(addr.ip()),
        )?;
        if opts.early_data {
            cfg.enable_early_data();
        }
        let scid = self.ids.fresh()?;
        let local = self.local;
        let new_q = |cfg: &mut quiche::Config| {
            quiche::connect(None, &scid, local, addr, cfg)
                .map_err(|e| Error::Internal(format!("quiche connect: {e}")))
        };
        let mut q = new_q(&mut cfg)?;
        let mut resumed = false;
        let own = *self.identity.public_key();
        if let (Some(session), Some(remote_key)) = (&opts.session, pin) {
            // Our key prefixes it: a session resumes the identity that made
            // it. The peer's certificate inside is readable before the
            // handshake; a session of another key would skip key pinning.
            // Either mismatch: the session is not offered at all.
            let usable = session
                .strip_prefix(&own[..])
                .is_some_and(|s| q.set_session(s).is_ok() && session_key(&q) == Some(remote_key));
            if usable {
                resumed = true;
            } else {
                q = new_q(&mut cfg)?;
            }
        }
        let timeout = opts
            .handshake_timeout
            .unwrap_or(self.config.handshake_timeout);
        let h = self.insert(q, Side::Client, slot, addr, timeout, now);
        let c = self.conn_mut(h)?;
        c.pin = pin;
        c.local_key = own;
        c.early = resumed && opts.early_data;
        if let Some(k) = opts.keep_alive {
            c.keep_alive = k;
        }
        c.follow_peer = opts.follow_peer;
        Ok(h)
    }

    /// Dialing side: moves an open connection to the local address `local`
    /// (where the driver has bound another socket, whose datagrams it feeds
    /// with [`Endpoint::recv_on`]). Packets leave from `local` at once; the
    /// peer validates the new path and keeps the connection.
    pub fn migrate(&mut self, h: ConnHandle, local: SocketAddr) -> Result<()> {
        let c = self.conn_mut(h)?;
        if c.side != Side::Client {
            return Err(Error::InvalidArgument(
                "only the dialing side can migrate".into(),
            ));
        }
        if c.state != State::Open {
            return Err(Error::Closed);
        }
        match c.q.migrate_source(local) {
            Ok(_) => {}
            Err(quiche::Error::OutOfIdentifiers) => {
                return Err(Error::InvalidArgument(
                    "no spare connection ID from the peer yet; retry shortly".into(),
                ))
            }
            Err(e) => return Err(Error::Internal(format!("migrate: {e}"))),
        }
        self.touch(h);
        Ok(())
    }

    /// The local address a connection sends from now.
    pub fn local_addr_of(&self, h: ConnHandle) -> Result<SocketAddr> {
        let c = self.conn(h)?;
        Ok(c.q
            .path_stats()
            .find(|p| p.active)
            .map(|p| p.local_addr)
            .unwrap_or(self.local))
    }
}

/// The key in the certificate of a session set on a connection.
fn session_key(q: &quiche::Connection) -> Option<PublicKey> {
    q.peer_cert()
        .and_then(|der| key_from_certificate_der(der).ok())
}
