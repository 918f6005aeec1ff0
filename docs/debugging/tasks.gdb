# Walkthrough 3: the task table, from the debugger.
#
#   cargo build -p chat-demo
#   rust-gdb -x docs/debugging/tasks.gdb --args target/debug/chat-demo serve
#   (in another terminal) nc 127.0.0.1 7878 and type a nickname
#   or, with a built-in client instead of nc (see docs/listings/examples/gdb_chat.rs):
#   cargo run -q -p book-listings --example gdb_chat -- docs/debugging/tasks.gdb
#
# When the line arrives, print the table twice: with the helper command (the same columns as
# stroll::task::dump()), and raw, as the runtime keeps it: a slab of entries, each a live task
# (its cell, its waker) or a finished one whose result waits for its handle.
source docs/debugging/stroll.py
set pagination off
set confirm off
set print elements 200
# No addresses (they change with every build), one field a line, five levels deep (`{...}`
# marks where gdb stopped; `set print max-depth unlimited` shows everything).
set print address off
set print pretty on
set print max-depth 5
set print frame-arguments none

break chat_demo::protocol::clean_text
run

printf "\n== stroll-tasks\n"
stroll-tasks
printf "\n== the raw table: Runtime::tasks\n"
frame function stroll::runtime::Runtime::run_ready_tasks
printf "tasks in the table: "
output (*self.tasks.ptr.pointer).value.slab.value.value.len
printf "\n"
print (*self.tasks.ptr.pointer).value.slab.value.value.entries
kill
quit
