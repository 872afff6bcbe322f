#!/usr/bin/env python3
"""Runs petune and the PyTorch + PEFT peer alternately on the same training steps and
prints the ratios (docs/benchmarks.md).

    cargo build --release --bin petune
    .venv-fixtures/bin/python scripts/bench_vs_pytorch.py --model .assets/all-MiniLM-L6-v2 --threads 2 --rounds 3

For each round and method, petune (`petune bench --single`-style child per method) and
the peer (`scripts/peer_bench.py`) run back to back, so machine drift hits both alike;
the table reports the median over rounds of each side's median step.

`--last-layer read_out,full` runs petune both ways in each round (`petune bench
--last-layer`): `read_out`, the trainer's default, computes the last layer only at the
token the head reads (exact, and what a user's training run does); `full` computes it at
every token, as the peer does, which compares the same kernels on the same work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# petune method name -> peer method name
PAIRS = [("model_tuning", "mt"), ("lora", "lora"), ("prompt_tuning_peft", "pt"), ("ptuning_v2", "prefix")]
PETUNE_METHODS = {
    "model_tuning": "model_tuning",
    "lora": "lora",
    "prompt_tuning_peft": '{"method": "prompt_tuning", "len": 20, "position": "peft"}',
    "ptuning_v2": "ptuning_v2",
}


def method_arg(spec: str) -> str:
    """`petune bench --methods` splits on commas: JSON goes through a file."""
    if not spec.startswith("{"):
        return spec
    path = Path("/tmp") / f"petune-bench-{abs(hash(spec))}.json"
    path.write_text(spec)
    return str(path)


def run_json(cmd: list[str], first_line: bool = False) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[0] if first_line else lines[-1])


def memory(x: dict) -> tuple[float, float]:
    """(start, peak) MiB: GPU memory on CUDA, process RSS on CPU (as petune's tables)."""
    if x.get("gpu_peak_mib") is not None:
        return x["gpu_start_mib"], x["gpu_peak_mib"]
    return x["rss_start_mib"], x["peak_rss_mib"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / ".assets/all-MiniLM-L6-v2"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--petune", default=str(ROOT / "target/release/petune"))
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="f32", choices=["f32", "fp16", "bf16"])
    ap.add_argument("--tf32", action="store_true", help="TF32 float32 matmuls on CUDA, both sides")
    ap.add_argument("--optimizer", default="adamw_fused", choices=["adamw_fused", "hf_adamw"],
                    help="petune's optimizer; the peer runs torch.optim.AdamW(fused=True) either way")
    ap.add_argument("--last-layer", default="read_out",
                    help="comma-separated petune last-layer modes: read_out (default), full")
    ap.add_argument("--methods", default=",".join(p for p, _ in PAIRS),
                    help="comma-separated petune names of the pairs to run")
    args = ap.parse_args()
    pairs = [(p, q) for p, q in PAIRS if p in args.methods.split(",")]
    shape = ["--batch", str(args.batch), "--seq", str(args.seq), "--steps", str(args.steps),
             "--warmup", str(args.warmup), "--threads", str(args.threads),
             "--device", args.device, "--precision", args.precision] + (["--tf32"] if args.tf32 else [])
    modes = args.last_layer.split(",")
    results: dict[str, dict[str, list[dict]]] = {
        p: {"peer": [], **{f"petune/{m}": [] for m in modes}} for p, _ in pairs}
    for r in range(args.rounds):
        for ours, theirs in pairs:
            line = f"round {r + 1}: {ours:<20}"
            for mode in modes:
                a = run_json([args.petune, "bench", "--model", args.model, "--methods", method_arg(PETUNE_METHODS[ours]),
                              "--json", "--optimizer", args.optimizer, "--last-layer", mode] + shape, first_line=True)
                a = a.get("report", a)
                results[ours][f"petune/{mode}"].append(a)
                line += f" petune ({mode}) {a.get('median_ms', float('nan')):8.1f} ms  "
            b = run_json([sys.executable, str(ROOT / "scripts/peer_bench.py"), "--model", args.model,
                          "--method", theirs, "--adamw", "fused"] + shape)
            results[ours]["peer"].append(b)
            print(f"{line} peer {b.get('median_ms', float('nan')):8.1f} ms {b.get('error', '')}", file=sys.stderr)
    mem = "GPU memory" if args.device == "cuda" else "RSS"
    print(f"\nbatch {args.batch} x {args.seq} tokens, {args.threads} threads, {args.device}, {args.precision}, "
          f"TF32 {'on' if args.tf32 else 'off'} (both sides), petune {args.optimizer} vs torch AdamW(fused=True), "
          f"{args.steps} timed steps after {args.warmup} warm-up, median over {args.rounds} alternating rounds\n")
    print(f"| method | petune last layer | petune tokens/ms | PyTorch+PEFT tokens/ms | speed ratio | ratio of fastest steps | petune peak {mem} (MiB) "
          f"| PyTorch peak {mem} (MiB) | {mem} ratio | petune added (MiB) | PyTorch added (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    summary = []
    for (ours, theirs), mode in ((p, m) for p in pairs for m in modes):
        a = [x for x in results[ours][f"petune/{mode}"] if "median_ms" in x]
        b = [x for x in results[ours]["peer"] if "median_ms" in x]
        if not a:
            print(f"| {ours} | {mode} | failed | | | | | | | | |")
            continue
        tpm_a = statistics.median(x["tokens_per_ms"] for x in a)
        peak_a = statistics.median(memory(x)[1] for x in a)
        add_a = statistics.median(memory(x)[1] - memory(x)[0] for x in a)
        if not b:
            err = results[ours]["peer"][0].get("error", "failed")
            print(f"| {ours} | {mode} | {tpm_a:.2f} | cannot run: {err} | | | {peak_a:.0f} | | | {add_a:.0f} | |")
            continue
        tpm_b = statistics.median(x["tokens_per_ms"] for x in b)
        peak_b = statistics.median(memory(x)[1] for x in b)
        add_b = statistics.median(memory(x)[1] - memory(x)[0] for x in b)
        # The fastest step of each side over all rounds: the least disturbed by other load.
        fastest = min(x["min_ms"] for x in b) / min(x["min_ms"] for x in a)
        print(f"| {ours} | {mode} | {tpm_a:.2f} | {tpm_b:.2f} | {tpm_a / tpm_b:.2f} | {fastest:.2f} | {peak_a:.0f} | {peak_b:.0f} "
              f"| {peak_a / peak_b:.2f} | {add_a:.0f} | {add_b:.0f} |")
        summary.append({"method": ours, "last_layer": mode, "petune": a, "peer": b})
    versions = next((x.get("versions") for p in results.values() for x in p["peer"] if "versions" in x), None)
    print(f"\npeer versions: {versions}")


if __name__ == "__main__":
    main()
