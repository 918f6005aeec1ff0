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


def polled_task_body():
    """The `TaskBody` being polled: the innermost task on the stack."""
    for frame in frames():
        if re.match(r"stroll::task::.*::poll<", frame.name() or ""):
            this = frame.read_var("self")
            if "TaskBody" in str(this.type):
                return this["pointer"].dereference()
    raise gdb.GdbError("no task is being polled on this thread's stack")


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
    """A Rust string or `Option<String>` as plain text ("-" for None)."""
    variant = active_variant(value)
    if variant is not None:
        name, inner = variant
        return text(inner["__0"]) if name == "Some" else "-"
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
    """The occupied entries of a `slab::Slab`."""
    visualizer = gdb.default_visualizer(slab["entries"])
    for _, entry in visualizer.children():
        variant = active_variant(entry)
        if variant is not None and variant[0] == "Occupied":
            yield variant[1]["__0"]


class StrollTasks(gdb.Command):
    """List the tasks of the stroll runtime on this thread's stack."""

    def __init__(self):
        super().__init__("stroll-tasks", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        runtime = runtime_value()
        polling = active_variant(runtime["polling"]["value"]["value"])
        polling_id = None
        if polling is not None and polling[0] == "Some":
            polling_id = int(polling[1]["__0"]["id"]["__0"])
        rows = []
        main = runtime["main_stats"]["value"]["value"]
        main_state = "running" if polling_id == 0 else (
            "ready" if bool(runtime["main_woken"]["value"]["value"]) else "waiting")
        rows.append(("0", "block_on", main_state, str(main["polls"]), str(main["wakes"]),
                     location(runtime["main_spawned_at"])))
        tasks = runtime["tasks"]["value"]["value"]
        for task in slab_items(tasks):
            future = active_variant(task["future"])
            if future is not None and future[0] == "None":
                state = "running"
            elif bool(task["scheduled"]):
                state = "ready"
            else:
                state = "waiting"
            rows.append((str(task["id"]["__0"]), text(task["name"]), state,
                         str(task["stats"]["polls"]), str(task["stats"]["wakes"]),
                         location(task["spawned_at"])))
        rows.sort(key=lambda row: int(row[0]))
        header = ("id", "name", "state", "polls", "wakes", "spawned at")
        widths = [max(len(row[i]) for row in rows + [header]) for i in range(5)]
        for row in [header] + rows:
            cells = [row[i].ljust(widths[i]) for i in range(5)] + [row[5]]
            print("  ".join(cells))
        queue = runtime["run_queue"]["value"]["value"]
        print("run queue: %s task(s)" % queue["len"])


class StrollFuture(gdb.Command):
    """Print the future of the task being polled (an async fn shows as its state)."""

    def __init__(self):
        super().__init__("stroll-future", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        body = polled_task_body()
        print(body["future"])


class StrollAwait(gdb.Command):
    """Print the await trace of the task being polled."""

    def __init__(self):
        super().__init__("stroll-await", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        value = polled_task_body()["future"]
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
