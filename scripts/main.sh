#!/usr/bin/env bash
# The README's main command: set-up (idempotent), then the main job: few-shot MR on the
# real all-MiniLM-L6-v2 with LPT-NPG, LPT w/o PG, prompt tuning and model tuning; every run
# goes through `petune train` (the CLI is built next to the example).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --bin petune --example mr_fewshot
./target/release/examples/mr_fewshot "$@"
