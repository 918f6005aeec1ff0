//! Exercise 7.2 (chapter "async fn writes that enum for you"): predict, then
//! measure, two more futures beside `future_sizes`'s.
//!
//! `drop_before_await` holds a `[u8; 1024]` and calls `drop(buf)` before its `.await`;
//! `across_twice` awaits `buffer_across()` twice in a row. The tests put each next to the
//! `future_sizes` function it resembles (copied here, so the file stands alone) and check what
//! the answer in the chapter says:
//!
//! - `drop(buf)` does not end `buf`'s life: the array is `Copy`, so `drop` gets a copy, and
//!   `buf` stays in scope, and in the future, across the `.await`: as big as
//!   `buffer_in_scope`. Only a block that ends before the `.await` (`buffer_before`) keeps the
//!   buffer out.
//! - Two awaits of `buffer_across()` one after the other are never alive at once, so their
//!   futures share one slot: `across_twice` is as big as `awaits_buffer_across`, not twice.

use std::hint::black_box;
use std::mem::size_of_val;

use stroll::yield_now;

// The two functions the exercise asks for.

/// A 1 KiB buffer, "dropped" before the `.await`.
async fn drop_before_await() {
    let buf = [1u8; 1024];
    black_box(&buf);
    #[allow(dropping_copy_types)] // The point of the exercise: this drops a copy.
    drop(buf);
    yield_now().await;
}

/// `buffer_across()` awaited twice in a row.
async fn across_twice() {
    buffer_across().await;
    buffer_across().await;
}

// What they are compared with, as in docs/listings/examples/future_sizes.rs.

async fn buffer_before() {
    {
        let buf = [1u8; 1024];
        black_box(&buf);
    }
    yield_now().await;
}

async fn buffer_in_scope() {
    let buf = [1u8; 1024];
    black_box(&buf);
    yield_now().await;
}

async fn buffer_across() {
    let buf = [1u8; 1024];
    yield_now().await;
    black_box(&buf);
}

async fn awaits_buffer_across() {
    buffer_across().await;
}

#[test]
fn drop_of_a_copy_array_keeps_it_in_the_future() {
    let dropped = size_of_val(&drop_before_await());
    println!(
        "drop_before_await: {dropped} B, buffer_in_scope: {} B, buffer_before: {} B",
        size_of_val(&buffer_in_scope()),
        size_of_val(&buffer_before())
    );
    assert!(
        dropped >= 1024,
        "the buffer is still in the future: {dropped}"
    );
    assert_eq!(dropped, size_of_val(&buffer_in_scope()));
    assert!(size_of_val(&buffer_before()) < 64);
}

#[test]
fn two_awaits_in_a_row_share_their_room() {
    let once = size_of_val(&buffer_across());
    let twice = size_of_val(&across_twice());
    println!(
        "buffer_across: {once} B, across_twice: {twice} B, awaits_buffer_across: {} B",
        size_of_val(&awaits_buffer_across())
    );
    assert!(twice < 2 * once, "{twice} is not less than twice {once}");
    assert_eq!(twice, size_of_val(&awaits_buffer_across()));
}

#[test]
fn the_futures_still_run() {
    // Sizes of futures never polled say nothing if the futures are wrong: run both once.
    stroll::block_on(async {
        drop_before_await().await;
        across_twice().await;
    });
}
