//! Black-box tests of how the server ends a connection, against every server mode.
//!
//! A server that closes a socket while bytes from the client are still unread makes the kernel
//! answer with a reset instead of an end of file, and the client's kernel then throws away
//! whatever the client had not read yet: the server's last line. So each way a connection can
//! end is tried with a client that is still sending when it ends (`/quit`, the login timeout,
//! `server full`, cut off for reading too slowly, the server shutting down): the client first
//! sends for a while without reading, and only then reads. It must still find the last line.
//!
//! Then the server under churn: steady chatters keep talking while other clients connect, log
//! in, reset, half-close, send garbage or quit, over and over; afterwards the server must hold
//! as many descriptors and threads as it did with the steady chatters alone. And a storm of
//! 2,000 connect / login / `/quit` cycles, 100 at a time.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    for_each_mode, join, keep_sending, send_for, Client, Footprint, Reach, Server, SetOnDrop,
    Target, IO_TIMEOUT, MODES,
};

/// What a client sends while its connection ends: empty lines, which the server reads and
/// ignores whether the client is logged in or not.
const EMPTY_LINES: [u8; 16 * 1024] = [b'\n'; 16 * 1024];

/// How long a client goes on sending, without reading, after the server has decided to close:
/// well inside the 2 s the server keeps reading after its last line.
const KEEP_SENDING: Duration = Duration::from_millis(500);

/// The line a client cut off for reading too slowly gets last.
const TOO_SLOW: &str = "! disconnected: you read too slowly";

#[test]
fn quit_while_still_sending_reads_bye() {
    for_each_mode(&MODES, |mode| {
        let server = Server::start(mode, &[]);
        let mut alice = Client::login(&server, "alice");
        let mut writer = alice.writer();
        writer.write_all(b"/quit\n").unwrap();
        send_for(writer, &EMPTY_LINES, KEEP_SENDING);
        alice.expect_line("* bye");
        // The server kept reading until our end of file, then closed: no reset.
        alice.shutdown_write();
        alice.expect_eof();
    });
}

#[test]
fn login_timeout_while_still_sending_reads_why() {
    for_each_mode(&MODES, |mode| {
        let server = Server::start(mode, &["--login-timeout", "0.3"]);
        let mut silent = Client::greeted(&server, "silent");
        // Empty lines are not a nickname: sending them past the timeout.
        send_for(
            silent.writer(),
            &EMPTY_LINES,
            Duration::from_millis(300) + KEEP_SENDING,
        );
        silent.expect_prefix("! login timeout");
        silent.shutdown_write();
        silent.expect_eof();
    });
}

#[test]
fn server_full_while_still_sending_reads_why() {
    for_each_mode(&MODES, |mode| {
        let server = Server::start(mode, &["--max-clients", "1"]);
        let _first = Client::login(&server, "first");
        let mut refused = Client::connect(&server, "refused");
        send_for(refused.writer(), &EMPTY_LINES, KEEP_SENDING);
        refused.expect_line("! server full");
        refused.shutdown_write();
        refused.expect_eof();
    });
}

/// Threads mode with its threads used up: the server must refuse with a line, not abort. (Its
/// default budget comes from vm.max_map_count: past ~16,380 threads on a 65,530 limit, a new
/// thread cannot map its signal stack and the whole process aborts.) With `--max-threads 5`
/// the room holds two connections (four threads); a third is refused by a thread of its own,
/// which lingers; a fourth then finds no thread free and is refused by the accepting thread.
#[test]
fn threads_mode_out_of_threads_refuses_with_a_line_and_keeps_serving() {
    let mut server = Server::start("threads", &["--max-threads", "5"]);
    let mut alice = Client::login(&server, "alice");
    let _bob = Client::login(&server, "bob");
    alice.expect_line("* bob joined");
    let mut third = Client::connect(&server, "third");
    third.expect_line("! server full");
    let mut fourth = Client::connect(&server, "fourth");
    fourth.expect_line("! server full");
    fourth.expect_eof();
    third.shutdown_write();
    third.expect_eof();
    assert_eq!(
        server.stderr_count("at most 5 threads here, so at most 2 connections"),
        1,
        "the server says its limit once: {:?}",
        server.stderr()
    );
    // Still serving: the room still works for those inside it.
    alice.expect_who(&["alice", "bob"]);
}

#[test]
fn a_slow_reader_still_sending_is_told_why_and_the_others_see_it_leave_once() {
    const PAYLOAD: usize = 1000;
    /// Far more than the 64 KiB queue plus every kernel buffer on the way (a few MB).
    const GIVE_UP_AFTER: usize = 50_000;
    for_each_mode(&MODES, |mode| {
        let server = Server::start(mode, &["--max-queue", "65536"]);
        let mut slow = Client::login(&server, "slow"); // reads nothing until it is cut off
        let mut sender = Client::login(&server, "sender");
        let stop = AtomicBool::new(false);
        let mut sender = thread::scope(|scope| {
            let _stop_on_exit = SetOnDrop(&stop);
            let slow_writer = slow.writer();
            let stop = &stop;
            let slow_sending = scope.spawn(move || keep_sending(slow_writer, &EMPTY_LINES, stop));
            // The sender gets none of its own lines: the first it reads is `* slow left`.
            let mut flood = sender.writer();
            let (left_tx, left) = mpsc::channel();
            let watcher = scope.spawn(move || {
                sender.expect_line("* slow left");
                let _ = left_tx.send(());
                sender
            });
            let payload = "x".repeat(PAYLOAD);
            for k in 0.. {
                if left.try_recv().is_ok() {
                    break;
                }
                assert!(k < GIVE_UP_AFTER, "[{mode}] slow was never cut off");
                flood
                    .write_all(format!("{k} {payload}\n").as_bytes())
                    .unwrap_or_else(|err| panic!("[{mode}] sender: cannot send: {err}"));
            }
            stop.store(true, Ordering::SeqCst);
            join(slow_sending);
            join(watcher)
        });
        // Now slow reads: everything that was on the way, then why it was cut off, then the end.
        let rest = slow
            .read_until_closed()
            .unwrap_or_else(|err| panic!("[{mode}] slow: closed by {err}, not told why"));
        let rest = String::from_utf8_lossy(&rest);
        let last = rest.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(TOO_SLOW),
            "[{mode}] slow: the last line should say why it was cut off, got {last:?}"
        );
        // The others heard `* slow left` once. `/who` waits until the server has handled the
        // whole flood (whatever it still had unread would overflow a newcomer's queue).
        sender.send_line("/who");
        let online = sender.expect_prefix("* online: ");
        assert_eq!(online, "* online: sender", "[{mode}] sender: /who");
        let mut other = Client::login(&server, "other");
        sender.expect_line("* other joined");
        other.send_line("marker");
        sender.expect_line("other: marker");
    });
}

#[test]
fn shutdown_tells_clients_that_are_still_sending_and_those_that_are_idle() {
    const EACH: usize = 20;
    for_each_mode(&MODES, |mode| {
        let mut server = Server::start(mode, &[]);
        // Half of each group logged in, half still without a nickname.
        let client = |name: String, i: usize| {
            if i.is_multiple_of(2) {
                Client::login(&server, &name)
            } else {
                Client::greeted(&server, &name)
            }
        };
        let mut idle: Vec<Client> = (0..EACH).map(|i| client(format!("idle{i}"), i)).collect();
        let mut busy: Vec<Client> = (0..EACH).map(|i| client(format!("busy{i}"), i)).collect();
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            let _stop_on_exit = SetOnDrop(&stop);
            let senders: Vec<_> = busy
                .iter()
                .map(|client| {
                    let mut writer = client.writer();
                    writer.write_all(&EMPTY_LINES).unwrap(); // sending before the signal
                    let stop = &stop;
                    scope.spawn(move || keep_sending(writer, &EMPTY_LINES, stop))
                })
                .collect();
            server.signal("TERM");
            thread::sleep(KEEP_SENDING); // what is tested: sending on after the signal
            stop.store(true, Ordering::SeqCst);
            for sender in senders {
                join(sender);
            }
        });
        for client in busy.iter_mut().chain(idle.iter_mut()) {
            // Logged-in clients may first read who joined after them.
            while client.read_line() != "* server shutting down" {}
            // Still connected, not reset: the server reads until our end of file.
            client.shutdown_write();
            client.expect_eof();
        }
        let closed = Instant::now();
        drop(busy);
        drop(idle);
        let status = server.wait_exit();
        assert_eq!(status.code(), Some(0), "[{mode}] exit status: {status}");
        let took = closed.elapsed();
        assert!(
            took < Duration::from_millis(1500),
            "[{mode}] the server took {took:?} to exit after its last client closed"
        );
    });
}

#[test]
fn after_the_signal_nobody_is_greeted_and_the_last_close_ends_the_drain() {
    for_each_mode(&MODES, |mode| {
        let mut server = Server::start(mode, &[]);
        let mut witness = Client::login(&server, "witness");
        // Never reads and never stops sending: it holds the drain as long as the server lets it.
        let holder = Client::login(&server, "holder");
        witness.expect_line("* holder joined");
        let stop = AtomicBool::new(false);
        thread::scope(|scope| {
            let _stop_on_exit = SetOnDrop(&stop);
            let writer = holder.writer();
            let stop = &stop;
            let holding = scope.spawn(move || keep_sending(writer, &EMPTY_LINES, stop));
            server.signal("TERM");
            witness.expect_line("* server shutting down");
            // A newcomer is refused (the listener is closed) or told so; never greeted.
            if let Ok(mut newcomer) = TcpStream::connect(server.addr) {
                newcomer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut got = Vec::new();
                let read = newcomer.read_to_end(&mut got);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    "! server shutting down\n",
                    "[{mode}] a connection made during the drain ({read:?})"
                );
            }
            // The witness and the holder close too: with every client told and closed, the
            // server exits now rather than at the 3 s limit. (The holder's 2 s of lingering
            // may be over already.)
            witness.shutdown_write();
            witness.expect_eof();
            stop.store(true, Ordering::SeqCst);
            join(holding);
            let _ = holder.writer().shutdown(std::net::Shutdown::Write);
            let closed = Instant::now();
            let status = server.wait_exit();
            assert_eq!(status.code(), Some(0), "[{mode}] exit status: {status}");
            let took = closed.elapsed();
            assert!(
                took < Duration::from_millis(1500),
                "[{mode}] the server took {took:?} to exit after its last client closed"
            );
        });
    });
}

/// Steady chatters in [`churn`].
const STEADY: usize = 12;
/// Lines each steady chatter sends, one every [`PACE`].
const STEADY_LINES: usize = 60;
const PACE: Duration = Duration::from_millis(100);
/// Clients that come and go meanwhile, each in a loop.
const CHURNERS: usize = 24;

/// Steady chatters exchange numbered lines while churners come and go; every steady chatter
/// must get every other's lines, complete and in order, and afterwards the server must be back
/// to the descriptors and threads it had with the steady chatters alone.
fn churn(mode: &'static str) {
    let server = Server::start(mode, &[]);
    let mut steady: Vec<Client> = Vec::new();
    for i in 0..STEADY {
        let client = Client::login(&server, &format!("steady{i}"));
        for earlier in &mut steady {
            earlier.expect_line(&format!("* steady{i} joined"));
        }
        steady.push(client);
    }
    let baseline = Footprint::of(server.pid());
    let stop = AtomicBool::new(false);
    let cycles = AtomicUsize::new(0);
    let mut steady = thread::scope(|scope| {
        let _stop_on_exit = SetOnDrop(&stop);
        let churners: Vec<_> = (0..CHURNERS)
            .map(|c| {
                let (server, stop, cycles) = (server.target(), &stop, &cycles);
                scope.spawn(move || churner(server, c, stop, cycles))
            })
            .collect();
        let mut writers = Vec::new();
        let mut readers = Vec::new();
        for (i, client) in steady.into_iter().enumerate() {
            let mut writer = client.writer();
            writers.push(scope.spawn(move || {
                for k in 0..STEADY_LINES {
                    writer.write_all(format!("{k}\n").as_bytes()).unwrap();
                    thread::sleep(PACE); // the chatter's pace, not a synchronisation
                }
            }));
            readers.push(scope.spawn(move || read_steady_lines(client, i)));
        }
        writers.into_iter().for_each(join);
        let steady: Vec<Client> = readers.into_iter().map(join).collect();
        stop.store(true, Ordering::SeqCst);
        churners.into_iter().for_each(join);
        steady
    });
    eprintln!(
        "[{mode}] {} churn cycles around {STEADY} steady chatters",
        cycles.load(Ordering::SeqCst)
    );
    let label = format!("[{mode}]");
    Footprint::wait_for(server.pid(), baseline, Duration::from_secs(5), &label);
    // Only the steady chatters are left (after whatever churn notices are still queued).
    steady[0].send_line("/who");
    let online = loop {
        let line = steady[0].read_line();
        if let Some(nicks) = line.strip_prefix("* online: ") {
            break nicks.to_string();
        }
    };
    let mut names: Vec<String> = (0..STEADY).map(|i| format!("steady{i}")).collect();
    names.sort();
    assert_eq!(online, names.join(", "), "[{mode}] /who after the churn");
}

/// Reads until every other steady chatter's lines arrived, checking each sender's order.
fn read_steady_lines(mut client: Client, me: usize) -> Client {
    let mut next = [0usize; STEADY];
    let mut missing = (STEADY - 1) * STEADY_LINES;
    while missing > 0 {
        let line = client.read_line();
        let Some((nick, text)) = line.split_once(": ") else {
            continue; // a notice: someone joined or left
        };
        let Some(sender) = nick.strip_prefix("steady") else {
            continue; // a churner's line
        };
        let sender: usize = sender.parse().unwrap();
        assert_ne!(sender, me, "{}: got its own line back", client.label());
        assert_eq!(
            text,
            next[sender].to_string(),
            "{}: lines from {nick} lost or out of order",
            client.label()
        );
        next[sender] += 1;
        missing -= 1;
    }
    client
}

/// One churner: connects, does one of six unfriendly things, and again, until `stop`.
fn churner(server: Target, c: usize, stop: &AtomicBool, cycles: &AtomicUsize) {
    for k in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let nick = format!("ch{c}x{k}");
        match (c + k) % 6 {
            0 => {
                let mut client = Client::login(&server, &nick);
                client.send_line("hello from a churner");
                client.send_line("/quit");
                while client.read_line() != "* bye" {}
                let _ = client.read_until_closed();
            }
            1 => {
                let mut client = Client::login(&server, &nick);
                client.send_raw(b"half a li");
                client.reset();
            }
            2 => {
                let mut client = Client::login(&server, &nick);
                client.shutdown_write();
                let _ = client.read_until_closed();
            }
            3 => {
                let mut client = Client::greeted(&server, &nick);
                client.send_raw(b"\xff\xfe\0\x1b[2J\r\n\n\x80garbage\n/nick\n/who\n\x7f");
            }
            4 => Client::connect(&server, &nick).reset(),
            _ => {
                let mut client = Client::login(&server, &nick);
                let mut writer = client.writer();
                writer.write_all(b"/quit\n").unwrap();
                let _ = writer.write_all(&EMPTY_LINES);
                while client.read_line() != "* bye" {}
            }
        }
        cycles.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn churn_threads() {
    for_each_mode(&["threads"], churn);
}

#[test]
fn churn_callbacks() {
    for_each_mode(&["callbacks"], churn);
}

#[test]
fn churn_state_machine() {
    for_each_mode(&["state-machine"], churn);
}

#[test]
fn churn_async() {
    for_each_mode(&["async"], churn);
}

#[test]
fn a_storm_of_two_thousand_logins_and_quits_is_all_answered() {
    const AT_ONCE: usize = 100;
    const EACH: usize = 20;
    for_each_mode(&MODES, |mode| {
        let server = Server::start(mode, &[]);
        let answered = AtomicUsize::new(0);
        let started = Instant::now();
        thread::scope(|scope| {
            for t in 0..AT_ONCE {
                let (server, answered) = (server.target(), &answered);
                scope.spawn(move || {
                    for k in 0..EACH {
                        let mut client = Client::login(&server, &format!("s{t}x{k}"));
                        client.send_line("/quit");
                        while client.read_line() != "* bye" {}
                        client.read_until_eof();
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        let answered = answered.load(Ordering::SeqCst);
        assert_eq!(answered, AT_ONCE * EACH, "[{mode}] cycles answered");
        eprintln!("[{mode}] {answered} cycles in {:.2?}", started.elapsed());
    });
}
