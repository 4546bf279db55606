//! The core's test tier, shared by every test file: endpoints exchanging
//! datagrams in memory on the real clock or a simulated one (`clock.rs`),
//! hand-driven quiche peers (`raw.rs`), and bad TLS credentials built with
//! BoringSSL directly (`creds.rs`). Two harnesses that files share and
//! import by name: the lockstep refusal dialer (`refusal.rs`) and session
//! resumption (`session.rs`).
// Each test file uses its own part of the harness.
#![allow(dead_code, unused_imports)]

mod clock;
mod creds;
mod raw;
pub mod refusal;
pub mod session;

pub use clock::*;
pub use creds::*;
pub use raw::*;

use std::net::SocketAddr;
use std::time::Duration;

use peersock_core::{ConnHandle, Endpoint, EndpointConfig, Event, Identity};

/// An endpoint under test, with everything it reported.
pub struct Node {
    pub ep: Endpoint,
    pub addr: SocketAddr,
    /// Further local addresses it receives on (sockets a connection
    /// migrated to); the pumps deliver to them with `recv_on`.
    pub locals: Vec<SocketAddr>,
    pub seed: [u8; 32],
    pub events: Vec<Event>,
    pub auto_accept: bool,
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn node_with(seed: u8, port: u16, config: EndpointConfig) -> Node {
    let seed = [seed; 32];
    let id = Identity::from_secret_key(&seed).unwrap();
    let a = addr(&format!("127.0.0.1:{port}"));
    Node {
        ep: Endpoint::new(id, config, a).unwrap(),
        addr: a,
        locals: vec![],
        seed,
        events: vec![],
        auto_accept: true,
    }
}

pub fn node(seed: u8, port: u16) -> Node {
    node_with(seed, port, EndpointConfig::default())
}

impl Node {
    /// Drains events (accepting `Incoming` peers when `auto_accept`).
    pub fn poll(&mut self) -> bool {
        let mut any = false;
        while let Some(ev) = self.ep.poll_event() {
            any = true;
            if let Event::Incoming { conn, .. } = &ev {
                if self.auto_accept {
                    self.ep.accept(*conn).unwrap();
                }
            }
            self.events.push(ev);
        }
        any
    }

    pub fn closed(&self, h: ConnHandle) -> Option<peersock_core::CloseReason> {
        self.events.iter().find_map(|e| match e {
            Event::Closed { conn, reason } if *conn == h => Some(reason.clone()),
            _ => None,
        })
    }

    /// The first connection that reached this node as `Incoming`.
    pub fn incoming(&self) -> Option<ConnHandle> {
        self.events.iter().find_map(|e| match e {
            Event::Incoming { conn, .. } => Some(*conn),
            _ => None,
        })
    }

    /// Whether `a` is one of this node's addresses.
    pub fn owns(&self, a: SocketAddr) -> bool {
        self.addr == a || self.locals.contains(&a)
    }

    pub fn connected(&self, h: ConnHandle) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::Connected { conn, .. } if *conn == h))
    }

    /// Any event that means application-level contact: a peer let in, a
    /// connection up, stream data or a datagram.
    pub fn saw_application(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e,
                Event::Incoming { .. }
                    | Event::Connected { .. }
                    | Event::StreamReadable { .. }
                    | Event::Datagram { .. }
            )
        })
    }
}

/// A datagram in flight: bytes, from, to.
pub type Dgram = (Vec<u8>, SocketAddr, SocketAddr);

/// Moves datagrams between endpoints (through `tap`, which may drop, alter
/// or redirect them) and runs due timers, on `clock`, until `done` holds or
/// `limit` passes on it. A datagram goes to the node owning its
/// destination, on the local address it was sent to, from the local
/// address its sender chose.
pub fn pump_on(
    clock: &Clock,
    nodes: &mut [&mut Node],
    limit: Duration,
    mut tap: impl FnMut(Dgram) -> Option<Dgram>,
    mut done: impl FnMut(&mut [&mut Node]) -> bool,
) -> bool {
    let start = clock.now();
    let mut buf = vec![0u8; 65535];
    loop {
        let mut moved = false;
        for i in 0..nodes.len() {
            while let Some((n, to, from)) = nodes[i].ep.poll_transmit_from_at(&mut buf, clock.now())
            {
                moved = true;
                assert!(
                    nodes[i].owns(from),
                    "sent from {from}, not an address of its own"
                );
                let Some((mut pkt, from, to)) = tap((buf[..n].to_vec(), from, to)) else {
                    continue;
                };
                if let Some(j) = nodes.iter().position(|x| x.owns(to)) {
                    nodes[j].ep.recv_on_at(&mut pkt, from, to, clock.now());
                }
            }
            moved |= nodes[i].poll();
        }
        if done(nodes) {
            return true;
        }
        if clock.now().saturating_duration_since(start) > limit {
            return false;
        }
        if !moved {
            let now = clock.now();
            clock.idle(nodes.iter().filter_map(|n| n.ep.timeout_at(now)).min());
            for n in nodes.iter_mut() {
                n.ep.on_timeout_at(clock.now());
            }
        }
    }
}

/// [`pump_on`] on the real clock.
pub fn pump_tap(
    nodes: &mut [&mut Node],
    limit: Duration,
    tap: impl FnMut(Dgram) -> Option<Dgram>,
    done: impl FnMut(&mut [&mut Node]) -> bool,
) -> bool {
    pump_on(&Clock::real(), nodes, limit, tap, done)
}

pub fn pump(
    nodes: &mut [&mut Node],
    limit: Duration,
    done: impl FnMut(&mut [&mut Node]) -> bool,
) -> bool {
    pump_tap(nodes, limit, Some, done)
}

/// Two nodes (seeds 1 and 2 at ports 1000 and 2000) with `config`, the
/// first connected to the second; returns them and the dialer's handle.
pub fn open_pair_with(config: EndpointConfig) -> (Node, Node, ConnHandle) {
    let (mut a, mut b) = (
        node_with(1, 1000, config.clone()),
        node_with(2, 2000, config),
    );
    let h = a.ep.connect(*b.ep.public_key(), b.addr, None).unwrap();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| n
        [0]
    .connected(h)));
    (a, b, h)
}

/// [`open_pair_with`] the default settings.
pub fn open_pair() -> (Node, Node, ConnHandle) {
    open_pair_with(EndpointConfig::default())
}
