#!/usr/bin/env bash
# The README's test command: set-up (idempotent), then every test of the workspace.
# The heavier checks on the real assets are `#[ignore]`d; run them with
#   cargo test --release --workspace -- --ignored
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo test --workspace "$@"
