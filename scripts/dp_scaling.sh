#!/usr/bin/env bash
# Data-parallel scaling on this machine (docs/scaling-out.md, issue #17): step time and
# the gradient all-reduce time per step of `petune train --nproc N` for N = 1 and 2
# (one libtorch thread per rank), for model tuning and LPT NPG on all-MiniLM-L6-v2 + MR
# (few-shot k = 100, batch 16, max_len 128). Evaluation runs once, at the end,
# and is not part of the step times (the mean over all steps, the first included).
#
#   scripts/dp_scaling.sh [STEPS]          (default 20; PETUNE=path/to/petune to pick a binary)
#
# Prints one table; the runs go to a temporary folder that is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-20}"
petune="${PETUNE:-./target/release/petune}"
[ -x "$petune" ] || { echo "no $petune: cargo build --release --bin petune" >&2; exit 1; }
[ -f .assets/all-MiniLM-L6-v2/model.safetensors ] || { echo "no .assets: run scripts/setup.sh" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

config() { # METHOD_JSON HEAD_JSON LR
  cat <<EOF
{
  "model": "$PWD/.assets/all-MiniLM-L6-v2",
  "task": {
    "name": "mr",
    "data": {"kind": "mr_snippets", "path": "$PWD/.assets/mr/movieReviewSnippets_GroundTruth.txt"},
    "fewshot": {"k": 100, "seed": 13, "k_dev": 100}
  },
  "method": $1,
  "head": $2,
  "train": {"lr": $3, "batch_size": 16, "max_steps": $steps, "eval_every": $steps, "max_len": 128, "seed": 42}
}
EOF
}
config '{"method": "model_tuning"}' '{"kind": "linear", "token": "cls"}' 2e-5 > "$tmp/mt.json"
config '{"method": "lpt", "prompt_layer": 4, "generator": {"kind": "naive", "len": 5, "bottleneck": 128}}' \
  '{"kind": "auto"}' 5e-3 > "$tmp/npg.json"

printf '%-8s %5s %10s %16s %13s %8s %9s %8s\n' method ranks "step (ms)" "all-reduce (ms)" "examples / s" "dev acc" "test acc" "wall (s)"
for m in mt npg; do
  for n in 1 2; do
    "$petune" train --config "$tmp/$m.json" --out "$tmp/$m-$n" --nproc "$n" --threads 1 --json \
      > "$tmp/$m-$n.json" 2> "$tmp/$m-$n.err" || { cat "$tmp/$m-$n.err" >&2; exit 1; }
    python3 - "$tmp/$m-$n.json" "$m" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
step_ms = r["step_seconds"] * 1000 / max(r["steps"], 1)
dev = (r.get("best_dev") or {}).get("headline", float("nan"))
test = (r.get("test") or {}).get("headline", float("nan"))
print(f"{sys.argv[2]:<8} {r['world_size']:>5} {step_ms:>10.1f} {r['comm_ms']:>16.2f} "
      f"{16 * 1000 / step_ms:>13.1f} {dev:>8.4f} {test:>9.4f} {r['train_seconds']:>8.1f}")
EOF
  done
done
