//! `chat-demo sizes`: how much memory one connection's state costs in each style.
//!
//! The futures' sizes come from `std::mem::size_of_val` on real, never-polled futures; the
//! thread's numbers from a real thread blocked in `read` (see `threads::measure_idle_stack`).

use std::io;
use std::mem::size_of;

use crate::{async_fn, callbacks, room, shared, state_machine, threads};

/// Prints the table.
pub fn print() -> io::Result<()> {
    let (async_future, async_writer) = measure_async_fn()?;
    let machine = size_of::<state_machine::HandleClient>();
    let machine_boxed = size_of::<state_machine::Reading>();
    let machine_writer = size_of::<state_machine::WriteOutbox>();
    let (reserved, resident) = threads::measure_idle_stack()?;

    println!("What one idle connection keeps, in bytes:");
    println!();
    println!("  {:<48} {:>10}", "style: where the state lives", "bytes");
    println!(
        "  {:<48} {:>10}",
        "async fn: the future of handle_client", async_future
    );
    println!(
        "  {:<48} {:>10}",
        "async fn: the future of its writer task", async_writer
    );
    println!(
        "  {:<48} {:>10}",
        "state machine: enum HandleClient + boxed Reading",
        machine + machine_boxed
    );
    println!(
        "  {:<48} {:>10}",
        "state machine: struct WriteOutbox", machine_writer
    );
    println!(
        "  {:<48} {:>10}",
        "callbacks: struct Conn",
        size_of::<callbacks::Conn>()
    );
    println!(
        "  {:<48} {:>10}",
        "thread: stack reserved (address space)", reserved
    );
    println!(
        "  {:<48} {:>10}",
        "thread: stack resident, idle in read()", resident
    );
    println!();
    println!(
        "A thread reserves a whole stack up front and keeps every page it ever touched, for \
         each of its two threads (reader and writer); a future's size is fixed by the compiler: \
         enough for the locals alive at whichever .await needs the most (not a minimal \
         layout), and most of it here is the {} byte read buffer.",
        async_fn::READ_BUFFER
    );
    Ok(())
}

/// Builds (but never polls) the connection future of the async mode, on a real socket.
fn measure_async_fn() -> io::Result<(usize, usize)> {
    stroll::block_on(async {
        let listener = stroll::net::TcpListener::bind("127.0.0.1:0").await?;
        let client = stroll::net::TcpStream::connect(listener.local_addr()?).await?;
        let (stream, _) = listener.accept().await?;
        let shared = shared::Shared::new(room::Limits::default(), None);
        let writer = async_fn::writer_future_size(std::rc::Rc::new(client), &shared);
        let live = shared::LiveGuard::new(&shared);
        let future = async_fn::handle_client(stream, shared, live);
        let size = std::mem::size_of_val(&future);
        Ok((size, writer))
    })
}
