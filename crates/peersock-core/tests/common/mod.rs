//! The core's test tier, shared by every test file: endpoints and
//! hand-driven quiche peers exchanging datagrams in memory, on the real
//! clock or a simulated one, and bad TLS credentials built with BoringSSL
//! directly.
#![allow(dead_code)]

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boring::asn1::{Asn1Integer, Asn1Time};
use boring::bn::BigNum;
use boring::ec::{EcGroup, EcKey};
use boring::hash::MessageDigest;
use boring::nid::Nid;
use boring::pkey::{PKey, Private};
use boring::sign::Signer;
use boring::ssl::{
    PrivateKeyMethod, PrivateKeyMethodError, SslContextBuilder, SslMethod, SslRef,
    SslSignatureAlgorithm, SslVerifyMode, SslVersion,
};
use boring::x509::{X509Name, X509};
use peersock_core::{ConnHandle, Endpoint, EndpointConfig, Event, Identity, ALPN};

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

/// The time the pumps hand to the endpoints: the real clock, or a simulated
/// one that jumps to the next deadline instead of sleeping. The core's own
/// deadlines (handshake, keep-alive, retry-token age) then run on it;
/// quiche's timers (loss, idle) always run on the real clock.
pub struct Clock {
    sim: Option<Cell<Instant>>,
    start: Instant,
}

/// The longest jump of the simulated clock while idle, and the shortest
/// (quiche's deadlines are real-clock instants: on the simulated clock one
/// can look due while quiche, asked, finds it is not yet).
const SIM_STEP_MAX: Duration = Duration::from_millis(100);
const SIM_STEP_MIN: Duration = Duration::from_millis(1);

impl Clock {
    /// The real clock: `advance` and idle waits sleep.
    pub fn real() -> Clock {
        Clock {
            sim: None,
            start: Instant::now(),
        }
    }

    /// A simulated clock starting now: `advance` and idle waits jump.
    pub fn sim() -> Clock {
        let start = Instant::now();
        Clock {
            sim: Some(Cell::new(start)),
            start,
        }
    }

    pub fn now(&self) -> Instant {
        match &self.sim {
            Some(t) => t.get(),
            None => Instant::now(),
        }
    }

    /// Time on this clock since it was made.
    pub fn elapsed(&self) -> Duration {
        self.now().saturating_duration_since(self.start)
    }

    /// Lets `d` pass: sleeps on the real clock, jumps on the simulated one.
    pub fn advance(&self, d: Duration) {
        match &self.sim {
            Some(t) => t.set(t.get() + d),
            None => std::thread::sleep(d),
        }
    }

    /// Waits for the next deadline, `next` from now (`None`: none).
    fn idle(&self, next: Option<Duration>) {
        match &self.sim {
            Some(_) => self.advance(
                next.unwrap_or(SIM_STEP_MAX)
                    .clamp(SIM_STEP_MIN, SIM_STEP_MAX),
            ),
            None => std::thread::sleep(
                next.unwrap_or(Duration::from_millis(1))
                    .min(Duration::from_millis(2)),
            ),
        }
    }
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

/// The credentials a bad peer presents.
pub enum Cred {
    /// A well-formed peersock credential for this seed.
    Good([u8; 32]),
    /// A leaf (key = seed) issued by a separate Ed25519 CA, sent with the CA
    /// certificate: a chain of two.
    Chain([u8; 32]),
    /// A self-signed ECDSA P-256 certificate.
    Ecdsa,
    /// A certificate carrying key `cert_seed` while CertificateVerify is
    /// signed with key `signer_seed`.
    WrongSigner {
        cert_seed: [u8; 32],
        signer_seed: [u8; 32],
    },
    /// No certificate at all.
    Nothing,
}

pub fn ed25519(seed: &[u8; 32]) -> PKey<Private> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    PKey::private_key_from_der(&der).unwrap()
}

fn p256() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A certificate for `subject_key`, named `cn`, signed by `issuer_key`
/// under `issuer_cn`.
pub fn certificate(
    subject_key: &PKey<Private>,
    cn: &str,
    issuer_key: &PKey<Private>,
    issuer_cn: &str,
) -> X509 {
    let name = |cn: &str| {
        let mut n = X509Name::builder().unwrap();
        n.append_entry_by_text("CN", cn).unwrap();
        n.build()
    };
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = Asn1Integer::from_bn(&BigNum::from_u32(7).unwrap()).unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    b.set_issuer_name(&name(issuer_cn)).unwrap();
    b.set_not_before(&Asn1Time::from_unix(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(253_402_300_799).unwrap())
        .unwrap();
    b.set_pubkey(subject_key).unwrap();
    let digest = if issuer_key.id() == boring::pkey::Id::ED25519 {
        // SAFETY: BoringSSL takes a null digest for Ed25519 (it signs the
        // message itself).
        unsafe { MessageDigest::from_ptr(std::ptr::null()) }
    } else {
        MessageDigest::sha256()
    };
    b.sign(issuer_key, digest).unwrap();
    b.build()
}

/// Signs every handshake with a key of its own, whatever the certificate says.
struct ForeignSigner(PKey<Private>);

impl PrivateKeyMethod for ForeignSigner {
    fn sign(
        &self,
        _ssl: &mut SslRef,
        input: &[u8],
        _alg: SslSignatureAlgorithm,
        output: &mut [u8],
    ) -> Result<usize, PrivateKeyMethodError> {
        let mut s =
            Signer::new_without_digest(&self.0).map_err(|_| PrivateKeyMethodError::FAILURE)?;
        s.sign_oneshot(output, input)
            .map_err(|_| PrivateKeyMethodError::FAILURE)
    }

    fn decrypt(
        &self,
        _: &mut SslRef,
        _: &[u8],
        _: &mut [u8],
    ) -> Result<usize, PrivateKeyMethodError> {
        Err(PrivateKeyMethodError::FAILURE)
    }

    fn complete(&self, _: &mut SslRef, _: &mut [u8]) -> Result<usize, PrivateKeyMethodError> {
        Err(PrivateKeyMethodError::FAILURE)
    }
}

/// A quiche config speaking peersock's ALPN with the given credential; it
/// asks for the other side's certificate and accepts anything.
pub fn raw_config(cred: &Cred) -> quiche::Config {
    raw_config_verifying(cred, &[SslSignatureAlgorithm::ED25519])
}

/// [`raw_config`] offering `verify` as the signature algorithms it accepts
/// from the other side (a client's `signature_algorithms` extension).
pub fn raw_config_verifying(cred: &Cred, verify: &[SslSignatureAlgorithm]) -> quiche::Config {
    let mut ctx = SslContextBuilder::new(SslMethod::tls()).unwrap();
    ctx.set_min_proto_version(Some(SslVersion::TLS1_3)).unwrap();
    ctx.set_max_proto_version(Some(SslVersion::TLS1_3)).unwrap();
    match cred {
        Cred::Good(seed) => {
            let k = ed25519(seed);
            ctx.set_certificate(&certificate(&k, "peersock", &k, "peersock"))
                .unwrap();
            ctx.set_private_key(&k).unwrap();
        }
        Cred::Chain(seed) => {
            let ca = ed25519(&[0xca; 32]);
            let leaf = ed25519(seed);
            ctx.set_certificate(&certificate(&leaf, "leaf", &ca, "ca"))
                .unwrap();
            ctx.set_private_key(&leaf).unwrap();
            ctx.add_extra_chain_cert(certificate(&ca, "ca", &ca, "ca"))
                .unwrap();
        }
        Cred::Ecdsa => {
            let k = p256();
            ctx.set_certificate(&certificate(&k, "peersock", &k, "peersock"))
                .unwrap();
            ctx.set_private_key(&k).unwrap();
        }
        Cred::WrongSigner {
            cert_seed,
            signer_seed,
        } => {
            let k = ed25519(cert_seed);
            ctx.set_certificate(&certificate(&k, "peersock", &k, "peersock"))
                .unwrap();
            ctx.set_private_key_method(ForeignSigner(ed25519(signer_seed)));
        }
        Cred::Nothing => {}
    }
    let sign = if matches!(cred, Cred::Ecdsa) {
        "ECDSA+SHA256"
    } else {
        "ed25519"
    };
    ctx.set_sigalgs_list(sign).unwrap();
    ctx.set_verify_algorithm_prefs(verify).unwrap();
    ctx.set_custom_verify_callback(SslVerifyMode::PEER, |_| Ok(()));
    let mut c = quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, ctx).unwrap();
    c.set_application_protos(&[ALPN]).unwrap();
    c.set_max_idle_timeout(5000);
    c.set_initial_max_data(1 << 20);
    c.set_initial_max_stream_data_bidi_local(1 << 18);
    c.set_initial_max_stream_data_bidi_remote(1 << 18);
    c.set_initial_max_stream_data_uni(1 << 18);
    c.set_initial_max_streams_bidi(16);
    c.set_initial_max_streams_uni(16);
    c.enable_dgram(true, 16, 16);
    c
}
