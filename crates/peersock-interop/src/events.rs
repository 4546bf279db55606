//! The output: one JSON event per stdout line, and the event that says how
//! a connection ended.

use std::time::Instant;

use quinn::ConnectionError;

use crate::{EXIT_CLOSED, EXIT_TIMEOUT};

/// A JSON value of an event field.
pub enum J<'a> {
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
pub fn emit(event: &str, fields: &[(&str, J<'_>)]) {
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

pub fn ms_since(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

/// Reports how a connection ended; returns the exit status that goes with it.
pub fn report_close(e: &ConnectionError, start: Instant) -> i32 {
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
