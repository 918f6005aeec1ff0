//! future_sizes: how big the compiler makes a few small `async fn` futures, and why.
//!
//! Run it with `cargo run -q -p book-listings --example future_sizes`.
//!
//! What to watch for: each future is created and measured with `size_of_val`, never polled. A
//! 1 KiB buffer costs the future 1 KiB only if it is in scope at an `.await`; two buffers alive
//! at two different `.await`s share their room (the size is the largest suspension point's,
//! not the sum); and an argument used after an `.await` is kept twice (rust-lang/rust#62958).

use std::hint::black_box;
use std::mem::size_of_val;

use stroll::yield_now;

// ANCHOR: fns
/// Nothing but the awaited `YieldNow` (one `bool`) and the state number.
async fn nothing_kept() {
    yield_now().await;
}

/// The buffer's scope ends before the `.await`: it need not survive it.
async fn buffer_before() {
    {
        let buf = [1u8; 1024];
        black_box(&buf);
    }
    yield_now().await;
}

/// The buffer is used only before the `.await`, but it is still in scope there.
async fn buffer_in_scope() {
    let buf = [1u8; 1024];
    black_box(&buf);
    yield_now().await;
}

/// The buffer is used after the `.await`: it must survive it.
async fn buffer_across() {
    let buf = [1u8; 1024];
    yield_now().await;
    black_box(&buf);
}

/// 1 KiB alive at the first `.await`, 2 KiB at the second: they can share their room.
async fn two_suspension_points() {
    {
        let small = [1u8; 1024];
        yield_now().await;
        black_box(&small);
    }
    {
        let big = [1u8; 2048];
        yield_now().await;
        black_box(&big);
    }
}

/// The same 1 KiB, passed as an argument: kept as the argument and again as a local.
async fn buffer_argument(buf: [u8; 1024]) {
    yield_now().await;
    black_box(&buf);
}

/// Awaiting `buffer_across` puts its whole future inside this one.
async fn awaits_buffer_across() {
    buffer_across().await;
}
// ANCHOR_END: fns

fn main() {
    println!("{:<42} {:>6}", "future of", "bytes");
    let sizes = [
        ("nothing_kept()", size_of_val(&nothing_kept())),
        ("buffer_before()", size_of_val(&buffer_before())),
        ("buffer_in_scope()", size_of_val(&buffer_in_scope())),
        ("buffer_across()", size_of_val(&buffer_across())),
        (
            "two_suspension_points()",
            size_of_val(&two_suspension_points()),
        ),
        (
            "buffer_argument([0; 1024])",
            size_of_val(&buffer_argument([0; 1024])),
        ),
        (
            "awaits_buffer_across()",
            size_of_val(&awaits_buffer_across()),
        ),
    ];
    for (name, size) in sizes {
        println!("{name:<42} {size:>6}");
    }
}
