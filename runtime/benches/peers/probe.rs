//! What the workloads read from the system: a thread's CPU time, the process's resident
//! memory, a loopback listener, and the syscall counter (perf or strace, whichever works).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::process::{ChildStderr, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::child;

/// On-CPU time of the calling thread, in ns: the first field of `/proc/thread-self/schedstat`.
pub fn thread_cpu_ns() -> u64 {
    let text = fs::read_to_string("/proc/thread-self/schedstat").expect("read schedstat");
    let first = text.split_whitespace().next().expect("schedstat is empty");
    first.parse().expect("schedstat's first field is a number")
}

/// The kernel's id of the calling thread (what `perf -t` and `strace -p` take), read from the
/// `/proc/thread-self` link, which points to `PID/task/TID`.
pub fn thread_id() -> u32 {
    let link = fs::read_link("/proc/thread-self").expect("read /proc/thread-self");
    let tid = link.file_name().expect("/proc/thread-self ends in the tid");
    tid.to_string_lossy().parse().expect("the tid is a number")
}

/// Resident memory of this process, in bytes (`VmRSS` in `/proc/self/status`).
pub fn vm_rss_bytes() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("VmRSS is a number of kB");
    kib * 1024
}

/// A listener on 127.0.0.1, port chosen by the kernel, already non-blocking (as tokio's
/// `from_std` requires), with a backlog of 4096 so that thousands of quick connects are not
/// dropped while the server is busy (std's `bind` listens with 128).
pub fn loopback_listener() -> (TcpListener, SocketAddr) {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&addr.into()).expect("bind 127.0.0.1:0");
    socket.listen(4096).expect("listen");
    socket.set_nonblocking(true).expect("non-blocking");
    let listener: TcpListener = socket.into();
    let addr = listener.local_addr().expect("local_addr");
    (listener, addr)
}

/// How syscalls are counted, chosen once at start-up.
pub enum SyscallCounter {
    /// `perf stat -e raw_syscalls:sys_enter -t TID`: a kernel counter, cheap.
    Perf,
    /// `strace -c -p TID`: stops the thread at every syscall, so slow, but the count is right.
    Strace,
    /// Neither works here; the reason is printed and the column shows "n/a".
    Unavailable(String),
}

impl SyscallCounter {
    /// Tries perf, then strace. `PEERS_SYSCALLS=perf|strace|off` forces a choice.
    pub fn detect() -> SyscallCounter {
        let forced = std::env::var("PEERS_SYSCALLS").unwrap_or_default();
        let perf = || probe_perf().map(|()| SyscallCounter::Perf);
        let strace = || probe_strace().map(|()| SyscallCounter::Strace);
        let found = match forced.as_str() {
            "perf" => perf(),
            "strace" => strace(),
            "off" => Err("switched off by PEERS_SYSCALLS=off".to_string()),
            _ => perf().or_else(|perf_err| {
                strace().map_err(|strace_err| format!("{perf_err}; {strace_err}"))
            }),
        };
        found.unwrap_or_else(SyscallCounter::Unavailable)
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        match self {
            SyscallCounter::Perf => "perf stat -e raw_syscalls:sys_enter -t <server tid>".into(),
            SyscallCounter::Strace => "strace -c -p <server tid>".into(),
            SyscallCounter::Unavailable(why) => format!("not counted ({why})"),
        }
    }

    /// Starts counting the syscalls of thread `tid`; `None` if there is no counter.
    pub fn attach(&self, tid: u32) -> Option<Attached> {
        match self {
            SyscallCounter::Perf => attach_perf(tid),
            SyscallCounter::Strace => attach_strace(tid),
            SyscallCounter::Unavailable(_) => None,
        }
    }
}

/// A counter attached to a thread; [`Attached::finish`] stops it and reads the count.
pub struct Attached {
    child: child::Guard,
    /// Where the tool writes its report.
    stderr: BufReader<ChildStderr>,
    /// perf's window: perf counts until this workload (this binary, waiting for its stdin to
    /// close) exits. `None` for strace, which is stopped with SIGINT.
    window: Option<ChildStdin>,
}

impl Attached {
    /// Stops counting and returns the number of syscalls seen, if the tool reported one
    /// within a few seconds.
    pub fn finish(self) -> Option<u64> {
        let Attached {
            mut child,
            mut stderr,
            window,
        } = self;
        match window {
            Some(stdin) => drop(stdin),
            None => {
                let pid = child.id().to_string();
                let _ = Command::new("kill").args(["-INT", &pid]).status();
            }
        }
        let (done, report) = mpsc::channel();
        thread::spawn(move || {
            let mut report = String::new();
            let _ = stderr.read_to_string(&mut report);
            let _ = done.send(report);
        });
        let report = report.recv_timeout(Duration::from_secs(10));
        child.wait_until(Duration::from_secs(5));
        parse_syscall_report(&report.ok()?)
    }
}

/// perf's CSV line (`12345,,raw_syscalls:sys_enter,...`) or strace's `total` line.
fn parse_syscall_report(report: &str) -> Option<u64> {
    for line in report.lines() {
        if line.contains("raw_syscalls:sys_enter") {
            return line.split(',').next()?.trim().parse().ok();
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.last() == Some(&"total") && fields.len() >= 5 {
            return fields[3].parse().ok();
        }
    }
    None
}

fn probe_perf() -> Result<(), String> {
    let output = Command::new("perf")
        .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .map_err(|err| format!("perf: {err}"))?;
    let report = String::from_utf8_lossy(&output.stderr);
    match parse_syscall_report(&report) {
        Some(_) if output.status.success() => Ok(()),
        _ => Err(format!(
            "perf cannot count syscalls: {}",
            first_line(&report)
        )),
    }
}

fn probe_strace() -> Result<(), String> {
    // What the benchmark needs is attaching (ptrace) to a running thread: try it on a child
    // that keeps making syscalls.
    let target = Command::new("yes")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|err| format!("yes: {err}"))?;
    let target = child::Guard::new(target);
    let attached =
        attach_strace(target.id()).ok_or("strace is missing or cannot attach (ptrace denied?)")?;
    thread::sleep(Duration::from_millis(50));
    match attached.finish() {
        Some(calls) if calls > 0 => Ok(()),
        _ => Err("strace attached but reported no count".into()),
    }
}

fn attach_perf(tid: u32) -> Option<Attached> {
    let exe = std::env::current_exe().ok()?;
    let perf = Command::new("perf")
        .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "-t"])
        .arg(tid.to_string())
        .arg("--")
        .arg(exe)
        .env(crate::ROLE_ENV, "perf-window")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut perf = child::Guard::new(perf);
    let window = perf.stdin.take();
    let stderr = BufReader::new(perf.stderr.take()?);
    // The window prints a line once it runs, by which time perf's counter is enabled.
    let mut ready = String::new();
    BufReader::new(perf.stdout.take()?)
        .read_line(&mut ready)
        .ok()?;
    Some(Attached {
        child: perf,
        stderr,
        window,
    })
}

fn attach_strace(tid: u32) -> Option<Attached> {
    let strace = Command::new("strace")
        .args(["-c", "-p"])
        .arg(tid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut strace = child::Guard::new(strace);
    // strace says "Process N attached" on stderr once the thread is traced.
    let mut stderr = BufReader::new(strace.stderr.take()?);
    let mut line = String::new();
    stderr.read_line(&mut line).ok()?;
    line.contains("attached").then_some(Attached {
        child: strace,
        stderr,
        window: None,
    })
}

/// The role of perf's window process: say "ready", then wait until stdin closes.
pub fn window_role() -> ! {
    println!("ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    std::process::exit(0)
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
}
