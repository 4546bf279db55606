//! Application streams: the echo the listening side runs, the stream it
//! opens itself, the opener's side of an echo, and the test payload.

use std::time::Duration;

use quinn::{ConnectionError, RecvStream, SendStream, VarInt};

use crate::events::{emit, J};
use crate::CHANNEL_APP;

/// Echoes an application stream's payload back on the same stream. The
/// channel byte leads only the opener's direction, so it is read and not
/// echoed; a stream of any other channel is refused. True once the whole
/// echo is sent.
pub async fn echo_stream(mut send: SendStream, mut recv: RecvStream) -> bool {
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
pub async fn server_stream(conn: &quinn::Connection, n: usize) {
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

pub enum EchoError {
    /// The connection ended.
    Lost(ConnectionError),
    Other(String),
}

/// Sends the channel byte and `data` on a bidirectional stream we opened and
/// reads the echo meanwhile (the peer's echo may block on our window before
/// we finish writing); returns what came back.
pub async fn bidi_echo(
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

/// The test payload: a fixed pseudo-random pattern, so both ends agree.
pub fn payload(n: usize) -> Vec<u8> {
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
