//! Exercise 12.2 (event-loop.md), "see the 61": a task that yields by hand (it wakes itself
//! and returns `Pending`, but cannot tell the loop it gave way) holds back a socket that is
//! already readable for about 61 polls, because while tasks are ready the loop asks epoll only
//! every `IO_CHECK_INTERVAL` polls; `stroll::yield_now` makes the next turn ask at once.

use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use stroll::net::TcpListener;

/// A yield that tells the loop nothing: wake yourself, return `Pending` once.
struct HandMadeYield {
    yielded: bool,
}

impl Future for HandMadeYield {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// How many times a spinning task yielded between the moment a byte was written to a socket
/// that a parked task reads and the moment that task got the byte.
fn yields_before_read(hand_made: bool) -> u64 {
    stroll::block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let yields = Rc::new(Cell::new(0u64));
        let seen = Rc::new(Cell::new(None));

        let reader = {
            let (yields, seen) = (yields.clone(), seen.clone());
            stroll::spawn(async move {
                let mut byte = [0u8; 1];
                server.read(&mut byte).await.unwrap();
                seen.set(Some(yields.get()));
            })
        };
        // Let the reader park on its socket, then make the socket readable.
        stroll::time::sleep(Duration::from_millis(20)).await;
        client.write_all(b"x").unwrap();

        let spinner = {
            let (yields, seen) = (yields.clone(), seen.clone());
            stroll::spawn(async move {
                while seen.get().is_none() && yields.get() < 10_000 {
                    if hand_made {
                        HandMadeYield { yielded: false }.await;
                    } else {
                        stroll::yield_now().await;
                    }
                    yields.set(yields.get() + 1);
                }
            })
        };
        spinner.await.unwrap();
        reader.await.unwrap();
        seen.get().expect("the reader got its byte")
    })
}

#[test]
fn a_hand_made_yield_holds_a_ready_socket_back_for_about_61_polls() {
    let yields = yields_before_read(true);
    println!("hand-made yield: the reader waited {yields} yields");
    assert!((40..=62).contains(&yields), "{yields} yields");
}

#[test]
fn yield_now_lets_the_next_turn_ask_epoll() {
    let yields = yields_before_read(false);
    println!("yield_now: the reader waited {yields} yields");
    assert!(yields <= 3, "{yields} yields");
}
