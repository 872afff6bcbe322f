#!/usr/bin/env bash
# The README's main command: set-up (idempotent), then the main job: few-shot MR on the
# real all-MiniLM-L6-v2 with LPT-NPG, LPT w/o PG, prompt tuning and model tuning.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo run --release --example mr_fewshot -- "$@"
