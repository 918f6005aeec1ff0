"""gdb helpers for stroll programs.

Load with `source docs/debugging/stroll.py` (rust-gdb also loads Rust's own pretty printers).
Commands:

  stroll-tasks   the task table of the stroll runtime on this thread's stack: id, name,
                 state, polls, wakes, spawn location (like stroll::task::dump()).
  stroll-future  the future of the task being polled, as gdb prints it: an `async fn` shows
                 as its state (Unresumed, Suspend0{locals...}, Returned).
  stroll-await   the await trace of the task being polled: its state, then the future it
                 awaits (the `__awaitee` field), and so on down the chain.

Both need a stroll frame on the stack: stop inside a task, or in the loop (for example
`break stroll::runtime::Runtime::run_ready_tasks`).
"""

import re

import gdb


def frames():
    """The frames of the selected thread, newest first."""
    frame = gdb.newest_frame()
    while frame is not None:
        yield frame
        frame = frame.older()


def runtime_value():
    """The `Runtime` that a `stroll::runtime::Runtime::*` frame on the stack runs."""
    for frame in frames():
        if (frame.name() or "").startswith("stroll::runtime::Runtime::"):
            return frame.read_var("self").dereference()
    raise gdb.GdbError(
        "no stroll runtime on this thread's stack: stop inside a task or in the loop "
        "(break stroll::runtime::Runtime::run_ready_tasks)")


def polled_task_cell():
    """The `TaskCell` being polled: the innermost task on the stack."""
    for frame in frames():
        if re.match(r"stroll::task::.*::poll_task<", frame.name() or ""):
            return frame.read_var("self")["pointer"].dereference()
    raise gdb.GdbError("no task is being polled on this thread's stack")


def polled_future():
    """The user's future inside the `TaskCell` being polled (its `future` field is an Option)."""
    variant = active_variant(polled_task_cell()["future"])
    if variant is None or variant[0] != "Some":
        raise gdb.GdbError("the task being polled has no future left")
    return variant[1]["__0"]


def rc(value):
    """What an `Rc<T>` points to."""
    return value["ptr"]["pointer"].dereference()["value"]


def arc(value):
    """What an `Arc<T>` points to."""
    return value["ptr"]["pointer"].dereference()["data"]


def inner(cell):
    """What a `Cell<T>` or `RefCell<T>` holds."""
    return cell["value"]["value"]


def some(value):
    """The value inside `Some(..)`, or None."""
    variant = active_variant(value)
    if variant is not None and variant[0] == "Some":
        return variant[1]["__0"]
    return None


def active_variant(value):
    """(variant name, variant value) of a Rust enum or async-fn state machine; None otherwise.

    gdb shows an enum value as two fields: the discriminant, then the active variant.
    """
    fields = value.type.fields()
    if len(fields) == 2 and fields[0].name in (None, "__state"):
        variant = value[fields[1]]
        return str(variant.type).split("::")[-1], variant
    return None


def has_field(value, name):
    return any(field.name == name for field in value.type.fields())


def text(value):
    """A Rust string, `Option<String>` or `Option<Box<Box<str>>>` as plain text ("-" for None)."""
    if value.type.strip_typedefs().code == gdb.TYPE_CODE_PTR:
        return text(value.dereference())  # The outer Box of a Box<Box<str>>: the str box.
    variant = active_variant(value)
    if variant is not None:
        name, inner = variant
        return text(inner["__0"]) if name == "Some" else "-"
    if has_field(value, "data_ptr") and has_field(value, "length"):
        return str_at(value)  # A Box<str>.
    # Unlimited length, whatever `set print elements` says.
    return value.format_string(max_elements=0).strip('"')


def str_at(fat_pointer):
    """The text a `*const str` points to, read from the program's memory."""
    fields = [field.name for field in fat_pointer.type.fields()]
    if "data_ptr" in fields and "length" in fields:
        data, length = fat_pointer["data_ptr"], int(fat_pointer["length"])
        memory = gdb.selected_inferior().read_memory(data, length)
        return memory.tobytes().decode("utf-8", "replace")
    return fat_pointer.format_string(max_elements=0).strip('"')


def location(pointer):
    """A `&'static Location` as file:line:column."""
    loc = pointer.dereference()
    if has_field(loc, "file"):
        file = text(loc["file"])
    else:
        # Newer standard libraries keep the file name as a NonNull<str>.
        file = str_at(loc["filename"]["pointer"])
    return "%s:%s:%s" % (file, loc["line"], loc["col"])


def slab_items(slab):
    """(slot, value) of the occupied entries of a `slab::Slab`."""
    visualizer = gdb.default_visualizer(slab["entries"])
    for slot, (_, entry) in enumerate(visualizer.children()):
        variant = active_variant(entry)
        if variant is not None and variant[0] == "Occupied":
            yield slot, variant[1]["__0"]


def vec_items(vec):
    """The elements of a `Vec`."""
    for _, item in gdb.default_visualizer(vec).children():
        yield item


def scheduled(waker_arc):
    """Is the task of this `Arc<TaskWaker>` in the run queue?"""
    return bool(int(arc(waker_arc)["scheduled"]["v"]["value"]))


class StrollTasks(gdb.Command):
    """List the tasks of the stroll runtime on this thread's stack."""

    def __init__(self):
        super().__init__("stroll-tasks", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        runtime = runtime_value()
        observer = rc(runtime["observer"])
        polling = some(inner(observer["polling"]))
        polling_id = None if polling is None else int(polling["id"]["__0"])
        # Names and counters live in the observer's records, one per slot of the task table.
        records = list(vec_items(inner(observer["tasks"])))

        def row(record, state):
            return (str(record["id"]["__0"]), text(record["name"]), state,
                    str(record["polls"]), str(record["wakes"]),
                    location(record["spawned_at"]))

        main_state = "running" if polling_id == 0 else (
            "ready" if scheduled(runtime["main_waker"]) else "waiting")
        rows = [row(inner(observer["main"]), main_state)]
        for slot, entry in slab_items(inner(rc(runtime["tasks"])["slab"])):
            variant = active_variant(entry)
            if variant is None or variant[0] != "Live":
                continue  # A finished task whose result waits for its handle.
            task = variant[1]["__0"]
            waker = some(task["waker"])
            if some(task["cell"]) is None:
                state = "running"
            elif waker is None or scheduled(waker):
                state = "ready"
            else:
                state = "waiting"
            record = some(records[slot])
            if record is not None:
                rows.append(row(record, state))
        rows.sort(key=lambda row: int(row[0]))
        header = ("id", "name", "state", "polls", "wakes", "spawned at")
        widths = [max(len(row[i]) for row in rows + [header]) for i in range(5)]
        for row in [header] + rows:
            cells = [row[i].ljust(widths[i]) for i in range(5)] + [row[5]]
            print("  ".join(cells))
        queue = inner(rc(runtime["run_queue"])["keys"])
        print("run queue: %s task(s)" % queue["len"])


class StrollFuture(gdb.Command):
    """Print the future of the task being polled (an async fn shows as its state)."""

    def __init__(self):
        super().__init__("stroll-future", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        print(polled_future())


class StrollAwait(gdb.Command):
    """Print the await trace of the task being polled."""

    def __init__(self):
        super().__init__("stroll-await", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        value = polled_future()
        for depth in range(32):
            type_name = re.sub(r"<.*>", "<..>", str(value.type))
            variant = active_variant(value)
            if variant is not None:
                name, inner = variant
                print("%s%s::%s" % ("  " * depth, type_name, name))
                if not has_field(inner, "__awaitee"):
                    return
                value = inner["__awaitee"]
            else:
                print("%s%s" % ("  " * depth, type_name))
                # Combinators such as stroll's Timeout keep the future they wrap in `future`.
                if not has_field(value, "future"):
                    return
                value = value["future"]


StrollTasks()
StrollFuture()
StrollAwait()
