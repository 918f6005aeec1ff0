//! Exercise 13.3 (worst-sin.md), "borrow for one step at a time": the greeter of
//! `refcell_await.rs`, rewritten to take a short borrow for each name instead of one borrow for
//! the whole loop. No borrow is alive at an `.await`, so a task that joins meanwhile can
//! `borrow_mut` the room, and the greeter greets the newcomer too.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use stroll::time::sleep;

type Room = Rc<RefCell<Vec<String>>>;

/// Greets everyone in the room, including those who join while it greets; returns whom.
async fn greet_each(room: Room) -> Vec<String> {
    let mut greeted = Vec::new();
    let mut i = 0;
    loop {
        // The borrow ends at this semicolon. (Written as `while let Some(name) =
        // room.borrow().get(i).cloned()`, the temporary borrow would live through the whole
        // loop body, `.await` included, and the joiner would panic: clippy flags that too.)
        let next = room.borrow().get(i).cloned();
        let Some(name) = next else { break };
        sleep(Duration::from_millis(10)).await;
        greeted.push(format!("hello, {name}"));
        i += 1;
    }
    greeted
}

async fn join(room: Room, name: &str) {
    sleep(Duration::from_millis(15)).await;
    room.borrow_mut().push(name.to_string());
}

#[test]
fn a_newcomer_can_join_while_the_greeter_greets_and_is_greeted() {
    let (greeted, room) = stroll::block_on(async {
        let room: Room = Rc::new(RefCell::new(vec!["alice".into(), "bob".into()]));
        let greeter = stroll::spawn(greet_each(room.clone()));
        let joiner = stroll::spawn({
            let room = room.clone();
            async move { join(room, "carol").await }
        });
        joiner.await.expect("the joiner does not panic");
        (greeter.await.unwrap(), room)
    });
    assert_eq!(greeted, ["hello, alice", "hello, bob", "hello, carol"]);
    assert_eq!(room.borrow().len(), 3);
}
