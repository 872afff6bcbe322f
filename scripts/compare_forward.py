#!/usr/bin/env python3
"""Compares a `petune forward` output with a fixture's transformers golden: the largest
absolute difference per tensor over real (non-padding) positions; exits 1 above the
tolerance. Used by scripts/gpu_check.sh for the CUDA path (the CPU path is tested by
tests/cli_forward.rs).

    python3 scripts/compare_forward.py OUT.safetensors tests/fixtures/bert-mlm/golden.safetensors [tol]
"""

from __future__ import annotations

import sys

from safetensors.torch import load_file


def main() -> None:
    got, want = load_file(sys.argv[1]), load_file(sys.argv[2])
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
    real = want["attention_mask"].bool()
    worst = 0.0
    for name in sorted(k for k in want if k.startswith("hidden.") or k == "logits"):
        a, b = got[name][real].float(), want[name][real].float()
        d = (a - b).abs().max().item()
        worst = max(worst, d)
        print(f"  {name:<10} max |diff| {d:.2e}")
    print(f"  worst {worst:.2e} (tolerance {tol:.0e})")
    sys.exit(0 if worst <= tol else 1)


if __name__ == "__main__":
    main()
