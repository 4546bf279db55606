//! Dial mode: connect with a pinned key (or one of the deliberate faults
//! the flags choose), wait for the confirmation, then check a stream echo
//! and a datagram echo.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Endpoint, VarInt};

use crate::args::Args;
use crate::events::{emit, ms_since, report_close, J};
use crate::streams::{bidi_echo, payload, EchoError};
use crate::tls::{self, Identity, PeerVerifier};
use crate::{
    hex, transport, CHANNEL_APP, CONTROL_ACCEPTED, CONTROL_STREAM, EXIT_OK, EXIT_PROTOCOL,
};

pub async fn dial(a: &Args, start: Instant) -> Result<i32, String> {
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
    config.transport_config(transport(a.idle_timeout_ms, a.mtu_upper));

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
