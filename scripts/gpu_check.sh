#!/usr/bin/env bash
# The CUDA checks and benchmarks of issues #7 and #16 (docs/benchmarks.md, "GPU"), as one script
# for a lent GPU machine that has PyTorch + transformers + PEFT in `python3` but no Rust:
# the `petune` binary is built elsewhere against the same libtorch version as that
# PyTorch (docs/benchmarks.md says how) and found through LD_LIBRARY_PATH here.
#
#   scripts/gpu_check.sh PETUNE_BIN OUT_DIR [quick]
#
# 1. versions and the card; 2. `petune forward` on CUDA against the transformers goldens
# of the four tiny fixtures; 3. a real few-shot MR training run (splade-tiny) on CUDA in
# f32, bf16, bf16 with bf16-stored frozen weights (`base_dtype`) and fp16 + frozen-prefix
# cache; 4. `petune bench` on a random-weight RoBERTa-large (Table 5's 16 × 256) in f32 and
# bf16 (and bf16 with `--base-dtype bf16`), each method with both optimizers
# (adamw_fused, hf_adamw: the optimizer phase before/after issue #16); 5. petune against
# PyTorch + PEFT on the same steps, alternately (scripts/bench_vs_pytorch.py), in f32 and
# bf16, PyTorch with AdamW(fused=True), TF32 off on both sides (PyTorch's default; pass
# TF32=1 in the environment to run both sides with TF32 on).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:?petune binary}")
OUT=${2:?output folder}
QUICK=${3:-}
WORK=$(mktemp -d)   # intermediates; OUT gets the reports only
mkdir -p "$OUT"
TORCH_LIB=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
step() { printf '\n== %s (%s)\n' "$*" "$(date +%T)"; }

step "1. versions"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)'
"$BIN" --version

step "2. forward on CUDA vs the transformers goldens"
for m in bert-mlm roberta-mlm deberta-mlm gpt2-lm; do
  "$BIN" forward --model "tests/fixtures/$m" --input "tests/fixtures/$m/inputs.jsonl" \
    --out "$WORK/forward-$m.safetensors" --device cuda || exit 1
  echo "$m:"; python3 scripts/compare_forward.py "$WORK/forward-$m.safetensors" "tests/fixtures/$m/golden.safetensors" 1e-4 || exit 1
done
[ "$QUICK" = quick ] && exit 0

step "3. few-shot MR on CUDA (splade-tiny, LPT NPG): f32, bf16, bf16 + bf16 base, fp16 + frozen-prefix cache"
for variant in f32 bf16 bf16-base fp16-cache; do
  python3 - "$variant" "$WORK/train-$variant.json" <<'PY'
import json, sys
variant, path = sys.argv[1], sys.argv[2]
cfg = json.load(open("experiments/mr-minilm-npg.json"))
cfg["model"] = ".assets/splade-tiny"
cfg["method"]["prompt_layer"] = 2
cfg["train"].update(device="cuda", precision=variant.split("-")[0],
                    frozen_prefix_cache=variant.endswith("cache"), max_steps=200, eval_every=50)
if variant.endswith("base"):
    cfg["train"]["base_dtype"] = "bf16"
json.dump(cfg, open(path, "w"))
PY
  "$BIN" train --config "$WORK/train-$variant.json" --json > "$WORK/train-$variant.report.json" || exit 1
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[2], "test", r["test"]["headline"], "best dev", r["best_dev"]["headline"], "tokens/ms", round(r["tokens_per_ms"],1))' \
    "$WORK/train-$variant.report.json" "$variant"
  cat "$WORK/train-$variant.report.json" >> "$OUT/train-reports.jsonl"
done

step "4. petune bench, random-weight RoBERTa-large, 16 x 256"
python3 scripts/make_random_model.py tests/fixtures/configs/roberta-large.json "$WORK/roberta-large"
TF32_FLAG=$([ "${TF32:-0}" = 1 ] && echo --tf32 || true)
for p in f32 bf16; do
  "$BIN" bench --model "$WORK/roberta-large" --device cuda --precision "$p" --batch 16 --seq 256 $TF32_FLAG \
    --steps 10 --warmup 3 --cache --methods mt,npg,lora,pt --optimizer adamw_fused,hf_adamw 2>&1 | tee "$OUT/bench-roberta-large-$p.md"
done
# Frozen weights stored in bf16 (model tuning is skipped: its weights train).
"$BIN" bench --model "$WORK/roberta-large" --device cuda --precision bf16 --base-dtype bf16 --batch 16 --seq 256 $TF32_FLAG \
  --steps 10 --warmup 3 --methods npg,lora,pt 2>&1 | tee "$OUT/bench-roberta-large-bf16-base.md"

step "5. petune vs PyTorch + PEFT (alternating), RoBERTa-large 16 x 256"
for p in f32 bf16; do
  python3 scripts/bench_vs_pytorch.py $TF32_FLAG --model "$WORK/roberta-large" --petune "$BIN" --device cuda --precision "$p" \
    --threads 0 --batch 16 --seq 256 --steps 10 --warmup 3 --rounds 2 \
    --methods model_tuning,lora,prompt_tuning_peft 2>&1 | tee "$OUT/vs-pytorch-$p.md"
done
step "done"
