#!/usr/bin/env python3
"""How fast can model tuning's optimizer phase be on this machine? (issue #16, docs/benchmarks.md)

The phase (foreach gradient norm, clip, AdamW) streams every parameter's buffers through
memory once: the norm reads the gradient (4 bytes per parameter), the AdamW update reads
parameter, gradient and both moments and writes parameter and moments (28 bytes). With the
clip folded into the update (petune's `grad_scale`) that is 32 bytes per parameter at
least, whatever the kernel. This script measures, with PyTorch's own kernels on the same
parameter shapes (all-MiniLM-L6-v2's tensors + a 2-class head), 2 threads:

- streaming rates: a read-only reduction (`_foreach_norm`), `copy_` and the fused AdamW
  step itself, each as the bytes it must move over its time (fastest of --repeats);
- PyTorch's whole phase: `clip_grad_norm_(foreach=True)` + `AdamW(fused=True).step()`;
- the floor: 32 bytes per parameter at the best rate measured, i.e. the phase's least time
  on this machine, to hold against a backward time (0.04x backward is the issue's target).

    .venv-fixtures/bin/python scripts/optimizer_floor.py --model .assets/all-MiniLM-L6-v2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time


def fastest_ms(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = transformers.AutoModel.from_pretrained(args.model)
    head = torch.nn.Linear(model.config.hidden_size, 2)
    params = list(model.parameters()) + list(head.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    n = sum(p.numel() for p in params)
    grads = [p.grad for p in params]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.1, fused=True)
    opt.step()  # allocates the moments, so every timed step streams all four buffers

    flat_src = torch.randn(n)
    flat_dst = torch.empty(n)
    rates = {}  # name -> (ms, GB/s of compulsory traffic)

    def record(name: str, ms: float, bytes_moved: float) -> None:
        rates[name] = (ms, bytes_moved / (ms * 1e-3) / 1e9)

    with torch.no_grad():
        record("read (_foreach_norm of the gradients)",
               fastest_ms(lambda: torch._foreach_norm(grads), args.repeats), 4 * n)
        record("copy_ (one flat buffer)",
               fastest_ms(lambda: flat_dst.copy_(flat_src), args.repeats), 8 * n)
    record("AdamW(fused=True).step()", fastest_ms(opt.step, args.repeats), 28 * n)

    def phase() -> None:
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()

    phase_ms = fastest_ms(phase, args.repeats)
    best_rate = max(r for _, r in rates.values())
    floor_ms = 32 * n / (best_rate * 1e9) * 1e3
    print(f"{n:,} parameters in {len(params)} tensors, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for name, (ms, rate) in rates.items():
        print(f"  {name:<42} {ms:8.2f} ms  {rate:6.1f} GB/s")
    print(f"  {'PyTorch phase: clip(foreach) + fused step':<42} {phase_ms:8.2f} ms")
    print(f"  floor: 32 B/param at {best_rate:.1f} GB/s = {floor_ms:.2f} ms "
          f"(0.04x backward needs a backward of >= {floor_ms / 0.04:.0f} ms)")
    print(json.dumps({"params": n, "tensors": len(params), "phase_ms": phase_ms, "floor_ms": floor_ms,
                      "rates": {k: {"ms": ms, "gb_s": r} for k, (ms, r) in rates.items()}}))


if __name__ == "__main__":
    main()
