#!/usr/bin/env bash
# Issue #13 item 3: LPT NPG, prompt tuning and model tuning on the VADER tasks (docs/tasks.md),
# with the main job's protocol, through `petune sweep`; results in docs/results.md
# ("Beyond MR (issue #13 item 3)").
#
# Protocol: all-MiniLM-L6-v2, k = 100, k_dev 200, the task's 1,000-example held-out test set,
# few-shot splits 13, 42, 100 (training seed 42); raw text + linear head on [CLS]
# (template_style raw), constant lr without warm-up, a fresh batch of 16 each step, 100 steps,
# dev every 50, the best dev checkpoint scored on test; lr chosen on dev per split from
# NPG {1e-3, 5e-3} (paper PL = layer 4 of 6, frozen-prefix cache), PT {1e-2, 3e-2},
# MT {2e-5, 5e-5} with the head at 1e-3. One libtorch thread per run.
#
#   cargo build --release --bin petune
#   TASKS="tweets amazon" OUT=sweeps/beyond-mr scripts/beyond_mr.sh
#
# Each (task, method) is one sweep in $OUT/<task>-<method>/ (sweep.csv, runs/); a finished
# run is skipped when the script is run again (`petune train --skip-finished` semantics of the
# sweep's run folders). The summary table goes to $OUT/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PETUNE=${PETUNE:-./target/release/petune}
OUT=${OUT:-sweeps/beyond-mr}
TASKS=${TASKS:-"tweets amazon nyt"}
SEEDS=${SEEDS:-13,42,100}
STEPS=${STEPS:-100}
EVAL_EVERY=${EVAL_EVERY:-50}
mkdir -p "$OUT"

file_of() {
  case $1 in
    tweets) echo tweets_GroundTruth.txt ;;
    amazon) echo amazonReviewSnippets_GroundTruth.txt ;;
    nyt) echo nytEditorialSnippets_GroundTruth.txt ;;
    *) echo "unknown task $1" >&2; exit 1 ;;
  esac
}

config() { # TASK EXTRA_TRAIN_JSON
  cat <<JSON
{
  "model": ".assets/all-MiniLM-L6-v2",
  "task": {
    "name": "$1",
    "data": {"kind": "rated_snippets", "path": ".assets/vader/$(file_of "$1")"},
    "fewshot": {"k": 100, "seed": 13, "k_dev": 200},
    "template_style": "raw"
  },
  "method": {"method": "model_tuning"},
  "train": {"batch_size": 16, "max_steps": $STEPS, "eval_every": $EVAL_EVERY, "max_len": 256,
            "seed": 42, "threads": 1, "device": "cpu", "schedule": "constant",
            "warmup_rate": 0.0, "sampling": "per_step"$2}
}
JSON
}

for task in $TASKS; do
  [ -f ".assets/vader/$(file_of "$task")" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
  for m in npg pt mt; do
    case $m in
      npg) lrs=1e-3,5e-3; extra=', "frozen_prefix_cache": true' ;;
      pt) lrs=1e-2,3e-2; extra='' ;;
      mt) lrs=2e-5,5e-5; extra=', "head_lr": 1e-3' ;;
    esac
    dir=$OUT/$task-$m
    mkdir -p "$dir"
    config "$task" "$extra" > "$dir/run.json"
    echo "== $task $m (lrs $lrs, seeds $SEEDS)" >&2
    start=$(date +%s)
    OMP_NUM_THREADS=1 "$PETUNE" sweep --config "$dir/run.json" --methods "$m" --seeds "$SEEDS" \
      --lrs "$lrs" --out "$dir"
    echo "$task $m $(( $(date +%s) - start )) s" >> "$OUT/wall.txt"
  done
done

# Mean ± std (sample std, n − 1) of test accuracy over the splits, per task and method.
{
  echo "| task | method | test acc (mean ± std) | per split | best dev (mean) | trainable params | tokens/ms |"
  echo "|---|---|---|---|---|---|---|"
  for task in $TASKS; do
    for m in npg pt mt; do
      awk -F, -v task="$task" 'NR > 1 {
          n++; t[n] = 100 * $4; s += t[n]; d += 100 * $5; p = $7; tpm += $8; name = $1
          split_list = split_list (n > 1 ? " / " : "") sprintf("%.2f", t[n]) }
        END { m = s / n; v = 0; for (i = 1; i <= n; i++) v += (t[i] - m) ^ 2
              sd = n > 1 ? sqrt(v / (n - 1)) : 0
              printf "| %s | %s | %.2f ± %.2f | %s | %.2f | %s | %.2f |\n", task, name, m, sd, split_list, d / n, p, tpm / n }' \
        "$OUT/$task-$m/sweep.csv"
    done
  done
} | tee "$OUT/summary.md"
