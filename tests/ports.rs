//! Ports for the servers the Rust tests start, one copy for every crate's test support
//! (included with `#[path]`, as tests/wait.rs is).

use std::net::TcpListener;
use std::sync::Mutex;

/// A port for a server a test starts, below Linux's ephemeral range (32768+): a port the
/// kernel hands out for `:0` can be taken by any outgoing connection on the host (a test's
/// clients, a server's own links to its peers) before the server it was meant for binds
/// it. Each port is handed out once per test process, and only if it can be bound now.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().expect("not poisoned");
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761)
        ^ (handed_out.len() as u32).wrapping_mul(40_503)
        | 1;
    loop {
        // xorshift32: no dependency needed for picking ports.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let port = 20_000 + (x % 12_000) as u16;
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
}
