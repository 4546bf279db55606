//! quinn-peer: a peer that speaks peersock's wire protocol on an independent
//! QUIC stack (quinn + rustls + ring), for the interop tests
//! (`__test__/interop.spec.ts`).
//!
//! The protocol, as README.md describes it: ALPN `peersock/1`, TLS 1.3 with
//! one self-signed Ed25519 certificate per side (mutual), the dialer pins the
//! dialed key; the accepting side confirms on its first unidirectional
//! stream (ID 3) with the byte 0x01 then FIN; every stream and every
//! datagram starts with a channel byte (0 = application).
//!
//! ```text
//! quinn-peer listen --seed <hex32> [--host 127.0.0.1] [--port 0] [--split-confirm]
//!                   [--open-stream <bytes>]
//!                   [--idle-timeout-ms 10000] [--timeout-ms 120000]
//! quinn-peer dial --seed <hex32> --key <hex32> --addr <host:port> [--bytes 1048576]
//!                 [--alpn <proto>] [--no-ed25519-sigalg] [--no-client-cert]
//!                 [--ecdsa-cert] [--wrong-key] [--idle-timeout-ms 10000] [--timeout-ms 30000]
//! ```
//!
//! Every event is one JSON object on its own stdout line (`"event"` names
//! it; `"ms"` counts from the start of the dial). Exit status: 0 done,
//! 1 usage or setup error, 2 the connection closed or failed (the `closed`
//! event says how), 3 a time limit passed, 4 the peer broke the protocol
//! (`error` event). Listen mode runs until `--timeout-ms` or stdin closes.

mod tls;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, Endpoint, RecvStream, SendStream, TransportConfig, VarInt};

use tls::{Identity, PeerVerifier, PublicKey, ALPN};

/// peersock's control stream and its one message.
const CONTROL_STREAM: u64 = 3;
const CONTROL_ACCEPTED: u8 = 1;
/// Channel byte of the application's streams and datagrams.
const CHANNEL_APP: u8 = 0;

const EXIT_OK: i32 = 0;
const EXIT_USAGE: i32 = 1;
const EXIT_CLOSED: i32 = 2;
const EXIT_TIMEOUT: i32 = 3;
const EXIT_PROTOCOL: i32 = 4;

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A JSON value of an event field.
enum J<'a> {
    S(&'a str),
    N(u64),
    B(bool),
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Prints one event line.
fn emit(event: &str, fields: &[(&str, J<'_>)]) {
    use std::io::Write;
    let mut line = format!("{{\"event\":{}", json_str(event));
    for (k, v) in fields {
        line.push(',');
        line.push_str(&json_str(k));
        line.push(':');
        match v {
            J::S(s) => line.push_str(&json_str(s)),
            J::N(n) => line.push_str(&n.to_string()),
            J::B(b) => line.push_str(if *b { "true" } else { "false" }),
        }
    }
    line.push('}');
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn ms_since(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

/// Reports how a connection ended; returns the exit status that goes with it.
fn report_close(e: &ConnectionError, start: Instant) -> i32 {
    let ms = J::N(ms_since(start));
    match e {
        ConnectionError::ConnectionClosed(c) => {
            let reason = String::from_utf8_lossy(&c.reason);
            emit(
                "closed",
                &[
                    ("error_code", J::N(u64::from(c.error_code))),
                    ("reason", J::S(&reason)),
                    ("is_app", J::B(false)),
                    ("local", J::B(false)),
                    ("ms", ms),
                ],
            );
            EXIT_CLOSED
        }
        ConnectionError::ApplicationClosed(c) => {
            let reason = String::from_utf8_lossy(&c.reason);
            emit(
                "closed",
                &[
                    ("error_code", J::N(c.error_code.into_inner())),
                    ("reason", J::S(&reason)),
                    ("is_app", J::B(true)),
                    ("local", J::B(false)),
                    ("ms", ms),
                ],
            );
            EXIT_CLOSED
        }
        ConnectionError::TransportError(t) => {
            emit(
                "closed",
                &[
                    ("error_code", J::N(u64::from(t.code))),
                    ("reason", J::S(&t.reason)),
                    ("is_app", J::B(false)),
                    ("local", J::B(true)),
                    ("ms", ms),
                ],
            );
            EXIT_CLOSED
        }
        ConnectionError::TimedOut => {
            emit("timeout", &[("stage", J::S("idle")), ("ms", ms)]);
            EXIT_TIMEOUT
        }
        other => {
            let what = other.to_string();
            emit("closed", &[("other", J::S(&what)), ("ms", ms)]);
            EXIT_CLOSED
        }
    }
}

fn transport(idle_ms: u32) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(VarInt::from_u32(idle_ms).into()));
    t.datagram_receive_buffer_size(Some(1 << 20));
    Arc::new(t)
}

struct Args {
    mode: String,
    seed: [u8; 32],
    key: Option<PublicKey>,
    addr: Option<String>,
    host: String,
    port: u16,
    bytes: usize,
    alpn: Vec<u8>,
    no_ed25519_sigalg: bool,
    no_client_cert: bool,
    ecdsa_cert: bool,
    wrong_key: bool,
    split_confirm: bool,
    open_stream: Option<usize>,
    idle_timeout_ms: u32,
    timeout_ms: Option<u64>,
}

const USAGE: &str = "usage: quinn-peer listen --seed <hex32> [--host H] [--port P] [--split-confirm] \
[--open-stream N] [--idle-timeout-ms N] [--timeout-ms N]\n       quinn-peer dial --seed <hex32> --key <hex32> --addr <host:port> \
[--bytes N] [--alpn P] [--no-ed25519-sigalg] [--no-client-cert] [--ecdsa-cert] [--wrong-key] \
[--idle-timeout-ms N] [--timeout-ms N]";

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or("missing mode")?;
    if mode != "listen" && mode != "dial" {
        return Err(format!("unknown mode {mode}"));
    }
    let mut a = Args {
        mode,
        seed: [0; 32],
        key: None,
        addr: None,
        host: "127.0.0.1".into(),
        port: 0,
        bytes: 1 << 20,
        alpn: ALPN.to_vec(),
        no_ed25519_sigalg: false,
        no_client_cert: false,
        ecdsa_cert: false,
        wrong_key: false,
        split_confirm: false,
        open_stream: None,
        idle_timeout_ms: 10_000,
        timeout_ms: None,
    };
    let mut have_seed = false;
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--seed" => {
                a.seed = unhex(&val()?).ok_or("--seed: 64 hex digits")?;
                have_seed = true;
            }
            "--key" => a.key = Some(unhex(&val()?).ok_or("--key: 64 hex digits")?),
            "--addr" => a.addr = Some(val()?),
            "--host" => a.host = val()?,
            "--port" => a.port = num(val()?)?.try_into().map_err(|_| "--port: too big")?,
            "--bytes" => a.bytes = num(val()?)? as usize,
            "--alpn" => a.alpn = val()?.into_bytes(),
            "--idle-timeout-ms" => {
                a.idle_timeout_ms = num(val()?)?.try_into().map_err(|_| "too big")?
            }
            "--timeout-ms" => a.timeout_ms = Some(num(val()?)?),
            "--no-ed25519-sigalg" => a.no_ed25519_sigalg = true,
            "--no-client-cert" => a.no_client_cert = true,
            "--ecdsa-cert" => a.ecdsa_cert = true,
            "--wrong-key" => a.wrong_key = true,
            "--split-confirm" => a.split_confirm = true,
            "--open-stream" => a.open_stream = Some(num(val()?)? as usize),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if !have_seed {
        return Err("--seed is required".into());
    }
    if a.mode == "dial" && (a.key.is_none() || a.addr.is_none()) {
        return Err("dial needs --key and --addr".into());
    }
    if a.idle_timeout_ms == 0 {
        return Err("--idle-timeout-ms must be positive".into());
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("quinn-peer: {e}\n{USAGE}");
            std::process::exit(EXIT_USAGE);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quinn-peer: tokio: {e}");
            std::process::exit(EXIT_USAGE);
        }
    };
    let code = rt.block_on(async {
        let limit = Duration::from_millis(args.timeout_ms.unwrap_or(if args.mode == "listen" {
            120_000
        } else {
            30_000
        }));
        let start = Instant::now();
        let run = async {
            if args.mode == "listen" {
                listen(&args).await
            } else {
                dial(&args, start).await
            }
        };
        match tokio::time::timeout(limit, run).await {
            Ok(Ok(code)) => code,
            Ok(Err(e)) => {
                emit("error", &[("message", J::S(&e))]);
                EXIT_USAGE
            }
            Err(_) if args.mode == "listen" => EXIT_OK,
            Err(_) => {
                emit(
                    "timeout",
                    &[("stage", J::S("overall")), ("ms", J::N(ms_since(start)))],
                );
                EXIT_TIMEOUT
            }
        }
    });
    // Open connections and tasks are dropped with the runtime; no waiting.
    drop(rt);
    std::process::exit(code);
}

// ---------------------------------------------------------------- listen --

async fn listen(a: &Args) -> Result<i32, String> {
    let id = Identity::ed25519(&a.seed)?;
    let provider = tls::provider();
    let verifier = Arc::new(PeerVerifier::new(None, true, &provider));
    let mut crypto = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![id.cert.clone()], id.key.clone_key())
        .map_err(|e| format!("server certificate: {e}"))?;
    crypto.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(crypto).map_err(|e| e.to_string())?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport(a.idle_timeout_ms));
    let bind: SocketAddr = format!("{}:{}", a.host, a.port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("--host: no address")?;
    let endpoint = Endpoint::server(config, bind).map_err(|e| format!("bind: {e}"))?;
    let port = endpoint.local_addr().map_err(|e| e.to_string())?.port();
    emit(
        "listening",
        &[
            ("port", J::N(port.into())),
            ("key", J::S(&hex(&id.public_key))),
        ],
    );

    // Whoever spawned us went away: stop (stdin reaches EOF).
    let (gone_tx, mut gone_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = gone_tx.send(());
    });

    let split = a.split_confirm;
    let open_stream = a.open_stream;
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                tokio::spawn(serve(incoming, split, open_stream));
            }
            _ = &mut gone_rx => break,
        }
    }
    Ok(EXIT_OK)
}

/// One accepted connection: confirm it, then echo its application streams
/// and datagrams until it ends. With `open_stream`, once the first echo is
/// done (so the dialer listens for streams by then), opens a bidirectional
/// stream of its own with that many bytes and checks their echo.
async fn serve(incoming: quinn::Incoming, split_confirm: bool, open_stream: Option<usize>) {
    let start = Instant::now();
    let remote = incoming.remote_address().to_string();
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            emit("handshake_failed", &[("remote", J::S(&remote))]);
            report_close(&e, start);
            return;
        }
    };
    let Some(key) = tls::peer_key(conn.peer_identity()) else {
        // The verifier let nothing else through; belt and braces.
        conn.close(VarInt::from_u32(0x2a), b"no Ed25519 key");
        emit("error", &[("message", J::S("peer proved no Ed25519 key"))]);
        return;
    };
    emit(
        "connection",
        &[("key", J::S(&hex(&key))), ("remote", J::S(&remote))],
    );
    if let Err(e) = confirm(&conn, split_confirm).await {
        emit("error", &[("message", J::S(&format!("confirm: {e}")))]);
        conn.close(VarInt::from_u32(1), b"confirm failed");
        return;
    }

    let dgram = conn.clone();
    tokio::spawn(async move {
        while let Ok(d) = dgram.read_datagram().await {
            if d.first() == Some(&CHANNEL_APP) {
                // The channel byte stays: it leads the echo too.
                let n = d.len() as u64 - 1;
                if dgram.send_datagram(d).is_ok() {
                    emit("datagram_echoed", &[("bytes", J::N(n))]);
                }
            }
        }
    });
    let uni = conn.clone();
    tokio::spawn(async move {
        while let Ok(mut r) = uni.accept_uni().await {
            tokio::spawn(async move {
                if let Ok(data) = r.read_to_end(64 << 20).await {
                    // The channel byte, then the payload.
                    if let Some((&channel, rest)) = data.split_first() {
                        emit(
                            "uni_received",
                            &[
                                ("channel", J::N(channel.into())),
                                ("bytes", J::N(rest.len() as u64)),
                                ("intact", J::B(rest == payload(rest.len()))),
                            ],
                        );
                    }
                }
            });
        }
    });
    let opened = Arc::new(AtomicBool::new(false));
    let end = loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                let (conn, opened) = (conn.clone(), opened.clone());
                tokio::spawn(async move {
                    let echoed = echo_stream(send, recv).await;
                    if let Some(n) = open_stream.filter(|_| echoed) {
                        if !opened.swap(true, Ordering::SeqCst) {
                            server_stream(&conn, n).await;
                        }
                    }
                });
            }
            Err(e) => break e,
        }
    };
    emit("connection_closed", &[("key", J::S(&hex(&key)))]);
    report_close(&end, start);
}

/// Sends "accepted" on the server's first unidirectional stream: the byte
/// and FIN together, or (split) the byte, a pause, then the FIN alone.
async fn confirm(conn: &quinn::Connection, split: bool) -> Result<(), String> {
    let mut s = conn.open_uni().await.map_err(|e| e.to_string())?;
    if u64::from(s.id()) != CONTROL_STREAM {
        return Err(format!("first uni stream is {}, not 3", s.id()));
    }
    s.write_all(&[CONTROL_ACCEPTED])
        .await
        .map_err(|e| e.to_string())?;
    if split {
        // quinn's driver sends the byte at once; the FIN follows 50 ms
        // later in a STREAM frame (and packet) of its own.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.finish().map_err(|e| e.to_string())?;
    Ok(())
}

/// Echoes an application stream's payload back on the same stream. The
/// channel byte leads only the opener's direction, so it is read and not
/// echoed; a stream of any other channel is refused. True once the whole
/// echo is sent.
async fn echo_stream(mut send: SendStream, mut recv: RecvStream) -> bool {
    let mut channel = [0u8; 1];
    if recv.read_exact(&mut channel).await.is_err() {
        return false;
    }
    if channel[0] != CHANNEL_APP {
        let _ = recv.stop(VarInt::from_u32(0));
        let _ = send.reset(VarInt::from_u32(0));
        return false;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match recv.read(&mut buf).await {
            Ok(Some(n)) => {
                if send.write_all(&buf[..n]).await.is_err() {
                    return false;
                }
                total += n as u64;
            }
            Ok(None) => break,
            Err(_) => return false,
        }
    }
    if send.finish().is_err() {
        return false;
    }
    emit("stream_echoed", &[("bytes", J::N(total))]);
    // Keep the stream until the peer has it all (or is gone).
    let _ = tokio::time::timeout(Duration::from_secs(10), send.stopped()).await;
    true
}

/// The accepting side opens a bidirectional application stream of its own
/// (the server's first: ID 1), sends `n` bytes and checks their echo.
async fn server_stream(conn: &quinn::Connection, n: usize) {
    let Ok((send, recv)) = conn.open_bi().await else {
        return;
    };
    let id = u64::from(send.id());
    let data = payload(n);
    let (bytes, intact, error) = match bidi_echo(send, recv, &data).await {
        Ok(echo) => (echo.len(), echo == data, String::new()),
        Err(EchoError::Lost(e)) => (0, false, e.to_string()),
        Err(EchoError::Other(e)) => (0, false, e),
    };
    emit(
        "server_stream_echo",
        &[
            ("id", J::N(id)),
            ("bytes", J::N(bytes as u64)),
            ("intact", J::B(intact)),
            ("error", J::S(&error)),
        ],
    );
}

enum EchoError {
    /// The connection ended.
    Lost(ConnectionError),
    Other(String),
}

/// Sends the channel byte and `data` on a bidirectional stream we opened and
/// reads the echo meanwhile (the peer's echo may block on our window before
/// we finish writing); returns what came back.
async fn bidi_echo(
    mut send: SendStream,
    mut recv: RecvStream,
    data: &[u8],
) -> Result<Vec<u8>, EchoError> {
    let writer = async {
        send.write_all(&[CHANNEL_APP]).await?;
        send.write_all(data).await?;
        send.finish().map_err(quinn::WriteError::from)
    };
    let (w, r) = tokio::join!(writer, recv.read_to_end(data.len() + 1));
    match (w, r) {
        (Ok(()), Ok(echo)) => Ok(echo),
        (_, Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(e))))
        | (Err(quinn::WriteError::ConnectionLost(e)), _) => Err(EchoError::Lost(e)),
        (w, r) => Err(EchoError::Other(format!(
            "write {:?}, read {:?}",
            w.err(),
            r.err()
        ))),
    }
}

// ------------------------------------------------------------------ dial --

/// The test payload: a fixed pseudo-random pattern, so both ends agree.
fn payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

async fn dial(a: &Args, start: Instant) -> Result<i32, String> {
    let id = if a.ecdsa_cert {
        Identity::ecdsa_p256()?
    } else {
        Identity::ed25519(&a.seed)?
    };
    let mut pin = a.key.ok_or("--key is required")?;
    if a.wrong_key {
        pin[31] ^= 1;
    }
    let addr: SocketAddr = a
        .addr
        .as_deref()
        .unwrap_or_default()
        .to_socket_addrs()
        .map_err(|e| format!("--addr: {e}"))?
        .next()
        .ok_or("--addr: no address")?;

    let provider = tls::provider();
    let verifier = Arc::new(PeerVerifier::new(
        Some(pin),
        !a.no_ed25519_sigalg,
        &provider,
    ));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut crypto = if a.no_client_cert {
        builder.with_no_client_auth()
    } else {
        builder
            .with_client_auth_cert(vec![id.cert.clone()], id.key.clone_key())
            .map_err(|e| format!("client certificate: {e}"))?
    };
    crypto.alpn_protocols = vec![a.alpn.clone()];
    let crypto = QuicClientConfig::try_from(crypto).map_err(|e| e.to_string())?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport(a.idle_timeout_ms));

    let local: SocketAddr = match (addr.is_ipv4(), addr.ip().is_loopback()) {
        (true, true) => "127.0.0.1:0",
        (true, false) => "0.0.0.0:0",
        (false, true) => "[::1]:0",
        (false, false) => "[::]:0",
    }
    .parse()
    .map_err(|_| "local address")?;
    let endpoint = Endpoint::client(local).map_err(|e| format!("bind: {e}"))?;
    let own_key = if a.ecdsa_cert {
        "ecdsa".to_string()
    } else {
        hex(&id.public_key)
    };
    emit(
        "dialing",
        &[("key", J::S(&own_key)), ("addr", J::S(&addr.to_string()))],
    );
    let connecting = endpoint
        .connect_with(config, addr, "peersock")
        .map_err(|e| e.to_string())?;
    let conn = match connecting.await {
        Ok(c) => c,
        Err(e) => return Ok(report_close(&e, start)),
    };
    let server_key = tls::peer_key(conn.peer_identity()).unwrap_or_default();
    emit(
        "handshake",
        &[
            ("key", J::S(&hex(&server_key))),
            ("ms", J::N(ms_since(start))),
        ],
    );

    // The accepting side's confirmation, on its first unidirectional stream.
    let mut control = match conn.accept_uni().await {
        Ok(r) => r,
        Err(e) => return Ok(report_close(&e, start)),
    };
    if u64::from(control.id()) != CONTROL_STREAM {
        return Ok(protocol_error(
            &conn,
            "first stream from the server is not 3",
        ));
    }
    match control.read_to_end(16).await {
        Ok(m) if m == [CONTROL_ACCEPTED] => {}
        Ok(m) => {
            let what = format!("control stream carried {}", hex(&m));
            return Ok(protocol_error(&conn, &what));
        }
        Err(quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(e))) => {
            return Ok(report_close(&e, start))
        }
        Err(e) => return Ok(protocol_error(&conn, &format!("control stream: {e}"))),
    }
    emit("accepted", &[("ms", J::N(ms_since(start)))]);

    // Stream echo: the channel byte, then the payload.
    let (send, recv) = match conn.open_bi().await {
        Ok(s) => s,
        Err(e) => return Ok(report_close(&e, start)),
    };
    let data = payload(a.bytes);
    let echoed = match bidi_echo(send, recv, &data).await {
        Ok(echo) => echo,
        Err(EchoError::Lost(e)) => return Ok(report_close(&e, start)),
        Err(EchoError::Other(e)) => return Ok(protocol_error(&conn, &format!("stream echo: {e}"))),
    };
    let intact = echoed == data;
    emit(
        "stream_echo",
        &[
            ("bytes", J::N(echoed.len() as u64)),
            ("intact", J::B(intact)),
            ("ms", J::N(ms_since(start))),
        ],
    );
    if !intact {
        return Ok(protocol_error(&conn, "stream echo differs"));
    }

    // Datagram echo: a few tries, as datagrams may be lost.
    let mut tries = 0;
    let mut dgram_ok = false;
    while tries < 10 && !dgram_ok {
        tries += 1;
        let mut d = vec![CHANNEL_APP];
        d.extend_from_slice(format!("quinn-peer datagram {tries}").as_bytes());
        let d = Bytes::from(d);
        if let Err(e) = conn.send_datagram(d.clone()) {
            return Ok(protocol_error(&conn, &format!("send_datagram: {e}")));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(got) = tokio::time::timeout_at(deadline, conn.read_datagram()).await {
            match got {
                Ok(got) if got == d => {
                    dgram_ok = true;
                    break;
                }
                Ok(_) => continue,
                Err(e) => return Ok(report_close(&e, start)),
            }
        }
    }
    emit(
        "datagram_echo",
        &[
            ("ok", J::B(dgram_ok)),
            ("tries", J::N(tries)),
            ("ms", J::N(ms_since(start))),
        ],
    );
    if !dgram_ok {
        return Ok(protocol_error(&conn, "no datagram echo"));
    }

    conn.close(VarInt::from_u32(0), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    emit("done", &[("ms", J::N(ms_since(start)))]);
    Ok(EXIT_OK)
}

fn protocol_error(conn: &quinn::Connection, what: &str) -> i32 {
    emit("error", &[("message", J::S(what))]);
    conn.close(VarInt::from_u32(1), what.as_bytes());
    EXIT_PROTOCOL
}
