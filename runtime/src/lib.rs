//! # stroll: a small async runtime you can read in one sitting
//!
//! stroll runs `Future`s on one thread. It has three parts, each in its own module:
//!
//! - the **executor** ([`runtime`], [`task`]): a table of tasks and a run queue of the ones that
//!   were woken. [`block_on`] runs the event loop until the future you give it completes;
//!   [`spawn`] adds a task to the table.
//! - the **reactor** (`reactor`, used by [`net`]): one `mio::Poll` (epoll on Linux). Sockets
//!   register with it once; when the kernel says a socket is ready, the reactor wakes the task
//!   that waits on it.
//! - the **timers** ([`time`]): deadlines kept in order, so the loop knows how long it may
//!   sleep in the reactor and which sleepers to wake when it comes back.
//!
//! The names follow tokio's (`block_on`, `spawn`, `JoinHandle`, `time::sleep`,
//! `net::TcpListener`), so code written against stroll moves to tokio with few changes.
//!
//! ```
//! let answer = stroll::block_on(async {
//!     let task = stroll::spawn(async { 6 * 7 });
//!     stroll::time::sleep(std::time::Duration::from_millis(1)).await;
//!     task.await.unwrap()
//! });
//! assert_eq!(answer, 42);
//! ```
//!
//! The event loop itself is one function, `Runtime::run_until` in `runtime.rs`; start reading
//! there.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blocking;
mod coop;
mod dump;
mod ids;
mod join_error;
pub mod net;
// The instruments sit beside the core, in runtime/observe/ (see its module docs).
#[path = "../observe/mod.rs"]
mod observe;
mod reactor;
pub mod runtime;
pub mod task;
mod task_table;
#[cfg(test)]
#[path = "../tests/internals/mod.rs"]
mod tests;
pub mod time;
mod timers;
mod waiters;
mod waker;

pub use runtime::block_on;
pub use task::{spawn, yield_now, JoinError, JoinHandle};
