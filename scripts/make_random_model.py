#!/usr/bin/env python3
"""Writes a Hugging Face model folder with random weights for a config.json (speed and
memory benchmarks only need the shapes; no weights can be downloaded on the benchmark
machine). Uses transformers' own initialisation, saves `config.json` +
`model.safetensors` (float32), and copies `tokenizer.json` when one is given.

    python3 scripts/make_random_model.py tests/fixtures/configs/roberta-large.json OUT_DIR
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main() -> None:
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: make_random_model.py CONFIG.json OUT_DIR [tokenizer.json]")
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(sys.argv[1])
    torch.manual_seed(0)
    model = transformers.AutoModel.from_config(config)
    out = Path(sys.argv[2])
    model.save_pretrained(out, safe_serialization=True)
    if len(sys.argv) == 4:
        shutil.copy(sys.argv[3], out / "tokenizer.json")
    n = sum(p.numel() for p in model.parameters())
    print(f"{out}: {config.model_type}, {n:,} parameters")


if __name__ == "__main__":
    main()
