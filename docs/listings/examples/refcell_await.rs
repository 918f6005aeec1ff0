//! refcell_await: a `RefCell` borrow held across `.await`, and the fix.
//!
//! Run it with `RUST_BACKTRACE=0 cargo run -q -p book-listings --example refcell_await`
//! (`RUST_BACKTRACE=0` keeps the panic to its message).
//!
//! Two tasks share a room (an `Rc<RefCell<Vec<String>>>` of names). The greeter borrows the
//! list and, still holding the borrow, awaits a timer between greetings. While it is parked,
//! the loop runs another task that adds a name: `borrow_mut` finds the list borrowed and
//! panics ("RefCell already borrowed"; `try_borrow_mut` would return a `BorrowMutError`). Nothing blocked; the borrow simply outlived the poll that
//! took it, because a borrow held across `.await` stays alive while the task is parked.
//!
//! The fixed greeter copies what it needs and lets the borrow end before the first `.await`.
//!
//! What to watch for: the panic message and the `JoinError` of the joining task in round 1;
//! in round 2 both tasks finish.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use stroll::task::Builder;
use stroll::time::sleep;

type Room = Rc<RefCell<Vec<String>>>;

// ANCHOR: sin
/// The sin: the borrow lives until the end of the loop, across every `.await` in it.
// clippy's `await_holding_refcell_ref` lint flags exactly this; allowed here to show the bug.
#[allow(clippy::await_holding_refcell_ref)]
async fn greet_holding(room: Room) {
    let names = room.borrow();
    for name in names.iter() {
        sleep(Duration::from_millis(10)).await; // Parked, and `names` still borrows the room.
        println!("  hello, {name}");
    }
}
// ANCHOR_END: sin

// ANCHOR: cure
/// The cure: copy what the loop needs; the borrow ends at the semicolon, before any `.await`.
async fn greet_scoped(room: Room) {
    let names: Vec<String> = room.borrow().clone();
    for name in &names {
        sleep(Duration::from_millis(10)).await;
        println!("  hello, {name}");
    }
}
// ANCHOR_END: cure

/// Another task: someone joins the room while the greeter is greeting.
async fn join(room: Room, name: &'static str) {
    sleep(Duration::from_millis(15)).await;
    room.borrow_mut().push(name.to_string());
    println!("  {name} joined");
}

fn main() {
    stroll::block_on(async {
        for (round, scoped) in [(1, false), (2, true)] {
            let room: Room = Rc::new(RefCell::new(vec!["alice".into(), "bob".into()]));
            println!(
                "round {round}: the greeter {}",
                if scoped {
                    "copies the names, then awaits"
                } else {
                    "holds the borrow across .await"
                }
            );
            let greeter = if scoped {
                Builder::new()
                    .name("greeter")
                    .spawn(greet_scoped(room.clone()))
            } else {
                Builder::new()
                    .name("greeter")
                    .spawn(greet_holding(room.clone()))
            };
            let joiner = Builder::new()
                .name("joiner")
                .spawn(join(room.clone(), "carol"));
            let joined = joiner.await;
            let greeted = greeter.await;
            match joined {
                Ok(()) => println!("  the joiner finished"),
                Err(err) => println!("  the joiner failed: {err}"),
            }
            if greeted.is_ok() {
                println!("  the greeter finished; the room: {:?}", room.borrow());
            }
        }
    });
}
