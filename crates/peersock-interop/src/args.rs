//! The command line (see the crate documentation for its synopsis).

use crate::tls::{PublicKey, ALPN};
use crate::unhex;

pub struct Args {
    pub mode: String,
    pub seed: [u8; 32],
    pub key: Option<PublicKey>,
    pub addr: Option<String>,
    pub host: String,
    pub port: u16,
    pub bytes: usize,
    pub alpn: Vec<u8>,
    pub no_ed25519_sigalg: bool,
    pub no_client_cert: bool,
    pub ecdsa_cert: bool,
    pub wrong_key: bool,
    pub split_confirm: bool,
    pub open_stream: Option<usize>,
    pub idle_timeout_ms: u32,
    pub timeout_ms: Option<u64>,
    /// quinn's path MTU discovery searches up to this UDP payload (quinn's default: 1452).
    pub mtu_upper: Option<u16>,
}

pub const USAGE: &str = "usage: quinn-peer listen --seed <hex32> [--host H] [--port P] [--split-confirm] \
[--open-stream N] [--mtu-upper N] [--idle-timeout-ms N] [--timeout-ms N]\n       quinn-peer dial --seed <hex32> --key <hex32> --addr <host:port> \
[--bytes N] [--alpn P] [--no-ed25519-sigalg] [--no-client-cert] [--ecdsa-cert] [--wrong-key] \
[--mtu-upper N] [--idle-timeout-ms N] [--timeout-ms N]";

pub fn parse_args() -> Result<Args, String> {
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
        mtu_upper: None,
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
            "--mtu-upper" => {
                let n = num(val()?)?;
                if !(1200..=65527).contains(&n) {
                    return Err("--mtu-upper: 1200 to 65527".into());
                }
                a.mtu_upper = Some(n as u16);
            }
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
