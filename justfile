# stroll's everyday commands. `just` is optional: each recipe is one plain command, also
# listed in README.md.

# Run the main job: the demo server.
run:
    cargo run --release -p stroll --example echo_server

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

# Everything CI runs.
ci:
    bash .ci/run
