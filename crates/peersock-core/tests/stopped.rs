//! A writer whose stream the peer stopped must learn it and stop: never be
//! woken to write nothing, again and again (a listener spinning at 100 %
//! CPU on a peer's STOP_SENDING, seen in the hostile-peer table).

mod common;

use std::time::Duration;

use common::{node, pump};
use peersock_core::{Direction, Event, StreamRead, StreamWrite};

#[test]
fn a_stopped_and_collected_stream_fails_its_writer_instead_of_waking_it_forever() {
    let mut a = node(1, 4601);
    let mut b = node(2, 4602);
    let key = *b.ep.public_key();
    let h = a.ep.connect(key, b.addr, None).unwrap();
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| n
        [0]
    .connected(h)));
    let hb = b.incoming().expect("b accepted");

    // A unidirectional stream with more to send than the peer's window takes.
    let s = a.ep.open_stream(h, false).unwrap();
    let payload = vec![7u8; 1 << 20];
    let StreamWrite::Written(mut sent) = a.ep.stream_send(h, s, &payload, false).unwrap() else {
        panic!("stopped at once")
    };
    assert!(
        sent < payload.len(),
        "the window should hold the writer back"
    );

    // b reads a little, then stops the stream.
    let mut buf = vec![0u8; 4096];
    assert!(pump(&mut [&mut a, &mut b], Duration::from_secs(5), |n| {
        matches!(
            n[1].ep.stream_recv(hb, s, &mut buf),
            Ok(StreamRead::Data { .. })
        )
    }));
    b.ep.stream_shutdown(hb, s, Direction::Read, 9).unwrap();

    // a's writer does what the JavaScript stream does: write whenever woken,
    // until the core says the stream is stopped or gone.
    let mut wakeups = 0;
    let mut outcome = None;
    let mut stop_code = None;
    pump(&mut [&mut a, &mut b], Duration::from_secs(3), |n| {
        let mut woken = false;
        for e in n[0].events.drain(..) {
            match e {
                Event::StreamStopped { stream, code, .. } if stream == s => {
                    stop_code = Some(code);
                    woken = true;
                }
                Event::StreamWritable { stream, .. } if stream == s => woken = true,
                _ => {}
            }
        }
        if woken && outcome.is_none() {
            wakeups += 1;
            let r = n[0].ep.stream_send(h, s, &payload[sent..], false);
            match r {
                Ok(StreamWrite::Written(w)) => sent += w,
                Ok(StreamWrite::Stopped(code)) => outcome = Some(Ok(code)),
                Err(e) => outcome = Some(Err(e.code())),
            }
        }
        outcome.is_some() || wakeups > 50
    });
    assert!(
        wakeups <= 5,
        "the writer was woken {wakeups} times without progress"
    );
    // quiche may collect the stream (once our RESET_STREAM is acknowledged)
    // before the stop is reported: then the write fails without the code.
    match outcome {
        Some(Ok(code)) => assert_eq!(code, 9),
        Some(Err(code)) => assert_eq!(code, "STREAM_STATE"),
        None => panic!("the writer never learned that its stream is gone"),
    }
    if let Some(code) = stop_code {
        assert_eq!(code, 9, "the stop carries the peer's code");
    }

    // Written again after that (the stream is collected by now): an error,
    // never "0 bytes taken, wait for a wake-up".
    for _ in 0..3 {
        match a.ep.stream_send(h, s, &payload[sent..], false) {
            Ok(StreamWrite::Written(0)) => {
                panic!("a collected stream took 0 bytes and would wait forever")
            }
            Ok(StreamWrite::Written(w)) => panic!("a stopped stream took {w} bytes"),
            Ok(StreamWrite::Stopped(_)) | Err(_) => {}
        }
    }
    let woken_again = pump(&mut [&mut a, &mut b], Duration::from_millis(300), |n| {
        n[0].events
            .iter()
            .any(|e| matches!(e, Event::StreamWritable { stream, .. } if *stream == s))
    });
    assert!(!woken_again, "no wake-up for a stream that is gone");
}
