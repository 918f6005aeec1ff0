# Walkthrough 2: stop inside the async chat handler and print the connection's future.
#
#   cargo build -p chat-demo
#   rust-gdb -x docs/debugging/future.gdb --args target/debug/chat-demo serve
#   (in another terminal) nc 127.0.0.1 7878, type a nickname, then a message
#   or, with a built-in client instead of nc (see docs/listings/examples/gdb_chat.rs):
#   cargo run -q -p book-listings --example gdb_chat -- docs/debugging/future.gdb
#
# The breakpoint is on the function that cleans every line a client sends; it is ignored for
# the nickname and stops at the message. Then: the short path from `main` to the task, the
# future as gdb prints it (an `async fn` is an enum: Unresumed, Suspend0{...}, Suspend1{...},
# Returned, each Suspend variant holding the locals alive at that .await), and the await trace.
source docs/debugging/stroll.py
set pagination off
set confirm off
set print elements 8
# Keep the output short and the same from run to run: no addresses (they change with every
# build; references then print as nothing), no frame arguments, and values printed two levels
# deep (`{...}` marks where gdb stopped; `set print max-depth unlimited` shows everything).
set print address off
set print frame-arguments none
set print max-depth 2

break chat_demo::protocol::clean_text
ignore 1 1
run

printf "\n== the stack, from the line being handled down to block_on\n"
backtrace 16
printf "\n== the connection's future (handle_client), as gdb prints it\n"
stroll-future
printf "\n== its await trace\n"
stroll-await
kill
quit
