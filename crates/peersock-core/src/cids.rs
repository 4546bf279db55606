//! Connection-ID management: which of our connection IDs routes to which
//! connection, the spare IDs given to peers so they can migrate, and the
//! stateless reset tokens peers gave us to recognise their resets.
//!
//! Every ID we mint is `CID_LEN` random bytes, unique among the live ones,
//! with the stateless reset token derived from it (see `reset.rs`), so an
//! endpoint restarted with the same identity can still reset it.

use std::collections::HashMap;

use quiche::ConnectionId;

use crate::config::CID_LEN;
use crate::conn::{Conn, State};
use crate::error::{Error, Result};
use crate::event::ConnHandle;
use crate::reset::ResetKey;

/// Smallest datagram that can be a stateless reset (RFC 9000 §10.3: 5 bytes
/// then the 16-byte token).
const MIN_RESET_LEN: usize = 21;

/// The routing table of one endpoint.
#[derive(Default)]
pub(crate) struct ConnIds {
    /// Each live connection ID of ours, to its connection.
    routes: HashMap<ConnectionId<'static>, ConnHandle>,
    /// The stateless reset token each established connection's peer gave
    /// us, to recognise its resets (they carry no routable CID).
    peer_resets: HashMap<u128, ConnHandle>,
}

impl ConnIds {
    /// A random connection ID that routes nowhere yet.
    pub fn fresh(&self) -> Result<ConnectionId<'static>> {
        loop {
            let mut cid = [0u8; CID_LEN];
            boring::rand::rand_bytes(&mut cid).map_err(|e| Error::Internal(e.to_string()))?;
            let cid = ConnectionId::from_vec(cid.to_vec());
            if !self.routes.contains_key(&cid) {
                return Ok(cid);
            }
        }
    }

    /// Routes `cid` to the connection `c`.
    pub fn route(&mut self, cid: ConnectionId<'static>, c: &mut Conn) {
        self.routes.insert(cid.clone(), c.handle);
        c.cids.push(cid);
    }

    /// The connection a packet's destination CID names, if any.
    pub fn lookup(&self, dcid: &ConnectionId) -> Option<ConnHandle> {
        self.routes.get(dcid).copied()
    }

    /// The connection whose peer sent `buf` as a stateless reset, if it is
    /// one: it looks like a short-header packet with a random CID, and its
    /// last 16 bytes are a token a peer gave us. quiche checks the token
    /// again (in constant time) when the datagram is fed to it.
    pub fn reset_from(&self, ty: quiche::Type, buf: &[u8]) -> Option<ConnHandle> {
        if ty != quiche::Type::Short || buf.len() < MIN_RESET_LEN || self.peer_resets.is_empty() {
            return None;
        }
        let tail: [u8; 16] = buf[buf.len() - 16..].try_into().ok()?;
        self.peer_resets.get(&u128::from_be_bytes(tail)).copied()
    }

    /// After input on `c`: learns its peer's reset token once established,
    /// gives the peer spare connection IDs so it can migrate, and forgets
    /// the IDs the peer retired.
    pub fn maintain(&mut self, c: &mut Conn, reset_key: &ResetKey) {
        if !c.reset_known && c.q.is_established() {
            c.reset_known = true;
            if let Some(t) =
                c.q.peer_transport_params()
                    .and_then(|p| p.stateless_reset_token)
            {
                self.peer_resets.insert(t, c.handle);
            }
        }
        while c.q.is_established() && c.q.scids_left() > 0 && c.state != State::Closing {
            let Ok(cid) = self.fresh() else { return };
            if c.q.new_scid(&cid, reset_key.token(&cid), false).is_err() {
                break;
            }
            self.route(cid, c);
        }
        let mut retired = Vec::new();
        while let Some(cid) = c.q.retired_scid_next() {
            retired.push(cid);
        }
        c.cids.retain(|x| !retired.contains(x));
        for cid in retired {
            self.routes.remove(&cid);
        }
    }

    /// Drops every route and reset token of a connection that is gone.
    pub fn forget(&mut self, c: &Conn) {
        if let Some(t) =
            c.q.peer_transport_params()
                .and_then(|p| p.stateless_reset_token)
        {
            if self.peer_resets.get(&t) == Some(&c.handle) {
                self.peer_resets.remove(&t);
            }
        }
        for cid in &c.cids {
            if self.routes.get(cid) == Some(&c.handle) {
                self.routes.remove(cid);
            }
        }
    }
}
