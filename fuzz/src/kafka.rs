//! `kafka_request`: a whole broker in this process, fed one request frame per input.
//!
//! The input is the frame after its length prefix (API key, version, correlation id,
//! client id, body), sent over TCP to a single-node broker started on first use in a
//! scratch directory, so it takes the path a client's request takes: socket server,
//! header and body decoders, handlers, storage. The broker lives as long as the process.
//!
//! A panic anywhere in the process aborts it, so a panic in a connection task (which
//! tokio would otherwise swallow) is a crash the fuzzer reports with its input. A
//! request that gets no answer is followed by a liveness check on a new connection: a
//! broker that stops answering ApiVersions is a crash too.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use strata_broker::config::KafkaConfig;

/// How long an input's response is waited for; long polls (Fetch, JoinGroup) outlast it
/// and are left to finish on their own.
const RESPONSE_WAIT: Duration = Duration::from_millis(100);
/// How long a broker may take to answer ApiVersions before it counts as hung.
const LIVENESS_WAIT: Duration = Duration::from_secs(10);
/// The prefix of the scratch directories (`<prefix><pid>` under the temporary directory).
const DIR_PREFIX: &str = "strata-fuzz-broker-";

struct Harness {
    port: u16,
    /// A connection kept between inputs while the broker keeps it open.
    conn: Mutex<Option<TcpStream>>,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

/// Sends `data` as one request frame and reads the response, if any.
pub fn request(data: &[u8]) {
    let h = HARNESS.get_or_init(start);
    let mut conn = h.conn.lock().unwrap_or_else(|e| e.into_inner());
    let mut stream = match conn.take() {
        Some(s) => s,
        None => connect(h.port),
    };
    let mut frame = Vec::with_capacity(data.len() + 4);
    frame.extend_from_slice(&(data.len() as i32).to_be_bytes());
    frame.extend_from_slice(data);
    if stream.write_all(&frame).is_err() {
        return;
    }
    match read_frame(&mut stream) {
        Ok(true) => *conn = Some(stream),
        // Closed by the broker: a refused request; the next input connects again.
        Ok(false) => {}
        Err(_) => check_alive(h.port),
    }
}

/// The port of the broker the target drives (started if it is not yet).
pub fn broker_port() -> u16 {
    HARNESS.get_or_init(start).port
}

/// `Ok(true)` with a whole response read, `Ok(false)` when the broker closed the
/// connection, `Err` when nothing came within [`RESPONSE_WAIT`].
fn read_frame(stream: &mut TcpStream) -> std::io::Result<bool> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if is_timeout(&e) => return Err(e),
        Err(_) => return Ok(false),
    }
    let len = i32::from_be_bytes(len);
    assert!(
        len >= 0,
        "the broker sent a response of negative length {len}"
    );
    let mut body = vec![0u8; len as usize];
    stream.set_read_timeout(Some(LIVENESS_WAIT))?;
    let read = stream.read_exact(&mut body);
    stream.set_read_timeout(Some(RESPONSE_WAIT))?;
    Ok(read.is_ok())
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// ApiVersions v0 on a new connection must be answered.
pub fn check_alive(port: u16) {
    let mut s = connect(port);
    s.set_read_timeout(Some(LIVENESS_WAIT))
        .expect("read timeout");
    // ApiVersions (18) v0, correlation id 1, client id "alive".
    let frame = b"\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05alive";
    s.write_all(frame).expect("the broker accepts connections");
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .expect("the broker stopped answering ApiVersions after this input");
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the broker under test");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(RESPONSE_WAIT))
        .expect("read timeout");
    s
}

fn start() -> Harness {
    abort_on_panic();
    let dir = scratch_dir();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("local address").port()
    };
    let text = format!(
        "broker.id=0\nlisteners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={}\nmetrics.port=0\n",
        dir.display()
    );
    let config =
        KafkaConfig::parse(&text, Path::new("fuzz.properties")).expect("the harness config");
    std::thread::Builder::new()
        .name("broker".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                // Held for the life of the process: the broker never shuts down.
                let (_keep, shutdown) = tokio::sync::watch::channel(false);
                let result = strata_broker::run(config, shutdown).await;
                panic!("the broker under test stopped: {result:?}");
            });
        })
        .expect("broker thread");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the broker did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Harness {
        port,
        conn: Mutex::new(None),
    }
}

/// `<tmp>/strata-fuzz-broker-<pid>`, after removing those of processes that are gone.
fn scratch_dir() -> std::path::PathBuf {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = tmp.join(format!("{DIR_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// A panic on any thread (a broker task included) ends the process, after the message.
fn abort_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        std::process::abort();
    }));
}
