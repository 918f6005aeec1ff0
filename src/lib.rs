//! The workspace root package. It has no code of its own: it exists so that the top-level
//! `tests/` folder can hold integration tests that use several of the workspace's crates.

// Compiles and runs the Rust listings of README.md as doctests, so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeListings;
