#!/usr/bin/env bash
# The README's main command: set-up (idempotent), then the main job: few-shot MR on the
# real all-MiniLM-L6-v2, LPT NPG vs prompt tuning vs model tuning on three splits, at
# equal steps and at an equal training-time budget (examples/mr_fewshot/); every run
# goes through `petune train` (the CLI is built next to the example).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --bin petune --example mr_fewshot
./target/release/examples/mr_fewshot "$@"
