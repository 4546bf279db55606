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
//!                   [--open-stream <bytes>] [--mtu-upper <bytes>]
//!                   [--idle-timeout-ms 10000] [--timeout-ms 120000]
//! quinn-peer dial --seed <hex32> --key <hex32> --addr <host:port> [--bytes 1048576]
//!                 [--alpn <proto>] [--no-ed25519-sigalg] [--no-client-cert]
//!                 [--ecdsa-cert] [--wrong-key] [--mtu-upper <bytes>]
//!                 [--idle-timeout-ms 10000] [--timeout-ms 30000]
//! ```
//!
//! Every event is one JSON object on its own stdout line (`"event"` names
//! it; `"ms"` counts from the start of the dial). Exit status: 0 done,
//! 1 usage or setup error, 2 the connection closed or failed (the `closed`
//! event says how), 3 a time limit passed, 4 the peer broke the protocol
//! (`error` event). Listen mode runs until `--timeout-ms` or stdin closes.

mod args;
mod dial;
mod events;
mod hex;
mod listen;
mod streams;
mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::{MtuDiscoveryConfig, TransportConfig, VarInt};

use args::{parse_args, USAGE};
use dial::dial;
use events::{emit, ms_since, J};
pub use hex::{hex, unhex};
use listen::listen;

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

/// The transport settings of both modes (`mtu_upper`: how far quinn's path
/// MTU discovery searches; its default is 1452).
fn transport(idle_ms: u32, mtu_upper: Option<u16>) -> Arc<TransportConfig> {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(VarInt::from_u32(idle_ms).into()));
    t.datagram_receive_buffer_size(Some(1 << 20));
    if let Some(n) = mtu_upper {
        let mut m = MtuDiscoveryConfig::default();
        m.upper_bound(n);
        t.mtu_discovery_config(Some(m));
    }
    Arc::new(t)
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
