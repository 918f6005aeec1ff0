//! Exercise 14.1 (chapter "When to use it"): what `buf.shrink_to(4096)` in `write_outbox`
//! gives back after a burst, and what it costs when the next burst comes.
//!
//! `write_outbox` (chat-demo/src/async_fn.rs) moves every queued line into one `Vec<u8>`,
//! writes it, and calls `buf.clear()`, which keeps the capacity. `Batcher` below is that
//! loop's buffer handling, with the shrink as an option, so the two can be run side by side.
//! It counts the buffer's allocations (every change of capacity is one: a `Vec` that grows
//! moves to a bigger block; one that shrinks moves to a smaller one), without a counting
//! allocator.
//!
//! What the tests show: after a 20,000-byte burst, the plain buffer keeps 25,600 bytes for good
//! (the kind of block conn_cost's `--burst` run shows in its upper bands), the shrinking one
//! gives all but 4 KiB back. The price: when the next burst comes, the plain buffer needs no allocation; the
//! shrinking one grows again, 4 KiB to 8, 16 and 32 KiB, three allocations, plus the shrink
//! after it: four per burst, on every burst. Batches that fit in 4 KiB cost neither anything
//! once the buffer has grown to them.

use std::io::{self, Write};

/// The writer's buffer, as `write_outbox` uses it.
pub struct Batcher {
    buf: Vec<u8>,
    /// `Some(n)`: after each batch, `buf.shrink_to(n)`.
    shrink_to: Option<usize>,
    /// Changes of capacity so far: allocations, reallocations and shrinks.
    pub allocations: usize,
}

impl Batcher {
    pub fn new(shrink_to: Option<usize>) -> Batcher {
        Batcher {
            buf: Vec::new(),
            shrink_to,
            allocations: 0,
        }
    }

    /// One turn of the writer: take the queued `lines` into the buffer (as
    /// `OutQueue::take_into` does, one `extend_from_slice` per line), write it all to `out`,
    /// clear the buffer and, if asked, shrink it.
    pub fn write_batch(&mut self, lines: &[Vec<u8>], out: &mut impl Write) -> io::Result<()> {
        for line in lines {
            let before = self.buf.capacity();
            self.buf.extend_from_slice(line);
            self.count(before);
        }
        out.write_all(&self.buf)?;
        self.buf.clear();
        if let Some(keep) = self.shrink_to {
            let before = self.buf.capacity();
            self.buf.shrink_to(keep);
            self.count(before);
        }
        Ok(())
    }

    /// What the buffer holds on to between batches.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn count(&mut self, capacity_before: usize) {
        if self.buf.capacity() != capacity_before {
            self.allocations += 1;
        }
    }
}

/// `count` chat lines of 100 bytes (`count` * 100 bytes in all).
fn lines(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut line = format!("user{i:04}: ").into_bytes();
            line.resize(99, b'x');
            line.push(b'\n');
            line
        })
        .collect()
}

/// Runs `batches` through a batcher; returns it and the bytes it wrote.
fn run(shrink_to: Option<usize>, batches: &[Vec<Vec<u8>>]) -> (Batcher, Vec<u8>) {
    let mut batcher = Batcher::new(shrink_to);
    let mut out = Vec::new();
    for batch in batches {
        batcher.write_batch(batch, &mut out).unwrap();
    }
    (batcher, out)
}

#[test]
fn every_byte_is_written_either_way() {
    let batches = [lines(200), lines(3), lines(200)];
    let expected: Vec<u8> = batches.iter().flatten().flatten().copied().collect();
    for shrink in [None, Some(4096)] {
        let (_, out) = run(shrink, &batches);
        assert_eq!(out, expected, "shrink {shrink:?}");
    }
}

#[test]
fn after_a_burst_the_plain_buffer_keeps_its_memory_and_the_shrunk_one_gives_it_back() {
    let burst = [lines(200)]; // 20,000 bytes
    let (plain, _) = run(None, &burst);
    let (shrunk, _) = run(Some(4096), &burst);
    println!(
        "after a 20,000-byte batch: plain keeps {} B, shrink_to(4096) keeps {} B",
        plain.capacity(),
        shrunk.capacity()
    );
    assert!(plain.capacity() >= 20_000, "{}", plain.capacity());
    assert!(shrunk.capacity() <= 4096, "{}", shrunk.capacity());
}

#[test]
fn the_next_burst_costs_the_shrunk_buffer_its_allocations_again() {
    let (mut plain, _) = run(None, &[lines(200)]);
    let (mut shrunk, _) = run(Some(4096), &[lines(200)]);
    let (plain_first, shrunk_first) = (plain.allocations, shrunk.allocations);
    let mut out = io::sink();
    plain.write_batch(&lines(200), &mut out).unwrap();
    shrunk.write_batch(&lines(200), &mut out).unwrap();
    let plain_next = plain.allocations - plain_first;
    let shrunk_next = shrunk.allocations - shrunk_first;
    println!(
        "first burst: plain {plain_first}, shrunk {shrunk_first} allocations; \
         next burst: plain {plain_next}, shrunk {shrunk_next}"
    );
    assert_eq!(plain_next, 0, "the plain buffer is big enough already");
    // 4 KiB -> 8 -> 16 -> 32 KiB, then the shrink back to 4 KiB.
    assert_eq!(shrunk_next, 4);
}

#[test]
fn small_batches_cost_nothing_either_way() {
    // Batches of 3 lines (300 bytes): the first grows the buffer (100, 200, 400 bytes), the
    // next nine allocate nothing, and `shrink_to(4096)` has nothing to give back.
    for shrink in [None, Some(4096)] {
        let (mut batcher, _) = run(shrink, &[lines(3)]);
        let first = batcher.allocations;
        assert!(first >= 1, "shrink {shrink:?}");
        for _ in 0..9 {
            batcher.write_batch(&lines(3), &mut io::sink()).unwrap();
        }
        assert_eq!(batcher.allocations, first, "shrink {shrink:?}");
        assert!(batcher.capacity() < 4096);
    }
}
