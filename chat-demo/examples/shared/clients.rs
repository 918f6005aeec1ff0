//! What `busy_poll` and `readiness_loop` share: the same clients and the same CPU clock, so
//! that the two ways of serving them can be compared.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How many clients connect.
pub const CLIENTS: usize = 10;
/// How long the clients talk.
pub const RUN_FOR: Duration = Duration::from_secs(2);

/// The clients: one line per 100 ms on each connection, for the length of the run.
pub fn talk(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let mut streams = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr))
        .collect::<std::io::Result<Vec<_>>>()?;
    let start = Instant::now();
    while start.elapsed() < RUN_FOR {
        for stream in &mut streams {
            stream.write_all(b"hello\n")?;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// This process's CPU time (user + system), from /proc/self/stat.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(") ")
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / 100.0 // clock ticks per second on Linux
}
