#!/usr/bin/env python3
"""Export petune's GGUF fixtures and goldens (tests/fixtures/gguf/, docs/gguf.md).

Run from the repository root with the fixtures venv (scripts/fixtures-requirements.txt; needs the
`gguf` package, which is llama.cpp's own gguf-py):

    .venv-fixtures/bin/python scripts/export_gguf_fixtures.py            # everything
    .venv-fixtures/bin/python scripts/export_gguf_fixtures.py --skip-real

What it writes (all deterministic: fixed seeds, one CPU thread):

* `types.gguf`: one tensor of every type petune dequantizes (F32, F16, BF16, Q8_0, Q4_0, Q4_1, in
  1-D, 2-D and 3-D shapes, with blocks of zeros, tiny values whose f16 scales are subnormal, and
  large ones) plus a Q5_0 tensor petune must refuse, quantized with `gguf.quants.quantize`; every
  metadata value type (arrays and nested arrays included); `general.alignment = 64`.
  `types.golden.safetensors` holds `gguf.quants.dequantize` of every supported tensor and
  `types.metadata.json` every metadata value with its type.
* `tiny-llama/`: a random `LlamaForCausalLM` (2 layers, hidden 32, 4 heads / 2 KV heads, tied,
  llama3 rope scaling) with a byte-level BPE tokenizer, saved as a Hugging Face folder, and
  `tiny-llama.gguf`: the same model converted the way llama.cpp's `convert_hf_to_gguf.py` converts
  a llama (its tensor names from gguf-py's `TensorNameMap`, the Q/K row permutation for rotary,
  the `llama.*` keys, `rope_freqs` for llama3 scaling, `tokenizer.ggml.*` from the tokenizer with
  gguf-py's `SpecialVocab`), tensors in a mix of F32/F16/BF16/Q8_0/Q4_0/Q4_1.
  `tiny-llama.golden.safetensors`: what a loader must produce for each quantized (lossy) tensor in
  Hugging Face layout (the reference dequantization, un-permuted); lossless tensors must equal the
  HF `model.safetensors` itself.  The script checks that transformers, loading the GGUF with
  `gguf_file=`, gets the same tensors.
* `tok-*.gguf`: tokenizer-only files (the tiny vocabulary under other `tokenizer.ggml.pre`
  split rules and BOS/EOS settings).
* `tokens.json`: sentences and the ids transformers' `AutoTokenizer.from_pretrained(dir,
  gguf_file=...)` gives for every GGUF above, and (when `.assets/smollm2` exists) for SmolLM2.
* `smollm2.checksums.json` (needs `scripts/setup.sh`): for each of the 272 tensors of the real
  SmolLM2-135M-Instruct Q4_1 file, its type, shape and checksums of `gguf.quants.dequantize`
  (exact sum of the f32 bit patterns, f64 sum and sum of squares, values at fixed indices), and
  the same checksums of ten tensors of transformers' own GGUF load (HF names, Q/K un-permuted).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

import gguf
import safetensors
import tokenizers
import transformers
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_fixtures import canonicalize_header  # noqa: E402  (sorted `__metadata__`: byte-identical reruns)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "gguf"
SMOLLM2 = ROOT / ".assets" / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
SEED = 20250101
MAX_FIXTURE_BYTES = 250_000

VERSIONS = {
    "python": platform.python_version(),
    "torch": torch.__version__,
    "transformers": transformers.__version__,
    "tokenizers": tokenizers.__version__,
    "safetensors": safetensors.__version__,
    "numpy": np.__version__,
    "gguf": __import__("importlib.metadata").metadata.version("gguf"),
}

# Sentences for every tokenizer golden: plain text, digits, runs of spaces, newlines and tabs,
# unicode (accents, CJK, emoji), contractions, and the special tokens inside the text.
SENTENCES = [
    "The capital of France is",
    "In 2024, 1234567 people paid $3.50 each.",
    "  multiple   spaces\n\nnewlines\ttab",
    "Unicode: café naïve 日本語 🚀 Ünïcödé",
    "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n",
    "x=42+17; y = 3.14159",
    "don't I'll we've THEY'RE",
    "<think>fine</think> <|endoftext|>",
    "",
    # from the text llama.cpp hashes to tell split rules apart (convert_hf_to_gguf.py, chktxt)
    "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ ✅ 🦙🦙 3 33 333 3333 33333 "
    "3.3 3..3 3...3 ?我想在apple工作1314151天～ ------======= нещо ```````\"\"\"\"......!!!!!!?????? "
    "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
]


def save_golden(path: Path, tensors: dict[str, np.ndarray]) -> None:
    save_file(tensors, path, metadata={"producer": "scripts/export_gguf_fixtures.py", **VERSIONS})
    canonicalize_header(path)


def save_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def save_tokens_json(path: Path, tokens: dict) -> None:
    """Like `save_json`, with each id list on one line."""
    dump = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    lines = ["{", f' "versions": {dump(tokens["versions"])},', ' "sentences": [']
    lines += [f"  {dump(s)}," for s in tokens["sentences"]]
    lines[-1] = lines[-1].rstrip(",")
    lines += [" ],", ' "ids": {']
    for n, (name, rows) in enumerate(tokens["ids"].items()):
        lines.append(f"  {dump(name)}: [")
        lines += [f"   {dump(r)}," for r in rows]
        lines[-1] = lines[-1].rstrip(",")
        lines.append("  ]" + ("," if n + 1 < len(tokens["ids"]) else ""))
    lines += [" }", "}"]
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == tokens
    path.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------- types.gguf

def metadata_cases() -> list[tuple[str, object, V, V | None]]:
    """(key, value, type, array element type) for every GGUF value type."""
    return [
        ("test.u8", 200, V.UINT8, None),
        ("test.i8", -100, V.INT8, None),
        ("test.u16", 60000, V.UINT16, None),
        ("test.i16", -30000, V.INT16, None),
        ("test.u32", 4000000000, V.UINT32, None),
        ("test.i32", -2000000000, V.INT32, None),
        ("test.f32", 0.1, V.FLOAT32, None),
        ("test.bool_true", True, V.BOOL, None),
        ("test.bool_false", False, V.BOOL, None),
        ("test.string", "héllo wörld ✓", V.STRING, None),
        ("test.u64", 18000000000000000000, V.UINT64, None),
        ("test.i64", -9000000000000000000, V.INT64, None),
        ("test.f64", 2.718281828459045, V.FLOAT64, None),
        ("test.array_u8", [0, 1, 255], V.ARRAY, V.UINT8),
        ("test.array_i8", [-128, 0, 127], V.ARRAY, V.INT8),
        ("test.array_u16", [0, 65535], V.ARRAY, V.UINT16),
        ("test.array_i16", [-32768, 32767], V.ARRAY, V.INT16),
        ("test.array_u32", [1, 2, 4294967295], V.ARRAY, V.UINT32),
        ("test.array_i32", [-1, 0, 1], V.ARRAY, V.INT32),
        ("test.array_f32", [0.5, -1.25, 1e-3], V.ARRAY, V.FLOAT32),
        ("test.array_bool", [True, False, True], V.ARRAY, V.BOOL),
        ("test.array_string", ["a", "", "ünï", "two words"], V.ARRAY, V.STRING),
        ("test.array_u64", [0, 18446744073709551615], V.ARRAY, V.UINT64),
        ("test.array_i64", [-9223372036854775808, 9223372036854775807], V.ARRAY, V.INT64),
        ("test.array_f64", [1.5, -2.0e-300], V.ARRAY, V.FLOAT64),
        # nested arrays: the element type is ARRAY, each element carries its own type and length
        ("test.nested_i32", [[1, 2, 3], [4], [5, 6]], V.ARRAY, V.ARRAY),
        ("test.nested_string", [["x", "y"], ["z"]], V.ARRAY, V.ARRAY),
        ("test.nested_twice", [[[1.0, 2.0]], [[3.0], [4.0, 5.0]]], V.ARRAY, V.ARRAY),
    ]


def expected_value(value, vtype: V, sub: V | None):
    """The JSON form petune's reader is compared with: f32 values rounded to f32."""
    if vtype == V.FLOAT32:
        return float(np.float32(value))
    if vtype == V.ARRAY:
        if sub == V.ARRAY:
            return [expected_nested(v) for v in value]
        return [expected_value(v, sub, None) for v in value]
    return value


def expected_nested(value):
    # GGUFWriter infers inner element types from Python: int -> INT32, float -> FLOAT32.
    if isinstance(value, list):
        return [expected_nested(v) for v in value]
    if isinstance(value, float):
        return float(np.float32(value))
    return value


def type_name(vtype: V, sub: V | None, value) -> str:
    if vtype != V.ARRAY:
        return vtype.name.lower()
    if sub != V.ARRAY:
        return f"array<{sub.name.lower()}>"
    # nested: describe the innermost type as GGUFWriter infers it
    inner = value
    depth = 0
    while isinstance(inner, list):
        inner = inner[0]
        depth += 1
    base = {str: "string", int: "int32", float: "float32", bool: "bool"}[type(inner)]
    return "array<" * depth + base + ">" * depth


def type_cases(rng: np.random.Generator) -> list[tuple[str, np.ndarray, Q]]:
    """Named float32 tensors (torch layout) and the GGUF type each is stored as."""
    def normal(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    blocks = normal(6, 64)
    blocks[1] = 0.0  # a zero block: scale 0
    blocks[2] *= 1e-6  # tiny values: f16 scales become subnormal
    blocks[3] *= 300.0  # large values
    blocks[4, :32] = 7.0  # a constant half row: max == min for Q4_1
    return [
        ("f32.vector", normal(7), Q.F32),
        ("f32.matrix", normal(3, 64), Q.F32),
        ("f16.matrix", normal(2, 64), Q.F16),
        ("bf16.matrix", normal(2, 64), Q.BF16),
        ("q8_0.matrix", blocks, Q.Q8_0),
        ("q4_0.matrix", blocks, Q.Q4_0),
        ("q4_1.matrix", blocks, Q.Q4_1),
        ("q8_0.cube", normal(2, 3, 32), Q.Q8_0),
        ("q4_0.cube", normal(2, 3, 32, scale=0.05), Q.Q4_0),
        ("q4_1.cube", normal(3, 2, 64, scale=0.05), Q.Q4_1),
        ("unsupported.q5_0", normal(2, 32), Q.Q5_0),
    ]


def write_types(rng: np.random.Generator) -> None:
    path = OUT / "types.gguf"
    writer = gguf.GGUFWriter(path, arch="petune-test")
    writer.add_custom_alignment(64)
    meta = {}
    for key, value, vtype, sub in metadata_cases():
        writer.add_key_value(key, value, vtype, sub_type=sub)
        meta[key] = {"type": type_name(vtype, sub, value), "value": expected_value(value, vtype, sub)}
    golden = {}
    for name, data, qtype in type_cases(rng):
        raw = gguf.quants.quantize(data, qtype)
        writer.add_tensor(name, raw, raw_dtype=qtype)
        if qtype != Q.Q5_0:
            golden[name] = np.ascontiguousarray(gguf.quants.dequantize(raw, qtype), dtype=np.float32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    # Read back with gguf-py: the golden comes from what is in the file.
    reader = gguf.GGUFReader(path)
    for t in reader.tensors:
        if t.name in golden:
            deq = gguf.quants.dequantize(t.data, t.tensor_type).reshape(golden[t.name].shape)
            assert np.array_equal(deq.view(np.uint32), golden[t.name].view(np.uint32)), t.name
    assert reader.alignment == 64
    meta_all = {
        "general.architecture": {"type": "string", "value": "petune-test"},
        "general.alignment": {"type": "uint32", "value": 64},
        **meta,
    }
    save_json(OUT / "types.metadata.json", meta_all)
    save_golden(OUT / "types.golden.safetensors", golden)


# ----------------------------------------------------------------------------- tiny llama

CORPUS = [
    "The movie was great, and the acting was even better.",
    "I did not like it at all; the plot was thin.",
    "What a wonderful, heartfelt film! Ten out of ten.",
    "In 1999 there were 42 films; in 2024, 1234 of them.",
    "Numbers: 3.14159, 2.71828, 1.41421 and 0.57721.",
    "Don't you think it's long? I'll watch it again, we've got time.",
    "Unicode: café, naïve, Ünïcödé, 日本語, 🚀 rockets.",
    "def add(x, y):\n    return x + y\n",
    "  spaces   and\ttabs\n\nand newlines  ",
    "She said: \"this is the best scene\" and left.",
]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(folder: Path, split: bool, vocab_size: int, corpus: list[str]):
    """A byte-level BPE tokenizer saved as a Hugging Face folder.

    `split`: SmolLM2's shape (digits one by one, then GPT-2's byte-level regex, no prefix space).
    Without it merges are learnt across spaces, digits and punctuation, so that every split rule
    (`tokenizer.ggml.pre`) gives different ids on the same text.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    if split:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
        )
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>",
        unk_token="<|endoftext|>", chat_template=CHAT_TEMPLATE,
    )
    # A user-defined (non-special) added token: GGUF token type 4.
    fast.add_tokens([tokenizers.AddedToken("<think>", normalized=False, special=False)])
    fast.save_pretrained(folder)
    return transformers.AutoTokenizer.from_pretrained(folder)


def llama3_rope_factors(config: transformers.LlamaConfig) -> np.ndarray:
    """`rope_freqs` as llama.cpp's converter computes it for `rope_type = llama3`."""
    rs = config.rope_parameters
    base = rs["rope_theta"]
    dim = config.head_dim
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor = rs.get("factor", 8.0)
    low_freq_factor = rs.get("low_freq_factor", 1.0)
    high_freq_factor = rs.get("high_freq_factor", 4.0)
    old_context_len = rs.get("original_max_position_embeddings", 8192)
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            factors.append(1)
        elif wavelen > low_freq_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(torch.tensor(factors, dtype=torch.float32).numpy(), dtype=np.float32)


def permute(w: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute`: rotary pairs (i, i + d/2) become adjacent rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    dim = w.shape[0] // n_head // 2
    return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(2, 1).reshape(w.shape)


# GGUF type of each HF tensor of the tiny llama: lossless (F32, F16 of f16-exact weights) or lossy.
TINY_TYPES = {
    "model.embed_tokens.weight": Q.F16,
    "model.layers.0.self_attn.q_proj.weight": Q.F32,
    "model.layers.0.self_attn.k_proj.weight": Q.F16,
    "model.layers.0.self_attn.v_proj.weight": Q.Q8_0,
    "model.layers.0.self_attn.o_proj.weight": Q.Q4_0,
    "model.layers.0.mlp.gate_proj.weight": Q.Q4_1,
    "model.layers.0.mlp.up_proj.weight": Q.BF16,
    "model.layers.0.mlp.down_proj.weight": Q.Q8_0,
    "model.layers.1.self_attn.q_proj.weight": Q.Q8_0,
    "model.layers.1.self_attn.k_proj.weight": Q.Q4_1,
    "model.layers.1.self_attn.v_proj.weight": Q.F16,
    "model.layers.1.self_attn.o_proj.weight": Q.F32,
    "model.layers.1.mlp.gate_proj.weight": Q.Q4_0,
    "model.layers.1.mlp.up_proj.weight": Q.Q4_1,
    "model.layers.1.mlp.down_proj.weight": Q.F16,
}
LOSSLESS = {Q.F32, Q.F16}


def add_vocab(writer: gguf.GGUFWriter, hf_tok, folder: Path, pre: str,
              add_bos: bool | None = None, add_eos: bool | None = None) -> None:
    """The `tokenizer.*` keys, as convert_hf_to_gguf's get_vocab_base + _set_vocab_gpt2 write them."""
    vocab_size = len(hf_tok)
    reverse = {i: t for t, i in hf_tok.get_vocab().items()}
    added = hf_tok.get_added_vocab()
    tokens, types = [], []
    for i in range(vocab_size):
        t = reverse[i]
        if t in added:
            types.append(gguf.TokenType.CONTROL if hf_tok.added_tokens_decoder[i].special else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(t)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    assert special.merges and special.chat_template
    special.add_to_gguf(writer, quiet=True)
    if add_bos is not None:
        writer.add_add_bos_token(add_bos)
    if add_eos is not None:
        writer.add_add_eos_token(add_eos)


def write_tiny_llama() -> dict:
    folder = OUT / "tiny-llama"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    hf_tok = train_tokenizer(folder, split=True, vocab_size=330, corpus=CORPUS)
    vocab_size = len(hf_tok)

    torch.manual_seed(SEED)
    config = transformers.LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5,
        rope_theta=10000.0, tie_word_embeddings=True, initializer_range=0.2,
        bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64},
    )
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)  # RMSNorm weights away from 1
            p.copy_(p.to(torch.float16).to(torch.float32))  # exactly representable in f16
    model.to(torch.float16).save_pretrained(folder)
    state = {k: v.to(torch.float32).numpy() for k, v in model.state_dict().items() if k != "lm_head.weight"}

    # --- convert, as convert_hf_to_gguf.py's LlamaModel does
    path = OUT / "tiny-llama.gguf"
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name("Tiny Llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1)
    writer.add_vocab_size(vocab_size)
    writer.add_rope_dimension_count(config.head_dim)

    add_vocab(writer, hf_tok, folder, "smollm")

    name_map = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    writer.add_tensor("rope_freqs.weight", llama3_rope_factors(config), raw_dtype=Q.F32)
    golden = {}
    for hf_name, w in state.items():
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, hf_name
        data = w
        if hf_name.endswith("q_proj.weight"):
            data = permute(w, n_head, n_head)
        elif hf_name.endswith("k_proj.weight"):
            data = permute(w, n_head, n_kv)
        qtype = TINY_TYPES.get(hf_name, Q.F32)  # norms stay F32, as the converter keeps them
        raw = gguf.quants.quantize(np.ascontiguousarray(data), qtype)
        writer.add_tensor(gguf_name, raw, raw_dtype=qtype)
        deq = gguf.quants.dequantize(raw, qtype).reshape(data.shape).astype(np.float32)
        if hf_name.endswith("q_proj.weight"):
            deq = unpermute(deq, n_head)
        elif hf_name.endswith("k_proj.weight"):
            deq = unpermute(deq, n_kv)
        if qtype in LOSSLESS:
            assert np.array_equal(deq, w), hf_name
        else:
            golden[hf_name] = np.ascontiguousarray(deq)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    save_golden(OUT / "tiny-llama.golden.safetensors", golden)

    # transformers' own GGUF loader must see the same model.
    loaded = transformers.AutoModelForCausalLM.from_pretrained(OUT, gguf_file=path.name, dtype=torch.float32)
    for hf_name, w in state.items():
        expected = golden.get(hf_name, w)
        got = loaded.state_dict()[hf_name].numpy()
        assert np.array_equal(got, expected), f"transformers' GGUF load differs on {hf_name}"
    assert loaded.config.tie_word_embeddings and loaded.config.num_key_value_heads == n_kv
    return {"tokenizer": hf_tok}


def write_tokenizer_only(hf_tok, folder: Path, name: str, pre: str, add_bos: bool | None, add_eos: bool | None) -> None:
    """A vocabulary learnt across word boundaries under one split rule / BOS / EOS setting, no tensors."""
    writer = gguf.GGUFWriter(OUT / name, arch="llama")
    add_vocab(writer, hf_tok, folder, pre, add_bos, add_eos)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


TOKENIZER_ONLY = [
    ("tok-llama-bpe.gguf", "llama-bpe", True, None),
    ("tok-qwen2.gguf", "qwen2", None, True),
    ("tok-gpt-4o.gguf", "gpt-4o", False, False),
    ("tok-gpt2.gguf", "gpt-2", True, True),
]


def gguf_ids(folder: Path, file: str) -> list[list[int]]:
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=file)
    return [tok(s)["input_ids"] for s in SENTENCES]


# ----------------------------------------------------------------------------- SmolLM2

def sample_indices(n: int) -> list[int]:
    fixed = [0, 1, n // 7, n // 3, n // 2, n - 2, n - 1]
    lcg, out = 12345, []
    for _ in range(5):
        lcg = (lcg * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append(lcg % n)
    return sorted(set(i for i in fixed + out if 0 <= i < n))


def checksums(values: np.ndarray) -> dict:
    flat = values.reshape(-1)
    idx = sample_indices(flat.size)
    return {
        "bits_sum": int(flat.view(np.uint32).astype(np.uint64).sum(dtype=np.uint64)),
        "sum": float(flat.astype(np.float64).sum()),
        "sum_sq": float((flat.astype(np.float64) ** 2).sum()),
        "samples": [[i, float(flat[i])] for i in idx],
    }


def write_smollm2() -> None:
    reader = gguf.GGUFReader(SMOLLM2)
    out = {"file": SMOLLM2.name, "versions": VERSIONS, "tensors": {}}
    for t in reader.tensors:
        deq = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        shape = [int(d) for d in reversed(t.shape.tolist())]  # torch order
        assert deq.size == math.prod(shape), t.name
        out["tensors"][t.name] = {"type": t.tensor_type.name, "shape": shape, **checksums(deq)}
    # transformers' own GGUF load (Q/K un-permuted, HF names) for a few tensors of layers 0 and 29
    model = transformers.AutoModelForCausalLM.from_pretrained(SMOLLM2.parent, gguf_file=SMOLLM2.name, dtype=torch.float32)
    state = model.state_dict()
    out["transformers"] = {
        name: {"shape": list(state[name].shape), **checksums(state[name].numpy())}
        for name in [f"model.layers.{layer}.self_attn.{proj}_proj.weight" for layer in (0, 29) for proj in "qkvo"]
        + ["model.embed_tokens.weight", "model.norm.weight"]
    }
    # one tensor per line
    dump = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    rows = [f"  {dump(name)}: {dump(entry)}" for name, entry in out["tensors"].items()]
    hf_rows = [f"  {dump(name)}: {dump(entry)}" for name, entry in out["transformers"].items()]
    text = (f'{{\n "file": {dump(out["file"])},\n "versions": {dump(VERSIONS)},\n "tensors": {{\n'
            + ",\n".join(rows) + '\n },\n "transformers": {\n' + ",\n".join(hf_rows) + "\n }\n}\n")
    assert json.loads(text) == out
    (OUT / "smollm2.checksums.json").write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-real", action="store_true", help="skip the SmolLM2 goldens")
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)

    write_types(np.random.default_rng(SEED))
    tiny = write_tiny_llama()
    scratch = OUT / "tok-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    raw_tok = train_tokenizer(scratch, split=False, vocab_size=420, corpus=CORPUS + SENTENCES)
    for name, pre, bos, eos in TOKENIZER_ONLY:
        write_tokenizer_only(raw_tok, scratch, name, pre, bos, eos)
    shutil.rmtree(scratch)

    tokens = {"versions": VERSIONS, "sentences": SENTENCES, "ids": {}}
    tokens["ids"]["tiny-llama.gguf"] = gguf_ids(OUT, "tiny-llama.gguf")
    # The GGUF tokenizer must equal the tokenizer.json it was converted from.
    hf = tiny["tokenizer"]
    assert tokens["ids"]["tiny-llama.gguf"] == [hf(s)["input_ids"] for s in SENTENCES]
    for name, *_ in TOKENIZER_ONLY:
        tokens["ids"][name] = gguf_ids(OUT, name)
    # Every split rule must matter on these sentences, or the Rust test could not tell them apart.
    specials = set(range(len(SPECIALS)))
    bare = {n: [[i for i in ids if i not in specials] for ids in tokens["ids"][n]] for n, *_ in TOKENIZER_ONLY}
    for a, *_ in TOKENIZER_ONLY:
        for b, *_ in TOKENIZER_ONLY:
            assert a == b or bare[a] != bare[b], f"{a} and {b} tokenize the sentences alike"
    if not args.skip_real:
        if not SMOLLM2.is_file():
            sys.exit(f"{SMOLLM2} is missing: run scripts/setup.sh, or pass --skip-real")
        tokens["ids"]["smollm2"] = gguf_ids(SMOLLM2.parent, SMOLLM2.name)
        write_smollm2()
    else:
        old = OUT / "tokens.json"
        if old.is_file():
            prev = json.loads(old.read_text(encoding="utf-8"))
            if "smollm2" in prev.get("ids", {}) and prev.get("sentences") == SENTENCES:
                tokens["ids"]["smollm2"] = prev["ids"]["smollm2"]
    save_tokens_json(OUT / "tokens.json", tokens)

    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file() and p.name != "smollm2.checksums.json")
    assert total < MAX_FIXTURE_BYTES, f"GGUF fixtures take {total} bytes"
    print(f"wrote {OUT} ({total} bytes, versions {VERSIONS})")


if __name__ == "__main__":
    main()
