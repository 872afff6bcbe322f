#!/usr/bin/env python3
"""Export petune's test fixtures and golden outputs from Hugging Face `transformers`.

Set-up (once; the venv is ignored by git, the full torch wheel set is ~2.7 GB):

    python3 -m venv .venv-fixtures
    .venv-fixtures/bin/pip install -r scripts/fixtures-requirements.txt

Real-asset goldens need `scripts/setup.sh` to have fetched `.assets/all-MiniLM-L6-v2/` and
`.assets/splade-tiny/` (their `.ok` stamps must exist).  Then, from the repository root:

    .venv-fixtures/bin/python scripts/export_fixtures.py            # everything
    .venv-fixtures/bin/python scripts/export_fixtures.py --only bert-mlm gpt2-lm
    .venv-fixtures/bin/python scripts/export_fixtures.py --skip-real

Output (see tests/fixtures/README.md for the meaning of every key):

    tests/fixtures/{bert-mlm,roberta-mlm,deberta-mlm,gpt2-lm}/
        config.json, model.safetensors, tokenizer.json (+ tokenizer_config.json,
        vocab.json/merges.txt for the byte-level BPE ones), inputs.jsonl, golden.safetensors
    tests/fixtures/real/
        inputs.jsonl, minilm_golden.safetensors, splade_golden.safetensors

Everything is deterministic: fixed seeds, one CPU thread, eager attention, float32.  Goldens are
computed with the model *reloaded from the saved fixture directory*, and the input ids come from the
saved `tokenizer.json` (the file the Rust `tokenizers` crate loads); they are cross-checked against
the transformers tokenizer class (see the DeBERTa note in the README for the one known difference).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
ASSETS = ROOT / ".assets"

SEED = 20240601
INIT_RANGE = 0.2  # larger than HF's 0.02 so that attention patterns are far from uniform
NOISE_STD = 0.1  # added to every bias and every LayerNorm weight after HF's init (0 / 1)
MAX_FIXTURE_BYTES = 1_000_000
MAX_REAL_GOLDEN_BYTES = 1_500_000

# ~40 varied sentences (movie-review-like, some questions, some numbers) used to train the tiny
# tokenizers.  Changing this list changes every tiny fixture.
CORPUS = [
    "The movie was great, and I loved every minute of it.",
    "What a waste of 2 hours; the plot made no sense at all.",
    "Was the ending any good? Not really, it dragged on forever.",
    "I paid 12 dollars for this terrible film and I want my money back.",
    "The acting is superb, especially the lead actress in her first role.",
    "A charming, funny and surprisingly moving story about two old friends.",
    "Why would anyone watch this twice?",
    "The special effects looked cheap, like something from 1995.",
    "It is the best thriller I have seen in 10 years.",
    "Boring, slow and far too long: 3 stars out of 10 is generous.",
    "The director knows exactly how to build tension without a single word.",
    "Did the sequel live up to the original? Sadly, no.",
    "My kids laughed the whole time, and so did I.",
    "The soundtrack is beautiful, but the dialogue feels stiff and forced.",
    "Nothing happens for the first 45 minutes, then everything happens at once.",
    "This is a bold, strange and unforgettable piece of cinema.",
    "How did this script ever get approved?",
    "The cast does their best with weak material.",
    "I would happily watch it again tomorrow night.",
    "It runs 98 minutes and not one of them is wasted.",
    "The characters are flat and the jokes never land.",
    "Is it a comedy or a drama? It never decides, and it suffers for it.",
    "A gorgeous film with a heart of gold and a sharp sense of humor.",
    "The second half is much stronger than the first.",
    "We left the theater after 20 minutes.",
    "The camera work is stunning, every shot looks like a painting.",
    "Who thought this ending was a good idea?",
    "Fans of the book will be disappointed by the many changes.",
    "An honest, quiet and deeply human story.",
    "The villain is more interesting than the hero, which is a problem.",
    "Rated 8 out of 10: funny, warm and clever.",
    "I fell asleep twice, and I am not ashamed to admit it.",
    "The movie was not bad, but it was not good either.",
    "Could the pacing have been any worse?",
    "Her performance alone makes the ticket worth the price.",
    "It opened on 4 July 2019 and quickly became a summer hit.",
    "The story is predictable, yet the film is oddly satisfying.",
    "A messy, loud and exhausting action movie with no soul.",
    "Do you really need 3 endings?",
    "This little film deserves a much bigger audience.",
    "The plot twist in the final scene left me speechless.",
    "Great music, great actors, terrible script.",
]

TINY_COMMON = dict(
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
    initializer_range=INIT_RANGE,
)


# --------------------------------------------------------------------------------------- helpers
def log(msg: str) -> None:
    print(f"[export_fixtures] {msg}", flush=True)


def versions() -> dict[str, str]:
    import safetensors
    import tokenizers
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "python": sys.version.split()[0],
    }


def write_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def perturb_(model: nn.Module, seed: int) -> list[str]:
    """Add N(0, NOISE_STD) to every bias and every LayerNorm weight (in place).

    HF initialises biases to 0 and LayerNorm / RMSNorm weights to 1 (LayerNorm bias 0); a Rust port that
    forgets a bias or a norm's affine would still match such weights.  Shared (tied) parameters are
    touched once.
    """
    gen = torch.Generator().manual_seed(seed)
    ln_weights = set()
    for mod_name, mod in model.named_modules():
        if isinstance(mod, nn.LayerNorm) or type(mod).__name__.endswith(("LayerNorm", "RMSNorm")):
            if getattr(mod, "weight", None) is not None:
                ln_weights.add(f"{mod_name}.weight" if mod_name else "weight")
    touched = []
    with torch.no_grad():
        for name, p in model.named_parameters():  # de-duplicates tied parameters
            leaf = name.rsplit(".", 1)[-1]
            if "bias" in leaf or name in ln_weights:
                p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * NOISE_STD)
                touched.append(name)
    return touched


def save_golden(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    from safetensors.torch import save_file

    clean = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    save_file(clean, str(path), metadata={k: str(v) for k, v in meta.items()})
    canonicalize_header(path)


def canonicalize_header(path: Path) -> None:
    """Rewrite the safetensors JSON header with sorted `__metadata__` keys.

    safetensors serialises the metadata map in a random (Rust HashMap) order, so two identical runs
    would otherwise give byte-different files.  Tensor entries and data are kept as they are.
    """
    import struct

    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", None)
    new = {}
    if meta is not None:
        new["__metadata__"] = dict(sorted(meta.items()))
    new.update(header)
    text = json.dumps(new, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])


def encode_with_tokenizer_json(
    tok_path: Path, records: list[dict], pad_id: int, pad_token: str, direction: str = "right"
) -> dict[str, torch.Tensor]:
    """Encode a batch with the raw `tokenizers` library from the saved tokenizer.json (what Rust loads)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_path))
    tok.no_truncation()
    tok.enable_padding(direction=direction, pad_id=pad_id, pad_token=pad_token)
    inputs = [(r["text"], r["text_pair"]) if "text_pair" in r else r["text"] for r in records]
    encs = tok.encode_batch(inputs, add_special_tokens=True)
    return {
        "input_ids": torch.tensor([e.ids for e in encs], dtype=torch.int64),
        "attention_mask": torch.tensor([e.attention_mask for e in encs], dtype=torch.int64),
        "token_type_ids": torch.tensor([e.type_ids for e in encs], dtype=torch.int64),
    }


def encode_with_hf(hf_tok, records: list[dict], direction: str = "right") -> dict[str, torch.Tensor]:
    """Encode a batch with the transformers tokenizer (pads one item at a time, pairs allowed)."""
    hf_tok.padding_side = direction
    singles = [r for r in records if "text_pair" not in r]
    if len(singles) == len(records):
        enc = hf_tok([r["text"] for r in records], padding=True, return_tensors="pt", return_token_type_ids=True)
    else:
        # Mixed batch of singles and pairs: encode one by one, then pad together.
        items = [
            hf_tok(r["text"], r["text_pair"], return_token_type_ids=True)
            if "text_pair" in r
            else hf_tok(r["text"], return_token_type_ids=True)
            for r in records
        ]
        enc = hf_tok.pad(items, padding=True, return_tensors="pt")
    return {k: v.to(torch.int64) for k, v in enc.items()}


def describe_mismatch(a: dict, b: dict) -> str | None:
    for k in ("input_ids", "attention_mask", "token_type_ids"):
        if k in a and k in b and (a[k].shape != b[k].shape or not torch.equal(a[k], b[k])):
            return f"{k}: tokenizer.json={a[k].tolist()} transformers={b[k].tolist()}"
    return None


def bpe_vocab_merges(tok) -> tuple[dict[str, int], list[tuple[str, str]]]:
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


def write_vocab_merges(out: Path, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """GPT-2 style vocab.json + merges.txt (what microsoft/deberta-base and gpt2 ship)."""
    with open(out / "vocab.json", "w", encoding="utf-8") as f:
        json.dump(dict(sorted(vocab.items(), key=lambda kv: kv[1])), f, ensure_ascii=False)
    with open(out / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")


# ------------------------------------------------------------------------------------ tokenizers
def train_wordpiece(bpe_vocab_size: int = 300) -> dict[str, int]:
    """A WordPiece vocab learned with the `tokenizers` BPE trainer (deterministic).

    `tokenizers.trainers.WordPieceTrainer` (0.23.3) is not reproducible from run to run: the ids of the
    `##x` continuation tokens follow a Rust HashMap's iteration order, and merge ties are broken by
    id, so the learned vocab changes between processes.  The plain BPE trainer (no continuing
    prefix) sorts its alphabet and is reproducible, so we train that (same BertNormalizer /
    BertPreTokenizer as the final tokenizer) and turn it into a WordPiece vocab:
    specials, every alphabet char, `##` + every char, then the pieces of the corpus words as
    segmented by the BPE model (continuations get `##`), then both forms of every other BPE token.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(vocab_size=bpe_vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)

    vocab = {s: i for i, s in enumerate(specials)}
    bpe_vocab = tok.get_vocab()
    alphabet = sorted(t for t in bpe_vocab if len(t) == 1)
    for t in alphabet + ["##" + c for c in alphabet]:
        vocab.setdefault(t, len(vocab))
    for sentence in CORPUS:
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(sentence)):
            for j, piece in enumerate(tok.model.tokenize(word)):
                vocab.setdefault(piece.value if j == 0 else "##" + piece.value, len(vocab))
    for t, _ in sorted(bpe_vocab.items(), key=lambda kv: kv[1]):
        if t not in specials and len(t) > 1:
            vocab.setdefault(t, len(vocab))
            vocab.setdefault("##" + t, len(vocab))
    return vocab


def train_bytelevel_bpe(special_tokens: list[str], vocab_size: int = 512):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def make_bert_tokenizer():
    from transformers import BertTokenizerFast

    vocab = train_wordpiece()
    hf = BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=64)
    return hf, None, None


def make_roberta_tokenizer():
    from transformers import AddedToken, RobertaTokenizerFast

    vocab, merges = bpe_vocab_merges(train_bytelevel_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"]))
    mask = AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True)
    hf = RobertaTokenizerFast(vocab=vocab, merges=merges, mask_token=mask, model_max_length=64)
    return hf, vocab, merges


def make_deberta_tokenizer():
    from tokenizers import processors
    from transformers import AddedToken, DebertaTokenizerFast

    vocab, merges = bpe_vocab_merges(train_bytelevel_bpe(["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]))
    mask = AddedToken("[MASK]", lstrip=True, rstrip=False, normalized=False, special=True)
    hf = DebertaTokenizerFast(vocab=vocab, merges=merges, mask_token=mask, model_max_length=64)
    # transformers 5.x's DebertaTokenizer builds `[CLS] A [SEP] [SEP] B [SEP]` (all type 0) for pairs;
    # microsoft/deberta-base's tokenizer.json (and the original slow tokenizer) use the template below.
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    hf.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return hf, vocab, merges


def make_gpt2_tokenizer():
    from transformers import GPT2TokenizerFast

    vocab, merges = bpe_vocab_merges(train_bytelevel_bpe([], vocab_size=511))
    vocab = dict(vocab)
    vocab["<|endoftext|>"] = len(vocab)  # last id, as in real GPT-2 (50256)
    hf = GPT2TokenizerFast(vocab=vocab, merges=merges, model_max_length=64)
    return hf, vocab, merges


# Llama 3's pre-tokenizer split (tokenizer.json of meta-llama/Meta-Llama-3-8B); Qwen2 uses the same with
# single digits (`\p{N}` instead of `\p{N}{1,3}`).  Both then apply ByteLevel without its own regex.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPLIT = LLAMA3_SPLIT.replace(r"\p{N}{1,3}", r"\p{N}")


def make_decoder_tokenizer(specials: list[str], bos: str | None, eos: str, split: str | None):
    """A byte-level BPE tokenizer as modern decoders ship it in tokenizer.json: `specials` first
    (ids 0..), a `Split(regex) + ByteLevel(use_regex=False)` pre-tokenizer when `split` is given (Llama 3,
    Qwen2) or GPT-2's ByteLevel regex otherwise (Mistral here), `bos` prepended by the post-processor
    when given (Llama, Mistral), nothing added otherwise (Qwen2).  Wrapped as `PreTrainedTokenizerFast`
    (what Llama 3 and Qwen2.5 name in tokenizer_config.json), so transformers uses tokenizer.json as is."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    if split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
            ]
        )
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.decoder = decoders.ByteLevel()
    if bos is not None:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, bos_id)]
        )
    else:
        tok.post_processor = processors.TemplateProcessing(single="$A:0", pair="$A:0 $B:1")
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, model_max_length=64)
    return hf, None, None


def make_llama_tokenizer():
    return make_decoder_tokenizer(
        ["<|begin_of_text|>", "<|end_of_text|>"], "<|begin_of_text|>", "<|end_of_text|>", LLAMA3_SPLIT
    )


def make_mistral_tokenizer():
    return make_decoder_tokenizer(["<unk>", "<s>", "</s>"], "<s>", "</s>", None)


def make_qwen2_tokenizer():
    return make_decoder_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|endoftext|>", QWEN2_SPLIT)


# ---------------------------------------------------------------------------------------- models
def bert_config(vocab_size: int):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        max_position_embeddings=64,
        type_vocab_size=2,
        hidden_act="gelu",
        pad_token_id=0,
        tie_word_embeddings=True,
        **TINY_COMMON,
    )


def roberta_config(vocab_size: int):
    from transformers import RobertaConfig

    return RobertaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=66,
        type_vocab_size=1,
        hidden_act="gelu",
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        tie_word_embeddings=True,
        **TINY_COMMON,
    )


def deberta_config(vocab_size: int):
    from transformers import DebertaConfig

    return DebertaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=64,
        relative_attention=True,
        max_relative_positions=-1,
        pos_att_type=["c2p", "p2c"],
        position_biased_input=False,
        type_vocab_size=0,
        hidden_act="gelu",
        pad_token_id=0,
        tie_word_embeddings=True,
        **TINY_COMMON,
    )


def gpt2_config(vocab_size: int, eos_id: int):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        initializer_range=INIT_RANGE,
        tie_word_embeddings=True,
    )


# The three Llama-family fixtures share hidden 32, 2 layers, 4 query heads, FFN 64 and differ where the
# architectures do (README): GQA 4/2 + llama3 rope scaling + untied head (llama), MQA 4/1 + explicit head_dim
# 16 + sliding window 8 + untied head (mistral), q/k/v biases + GQA 4/2 + tied head (qwen2).
DECODER_COMMON = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=64,
    initializer_range=INIT_RANGE,
)


def llama_config(vocab_size: int, bos: int, eos: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        num_key_value_heads=2,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=eos,
        **DECODER_COMMON,
    )


def mistral_config(vocab_size: int, bos: int, eos: int):
    from transformers import MistralConfig

    return MistralConfig(
        vocab_size=vocab_size,
        num_key_value_heads=1,
        head_dim=16,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        sliding_window=8,
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=eos,
        **DECODER_COMMON,
    )


def qwen2_config(vocab_size: int, eos: int):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=vocab_size,
        num_key_value_heads=2,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        use_sliding_window=False,
        tie_word_embeddings=True,
        bos_token_id=eos,
        eos_token_id=eos,
        **DECODER_COMMON,
    )


# ---------------------------------------------------------------------------- semantic checks
def close(a: torch.Tensor, b: torch.Tensor, what: str, atol: float = 1e-5) -> None:
    diff = (a - b).abs().max().item()
    if diff > atol:
        raise AssertionError(f"semantic check failed: {what} (max abs diff {diff})")


@torch.no_grad()
def check_semantics(name: str, model, feeds: dict, out):
    """Assert what hidden_states[0] / hidden_states[-1] / logits are, so the README is true."""
    hs = out.hidden_states
    if name == "bert-mlm" or name == "splade":
        emb = model.bert.embeddings(input_ids=feeds["input_ids"], token_type_ids=feeds["token_type_ids"])
        close(hs[0], emb, "bert hidden.0 == embeddings (word+pos+type, LayerNorm)")
        close(out.logits, model.cls(hs[-1]), "bert logits == cls(hidden.L)")
    elif name == "minilm":
        emb = model.embeddings(input_ids=feeds["input_ids"], token_type_ids=feeds["token_type_ids"])
        close(hs[0], emb, "minilm hidden.0 == embeddings")
    elif name == "roberta-mlm":
        e = model.roberta.embeddings
        pos = feeds["position_ids"]
        manual = e.LayerNorm(
            e.word_embeddings(feeds["input_ids"])
            + e.position_embeddings(pos)
            + e.token_type_embeddings(torch.zeros_like(feeds["input_ids"]))
        )
        close(hs[0], manual, "roberta hidden.0 == LN(word + pos(padding_idx+1+cumsum) + type0)")
        close(out.logits, model.lm_head(hs[-1]), "roberta logits == lm_head(hidden.L)")
    elif name == "deberta-mlm":
        e = model.deberta.embeddings
        mask = feeds["attention_mask"].unsqueeze(-1).to(torch.float32)
        manual = e.LayerNorm(e.word_embeddings(feeds["input_ids"])) * mask
        close(hs[0], manual, "deberta hidden.0 == LN(word) * attention_mask")
        close(out.logits, model.cls(hs[-1]), "deberta logits == cls(hidden.L)")
        ref_hs, ref_logits = deberta_reference(model, feeds["input_ids"], feeds["attention_mask"])
        for i, (a, b) in enumerate(zip(hs, ref_hs)):
            close(a, b, f"deberta hidden.{i} == hand-written reference (README)", atol=1e-4)
        close(out.logits, ref_logits, "deberta logits == hand-written reference (README)", atol=1e-4)
    elif name in LLAMA_FAMILY:
        m = model.model
        close(hs[0], m.embed_tokens(feeds["input_ids"]), f"{name} hidden.0 == embed_tokens(ids)")
        close(out.logits, model.lm_head(hs[-1]), f"{name} logits == lm_head(hidden.L)")
        if model.config.tie_word_embeddings:
            close(out.logits, hs[-1] @ m.embed_tokens.weight.T, f"{name} logits == hidden.L @ embed_tokens^T (tied)")
        captured = {}
        h = m.layers[-1].register_forward_hook(lambda mod, i, o: captured.setdefault("last", o[0] if isinstance(o, tuple) else o))
        try:
            model(**feeds)
        finally:
            h.remove()
        close(hs[-1], m.norm(captured["last"]), f"{name} hidden.L == norm(last layer output)")
        ref_hs = llama_reference(model, feeds)
        for i, (a, b) in enumerate(zip(hs, ref_hs)):
            close(a, b, f"{name} hidden.{i} == hand-written reference (README)", atol=1e-4)
        return captured["last"]
    elif name == "gpt2-lm":
        t = model.transformer
        pos = feeds.get("position_ids")
        if pos is None:
            pos = torch.arange(feeds["input_ids"].shape[1]).unsqueeze(0)
        close(hs[0], t.wte(feeds["input_ids"]) + t.wpe(pos), "gpt2 hidden.0 == wte + wpe")
        close(out.logits, hs[-1] @ t.wte.weight.T, "gpt2 logits == hidden.L @ wte^T")
        # hidden.L is post-ln_f: re-run the blocks by hand is overkill; check via a hook instead.
        captured = {}
        h = t.h[-1].register_forward_hook(lambda m, i, o: captured.setdefault("last", o[0] if isinstance(o, tuple) else o))
        try:
            model(**feeds)
        finally:
            h.remove()
        close(hs[-1], t.ln_f(captured["last"]), "gpt2 hidden.L == ln_f(last block output)")
        return captured["last"]


def rope_inv_freq(cfg) -> torch.Tensor:
    """Inverse rotary frequencies `[head_dim / 2]` as the README states them (default and `llama3`)."""
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    rp = cfg.rope_parameters
    inv = 1.0 / (rp["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    if rp.get("rope_type", "default") == "llama3":
        factor, lo, hi = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
        old = rp["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        medium = (wavelen >= old / hi) & (wavelen <= old / lo)
        inv = torch.where(medium, (1 - smooth) * scaled / factor + smooth * scaled, scaled)
    return inv


def layer_window(cfg, layer: int) -> int | None:
    """The sliding window of `layer` (Mistral: every layer; Qwen2: `layer_types`), or None."""
    types = getattr(cfg, "layer_types", None)
    if types is not None:
        return cfg.sliding_window if types[layer] == "sliding_attention" else None
    return getattr(cfg, "sliding_window", None)


@torch.no_grad()
def llama_reference(model, feeds: dict) -> list[torch.Tensor]:
    """Llama / Mistral / Qwen2 forward written from the README's description, from the raw state dict:
    RMSNorm in float32, rotary on q and k (rotate_half layout), GQA by repeating each KV head for its
    group of query heads, causal (+ sliding window) and padding mask added as finfo.min, SwiGLU MLP."""
    cfg = model.config
    sd = model.state_dict()
    ids, mask = feeds["input_ids"], feeds["attention_mask"]
    B, T = ids.shape
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    d = getattr(cfg, "head_dim", None) or cfg.hidden_size // nh
    pos = feeds.get("position_ids")
    if pos is None:
        pos = torch.arange(T).unsqueeze(0).expand(B, T)
    ang = pos[..., None].to(torch.float32) * rope_inv_freq(cfg)  # [B, T, d/2]
    emb = torch.cat([ang, ang], -1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # [B, 1, T, d]

    def rot(x):
        return x * cos + torch.cat([-x[..., d // 2 :], x[..., : d // 2]], -1) * sin

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg.rms_norm_eps))

    def lin(x, name):
        y = x @ sd[name + ".weight"].T
        return y + sd[name + ".bias"] if name + ".bias" in sd else y

    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    keys = mask[:, None, None, :].bool()  # [B, 1, 1, T]
    x = sd["model.embed_tokens.weight"][ids]
    hs = [x]
    for layer in range(cfg.num_hidden_layers):
        p = f"model.layers.{layer}."
        allowed = j <= i
        w = layer_window(cfg, layer)
        if w is not None:
            allowed = allowed & (j > i - w)
        bias = torch.where(allowed & keys, 0.0, torch.finfo(torch.float32).min)  # [B, 1, T, T]
        h = rms(x, sd[p + "input_layernorm.weight"])
        q = rot(lin(h, p + "self_attn.q_proj").view(B, T, nh, d).transpose(1, 2))
        k = rot(lin(h, p + "self_attn.k_proj").view(B, T, nkv, d).transpose(1, 2))
        v = lin(h, p + "self_attn.v_proj").view(B, T, nkv, d).transpose(1, 2)
        k, v = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
        scores = q @ k.transpose(-1, -2) * d**-0.5 + bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, nh * d)
        x = x + lin(ctx, p + "self_attn.o_proj")
        h = rms(x, sd[p + "post_attention_layernorm.weight"])
        x = x + lin(nn.functional.silu(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
        hs.append(x)
    hs[-1] = rms(x, sd["model.norm.weight"])
    return hs


@torch.no_grad()
def deberta_reference(model, ids: torch.Tensor, mask: torch.Tensor):
    """DeBERTa (v1) forward written from the README's description, from the raw state dict.

    Used to make sure the README's statements (in_proj layout, scale, c2p/p2c indices, mask
    handling, head) are exactly what transformers computes, padded positions included.
    """
    cfg = model.config
    sd = model.state_dict()
    B, T = ids.shape
    H, nh = cfg.hidden_size, cfg.num_attention_heads
    d = H // nh
    eps = cfg.layer_norm_eps
    max_rel = cfg.max_relative_positions if cfg.max_relative_positions >= 1 else cfg.max_position_embeddings
    gelu = nn.functional.gelu

    def ln(x, prefix):
        mu = x.mean(-1, keepdim=True)
        var = (x - mu).pow(2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * sd[prefix + ".weight"] + sd[prefix + ".bias"]

    def lin(x, prefix, bias=True):
        y = x @ sd[prefix + ".weight"].T
        return y + sd[prefix + ".bias"] if bias else y

    def heads(x):  # [.., n, H] -> [.., nh, n, d]
        return x.view(*x.shape[:-1], nh, d).transpose(-2, -3)

    m = mask.to(torch.float32)
    x = ln(sd["deberta.embeddings.word_embeddings.weight"][ids], "deberta.embeddings.LayerNorm") * m[..., None]
    hs = [x]
    span = min(T, max_rel)
    rel = sd["deberta.encoder.rel_embeddings.weight"][max_rel - span : max_rel + span]  # [2span, H]
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    delta = (i - j + span).clamp(0, 2 * span - 1)  # [T, T]
    allowed = (m[:, None, :, None] * m[:, None, None, :]).bool()  # [B, 1, T, T]
    scale = (d * (1 + len(cfg.pos_att_type))) ** 0.5
    for layer in range(cfg.num_hidden_layers):
        p = f"deberta.encoder.layer.{layer}."
        qkv = (x @ sd[p + "attention.self.in_proj.weight"].T).view(B, T, nh, 3 * d).transpose(1, 2)
        q, k, v = qkv[..., :d], qkv[..., d : 2 * d], qkv[..., 2 * d :]  # per-head interleaved rows
        q = q + sd[p + "attention.self.q_bias"].view(nh, 1, d)
        v = v + sd[p + "attention.self.v_bias"].view(nh, 1, d)
        q = q / scale
        scores = q @ k.transpose(-1, -2)
        pos_k = heads(lin(rel, p + "attention.self.pos_proj", bias=False))  # [nh, 2span, d]
        pos_q = heads(lin(rel, p + "attention.self.pos_q_proj")) / scale
        c2p = torch.gather(q @ pos_k.transpose(-1, -2), -1, delta.expand(B, nh, T, T))  # q_i . pos_k[delta(i,j)]
        p2c_full = k @ pos_q.transpose(-1, -2)  # [B, nh, T(key j), 2span]
        p2c = torch.gather(p2c_full, -1, delta.T.expand(B, nh, T, T)).transpose(-1, -2)  # k_j . pos_q[delta(i,j)]
        scores = scores + c2p + p2c
        scores = scores.masked_fill(~allowed, torch.finfo(torch.float32).min)
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H)
        a = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        x = ln(lin(gelu(lin(a, p + "intermediate.dense")), p + "output.dense") + a, p + "output.LayerNorm")
        hs.append(x)
    t = nn.functional.layer_norm(
        gelu(lin(x, "cls.predictions.transform.dense")),
        (H,),
        sd["cls.predictions.transform.LayerNorm.weight"],
        sd["cls.predictions.transform.LayerNorm.bias"],
        eps,
    )
    logits = t @ sd["deberta.embeddings.word_embeddings.weight"].T + sd["cls.predictions.bias"]
    return hs, logits


# -------------------------------------------------------------------------------- tiny fixtures
TINY_INPUTS = {
    "bert-mlm": [
        {"text": "The movie was [MASK] ."},
        {"text": "Was the ending any good?", "text_pair": "Not really, it dragged on for 2 hours."},
        {"text": "The acting is superb, especially the lead actress in her first role, and the 98 minutes fly by."},
    ],
    "roberta-mlm": [
        {"text": "The movie was <mask>."},
        {"text": "Was the ending any good?", "text_pair": "Not really, it dragged on for 2 hours."},
        {"text": "The acting is superb, especially the lead actress in her first role."},
    ],
    "deberta-mlm": [
        {"text": "The movie was [MASK]."},
        {"text": "Was the ending any good?", "text_pair": "Not really, it dragged on for 2 hours."},
        {"text": "The acting is superb, especially the lead actress in her first role."},
    ],
    "gpt2-lm": [
        {"text": "The movie was great."},
        {"text": "Was the ending any good?", "text_pair": " Not really, it dragged on for 2 hours."},
        {"text": "The acting is superb, especially the lead actress in her first role."},
    ],
}
# The Llama family reads the same three inputs as GPT-2 (the longest is longer than Mistral's window of 8).
LLAMA_FAMILY = ("llama-lm", "mistral-lm", "qwen2-lm")
DECODERS = ("gpt2-lm",) + LLAMA_FAMILY
for _name in LLAMA_FAMILY:
    TINY_INPUTS[_name] = TINY_INPUTS["gpt2-lm"]

SPECS = {
    "bert-mlm": dict(make_tok=make_bert_tokenizer, model_cls="BertForMaskedLM", use_tt=True),
    "roberta-mlm": dict(make_tok=make_roberta_tokenizer, model_cls="RobertaForMaskedLM", use_tt=False),
    "deberta-mlm": dict(make_tok=make_deberta_tokenizer, model_cls="DebertaForMaskedLM", use_tt=False),
    "gpt2-lm": dict(make_tok=make_gpt2_tokenizer, model_cls="GPT2LMHeadModel", use_tt=False),
    "llama-lm": dict(make_tok=make_llama_tokenizer, model_cls="LlamaForCausalLM", use_tt=False),
    "mistral-lm": dict(make_tok=make_mistral_tokenizer, model_cls="MistralForCausalLM", use_tt=False),
    "qwen2-lm": dict(make_tok=make_qwen2_tokenizer, model_cls="Qwen2ForCausalLM", use_tt=False),
}


@torch.no_grad()
def run(model, feeds: dict):
    out = model(**feeds, output_hidden_states=True, return_dict=True)
    return out


def export_tiny(name: str, seed: int, vers: dict[str, str]) -> None:
    import transformers
    from transformers import AutoTokenizer

    spec = SPECS[name]
    out_dir = FIXTURES / name
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)

    # ---- tokenizer
    hf_tok, vocab, merges = spec["make_tok"]()
    hf_tok.save_pretrained(str(out_dir))
    if vocab is not None:
        write_vocab_merges(out_dir, vocab, merges)
    vocab_size = len(hf_tok.backend_tokenizer.get_vocab(with_added_tokens=True))

    # ---- model
    model_cls = getattr(transformers, spec["model_cls"])
    if name == "bert-mlm":
        config = bert_config(vocab_size)
    elif name == "roberta-mlm":
        config = roberta_config(vocab_size)
    elif name == "deberta-mlm":
        config = deberta_config(vocab_size)
    elif name == "llama-lm":
        config = llama_config(vocab_size, hf_tok.bos_token_id, hf_tok.eos_token_id)
    elif name == "mistral-lm":
        config = mistral_config(vocab_size, hf_tok.bos_token_id, hf_tok.eos_token_id)
    elif name == "qwen2-lm":
        config = qwen2_config(vocab_size, hf_tok.eos_token_id)
    else:
        config = gpt2_config(vocab_size, hf_tok.convert_tokens_to_ids("<|endoftext|>"))
    torch.manual_seed(seed)
    model = model_cls(config)
    perturb_(model, seed + 1)
    model.eval()
    model.save_pretrained(str(out_dir), safe_serialization=True)

    # Reload exactly what was written; goldens come from the reloaded model.
    model2 = model_cls.from_pretrained(str(out_dir), attn_implementation="eager")
    model2.eval()
    sd1, sd2 = model.state_dict(), model2.state_dict()
    for k in sd1:
        if not torch.equal(sd1[k], sd2[k]):
            raise AssertionError(f"{name}: {k} differs after save/reload")

    # ---- inputs
    records = TINY_INPUTS[name]
    write_jsonl(out_dir / "inputs.jsonl", records)
    # Decoders have no pad token: the goldens pad with the end-of-text token (masked anyway).
    pad_token = "<|endoftext|>" if name == "gpt2-lm" else str(hf_tok.eos_token if name in LLAMA_FAMILY else hf_tok.pad_token)
    pad_id = hf_tok.convert_tokens_to_ids(pad_token)
    enc = encode_with_tokenizer_json(out_dir / "tokenizer.json", records, pad_id, pad_token)

    hf_loaded = AutoTokenizer.from_pretrained(str(out_dir))
    if name in DECODERS:
        hf_loaded.pad_token = pad_token
    hf_enc = encode_with_hf(hf_loaded, records)
    mismatch = describe_mismatch(enc, hf_enc)
    tokenizer_note = "tokenizer.json and the transformers tokenizer class agree"
    if mismatch is not None:
        if name != "deberta-mlm":
            raise AssertionError(f"{name}: tokenizer.json vs transformers tokenizer mismatch: {mismatch}")
        tokenizer_note = (
            "transformers' DebertaTokenizer ignores tokenizer.json's post-processor and encodes pairs as "
            "[CLS] A [SEP] [SEP] B [SEP] (type ids all 0); goldens use tokenizer.json: [CLS] A [SEP] B [SEP]"
        )
        log(f"{name}: known tokenizer difference: {mismatch}")

    feeds = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    if spec["use_tt"]:
        feeds["token_type_ids"] = enc["token_type_ids"]
    out = run(model2, feeds)

    L = config.num_hidden_layers if hasattr(config, "num_hidden_layers") else config.n_layer
    assert len(out.hidden_states) == L + 1, (name, len(out.hidden_states))
    sem_feeds = dict(feeds)
    golden = dict(feeds)
    if name == "roberta-mlm":
        pid = model2.roberta.embeddings.create_position_ids_from_input_ids(feeds["input_ids"], config.pad_token_id)
        sem_feeds["position_ids"] = pid
        golden["position_ids"] = pid.to(torch.int64)
    pre_ln_f = check_semantics(name, model2, sem_feeds, out)
    for i, h in enumerate(out.hidden_states):
        golden[f"hidden.{i}"] = h.float()
    golden["logits"] = out.logits.float()
    final_norm_key = "pre_ln_f" if name == "gpt2-lm" else "pre_norm"
    if pre_ln_f is not None:  # decoders: the last block's output before the final norm
        golden[final_norm_key] = pre_ln_f.float()

    # Cross-check eager against SDPA where available (valid positions only; informational).
    try:
        m_sdpa = model_cls.from_pretrained(str(out_dir), attn_implementation="sdpa").eval()
        o2 = run(m_sdpa, feeds)
        valid = feeds["attention_mask"].bool()
        d = (o2.logits - out.logits).abs()[valid].max().item()
        log(f"{name}: eager vs sdpa max |logits diff| on valid tokens = {d:.2e}")
    except Exception as e:  # noqa: BLE001 - informational only
        log(f"{name}: sdpa cross-check skipped ({type(e).__name__}: {str(e).split('.')[0]})")

    # Decoders: left-padded variant with explicit position ids.
    if name in DECODERS:
        left = encode_with_tokenizer_json(out_dir / "tokenizer.json", records, pad_id, pad_token, direction="left")
        hf_left = encode_with_hf(hf_loaded, records, direction="left")
        mm = describe_mismatch(left, hf_left)
        if mm is not None:
            raise AssertionError(f"{name} left padding mismatch: {mm}")
        pos = (left["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        lfeeds = {"input_ids": left["input_ids"], "attention_mask": left["attention_mask"], "position_ids": pos}
        lout = run(model2, lfeeds)
        left_pre_ln_f = check_semantics(name, model2, lfeeds, lout)
        golden["left.input_ids"] = left["input_ids"]
        golden["left.attention_mask"] = left["attention_mask"]
        golden["left.position_ids"] = pos.to(torch.int64)
        for i, h in enumerate(lout.hidden_states):
            golden[f"left.hidden.{i}"] = h.float()
        golden["left.logits"] = lout.logits.float()
        golden[f"left.{final_norm_key}"] = left_pre_ln_f.float()
        # Consistency: valid tokens of the left-padded run equal the right-padded run.
        for b in range(len(records)):
            n = int(feeds["attention_mask"][b].sum())
            r = out.logits[b, :n]
            l_ = lout.logits[b, -n:]
            close(r, l_, f"{name} left vs right padding, example {b}", atol=1e-4)

    meta = dict(vers)
    meta.update(
        fixture=name,
        model_class=spec["model_cls"],
        generator="scripts/export_fixtures.py",
        description=(
            f"{spec['model_cls']}.from_pretrained(fixture dir, attn_implementation='eager').eval(); "
            "inputs.jsonl encoded with tokenizer.json (tokenizers), right padding with the pad token "
            "(decoders: their end-of-text token); model(**feeds, output_hidden_states=True); hidden.i = "
            "outputs.hidden_states[i], logits = outputs.logits, float32 on CPU"
        ),
        tokenizer_note=tokenizer_note,
        seed=str(seed),
        inputs=json.dumps(records, ensure_ascii=False),
    )
    save_golden(out_dir / "golden.safetensors", golden, meta)

    size = dir_bytes(out_dir)
    log(f"{name}: vocab {vocab_size}, T={feeds['input_ids'].shape[1]}, dir {size} bytes")
    if size >= MAX_FIXTURE_BYTES:
        raise AssertionError(f"{name}: fixture dir is {size} bytes (limit {MAX_FIXTURE_BYTES})")


# ----------------------------------------------------------------------------------- real assets
REAL_INPUTS = [
    {"text": "The movie was [MASK]."},
    {"text": "Is it worth 12 dollars?", "text_pair": "Yes, it is [MASK] good."},
    {"text": "A charming and funny story about two old friends."},
]


def wait_ok(path: Path, timeout_s: float = 900.0) -> None:
    """Wait (polling) for scripts/setup.sh's `.ok` stamp, which it writes once an asset is complete."""
    import time

    deadline = time.monotonic() + timeout_s
    while not (path / ".ok").is_file():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path}/.ok is missing: run scripts/setup.sh first (or pass --skip-real)")
        log(f"waiting for {path.relative_to(ROOT)}/.ok ...")
        time.sleep(10)


def check_checkpoint_loaded(model, path: Path) -> str:
    """Assert every checkpoint tensor landed in the model (LayerNorm gamma/beta -> weight/bias)."""
    from safetensors import safe_open

    sd = model.state_dict()
    renamed, ignored, covered = 0, [], set()
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        for k in keys:
            k2 = k.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
            renamed += k2 != k
            if k2 not in sd:
                ignored.append(k)
                continue
            covered.add(k2)
            if not torch.equal(sd[k2], f.get_tensor(k)):
                raise AssertionError(f"{path}: {k} was not loaded into {k2}")
    not_from_ckpt = sorted(set(sd) - covered)
    return (
        f"{len(keys)} checkpoint tensors, {renamed} renamed gamma/beta->weight/bias on load; "
        f"checkpoint keys not in the model state_dict: {ignored}; "
        f"model state_dict keys not in the checkpoint (tied/derived): {not_from_ckpt}"
    )


def export_real(vers: dict[str, str]) -> None:
    from transformers import AutoTokenizer, BertForMaskedLM, BertModel

    out_dir = FIXTURES / "real"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "inputs.jsonl", REAL_INPUTS)

    for key, asset, model_cls in (
        ("minilm", ASSETS / "all-MiniLM-L6-v2", BertModel),
        ("splade", ASSETS / "splade-tiny", BertForMaskedLM),
    ):
        wait_ok(asset)
        hf_tok = AutoTokenizer.from_pretrained(str(asset))
        hf_tok.backend_tokenizer.no_padding()  # MiniLM's tokenizer.json pads to a fixed 128
        hf_tok.backend_tokenizer.no_truncation()
        enc = encode_with_tokenizer_json(asset / "tokenizer.json", REAL_INPUTS, 0, "[PAD]")
        mm = describe_mismatch(enc, encode_with_hf(hf_tok, REAL_INPUTS))
        if mm is not None:
            raise AssertionError(f"{key}: tokenizer mismatch: {mm}")
        model, info = model_cls.from_pretrained(str(asset), attn_implementation="eager", output_loading_info=True)
        model.eval()
        ckpt_notes = check_checkpoint_loaded(model, asset / "model.safetensors")
        log(f"{key}: checkpoint vs loaded model: {ckpt_notes}")
        info_s = {k: sorted(v) if isinstance(v, (list, set)) else str(v) for k, v in info.items()}
        log(f"{key}: loading info {info_s}")
        feeds = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        out = run(model, feeds)
        check_semantics(key, model, feeds, out)
        golden = dict(feeds)
        for i, h in enumerate(out.hidden_states):
            golden[f"hidden.{i}"] = h.float()
        if key == "splade":
            logits = out.logits.float()
            V = logits.shape[-1]
            cols = torch.arange(0, V, 7, dtype=torch.int64)
            golden["logits_cols"] = cols
            golden["logits"] = logits[:, :, cols]
            mask_id = hf_tok.mask_token_id
            B = logits.shape[0]
            positions = torch.full((B,), -1, dtype=torch.int64)
            rows = torch.zeros(B, V, dtype=torch.float32)
            for b in range(B):
                where = (feeds["input_ids"][b] == mask_id).nonzero().flatten()
                if len(where):
                    positions[b] = where[0]
                    rows[b] = logits[b, where[0]]
            golden["mask_positions"] = positions
            golden["mask_logits"] = rows
        meta = dict(vers)
        meta.update(
            fixture=f"real/{key}",
            asset=str(asset.relative_to(ROOT)),
            model_class=model_cls.__name__,
            generator="scripts/export_fixtures.py",
            description=(
                f"{model_cls.__name__}.from_pretrained({asset.relative_to(ROOT)}, attn_implementation='eager').eval(); "
                "inputs.jsonl encoded with the asset's tokenizer.json with its built-in padding/truncation "
                "disabled, then right-padded to the longest with [PAD]=0; hidden.i = outputs.hidden_states[i]"
            ),
            loading_info=json.dumps(info_s),
            checkpoint_notes=ckpt_notes,
            inputs=json.dumps(REAL_INPUTS, ensure_ascii=False),
        )
        path = out_dir / f"{key}_golden.safetensors"
        save_golden(path, golden, meta)
        size = path.stat().st_size
        log(f"{key}: T={feeds['input_ids'].shape[1]}, {path.name} {size} bytes")
        if size >= MAX_REAL_GOLDEN_BYTES:
            raise AssertionError(f"{path} is {size} bytes (limit {MAX_REAL_GOLDEN_BYTES})")


# ---------------------------------------------------------------------------------------- verify
def verify() -> None:
    """Reload every safetensors file, check vocab.json/merges.txt against tokenizer.json, fix modes."""
    from safetensors import safe_open
    from tokenizers import Tokenizer, models, pre_tokenizers

    for p in sorted(FIXTURES.rglob("*.safetensors")):
        with safe_open(str(p), framework="pt") as f:
            keys = list(f.keys())
            for k in keys:
                t = f.get_tensor(k)
                if t.is_floating_point() and not torch.isfinite(t).all():
                    raise AssertionError(f"{p}:{k} has non-finite values")
        log(f"verified {p.relative_to(ROOT)} ({len(keys)} tensors)")
    for vocab_json in sorted(FIXTURES.glob("*/vocab.json")):
        d = vocab_json.parent
        full = Tokenizer.from_file(str(d / "tokenizer.json"))
        bpe = Tokenizer(models.BPE.from_file(str(vocab_json), str(d / "merges.txt")))
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        for sentence in CORPUS + ["Unseen words: zyzzyva, 3.14159 & émigré!"]:
            a = full.encode(sentence, add_special_tokens=False).ids
            b = bpe.encode(sentence, add_special_tokens=False).ids
            if a != b:
                raise AssertionError(f"{d.name}: vocab.json/merges.txt disagree with tokenizer.json on {sentence!r}")
        log(f"verified {d.relative_to(ROOT)}/vocab.json + merges.txt == tokenizer.json's model")
    for p in FIXTURES.rglob("*"):
        if p.is_file():
            p.chmod(0o644)


def update_readme(vers: dict[str, str]) -> None:
    """Regenerate the block between the GENERATED markers of tests/fixtures/README.md."""
    from safetensors import safe_open

    readme = FIXTURES / "README.md"
    begin, end = "<!-- BEGIN GENERATED (scripts/export_fixtures.py) -->", "<!-- END GENERATED -->"
    lines = [begin, "", "Versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()), ""]
    for d in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        files = sorted(p for p in d.iterdir() if p.is_file())
        lines.append(f"### `{d.name}/` ({dir_bytes(d)} bytes)")
        lines.append("")
        lines.append("Files: " + ", ".join(f"`{p.name}` ({p.stat().st_size})" for p in files))
        lines.append("")
        for p in files:
            if p.suffix != ".safetensors":
                continue
            lines.append(f"`{p.name}`:")
            lines.append("")
            lines.append("```")
            with safe_open(str(p), framework="pt") as f:
                for k in f.keys():
                    sl = f.get_slice(k)
                    lines.append(f"{k}  {sl.get_dtype()} {list(sl.get_shape())}")
            lines.append("```")
            lines.append("")
    lines.append(end)
    block = "\n".join(lines)
    text = readme.read_text(encoding="utf-8") if readme.exists() else f"# Test fixtures\n\n{begin}\n{end}\n"
    if begin not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + block + tail, encoding="utf-8")
    readme.chmod(0o644)
    log(f"updated {readme.relative_to(ROOT)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=list(SPECS), help="tiny fixtures to export (default: all)")
    ap.add_argument("--skip-real", action="store_true", help="skip the real-asset goldens")
    args = ap.parse_args()

    torch.set_num_threads(1)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    vers = versions()
    log(f"versions: {vers}")
    for i, name in enumerate(SPECS):
        if args.only is None or name in args.only:
            export_tiny(name, SEED + 100 * i, vers)
    if not args.skip_real:
        export_real(vers)
    verify()
    update_readme(vers)


if __name__ == "__main__":
    main()
