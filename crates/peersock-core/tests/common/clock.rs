//! The time the pumps hand to the endpoints.

use std::cell::Cell;
use std::time::{Duration, Instant};

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
    pub fn idle(&self, next: Option<Duration>) {
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
