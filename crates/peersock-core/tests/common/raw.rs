//! A hand-driven quiche connection (the misbehaving peer), and the pump
//! between it and an endpoint.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Clock, Node};

/// A hand-driven quiche connection: the misbehaving peer.
pub struct RawPeer {
    pub q: Option<quiche::Connection>,
    pub addr: SocketAddr,
    pub config: quiche::Config,
    pub is_server: bool,
}

impl RawPeer {
    /// A client dialing `to`.
    pub fn client(mut config: quiche::Config, me: SocketAddr, to: SocketAddr) -> RawPeer {
        let scid = quiche::ConnectionId::from_vec(vec![0x5a; 16]);
        let q = quiche::connect(None, &scid, me, to, &mut config).unwrap();
        RawPeer {
            q: Some(q),
            addr: me,
            config,
            is_server: false,
        }
    }

    /// A server that accepts the first Initial it gets.
    pub fn server(config: quiche::Config, me: SocketAddr) -> RawPeer {
        RawPeer {
            q: None,
            addr: me,
            config,
            is_server: true,
        }
    }

    /// Takes one datagram from `from` (a server accepts the first Initial).
    pub fn recv(&mut self, pkt: &mut [u8], from: SocketAddr) {
        if self.q.is_none() && self.is_server {
            let scid = quiche::ConnectionId::from_vec(vec![0x6b; 16]);
            match quiche::accept(&scid, None, self.addr, from, &mut self.config) {
                Ok(q) => self.q = Some(q),
                Err(_) => return,
            }
        }
        if let Some(q) = self.q.as_mut() {
            let _ = q.recv(
                pkt,
                quiche::RecvInfo {
                    from,
                    to: self.addr,
                },
            );
        }
    }
}

/// Pumps between one endpoint and one raw peer. `raw_step` runs after every
/// exchange (the raw peer's application: e.g. it tries to send data).
pub fn pump_raw(
    n: &mut Node,
    raw: &mut RawPeer,
    limit: Duration,
    mut raw_step: impl FnMut(&mut quiche::Connection),
    mut done: impl FnMut(&mut Node, &RawPeer) -> bool,
) -> bool {
    let start = Instant::now();
    let mut buf = vec![0u8; 65535];
    loop {
        let mut moved = false;
        if let Some(q) = raw.q.as_mut() {
            raw_step(q);
            while let Ok((k, info)) = q.send(&mut buf) {
                moved = true;
                let mut pkt = buf[..k].to_vec();
                if info.to == n.addr {
                    n.ep.recv(&mut pkt, raw.addr);
                }
            }
        }
        while let Some((k, to)) = n.ep.poll_transmit(&mut buf) {
            moved = true;
            if to == raw.addr {
                let mut pkt = buf[..k].to_vec();
                raw.recv(&mut pkt, n.addr);
            }
        }
        moved |= n.poll();
        if done(n, raw) {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        if !moved {
            let t = [n.ep.timeout(), raw.q.as_ref().and_then(|q| q.timeout())]
                .into_iter()
                .flatten()
                .min();
            Clock::real().idle(t);
            n.ep.on_timeout();
            if let Some(q) = raw.q.as_mut() {
                q.on_timeout();
            }
        }
    }
}
