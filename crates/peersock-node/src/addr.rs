//! Destination ids for `flush`: a datagram's address, and the local socket
//! it leaves from (an index into the endpoint's local addresses, 0 = the
//! main one), cross the boundary as a small integer, and JavaScript
//! resolves each id once.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Above this many addresses the table starts over (bumping the
/// generation, so JavaScript drops its cache).
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct AddrTable {
    ids: HashMap<(SocketAddr, u32), u32>,
    addrs: Vec<(SocketAddr, u32)>,
    generation: u32,
}

impl AddrTable {
    pub fn id(&mut self, a: (SocketAddr, u32)) -> u32 {
        if let Some(&id) = self.ids.get(&a) {
            return id;
        }
        if self.addrs.len() >= MAX_ENTRIES {
            self.ids.clear();
            self.addrs.clear();
            self.generation = self.generation.wrapping_add(1);
        }
        let id = self.addrs.len() as u32;
        self.addrs.push(a);
        self.ids.insert(a, id);
        id
    }

    pub fn get(&self, id: u32) -> Option<(SocketAddr, u32)> {
        self.addrs.get(id as usize).copied()
    }

    pub fn generation(&self) -> u32 {
        self.generation
    }
}
