//! Exercise 6.1 (chapter "A hand-written future"): `greet_async`, written by hand as an enum
//! with one variant per `.await` (`Greet`), and tests that both send the same bytes.

use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::thread;

use stroll::net::{TcpListener, TcpStream};

// ANCHOR: async_greet
/// Asks for a name, reads it, greets it, returns it.
async fn greet_async(stream: &TcpStream) -> io::Result<String> {
    stream.write_all(b"name?\n").await?;
    let mut name = Vec::new();
    let mut buf = [0u8; 64];
    while !name.ends_with(b"\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        name.extend_from_slice(&buf[..n]);
    }
    let name = String::from_utf8_lossy(name.trim_ascii_end()).into_owned();
    stream
        .write_all(format!("hello, {name}\n").as_bytes())
        .await?;
    Ok(name)
}
// ANCHOR_END: async_greet

// ANCHOR: solution

/// Each variant holds exactly what is alive at its `.await`. `buf` is not among them: it is
/// only needed during one poll, so it lives on `poll`'s stack.
enum Greet<'a> {
    /// `stream.write_all(b"name?\n").await`: `written` bytes of the question are out.
    Asking {
        stream: &'a TcpStream,
        written: usize,
    },
    /// `stream.read(&mut buf).await`, in the loop: what has arrived of the name.
    Listening {
        stream: &'a TcpStream,
        name: Vec<u8>,
    },
    /// `stream.write_all(reply).await`: the reply, how much of it is out, and the result.
    Answering {
        stream: &'a TcpStream,
        reply: Vec<u8>,
        written: usize,
        name: String,
    },
    /// Returned.
    Done,
}

fn greet(stream: &TcpStream) -> Greet<'_> {
    Greet::Asking { stream, written: 0 }
}

/// Writes `buf[*written..]`, advancing `written`, until all of it is out.
fn poll_write_all(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    buf: &[u8],
    written: &mut usize,
) -> Poll<io::Result<()>> {
    while *written < buf.len() {
        match ready!(stream.poll_write(cx, &buf[*written..]))? {
            0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            n => *written += n,
        }
    }
    Poll::Ready(Ok(()))
}

impl Future for Greet<'_> {
    type Output = io::Result<String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut(); // every field is Unpin, so Greet is
        loop {
            match this {
                Greet::Asking { stream, written } => {
                    let stream = *stream;
                    if let Err(err) = ready!(poll_write_all(stream, cx, b"name?\n", written)) {
                        *this = Greet::Done;
                        return Poll::Ready(Err(err));
                    }
                    *this = Greet::Listening {
                        stream,
                        name: Vec::new(),
                    };
                }
                Greet::Listening { stream, name } => {
                    let mut buf = [0u8; 64];
                    while !name.ends_with(b"\n") {
                        let n = match ready!(stream.poll_read(cx, &mut buf)) {
                            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
                            read => read,
                        };
                        match n {
                            Ok(n) => name.extend_from_slice(&buf[..n]),
                            Err(err) => {
                                *this = Greet::Done;
                                return Poll::Ready(Err(err));
                            }
                        }
                    }
                    let name = String::from_utf8_lossy(name.trim_ascii_end()).into_owned();
                    *this = Greet::Answering {
                        stream,
                        reply: format!("hello, {name}\n").into_bytes(),
                        written: 0,
                        name,
                    };
                }
                Greet::Answering {
                    stream,
                    reply,
                    written,
                    name,
                } => {
                    let result = ready!(poll_write_all(stream, cx, reply, written));
                    let name = std::mem::take(name);
                    *this = Greet::Done;
                    return Poll::Ready(result.map(|()| name));
                }
                Greet::Done => panic!("Greet polled after it returned"),
            }
        }
    }
}

// ANCHOR_END: solution

/// Runs `greet` (or, with `by_hand` false, `greet_async`) against a peer that sends `answer` in the given pieces; returns the result and
/// everything the peer received.
fn converse(pieces: &'static [&'static [u8]], by_hand: bool) -> (io::Result<String>, Vec<u8>) {
    let (result, peer) = stroll::block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = thread::spawn(move || {
            let mut socket = std::net::TcpStream::connect(addr).unwrap();
            let mut question = [0u8; 6];
            socket.read_exact(&mut question).unwrap();
            let mut heard = question.to_vec();
            for piece in pieces {
                socket.write_all(piece).unwrap();
                thread::sleep(std::time::Duration::from_millis(10));
            }
            socket.shutdown(std::net::Shutdown::Write).unwrap();
            socket.read_to_end(&mut heard).unwrap();
            heard
        });
        let (stream, _) = listener.accept().await.unwrap();
        let result = if by_hand {
            greet(&stream).await
        } else {
            greet_async(&stream).await
        };
        (result, peer)
    });
    (result, peer.join().unwrap())
}

#[test]
fn asks_listens_and_answers() {
    for by_hand in [true, false] {
        let (name, heard) = converse(&[b"ad", b"a\n"], by_hand);
        assert_eq!(name.unwrap(), "ada");
        assert_eq!(heard, b"name?\nhello, ada\n");
    }
}

#[test]
fn a_peer_that_leaves_without_a_name_is_an_error() {
    for by_hand in [true, false] {
        let (name, heard) = converse(&[b"no newline"], by_hand);
        assert_eq!(name.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(heard, b"name?\n");
    }
}

#[test]
fn the_enum_is_unpin_and_small() {
    fn assert_unpin<T: Unpin>() {}
    assert_unpin::<Greet<'static>>();
    // As large as its largest variant, `Answering` (a reference, a Vec, a usize, a String:
    // 64 bytes on a 64-bit machine, the tag hidden in a niche). With the 64-byte `buf` kept
    // in `Listening` it would be 96.
    assert!(std::mem::size_of::<Greet<'static>>() <= 72);
}
