# Walkthrough 1: a task's round trip through the loop's phases.
#
#   cargo build -p stroll --example walkthrough
#   rust-gdb -x docs/debugging/loop.gdb target/debug/examples/walkthrough
#
# At each turn's run phase and reactor wait, print the run queue and the task table. Watch
# the task named "reader": ready (in the run queue), then waiting on "tcp ... readable" (parked
# with the reactor), then ready again once the reactor's wait returned its event.
source docs/debugging/stroll.py
set pagination off
set confirm off

break stroll::runtime::Runtime::run_ready_tasks
commands
  silent
  printf "\n== phase 2: run_ready_tasks\n"
  stroll-tasks
  continue
end

break stroll::runtime::Runtime::wait_for_io
commands
  silent
  printf "\n== phase 4: wait_for_io, timeout = "
  output timeout
  printf "\n"
  continue
end

break stroll::waker::RunQueue::push
commands
  silent
  printf "   wake: task %d goes to the run queue\n", key.id.__0
  continue
end

run
