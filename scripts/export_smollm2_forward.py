#!/usr/bin/env python3
"""Export the SmolLM2 forward / generation golden (tests/fixtures/gguf/smollm2.forward.*).

transformers loads the real GGUF file (`AutoModelForCausalLM.from_pretrained(dir,
gguf_file=...)`, dequantized to float32, eager attention) and its tokenizer
(`AutoTokenizer.from_pretrained(dir, gguf_file=...)`), and for each prompt of `PROMPTS` records:

* `smollm2.forward.json`: the prompts, the token ids, the argmax of the logits at every position,
  and transformers' greedy continuation (`generate(do_sample=False, max_new_tokens=10)`, one
  prompt at a time, no padding): the new token ids and their decoded text. The last prompt is
  the chat template applied to a user message (`apply_chat_template(..., add_generation_prompt=True)`).
* `smollm2.forward.safetensors`: for prompt `i`, `hidden.{i}` = the last hidden state (after the
  final norm, `output_hidden_states[-1]`) `[T, 576]`, `logits_last.{i}` = the logits of the last
  position `[49152]`, `logits_slice.{i}` = the logits of every position on the vocabulary slice
  `0..SLICE` `[T, SLICE]`; float32.

Run from the repository root after scripts/setup.sh, with the fixtures venv (one CPU thread,
deterministic):

    .venv-fixtures/bin/python scripts/export_smollm2_forward.py

Checked by tests/gguf_real.rs (`#[ignore]`):
`cargo test --release --test gguf_real -- --ignored --nocapture`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_fixtures import canonicalize_header  # noqa: E402
from export_gguf_fixtures import OUT, SMOLLM2, VERSIONS  # noqa: E402

PROMPTS = [
    "The capital of France is",
    "Late prompt tuning inserts a soft prompt into an intermediate layer of",
    "In 2024, 1234567 people paid $3.50 each. The total was",
    "def add(x, y):\n    return",
]
CHAT = [{"role": "user", "content": "What is the capital of France?"}]
NEW_TOKENS = 10
SLICE = 512


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok = transformers.AutoTokenizer.from_pretrained(SMOLLM2.parent, gguf_file=SMOLLM2.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        SMOLLM2.parent, gguf_file=SMOLLM2.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    chat = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    prompts = PROMPTS + [chat]
    tensors: dict[str, np.ndarray] = {}
    cases = []
    for i, text in enumerate(prompts):
        ids = tok(text, return_tensors="pt")["input_ids"]  # [1, T]
        with torch.no_grad():
            out = model(input_ids=ids, output_hidden_states=True)
            gen = model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=NEW_TOKENS,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            )
        logits = out.logits[0]  # [T, V]
        tensors[f"hidden.{i}"] = out.hidden_states[-1][0].numpy().astype(np.float32)
        tensors[f"logits_last.{i}"] = logits[-1].numpy().astype(np.float32)
        tensors[f"logits_slice.{i}"] = np.ascontiguousarray(logits[:, :SLICE].numpy().astype(np.float32))
        new = gen[0, ids.shape[1]:].tolist()
        cases.append({
            "text": text,
            "chat": i == len(PROMPTS),
            "ids": ids[0].tolist(),
            "argmax": logits.argmax(-1).tolist(),
            "greedy_new_ids": new,
            "greedy_new_text": tok.decode(new),
        })
        print(f"{i}: {text!r} -> {tok.decode(new)!r}")
    meta = {"producer": "scripts/export_smollm2_forward.py", "file": SMOLLM2.name, **VERSIONS}
    path = OUT / "smollm2.forward.safetensors"
    save_file(tensors, path, metadata=meta)
    canonicalize_header(path)
    golden = {
        "producer": "scripts/export_smollm2_forward.py",
        "file": SMOLLM2.name,
        "versions": VERSIONS,
        "load": "AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., dtype=float32, attn_implementation='eager')",
        "generate": f"generate(do_sample=False, max_new_tokens={NEW_TOKENS}), one prompt at a time, no padding",
        "chat_messages": CHAT,
        "logits_slice": [0, SLICE],
        "cases": cases,
    }
    (OUT / "smollm2.forward.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes) and smollm2.forward.json")


if __name__ == "__main__":
    main()
