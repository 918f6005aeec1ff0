"""`variants TYPE`: the variants of an `async fn`'s future type and the fields of each, as the
compiler laid them out (from the debug info alone: no running program needed).

    gdb -batch -x docs/debugging/variants.py \
        -ex "variants chat_demo::async_fn::handle_client::{async_fn_env#0}" target/debug/chat-demo

Each variant is a state of the future: `Unresumed`, `Returned`, `Panicked`, then one
`SuspendN` per `.await`, numbered in the order the awaits appear in the source. A suspended
variant lists the locals alive at that `.await`, the awaited future (`__awaitee`), and the
compiler's drop flags (`__N: bool`, which remember whether a moved-from local still needs
dropping).
"""

import gdb


class Variants(gdb.Command):
    """variants TYPE: list the variants of an async fn's future type and their fields."""

    def __init__(self):
        super().__init__("variants", gdb.COMMAND_DATA)

    def invoke(self, argument, from_tty):
        name = argument.strip()
        future = gdb.lookup_type(name)
        print(name)
        for field in future.fields():
            variant = field.type.strip_typedefs()
            if field.name == "__state":
                print(f"  {field.name}: {variant.name}   (which variant is live)")
                continue
            print(f"  {field.name}: {variant.name.rsplit('::', 1)[-1]}")
            for inner in variant.fields():
                print(f"      {inner.name}: {inner.type.strip_typedefs().name}")


Variants()
