//! The Pin chapter's lessons, checked by the compiler. Each lesson is a file in `pin_lessons/`,
//! run as a doc test: it either compiles and runs, or is marked `compile_fail` and must be
//! refused (the error it is refused with is written in its last comment; stable rustdoc does not
//! check error codes, so the book's authors checked each by hand).
//!
//! Run them with `cargo test -q -p book-listings --doc`.
//!
//! The futures here borrow one of their own locals across an `.await`, as `read_lines` in the
//! chat server does with its read buffer: once the future is stored somewhere, that borrow
//! points into the future itself.

/// Every `async` block's future is `!Unpin`, so a function that asks for `Unpin` refuses it.
///
/// ```compile_fail,E0277
#[doc = include_str!("pin_lessons/not_unpin.rs")]
/// ```
///
/// `Pin::new`, the safe way to pin a value, is only for `Unpin` values, so it refuses too:
///
/// ```compile_fail,E0277
#[doc = include_str!("pin_lessons/pin_new.rs")]
/// ```
pub mod not_unpin {}

/// Pinned on the stack with `std::pin::pin!` or on the heap with `Box::pin`, the same future can
/// be polled.
///
/// ```
#[doc = include_str!("pin_lessons/pinned.rs")]
/// ```
///
/// What pinning forbids is getting the future back out, by value or by `&mut`:
///
/// ```compile_fail,E0507
#[doc = include_str!("pin_lessons/move_out.rs")]
/// ```
///
/// ```compile_fail,E0277
#[doc = include_str!("pin_lessons/swap.rs")]
/// ```
pub mod pinning {}

/// A hand-written future that keeps an index instead of a reference has nothing to protect: it
/// is `Unpin`, like the chat server's `HandleClient`, and `Pin::new` accepts it.
///
/// ```
#[doc = include_str!("pin_lessons/unpin_by_hand.rs")]
/// ```
pub mod unpin_by_hand {}

/// A combinator holding a `!Unpin` future must hand it a `Pin<&mut F>`, but from
/// `Pin<&mut Self>` safe code reaches only `&Self`:
///
/// ```compile_fail,E0594
#[doc = include_str!("pin_lessons/no_projection.rs")]
/// ```
///
/// `pin_project!` (pin-project-lite) writes the projection, and what makes it sound:
///
/// ```
#[doc = include_str!("pin_lessons/projection.rs")]
/// ```
pub mod projection {}
