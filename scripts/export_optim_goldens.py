#!/usr/bin/env python3
"""Export the golden optimizer trajectory for petune's fused AdamW (issue #16).

`torch.optim.AdamW(fused=True)` with two parameter groups (weight decay 0.1 on weights,
0.0 on biases and LayerNorm weights, as petune's decay rule splits them), preceded at each
step by gradient clipping to max_norm 1.0 the way `clip_grad_norm_(foreach=True)` does it:
`torch._foreach_norm` per tensor, `linalg.vector_norm(stack(norms))`, coefficient
`max_norm / (total + 1e-6)` clamped to 1, `torch._foreach_mul_`.  (`foreach=True` itself
refuses CPU tensors in torch 2.13, whose foreach fast path is CUDA-only; the same ATen ops run
here through their CPU fallback, and the script asserts that `clip_grad_norm_(foreach=None)`
gives the same norm and gradients.)  Seeded random parameters and gradients, a different
learning rate at each step, large gradients on some steps (clipping active) and small ones
on others.  From the repository root:

    .venv-fixtures/bin/python scripts/export_optim_goldens.py

writes tests/fixtures/optim/adamw_fused.safetensors (float32):

    init.<name>             parameters before the first step
    grad.<step>.<name>      the raw gradient of that step (before clipping)
    lr                      [steps] learning rate of each step
    norm                    [steps] total gradient norm of each step, before clipping
    param.<step>.<name>     parameters after that step
    exp_avg.<name>, exp_avg_sq.<name>, step.<name>   optimizer state after the last step

The __metadata__ records the script, torch version and settings.  Deterministic: one CPU
thread, fixed seed; two runs give identical tensors (safetensors orders the metadata
keys at random).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "optim" / "adamw_fused.safetensors"
SHAPES = {
    "layer.weight": (6, 5),
    "layer.bias": (6,),
    "embed.weight": (7, 4),
    "LayerNorm.weight": (4,),
}
NO_DECAY = {"layer.bias", "LayerNorm.weight"}
LRS = [1e-2, 2e-2, 1.5e-2, 5e-3, 8e-3]
# Gradient scale per step: > 1 makes the total norm exceed max_norm (clipping active).
GRAD_SCALE = [3.0, 0.05, 10.0, 0.1, 2.0]
MAX_NORM = 1.0
BETAS = (0.9, 0.999)
EPS = 1e-8
WD = 0.1


def foreach_clip(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    norms = torch._foreach_norm(grads, 2.0)
    total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)
    return total


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(16)
    params = {n: torch.randn(s) for n, s in SHAPES.items()}
    grads = [{n: torch.randn(s) * GRAD_SCALE[t] for n, s in SHAPES.items()} for t in range(len(LRS))]
    out: dict[str, torch.Tensor] = {f"init.{n}": p.clone() for n, p in params.items()}
    for t, step_grads in enumerate(grads):
        for n, g in step_grads.items():
            out[f"grad.{t}.{n}"] = g.clone()

    live = {n: p.clone().requires_grad_(True) for n, p in params.items()}
    twin = {n: p.clone().requires_grad_(True) for n, p in params.items()}  # foreach=None check
    names = list(SHAPES)
    groups = [
        {"params": [live[n] for n in names if n not in NO_DECAY], "weight_decay": WD},
        {"params": [live[n] for n in names if n in NO_DECAY], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LRS[0], betas=BETAS, eps=EPS, fused=True)
    norms = []
    for t, step_grads in enumerate(grads):
        for n in names:
            live[n].grad = step_grads[n].clone()
            twin[n].grad = step_grads[n].clone()
        total = foreach_clip([live[n].grad for n in names], MAX_NORM)
        total_twin = torch.nn.utils.clip_grad_norm_([twin[n] for n in names], MAX_NORM, foreach=None)
        assert torch.equal(total, total_twin), (total, total_twin)
        for n in names:
            assert torch.equal(live[n].grad, twin[n].grad), n
        norms.append(total.item())
        for g in opt.param_groups:
            g["lr"] = LRS[t]
        opt.step()
        opt.zero_grad(set_to_none=True)
        for n in names:
            twin[n].grad = None
            out[f"param.{t}.{n}"] = live[n].detach().clone()
    assert any(x > MAX_NORM for x in norms) and any(x < MAX_NORM for x in norms), norms
    for n in names:
        st = opt.state[live[n]]
        assert st["step"].dtype == torch.float32
        out[f"exp_avg.{n}"] = st["exp_avg"].clone()
        out[f"exp_avg_sq.{n}"] = st["exp_avg_sq"].clone()
        out[f"step.{n}"] = st["step"].clone()
    out["lr"] = torch.tensor(LRS, dtype=torch.float32)
    out["norm"] = torch.tensor(norms, dtype=torch.float32)
    meta = {
        "script": "scripts/export_optim_goldens.py",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "optimizer": f"torch.optim.AdamW(fused=True, betas={BETAS}, eps={EPS}), groups wd={WD} / 0.0",
        "clipping": f"foreach clip_grad_norm_ (max_norm {MAX_NORM}) via _foreach_norm / _foreach_mul_",
        "no_decay": ",".join(sorted(NO_DECAY)),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, str(OUT), metadata=meta)
    print(f"wrote {OUT} ({len(out)} tensors); norms {['%.4f' % x for x in norms]}", file=sys.stderr)


if __name__ == "__main__":
    main()
