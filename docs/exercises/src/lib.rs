//! Solutions to the exercises of the book (docs/src).
//!
//! Each solution is one file in `docs/exercises/tests/`, named after its exercise: the code the
//! exercise asks for, then the tests that show it does what the exercise says. Run them all with
//! `cargo test -p book-exercises`, or one with `cargo test -p book-exercises --test NAME`.
//! Try the exercise before you open the file.
#![forbid(unsafe_code)]
