#!/usr/bin/env bash
# Every paper example (Tables 1, 2, 3, 4, 5, 10; Figures 2, 4, 5) in its scaled-down form on
# the real assets (all-MiniLM-L6-v2, MR), one after the other; each writes
# results/<id>-scaled/<id>.md and .json (figures: per-task CSV and PNG/SVG plots).
# Pass example names to run only those, e.g. `scripts/paper_scaled.sh table5_efficiency`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
ALL=(table2_few_shot table1_full_data table4_generators fig2_prompt_layer_pilot
     fig4_lpt_prompt_layers fig5_prompt_length table3_gpt2 table10_prompt_layer_tradeoff
     table5_efficiency)
if [ "$#" -gt 0 ]; then ALL=("$@"); fi
args=()
for e in "${ALL[@]}"; do args+=(--example "$e"); done
cargo build --release --bin petune "${args[@]}"
for e in "${ALL[@]}"; do
  echo "== $e"
  start=$(date +%s)
  extra=()
  # No GPT-2 checkpoint is among the assets: Table 3 runs the decoder path on the tiny
  # random GPT-2 fixture (its accuracies mean nothing; it shows the path works).
  if [ "$e" = table3_gpt2 ]; then extra=(--model tests/fixtures/gpt2-lm); fi
  ./target/release/examples/"$e" --scaled --threads 2 --device cpu "${extra[@]}"
  echo "== $e: $(( $(date +%s) - start )) s"
done
