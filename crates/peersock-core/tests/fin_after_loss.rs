//! A stream's FIN must reach the reader whatever packets are lost on the
//! way (our quiche patch `quiche-0.29.3-fin-on-duplicate-data.patch`).
//!
//! quiche sends a FIN that the application gives after the data has gone
//! out as a frame of its own, but any later retransmission of the data that
//! ends the stream carries the FIN too (the send buffer sets FIN on whatever
//! reaches the final offset). When the FIN frame is lost and the
//! acknowledgements of the data are lost as well (a burst each way, as an
//! overflowing socket buffer makes), the sender retransmits data the
//! receiver has already read, now with the FIN. quiche 0.29.3 recorded the
//! final size from that frame but, the data being duplicate, kept nothing
//! for the reader: the stream never became readable, the FIN was never read,
//! and every later FIN frame was ignored as already known, while the sender
//! had the FIN acknowledged. 100 streams finishing through such a burst
//! left one stream (the one whose data the probe carried) unfinished
//! forever.
mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use peersock_core::{ConnHandle, Event, StreamRead, StreamWrite};

const STREAMS: usize = 100;
/// Small, so every stream's data and every FIN fit in the initial congestion
/// window: the sender's probe then carries the oldest data again (not a FIN
/// still waiting for window).
const LEN: usize = 16;

/// What the receiving side has read, per stream.
#[derive(Default)]
struct Reader {
    bytes: HashMap<u64, usize>,
    fins: HashSet<u64>,
}

impl Reader {
    /// Reads every stream `n` reported readable on `h` until it runs dry.
    fn drain(&mut self, n: &mut Node, h: ConnHandle) {
        let mut buf = [0u8; 4096];
        let readable: Vec<u64> = n
            .events
            .drain(..)
            .filter_map(|e| match e {
                Event::StreamReadable { conn, stream } if conn == h => Some(stream),
                _ => None,
            })
            .collect();
        for s in readable {
            // Each read takes data or the FIN; a stream holds at most LEN bytes.
            for _ in 0..=LEN {
                match n.ep.stream_recv(h, s, &mut buf) {
                    Ok(StreamRead::Data { n: k, fin }) => {
                        *self.bytes.entry(s).or_default() += k;
                        if fin {
                            assert!(self.fins.insert(s), "stream {s}: FIN read twice");
                            break;
                        }
                    }
                    Ok(StreamRead::Blocked) => break,
                    Ok(StreamRead::Reset(code)) => panic!("stream {s} reset ({code})"),
                    Err(e) => panic!("stream {s}: {e}"),
                }
            }
        }
    }

    fn total(&self) -> usize {
        self.bytes.values().sum()
    }
}

/// Everything `n` has to send now is lost; returns how many datagrams.
fn lose_all(n: &mut Node) -> usize {
    let mut buf = vec![0u8; 65535];
    let mut lost = 0;
    while n
        .ep
        .poll_transmit_from_at(&mut buf, Instant::now())
        .is_some()
    {
        lost += 1;
        assert!(lost < 1000, "endless transmit");
    }
    lost
}

#[test]
fn fins_lost_with_the_acks_of_their_data_still_reach_the_reader() {
    let (mut a, mut b, h) = open_pair();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| {
        n[1].incoming().is_some()
    }));
    let hb = b.incoming().unwrap();
    let from_b: SocketAddr = b.addr;
    // Let the handshake's last packets be acknowledged, so that the data
    // below is the oldest a probe can retransmit (bounded: 200 ms).
    pump(&mut [&mut a, &mut b], Duration::from_millis(200), |_| false);

    // 1. Every stream's data arrives and is read, but every acknowledgement
    //    of it is lost.
    let ids: Vec<u64> = (0..STREAMS)
        .map(|_| a.ep.open_stream(h, true).unwrap())
        .collect();
    for (i, &s) in ids.iter().enumerate() {
        let data = vec![i as u8; LEN];
        assert_eq!(
            a.ep.stream_send(h, s, &data, false).unwrap(),
            StreamWrite::Written(LEN)
        );
    }
    let mut reader = Reader::default();
    assert!(
        pump_tap(
            &mut [&mut a, &mut b],
            Duration::from_secs(5),
            |d| (d.1 != from_b).then_some(d),
            |n| {
                reader.drain(n[1], hb);
                reader.total() == STREAMS * LEN
            },
        ),
        "data not read: {} of {} bytes",
        reader.total(),
        STREAMS * LEN
    );
    assert!(reader.fins.is_empty());

    // 2. The writers finish; the datagrams carrying the FINs are lost.
    for &s in &ids {
        assert_eq!(
            a.ep.stream_send(h, s, &[], true).unwrap(),
            StreamWrite::Written(0)
        );
    }
    assert!(lose_all(&mut a) > 0, "the FINs were not sent");
    // The reader's acknowledgements still queued are lost in the same burst.
    lose_all(&mut b);

    // 3. The path is clean again: the sender's loss recovery must bring every
    //    FIN to the reader.
    let done = pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| {
        reader.drain(n[1], hb);
        reader.fins.len() == STREAMS
    });
    let missing: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|s| !reader.fins.contains(s))
        .collect();
    assert!(
        done,
        "{} of {STREAMS} FINs never reached the reader (streams {:?}...)",
        missing.len(),
        &missing[..missing.len().min(8)]
    );
    for &s in &ids {
        assert_eq!(reader.bytes.get(&s), Some(&LEN), "stream {s} length");
    }
    assert!(a.closed(h).is_none() && b.closed(hb).is_none());
}
