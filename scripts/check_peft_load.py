#!/usr/bin/env python3
"""Check that Hugging Face PEFT can load an adapter folder and reproduces a golden output.

    .venv-fixtures/bin/python scripts/check_peft_load.py DIR BASE_DIR GOLDEN [--tol 1e-5]

DIR       adapter folder (adapter_config.json + adapter_model.safetensors), e.g. written by petune
BASE_DIR  base model folder, loaded with `AutoModel.from_pretrained` (e.g. tests/fixtures/bert-mlm),
          or `AutoModelForCausalLM` when the adapter's task_type is CAUSAL_LM (tests/fixtures/llama-lm)
GOLDEN    golden.safetensors from tests/fixtures/peft/<name>/ (inputs + `peft_hidden` / `peft_logits`)

Loads `PeftModel.from_pretrained(<base class>.from_pretrained(BASE_DIR), DIR)` (float32, eager
attention, one thread), runs the golden's inputs and prints the max abs difference of the final
hidden state against the golden's `peft_hidden` (for prompt tuning: [B, P+T, H], virtual tokens
first) and, for causal LMs, of the LM logits against `peft_logits`.  Also checks, and prints, that the adapter file has exactly the tensor names and
shapes PEFT expects for this config (no missing / unexpected keys: PEFT itself would silently keep a
freshly initialised tensor for a missing one), that BASE_DIR reproduces the golden's `base_hidden`,
and for LoRA that `merge_and_unload()` matches too.  Exit code 0 if everything is within --tol,
1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("base_dir", type=Path)
    ap.add_argument("golden", type=Path)
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()

    import transformers
    from peft import PeftModel, get_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoModelForCausalLM

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # transformers 5 deprecation noise
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    failures: list[str] = []

    def report(what: str, diff: float) -> None:
        ok = diff <= args.tol
        print(f"{'ok  ' if ok else 'FAIL'} {what}: max abs diff {diff:.3e} (tol {args.tol:g})")
        if not ok:
            failures.append(what)

    cfg = json.loads((args.dir / "adapter_config.json").read_text())
    is_prompt = cfg.get("peft_type") in ("PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING", "MULTITASK_PROMPT_TUNING")
    print(f"adapter {args.dir}: peft_type={cfg.get('peft_type')} task_type={cfg.get('task_type')}")
    adapter_file = args.dir / "adapter_model.safetensors"
    with safe_open(str(adapter_file), framework="pt") as f:
        file_meta = f.metadata()
        file_keys = {k: (f.get_slice(k).get_dtype(), list(f.get_slice(k).get_shape())) for k in f.keys()}
    print(f"adapter_model.safetensors: {len(file_keys)} tensors, __metadata__ {file_meta}")

    golden = load_file(str(args.golden))
    inputs = {"input_ids": golden["input_ids"], "attention_mask": golden["attention_mask"]}
    if "token_type_ids" in golden and not is_prompt:  # PEFT drops token_type_ids for prompt learning
        inputs["token_type_ids"] = golden["token_type_ids"]

    causal = cfg.get("task_type") == "CAUSAL_LM"
    base_cls = AutoModelForCausalLM if causal else AutoModel

    def load_base():
        return base_cls.from_pretrained(str(args.base_dir), attn_implementation="eager", dtype=torch.float32).eval()

    logits: dict[str, torch.Tensor] = {}

    def run(model) -> torch.Tensor:
        """The final hidden state; a causal LM's logits are kept in `logits["last"]`."""
        extra = {"use_cache": False} if causal or getattr(model.config, "model_type", "") == "gpt2" else {}
        with torch.no_grad():
            if causal:
                out = model(**inputs, **extra, output_hidden_states=True, return_dict=True)
                logits["last"] = out.logits
                return out.hidden_states[-1]
            return model(**inputs, **extra, return_dict=True).last_hidden_state

    base = load_base()
    if "base_hidden" in golden:
        report("base model (BASE_DIR) vs golden base_hidden", (run(base) - golden["base_hidden"]).abs().max().item())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(base, str(args.dir)).eval()
    for msg in sorted({str(w.message) for w in caught}):
        if "is_gradient_checkpointing" not in msg:
            print(f"warning while loading: {msg}")
    print(f"loaded as {type(model).__name__} over {type(model.get_base_model()).__name__}")

    expected = {k: (str(v.dtype), list(v.shape)) for k, v in get_peft_model_state_dict(model).items()}
    missing = sorted(set(expected) - set(file_keys))
    unexpected = sorted(set(file_keys) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(file_keys) if expected[k][1] != file_keys[k][1])
    for k in missing:
        print(f"FAIL missing key {k} {expected[k][1]}")
    for k in unexpected:
        print(f"FAIL unexpected key {k} {file_keys[k]}")
    for k in wrong_shape:
        print(f"FAIL shape of {k}: file {file_keys[k][1]}, PEFT expects {expected[k][1]}")
    if missing or unexpected or wrong_shape:
        failures.append("adapter keys")
    else:
        print(f"ok   adapter keys: all {len(expected)} expected tensors present with the right shapes")
    for k, (dtype, _) in sorted(file_keys.items()):
        if dtype != "F32":
            print(f"note {k} is stored as {dtype}")

    out = run(model)
    for key, got in (("peft_hidden", out), ("peft_logits", logits.get("last"))):
        ref = golden.get(key)
        if ref is None or got is None:
            continue
        if got.shape != ref.shape:
            print(f"FAIL output shape {tuple(got.shape)} != golden {key} {tuple(ref.shape)}")
            return 1
        report(f"PEFT output {tuple(got.shape)} vs golden {key}", (got - ref).abs().max().item())

    if not is_prompt and "merged_hidden" in golden:
        merged = PeftModel.from_pretrained(load_base(), str(args.dir)).merge_and_unload().eval()
        report("merge_and_unload() output vs golden merged_hidden", (run(merged) - golden["merged_hidden"]).abs().max().item())

    if failures:
        print("RESULT: FAIL (" + ", ".join(failures) + ")")
        return 1
    print("RESULT: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
