//! The web client's server side, tested with a WebSocket client crate and raw HTTP: the page,
//! errors for bad requests, WebSocket users chatting with TCP users both ways, the line limit,
//! the origin check, the login timeout and the slow-reader cut-off, and the close frame that
//! repeats the last line.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Client, Server};
use tungstenite::{Message, WebSocket};

/// A WebSocket client on a blocking socket with a generous read timeout.
struct WsClient {
    socket: WebSocket<TcpStream>,
}

impl WsClient {
    fn connect(web: SocketAddr) -> WsClient {
        let stream = TcpStream::connect(web).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (socket, response) = tungstenite::client(format!("ws://{web}/ws"), stream).unwrap();
        assert_eq!(response.status(), 101);
        WsClient { socket }
    }

    /// Connects and logs in as `nick`.
    fn login(web: SocketAddr, nick: &str) -> WsClient {
        let mut client = WsClient::connect(web);
        assert!(client.line().starts_with("* welcome"));
        client.send(nick);
        let welcome = client.line();
        assert!(welcome.starts_with(&format!("* hello {nick}")), "{welcome}");
        client
    }

    fn send(&mut self, text: &str) {
        self.socket.send(Message::text(text)).unwrap();
    }

    /// The next text frame.
    fn line(&mut self) -> String {
        loop {
            match self.socket.read().unwrap() {
                Message::Text(text) => return text.to_string(),
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Reads frames until one starts with `prefix`.
    fn expect_prefix(&mut self, prefix: &str) -> String {
        for _ in 0..100 {
            let line = self.line();
            if line.starts_with(prefix) {
                return line;
            }
        }
        panic!("no frame starting {prefix:?}");
    }

    /// Reads until the server's close frame; returns the last text frame before it and the
    /// close frame's code and reason.
    fn last_line_and_close(&mut self) -> (String, u16, String) {
        let mut last = String::new();
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => last = text.to_string(),
                Ok(Message::Close(Some(frame))) => {
                    return (last, frame.code.into(), frame.reason.to_string());
                }
                Ok(Message::Close(None)) => panic!("a close frame without a reason"),
                Ok(_) => continue,
                Err(err) => panic!("no close frame: {err}"),
            }
        }
    }

    /// True once the server has closed the connection.
    fn closed(&mut self) -> bool {
        loop {
            match self.socket.read() {
                Ok(Message::Close(_)) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    }
}

fn async_server(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["--web-addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut server = Server::start("async", &args);
    let web = server.web_addr();
    (server, web)
}

/// Sends raw bytes as an HTTP request and returns the whole response.
fn http(web: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(web).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[test]
fn the_page_is_served_and_bad_requests_get_errors() {
    let (_server, web) = async_server(&[]);
    let page = http(web, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("Content-Type: text/html"), "{page}");
    assert!(page.contains("<title>stroll chat</title>"), "{page}");
    assert!(
        !page.contains("https://"),
        "the page loads nothing from elsewhere"
    );

    let missing = http(web, b"GET /nothing HTTP/1.1\r\n\r\n");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let malformed = http(web, b"this is not http\r\n\r\n");
    assert!(malformed.starts_with("HTTP/1.1 400"), "{malformed}");
    let post = http(web, b"POST / HTTP/1.1\r\n\r\n");
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    let no_key = http(
        web,
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    assert!(
        no_key.starts_with("HTTP/1.1 400"),
        "a malformed handshake: {no_key}"
    );
    let huge = vec![b'a'; 20_000];
    let too_long = http(web, &[b"GET / HTTP/1.1\r\nX: ".as_slice(), &huge].concat());
    assert!(too_long.starts_with("HTTP/1.1 400"), "{too_long}");
}

#[test]
fn a_websocket_from_another_origin_is_refused() {
    let (_server, web) = async_server(&[]);
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {web}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Origin: http://evil.example\r\n\r\n"
    );
    let response = http(web, request.as_bytes());
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    let same_origin = request.replace("http://evil.example", &format!("http://{web}"));
    let stream = TcpStream::connect(web).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut stream = stream;
    stream.write_all(same_origin.as_bytes()).unwrap();
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).unwrap();
    assert!(
        head[..n].starts_with(b"HTTP/1.1 101"),
        "the page's own origin is accepted"
    );
}

#[test]
fn websocket_and_tcp_users_chat_both_ways() {
    let (server, web) = async_server(&[]);
    let mut browser = WsClient::login(web, "webby");
    let mut terminal = Client::login(&server, "nc_user");
    browser.expect_prefix("* nc_user joined");
    browser.send("hello from the browser");
    terminal.expect_line("webby: hello from the browser");
    terminal.send_line("hello from the terminal");
    assert_eq!(browser.line(), "nc_user: hello from the terminal");
    browser.send("/who");
    assert_eq!(browser.line(), "* online: nc_user, webby");
    browser.send("/nick web2");
    assert_eq!(browser.line(), "* you are now web2");
    terminal.expect_line("* webby is now web2");
    browser.send("/quit");
    // The last line, then a close frame that says the same.
    let closing = browser.last_line_and_close();
    assert_eq!(closing, ("* bye".to_string(), 1000, "bye".to_string()));
    terminal.expect_line("* web2 left");
}

#[test]
fn an_oversize_frame_is_refused_and_the_connection_stays_usable() {
    let (server, web) = async_server(&["--max-line", "100"]);
    let mut browser = WsClient::login(web, "webby");
    let mut terminal = Client::login(&server, "nc_user");
    browser.expect_prefix("* nc_user joined");
    browser.send(&"x".repeat(101));
    assert_eq!(browser.line(), "! line too long (max 100 bytes)");
    browser.send("still here");
    terminal.expect_line("webby: still here");
    // A frame past the WebSocket limit (64 KiB here) ends the connection.
    browser.send(&"y".repeat(200_000));
    assert!(browser.closed());
    terminal.expect_line("* webby left");
}

#[test]
fn a_websocket_without_a_nickname_times_out() {
    let (_server, web) = async_server(&["--login-timeout", "0.5"]);
    let mut browser = WsClient::connect(web);
    assert!(browser.line().starts_with("* welcome"));
    let (last, code, reason) = browser.last_line_and_close();
    assert!(last.starts_with("! login timeout"), "{last}");
    assert_eq!((code, format!("! {reason}")), (1008, last)); // 1008: policy violation
}

#[test]
fn a_websocket_that_never_reads_is_cut_off() {
    let (server, web) = async_server(&["--max-queue", "65536"]);
    let mut slow = WsClient::login(web, "slow");
    let mut talker = Client::login(&server, "talker");
    let mut listener = Client::login(&server, "listener");
    talker.expect_line("* listener joined");
    // The WebSocket client stops reading; the talker floods the room with 1 KiB lines while
    // the listener keeps reading, so only the slow client's queue can overflow.
    let line = "z".repeat(1000);
    let mut cut_off = false;
    for i in 0..5000 {
        talker.send_line(&format!("{i} {line}"));
        let got = listener.expect_prefix("");
        if got.starts_with("* slow left") {
            cut_off = true;
            break;
        }
        assert!(got.starts_with(&format!("talker: {i} ")), "{got}");
    }
    assert!(
        cut_off,
        "the WebSocket client that never reads was never cut off"
    );
    // Reading at last: what was on its way, then why, in a line and in the close frame.
    let (last, code, reason) = slow.last_line_and_close();
    assert!(
        last.starts_with("! disconnected: you read too slowly"),
        "{last}"
    );
    assert_eq!((code, format!("! {reason}")), (1008, last));
}
