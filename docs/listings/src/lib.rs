//! The book's own listings (docs/src): programs a chapter builds step by step, runs, and quotes.
//!
//! Each program is an example (`docs/listings/examples/`), run with
//! `cargo run -q -p book-listings --example NAME`; its output, as a chapter shows it, is a
//! committed transcript in `docs/src/runs/` that `tests/transcripts.rs` runs again.
//! Lessons that are checked by the compiler rather than by running live here as doc tests.
#![forbid(unsafe_code)]
pub mod delay;
pub mod pin_lessons;
