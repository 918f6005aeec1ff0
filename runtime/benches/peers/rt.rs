//! The four executors behind one small trait, so that the scheduling workloads
//! (`sched.rs`) are written once and run on each.
//!
//! tokio runs on a `current_thread` runtime inside a `LocalSet`, its tasks spawned with
//! `spawn_local`: the tokio setup a single-threaded program with `!Send` tasks (stroll's model)
//! would use. smol's `LocalExecutor` and futures' `LocalPool` are reached through a
//! thread-local, as stroll's and tokio's own runtimes are.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use async_executor::LocalExecutor;
use futures::executor::{LocalPool, LocalSpawner};
use futures::task::LocalSpawnExt;

/// What the scheduling workloads need from a runtime.
pub trait Runtime {
    /// The name in the tables.
    const NAME: &'static str;

    /// Runs `future` to completion on a new runtime on this thread.
    fn block_on<F: Future>(future: F) -> F::Output;

    /// Spawns `future` as a task; the returned future is its output.
    fn spawn<F>(future: F) -> impl Future<Output = F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Spawns `future` as a task that nobody joins.
    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Lets the other tasks run: the runtime's own `yield_now`.
    fn yield_now() -> impl Future<Output = ()> + Send;
}

/// stroll, the runtime under test.
pub struct Stroll;

impl Runtime for Stroll {
    const NAME: &'static str = "stroll";

    fn block_on<F: Future>(future: F) -> F::Output {
        stroll::block_on(future)
    }

    fn spawn<F>(future: F) -> impl Future<Output = F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = stroll::spawn(future);
        async move { handle.await.expect("stroll task failed") }
    }

    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(stroll::spawn(future));
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        stroll::yield_now()
    }
}

/// tokio's `current_thread` runtime, all drivers enabled, in a `LocalSet`: tasks are spawned
/// with `tokio::task::spawn_local`.
pub struct Tokio;

impl Tokio {
    /// A new `current_thread` runtime with the I/O and time drivers.
    pub fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("build a tokio runtime")
    }
}

impl Runtime for Tokio {
    const NAME: &'static str = "tokio";

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::task::LocalSet::new().block_on(&Tokio::runtime(), future)
    }

    fn spawn<F>(future: F) -> impl Future<Output = F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = tokio::task::spawn_local(future);
        async move { handle.await.expect("tokio task failed") }
    }

    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(tokio::task::spawn_local(future));
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }
}

thread_local! {
    /// The executor of the `Smol::block_on` running on this thread.
    static SMOL: RefCell<Option<Rc<LocalExecutor<'static>>>> = const { RefCell::new(None) };
    /// The spawner of the `Futures::block_on` running on this thread.
    static POOL: RefCell<Option<LocalSpawner>> = const { RefCell::new(None) };
}

/// smol's parts: an `async_executor::LocalExecutor` run by `async_io::block_on`, which also
/// drives async-io's reactor and timers on this thread while the executor is idle.
pub struct Smol;

impl Smol {
    /// Spawns on the current `Smol::block_on`'s executor; `Task` is the output's future.
    pub fn spawn_task<F>(future: F) -> async_executor::Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        SMOL.with(|executor| {
            let executor = executor.borrow();
            let executor = executor
                .as_ref()
                .expect("Smol::spawn outside Smol::block_on");
            executor.spawn(future)
        })
    }
}

impl Runtime for Smol {
    const NAME: &'static str = "smol";

    fn block_on<F: Future>(future: F) -> F::Output {
        let executor = Rc::new(LocalExecutor::new());
        SMOL.with(|current| *current.borrow_mut() = Some(executor.clone()));
        let output = async_io::block_on(executor.run(future));
        SMOL.with(|current| current.borrow_mut().take());
        output
    }

    fn spawn<F>(future: F) -> impl Future<Output = F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Smol::spawn_task(future)
    }

    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Smol::spawn_task(future).detach();
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        futures_lite::future::yield_now()
    }
}

/// `futures::executor::LocalPool`: an executor with no reactor and no timers.
pub struct Futures;

impl Futures {
    fn with_spawner<T>(f: impl FnOnce(&LocalSpawner) -> T) -> T {
        POOL.with(|pool| {
            let pool = pool.borrow();
            f(pool
                .as_ref()
                .expect("Futures::spawn outside Futures::block_on"))
        })
    }
}

impl Runtime for Futures {
    const NAME: &'static str = "futures";

    fn block_on<F: Future>(future: F) -> F::Output {
        let mut pool = LocalPool::new();
        POOL.with(|current| *current.borrow_mut() = Some(pool.spawner()));
        let output = pool.run_until(future);
        POOL.with(|current| current.borrow_mut().take());
        output
    }

    fn spawn<F>(future: F) -> impl Future<Output = F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Futures::with_spawner(|spawner| spawner.spawn_local_with_handle(future))
            .expect("LocalPool is gone")
    }

    fn spawn_detached<F>(future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Futures::with_spawner(|spawner| spawner.spawn_local(future)).expect("LocalPool is gone");
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        futures_lite::future::yield_now()
    }
}
