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
# METHODS (default "npg pt mt") picks methods, so that several instances can share the work
# (each in its own OUT; gather the <task>-<method> folders into one OUT and run with
# SUMMARY_ONLY=1 to write the table from them).
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
METHODS=${METHODS:-"npg pt mt"}
SUMMARY_ONLY=${SUMMARY_ONLY:-0}
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
  [ "$SUMMARY_ONLY" = 1 ] && break
  [ -f ".assets/vader/$(file_of "$task")" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
  for m in $METHODS; do
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

# The table: per task and method, test accuracy mean ± std (sample std, n − 1) over the splits
# of the dev-selected run (as the sweep selects: the first lr with the strictly best dev
# accuracy), the rates chosen, macro-F1 (the classes are imbalanced; docs/tasks.md), and the
# selected runs' training seconds and tokens/ms. Reads the run folders (python3, stdlib only).
python3 - "$OUT" "$TASKS" "$SEEDS" "$METHODS" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
from pathlib import Path
out, tasks, seeds = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split(",")
methods = sys.argv[4].split()
print("| task | method | test acc (mean ± std) | per split (" + " / ".join(seeds) + ") | lr chosen | best dev (mean) | test macro-F1 (mean) | trainable params | train s / run | tokens/ms |")
print("|---|---|---|---|---|---|---|---|---|---|")
for task in tasks:
    for m in methods:
        chosen = []
        for seed in seeds:
            runs = []
            for d in sorted((out / f"{task}-{m}" / "runs").glob(f"*-seed{seed}/*/metrics.json")):
                r = json.loads(d.read_text())
                lr = json.loads((d.parent / "run.json").read_text())["train"]["lr"]
                runs.append((lr, r))
            if len(runs) < 2:  # both rates of the grid must have finished
                continue
            runs.sort(key=lambda x: x[0])
            best = None
            for lr, r in runs:
                if best is None or r["best_dev"]["headline"] > best[1]["best_dev"]["headline"]:
                    best = (lr, r)
            chosen.append(best)
        if not chosen:
            continue
        acc = [100 * r["test"]["headline"] for _, r in chosen]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        r0 = chosen[0][1]
        partial = "" if len(chosen) == len(seeds) else f" ({len(chosen)} of {len(seeds)} splits)"
        print(f"| {task} | {r0['method']}{partial} | {statistics.mean(acc):.2f} ± {sd:.2f} | "
              + " / ".join(f"{a:.2f}" for a in acc)
              + f" | {' / '.join(f'{lr:g}' for lr, _ in chosen)}"
              + f" | {statistics.mean(100 * r['best_dev']['headline'] for _, r in chosen):.2f}"
              + f" | {statistics.mean(100 * r['test_classes']['macro_f1'] for _, r in chosen):.2f}"
              + f" | {r0['trainable_params']:,}"
              + f" | {statistics.mean(r['train_seconds'] for _, r in chosen):.0f}"
              + f" | {statistics.mean(r['tokens_per_ms'] for _, r in chosen):.2f} |")
PY
