//! End to end in a real browser: two pages of the web client and one TCP client chat in the
//! same room, driven by `browser/two_pages.mjs` (playwright-core) in headless Chromium. Then
//! the server restarts and the page must reconnect by itself.
//!
//! Needs Debian's `chromium` (`/usr/bin/chromium`, or set `CHROMIUM`), Node.js, and
//! `npm install` run in `chat-demo/tests/browser`; `.ci/run` installs all three. Without them
//! the test prints why it skipped. The screenshot is saved as `target/browser-test/chat.png`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::Server;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `Some(reason)` if the browser test cannot run here.
fn missing_tools() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|output| output.status.success()) {
        return Some("node is not installed".to_string());
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Some("playwright-core is missing (npm install in chat-demo/tests/browser)".into());
    }
    None
}

#[test]
fn two_pages_and_a_tcp_client_chat_in_chromium() {
    if let Some(reason) = missing_tools() {
        eprintln!("skipped: {reason}");
        return;
    }
    let mut server = Server::start("async", &["--web-addr", "127.0.0.1:0"]);
    let web = server.web_addr();
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-test");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("chat.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut node = Command::new("timeout")
        .arg("120")
        .arg("node")
        .arg(browser_dir().join("two_pages.mjs"))
        .arg(format!("http://{web}/"))
        .arg(server.addr.to_string())
        .arg(&screenshot)
        .current_dir(browser_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(node.stdout.take().unwrap());
    let mut said = String::new();
    // Wait for the script to ask for a restart (or to end, if it failed before).
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        said.push_str(&line);
        if line.trim() == "restart the server" {
            let (tcp, web_port) = (server.addr.to_string(), web.to_string());
            drop(server); // kills it
            server = Server::start("async", &["--addr", &tcp, "--web-addr", &web_port]);
            writeln!(node.stdin.as_mut().unwrap(), "restarted").unwrap();
            break;
        }
    }
    stdout.read_to_string(&mut said).unwrap();
    let mut stderr = String::new();
    node.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = node.wait().unwrap();
    if stderr.contains("Failed to launch") || stderr.contains("browserType.launch") {
        eprintln!("skipped: Chromium could not start here:\n{stderr}");
        return;
    }
    assert!(
        status.success(),
        "the browser test failed:\n{said}\n{stderr}"
    );
    drop(server);
    let png = std::fs::read(&screenshot).expect("a screenshot was saved");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
}
