#!/usr/bin/env bash
# Builds the `petune` binary against another libtorch than scripts/setup.sh's, for a
# machine whose PyTorch (and CUDA libraries) are already installed — a GPU box with
# `pip install torch==X`. tch pins one libtorch version per release, so the tree is
# copied, tch pinned to the release for that version, and built against the torch
# wheel's headers and libraries (downloaded from PyPI once; no CUDA toolkit needed).
#
#   scripts/build_for_torch.sh TORCH_VERSION TCH_VERSION OUT_BINARY
#   scripts/build_for_torch.sh 2.11.0 0.24.0 .gpu/petune      # torch 2.11 <-> tch 0.24
#
# Run the result with the target's torch/lib on LD_LIBRARY_PATH (scripts/gpu_check.sh
# does); `--device cuda` then loads libtorch_cuda.so from there (petune_core::device).
# tch <-> libtorch: 0.24.0 <-> 2.11.0, 0.26.0 <-> 2.13.0 (TORCH_VERSION in torch-sys'
# build.rs). The API petune uses compiled unchanged with tch 0.24.0.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=${1:?torch version}; TCH=${2:?tch version}; OUT=${3:?output binary}
CACHE=${PETUNE_BUILD_CACHE:-$HOME/.cache/petune-build}
LT="$CACHE/libtorch-$TORCH"
if [ ! -f "$LT/torch/lib/libtorch_cpu.so" ]; then
  mkdir -p "$LT"
  .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 -d "$LT" "torch==$TORCH"
  (cd "$LT" && unzip -q -o torch-"$TORCH"-*.whl 'torch/lib/*' 'torch/include/*' && rm -f torch-"$TORCH"-*.whl)
fi
SRC="$CACHE/src-tch-$TCH"
rm -rf "$SRC" && mkdir -p "$SRC"
git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C "$SRC"
sed -i "s/^tch = \"=[0-9.]*\"/tch = \"=$TCH\"/" "$SRC/Cargo.toml"
printf '[env]\nLIBTORCH = "%s"\nLIBTORCH_BYPASS_VERSION_CHECK = "1"\n' "$LT/torch" > "$SRC/.cargo/config.toml"
(cd "$SRC" && CARGO_TARGET_DIR="$CACHE/target-tch-$TCH" cargo build --release --bin petune)
mkdir -p "$(dirname "$OUT")"
strip -o "$OUT" "$CACHE/target-tch-$TCH/release/petune"
echo "built $OUT against libtorch $TORCH (tch $TCH)"
