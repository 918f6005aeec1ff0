use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

let make = || async {
    let buf = [7u8; 16];
    let view = &buf[..4];
    stroll::yield_now().await;
    view.len()
};
let mut cx = Context::from_waker(futures_task::noop_waker_ref());

// On the stack: the future is moved into `pin!` and cannot be reached except through the Pin.
let mut on_stack = pin!(make());
assert!(on_stack.as_mut().poll(&mut cx).is_pending()); // suspended at its `.await`
assert_eq!(on_stack.as_mut().poll(&mut cx), Poll::Ready(4));

// On the heap: the Box (a pointer) may move; the future it points to does not.
let mut on_heap = Box::pin(make());
assert!(on_heap.as_mut().poll(&mut cx).is_pending());
let mut moved_box = on_heap; // only the pointer moves
assert_eq!(moved_box.as_mut().poll(&mut cx), Poll::Ready(4));

// A pinned Box is itself `Unpin`, so it goes where `Unpin` is required.
fn assert_unpin<T: Unpin>(_: &T) {}
assert_unpin(&moved_box);
