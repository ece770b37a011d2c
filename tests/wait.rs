//! Waiting in the Rust tests, one copy for every crate's test support (included with
//! `#[path]`, as tests/wait.sh is sourced by the shell tests): a wait retries its
//! condition until a deadline generous for a loaded 2-core CI machine, never sleeps a
//! fixed time and looks once.

use std::time::{Duration, Instant};

/// How long a test waits for something that becomes true asynchronously (a restarted
/// process's clients reconnecting, metadata reaching a broker's cache, a group settling,
/// an election, metrics catching up).
pub const WAIT: Duration = Duration::from_secs(60);

const RETRY_EVERY: Duration = Duration::from_millis(200);

/// Runs `check` until it returns `Ok`, and fails naming `what` and the last `Err` once
/// [`WAIT`] has passed. `check` returns `Err` for anything that may still change (a
/// request or command that failed included), never panics on it.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: still not the case after {WAIT:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(RETRY_EVERY),
        }
    }
}

/// [`eventually`] for a check that awaits.
pub async fn eventually_async<T>(
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: still not the case after {WAIT:?}; last: {last}")
            }
            Err(_) => tokio::time::sleep(RETRY_EVERY).await,
        }
    }
}
