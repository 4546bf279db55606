//! Listen mode: accept connections, confirm each on the control stream,
//! and echo its application streams and datagrams.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Endpoint, VarInt};

use crate::args::Args;
use crate::events::{emit, report_close, J};
use crate::streams::{echo_stream, payload, server_stream};
use crate::tls::{self, Identity, PeerVerifier, ALPN};
use crate::{hex, transport, CHANNEL_APP, CONTROL_ACCEPTED, CONTROL_STREAM, EXIT_OK};

pub async fn listen(a: &Args) -> Result<i32, String> {
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
    config.transport_config(transport(a.idle_timeout_ms, a.mtu_upper));
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
                    if echoed {
                        path_stats(&conn);
                    }
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

/// The connection's UDP counters and path MTU so far, after an echo: what
/// size of packets quinn took in and sent.
fn path_stats(conn: &quinn::Connection) {
    let st = conn.stats();
    emit(
        "path_stats",
        &[
            ("mtu", J::N(st.path.current_mtu.into())),
            ("probes", J::N(st.path.sent_plpmtud_probes)),
            ("lost_probes", J::N(st.path.lost_plpmtud_probes)),
            ("black_holes", J::N(st.path.black_holes_detected)),
            ("lost_packets", J::N(st.path.lost_packets)),
            ("rx_datagrams", J::N(st.udp_rx.datagrams)),
            ("rx_bytes", J::N(st.udp_rx.bytes)),
            ("tx_datagrams", J::N(st.udp_tx.datagrams)),
            ("tx_bytes", J::N(st.udp_tx.bytes)),
        ],
    );
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
