#!/usr/bin/env python3
"""The peer of `petune bench`: the same training step in PyTorch + transformers + PEFT.

Same model folder, same fixed batch x length of random ids (no padding), dropout on, a
2-class linear head on the first text token, cross-entropy, backward, grad clip 1.0,
AdamW; median step time after warm-up, and peak RSS of the training phase (VmHWM reset
after loading, as petune does). On CUDA (`--device cuda`): steps synchronised before the
clock stops, and GPU memory in use (`torch.cuda.mem_get_info`: total - free, the figure
`petune bench` reads with cudaMemGetInfo) before the method is built and after the timed
steps; `--precision fp16` runs the forward and loss under `torch.autocast("cuda",
torch.float16)` with a `GradScaler`, as petune's fp16 mode; `--precision bf16` under
`torch.autocast(device, torch.bfloat16)` without a scaler (CUDA or CPU), as petune's bf16.
`--adamw fused` (default) is `torch.optim.AdamW(fused=True)` (CPU and CUDA kernels in
torch >= 2.4); `--adamw default` lets PyTorch choose (foreach on CUDA, a per-tensor loop on
CPU). `--tf32` sets `torch.backends.cuda.matmul.allow_tf32` (off by default, as petune).
One method per process.

    python3 -m venv .venv-fixtures && .venv-fixtures/bin/pip install -r scripts/fixtures-requirements.txt
    .venv-fixtures/bin/python scripts/peer_bench.py --model .assets/all-MiniLM-L6-v2 --method lora --threads 2

Methods: mt (every weight), lora (r=8, alpha=16, query+value), pt (PEFT prompt tuning,
20 tokens), prefix (PEFT prefix tuning, 20 tokens). Prints one JSON line; a method the
peer cannot run prints {"method": ..., "error": ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--method", required=True, choices=["mt", "lora", "pt", "prefix"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="f32", choices=["f32", "fp16", "bf16"])
    ap.add_argument("--adamw", default="fused", choices=["fused", "default"])
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--phases", action="store_true", help="on CUDA, synchronise between phases to time them")
    args = ap.parse_args()

    import torch
    import transformers
    import peft
    from torch import nn

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = args.tf32

    def gpu_used_mib() -> float | None:
        if not cuda:
            return None
        free, total = torch.cuda.mem_get_info()
        return (total - free) / 2**20

    model = transformers.AutoModel.from_pretrained(args.model).to(dev)
    model.train()
    gpu_start = gpu_used_mib()
    hidden = model.config.hidden_size
    n_virtual = 0
    try:
        if args.method == "mt":
            trainable = list(model.parameters())
        else:
            if args.method == "lora":
                cfg = peft.LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["query", "value"],
                                      task_type="FEATURE_EXTRACTION")
            elif args.method == "pt":
                cfg = peft.PromptTuningConfig(num_virtual_tokens=20, task_type="FEATURE_EXTRACTION")
                n_virtual = 20
            else:
                cfg = peft.PrefixTuningConfig(num_virtual_tokens=20, task_type="FEATURE_EXTRACTION")
            model = peft.get_peft_model(model, cfg)
            model.train()
            trainable = [p for p in model.parameters() if p.requires_grad]
        head = nn.Linear(hidden, 2).to(dev)
        params = trainable + list(head.parameters())
        fused = {"fused": True} if args.adamw == "fused" else {}
        opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.1, **fused)
        vocab = model.config.vocab_size
        ids = torch.randint(5, vocab, (args.batch, args.seq), device=dev)
        mask = torch.ones_like(ids)
        labels = torch.randint(0, 2, (args.batch,), device=dev)
        fp16 = args.precision == "fp16"
        if fp16 and not cuda:
            raise ValueError("fp16 autocast is CUDA-only here, as in petune")
        scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        low = torch.bfloat16 if args.precision == "bf16" else torch.float16

        def sync(phase_end: bool = True) -> None:
            # On CUDA the phase boundaries synchronise only with --phases (they cost some
            # overlap); the step's end always does.
            if cuda and (args.phases or not phase_end):
                torch.cuda.synchronize()

        def step() -> tuple[float, float, float]:
            """One training step; its forward, backward and optimizer (clip + step) ms."""
            t0 = time.perf_counter()
            with torch.autocast(dev.type, dtype=low, enabled=args.precision != "f32"):
                out = model(input_ids=ids, attention_mask=mask).last_hidden_state
                logits = head(nn.functional.dropout(out[:, n_virtual], 0.1, True))
                loss = nn.functional.cross_entropy(logits, labels)
            sync()
            t1 = time.perf_counter()
            scaler.scale(loss).backward()
            sync()
            t2 = time.perf_counter()
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            loss.item()
            sync(phase_end=False)
            t3 = time.perf_counter()
            return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3

        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        rss_start = status_mib("VmRSS:")
        for _ in range(args.warmup):
            step()
        times, phases = [], []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            phases.append(step())  # loss.item() synchronises, as petune's step does
            times.append((time.perf_counter() - t0) * 1e3)
        gpu_peak = gpu_used_mib()
    except Exception as e:  # the peer's own refusal is a result to record
        print(json.dumps({"method": args.method, "error": f"{type(e).__name__}: {e}"}))
        return
    median = statistics.median(times)
    print(json.dumps({
        "method": args.method,
        "trainable_params": sum(p.numel() for p in params),
        "median_ms": median,
        "min_ms": min(times),
        "tokens_per_ms": args.batch * args.seq / median,
        # Medians of each phase over the timed steps (exact on CPU; on CUDA only with --phases).
        "forward_ms": statistics.median(p[0] for p in phases),
        "backward_ms": statistics.median(p[1] for p in phases),
        "optimizer_ms": statistics.median(p[2] for p in phases),
        "rss_start_mib": rss_start,
        "peak_rss_mib": status_mib("VmHWM:"),
        "gpu_start_mib": gpu_start,
        "gpu_peak_mib": gpu_peak,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "precision": args.precision,
        "adamw": args.adamw,
        "tf32": torch.backends.cuda.matmul.allow_tf32,
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }))


if __name__ == "__main__":
    main()
