#!/usr/bin/env bash
# The README's main command: set-up (idempotent), then the main job on the real assets.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo run --release --example real_assets_demo
