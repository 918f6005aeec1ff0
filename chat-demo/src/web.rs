//! The chat in a browser: a page and a WebSocket endpoint, served by the async server.
//!
//! Long-lived connections that the server pushes to are what made web applications turn to
//! event loops. Here a browser tab joins the same room as the `nc` users: `GET /` returns one
//! self-contained page (`web/index.html`, embedded in the binary), whose script opens a
//! WebSocket on `/ws`. Each text frame is one line of the chat protocol, in both directions.
//!
//! Everything runs on stroll, through crates written for any runtime: `httparse` reads the
//! request head, and `async-tungstenite` frames the WebSocket over stroll's `TcpStream`, which
//! implements the `futures-io` traits. A WebSocket client is a room member like any other, with
//! the same limits: longest line, bounded outgoing queue (a slow reader is cut off), login
//! timeout. Malformed requests get a 400 and are closed, unknown paths a 404, and a WebSocket
//! request whose `Origin` is not the page's own host a 403 (so another site's page cannot open
//! a connection to this server in its visitor's browser).

use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use futures_util::{SinkExt, StreamExt};
use stroll::net::TcpStream;
use stroll::time::timeout;

use crate::on_stroll::{self, finish_writer, LingeringClose};
use crate::protocol::say;
use crate::room::{ClientId, Flow};
use crate::shared::{LiveGuard, Shared, TaskOutbox};

/// The page, embedded in the binary.
pub const PAGE: &str = include_str!("web/index.html");

/// The longest request head (request line and headers) accepted, in bytes.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long a client may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A request head, parsed: what routing needs.
#[derive(Debug, Default)]
struct Request {
    method: String,
    path: String,
    /// Header names in lower case, with their values.
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Does `name` hold `token` among its comma-separated values (case-insensitive)?
    fn header_has(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|value| {
            value
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    }
}

/// Serves one HTTP connection: the page, a WebSocket, or an error; `_live` counts it as open
/// until then.
pub async fn handle_http(stream: TcpStream, shared: Rc<Shared>, _live: LiveGuard) {
    let stream = Rc::new(stream);
    let request = match timeout(REQUEST_TIMEOUT, read_request(&stream)).await {
        Ok(Ok(request)) => request,
        Ok(Err(why)) => return respond(&stream, "400 Bad Request", &why).await,
        Err(_elapsed) => return respond(&stream, "408 Request Timeout", "too slow").await,
    };
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/" | "/index.html") => respond_page(&stream).await,
        ("GET", "/ws") => upgrade(stream, &request, shared).await,
        (_, "/" | "/index.html" | "/ws") => {
            respond(&stream, "405 Method Not Allowed", "use GET").await
        }
        _ => respond(&stream, "404 Not Found", "no such page").await,
    }
}

/// Reads and parses the request head, refusing anything malformed or too long.
async fn read_request(stream: &TcpStream) -> Result<Request, String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await.map_err(|err| err.to_string())?;
        if n == 0 {
            return Err("the request ended early".to_string());
        }
        head.extend_from_slice(&buf[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(_)) => return Ok(to_request(&parsed)),
            Ok(httparse::Status::Partial) if head.len() < MAX_REQUEST_HEAD => continue,
            Ok(httparse::Status::Partial) => return Err("request head too long".to_string()),
            Err(err) => return Err(format!("malformed request: {err}")),
        }
    }
}

fn to_request(parsed: &httparse::Request<'_, '_>) -> Request {
    Request {
        method: parsed.method.unwrap_or_default().to_string(),
        path: parsed.path.unwrap_or_default().to_string(),
        headers: parsed
            .headers
            .iter()
            .map(|header| {
                let value = String::from_utf8_lossy(header.value).trim().to_string();
                (header.name.to_ascii_lowercase(), value)
            })
            .collect(),
    }
}

/// Sends a small plain-text response and closes.
async fn respond(stream: &Rc<TcpStream>, status: &str, body: &str) {
    let body = format!("{status}: {body}\n");
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    send_and_close(stream, response.as_bytes()).await;
}

async fn respond_page(stream: &Rc<TcpStream>) {
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{PAGE}",
        PAGE.len()
    );
    send_and_close(stream, response.as_bytes()).await;
}

/// Sends a response, then closes as the chat does (a lingering close), so that a request
/// body the client is still sending cannot turn the close into a reset that loses the answer.
async fn send_and_close(stream: &Rc<TcpStream>, bytes: &[u8]) {
    let _ = timeout(REQUEST_TIMEOUT, stream.write_all(bytes)).await;
    LingeringClose::new(stream.clone()).await;
}

/// Checks the upgrade request, answers `101 Switching Protocols`, and runs the WebSocket.
async fn upgrade(stream: Rc<TcpStream>, request: &Request, shared: Rc<Shared>) {
    let key = match check_upgrade(request) {
        Ok(key) => key,
        Err((status, why)) => return respond(&stream, status, &why).await,
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    websocket(stream, shared).await;
}

/// The request's `Sec-WebSocket-Key`, if it is a valid upgrade from an acceptable origin.
fn check_upgrade(request: &Request) -> Result<String, (&'static str, String)> {
    let bad = |why: &str| ("400 Bad Request", why.to_string());
    if !request.header_has("upgrade", "websocket") || !request.header_has("connection", "upgrade") {
        return Err(bad("expected a WebSocket upgrade"));
    }
    if request.header("sec-websocket-version") != Some("13") {
        return Err(bad("unsupported WebSocket version (13 expected)"));
    }
    let key = request
        .header("sec-websocket-key")
        .ok_or_else(|| bad("missing Sec-WebSocket-Key"))?;
    // Browsers always send Origin; it must be this page's own host. Clients that are not
    // browsers (and cannot be abused by another site) may leave it out.
    if let Some(origin) = request.header("origin") {
        let host = request.header("host").unwrap_or_default();
        if origin != format!("http://{host}") {
            return Err(("403 Forbidden", format!("origin {origin} is not {host}")));
        }
    }
    Ok(key.to_string())
}

/// A WebSocket client in the room: one task reads frames (this one), another writes them.
async fn websocket(stream: Rc<TcpStream>, shared: Rc<Shared>) {
    let limits = &shared.limits;
    // Frames above this are a protocol error (tungstenite closes the connection); lines above
    // `max_line` but below it get the chat's own "line too long" answer, as on TCP.
    let frame_limit = (limits.max_line * 4).max(64 * 1024);
    let config = WebSocketConfig::default()
        .max_message_size(Some(frame_limit))
        .max_frame_size(Some(frame_limit));
    let socket = SharedStream(stream.clone());
    let ws = WebSocketStream::from_raw_socket(socket, Role::Server, Some(config)).await;
    let (sink, frames) = ws.split();
    let outbox = TaskOutbox::new(limits.max_queue);
    // `None`: refused (full, stopping); the room queued why, the writer says it.
    let connected = shared.room.borrow_mut().connect(outbox.clone());
    let writer = write_frames(sink, outbox.clone());
    let writer = on_stroll::spawn_writer(&stream, writer);
    if let Some(id) = connected {
        read_frames(frames, &shared, &outbox, id).await;
    }
    // As on TCP: the last line, then a close frame saying why, then the lingering close.
    finish_writer(writer, &outbox).await;
    LingeringClose::new(stream).await;
}

/// The two halves of a WebSocket: frames coming in, frames going out.
type Frames = async_tungstenite::WebSocketReceiver<SharedStream>;
type FrameSink = async_tungstenite::WebSocketSender<SharedStream>;

/// Reads frames until the client leaves or the room ends the connection; each text frame is
/// one line for the room.
async fn read_frames(mut frames: Frames, shared: &Shared, outbox: &TaskOutbox, id: ClientId) {
    let login_deadline = Instant::now() + shared.limits.login_timeout;
    loop {
        // The next frame, unless the room ends the connection first (`None`).
        let next = std::future::poll_fn(|cx| {
            if outbox.poll_closed(cx).is_ready() {
                return Poll::Ready(None);
            }
            frames.poll_next_unpin(cx).map(Some)
        });
        let next = if shared.room.borrow().is_logged_in(id) {
            next.await
        } else {
            // As in `async_fn::read_lines`: a client that keeps sending never lets a read
            // time out, so the deadline is checked before each read too.
            let left = login_deadline.saturating_duration_since(Instant::now());
            match timeout(left, next).await {
                Ok(next) if !left.is_zero() => next,
                _elapsed => {
                    shared.room.borrow_mut().login_timeout(id);
                    return;
                }
            }
        };
        let Some(next) = next else {
            return; // The room ended the connection (cut off, shutdown).
        };
        let line = match next {
            Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
            Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            // A close frame, end of file, a reset, or a protocol error (an oversized frame).
            Some(Ok(Message::Close(_)) | Err(_)) | None => {
                shared.room.borrow_mut().disconnect(id);
                return;
            }
        };
        let flow = if line.len() > shared.limits.max_line {
            shared.room.borrow_mut().line_too_long(id);
            Flow::Continue
        } else {
            shared.room.borrow_mut().handle_line(id, &line)
        };
        if flow == Flow::Quit {
            return;
        }
        flow.block_if_asked();
    }
}

/// Sends whatever the room queues, one text frame per line, flushed together; at the end, a
/// close frame that repeats the last line as its reason.
async fn write_frames(mut sink: FrameSink, outbox: Rc<TaskOutbox>) {
    let mut buf = Vec::new();
    let mut last_line = Vec::new();
    loop {
        std::future::poll_fn(|cx| outbox.poll_work(cx)).await;
        if outbox.finished() {
            break;
        }
        outbox.take_into(&mut buf);
        if send_lines(&mut sink, &buf).await.is_err() {
            break;
        }
        outbox.sent(buf.len());
        if let Some(line) = buf.split(|&b| b == b'\n').rfind(|line| !line.is_empty()) {
            last_line = line.to_vec();
        }
        buf.clear();
    }
    // A close frame, then the write side is shut down (`SharedStream::poll_close`).
    let _ = sink.close(Some(close_frame(&last_line))).await;
}

/// The close frame after `last_line`: its text as the reason (a WebSocket close reason holds
/// at most 123 bytes), and a code that says the same.
fn close_frame(last_line: &[u8]) -> CloseFrame {
    let line = String::from_utf8_lossy(last_line);
    let code = if line == say::shutting_down().trim_end() {
        CloseCode::Away
    } else if line == say::server_full().trim_end() {
        CloseCode::Again
    } else if line.starts_with("! ") {
        CloseCode::Policy // login timeout, read too slowly
    } else {
        CloseCode::Normal
    };
    let mut reason = line.get(2..).unwrap_or_default().to_string();
    while reason.len() > 123 {
        reason.pop();
    }
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

/// Queues one frame per line of `buf` (each line without its `\n`), then writes them all.
async fn send_lines(sink: &mut FrameSink, buf: &[u8]) -> Result<(), ()> {
    for line in buf.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        let text = String::from_utf8_lossy(line).into_owned();
        sink.feed(Message::text(text)).await.map_err(|_| ())?;
    }
    sink.flush().await.map_err(|_| ())
}

/// A connection shared between the WebSocket and the lingering close that ends it. Reads and
/// writes go through `&TcpStream`'s `futures-io` traits.
pub struct SharedStream(Rc<TcpStream>);

impl futures_io::AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_read(cx, buf)
    }
}

impl futures_io::AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.shutdown(Shutdown::Write))
    }
}
