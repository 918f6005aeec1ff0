# stroll's everyday commands. `just` is optional: each recipe is one plain command, also
# listed in README.md.

# Run the main job: the chat server (--mode async on 127.0.0.1:7878).
run:
    cargo run --release -p chat-demo

# Run every test in the workspace.
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Build the API documentation and open it.
doc:
    cargo doc --workspace --no-deps --open

# Walkthrough 1 of docs/debugging: a task's round trip through the loop, in gdb.
debug:
    cargo build -p stroll --example walkthrough
    rust-gdb -x docs/debugging/loop.gdb target/debug/examples/walkthrough

# stroll next to tokio, smol and futures, quick mode (the full run rewrites docs/benchmarks.md).
bench:
    cargo bench -p stroll --bench peers -- --quick

# Build the book (docs/) and open it. Needs mdbook: cargo install mdbook --locked.
book:
    mdbook build docs --open

# Everything CI runs.
ci:
    bash .ci/run
