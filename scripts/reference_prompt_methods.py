#!/usr/bin/env python3
"""A plain PyTorch re-creation of petune's prompt methods (issue #13): LPT NPG, LPT w/o PG
and prompt tuning on all-MiniLM-L6-v2, trained and evaluated on petune's own few-shot MR
splits, with one switch per training choice so that each can be varied against petune.

The splits (and petune's token ids, so both sides read identical inputs) come from

    cargo run --release --example export_fewshot_splits -- --seeds 13 --k-dev 1000 --out /tmp/mr-splits

and a run is

    OMP_NUM_THREADS=1 .venv-fixtures/bin/python scripts/reference_prompt_methods.py \
        --splits /tmp/mr-splits/seed-13 --method npg --steps 200 --lr 5e-3

Mechanism (lpt-reference.md §2.1, §3): the frozen BERT runs its embeddings and layers
1..K; NPG maps the [CLS] state of layer K through Linear(d, 128) -> ReLU -> Linear(128,
5·d) -> dropout to 5 prompt vectors; LPT w/o PG uses a static [20, d] prompt; either is
prepended (no position embedding, mask extended with "attend") and layers K+1..L run on
prompt + text. Prompt tuning is the static prompt at K = 0 (after the embedding block).
The backbone stays in train mode during training (dropout 0.1 in every frozen layer), as
the LPT authors' code does. A linear head (PyTorch default init, dropout before it) reads
the template's mask position or [CLS], past the prompt. Best dev checkpoint -> test.

Defaults are petune's defaults for the main job (template + mask head, warm-up 6 % then
linear decay, epoch sampling, N(0, 1) static prompts, dropout 0.1 on generated prompts
only, weight decay 0.1 without biases, clipping 1.0, one lr for head and delta). Prints
one JSON line (dev curve, best step, test accuracy, settings, versions).
"""

from __future__ import annotations

import argparse
import json
import math
import time


def read_split(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=".assets/all-MiniLM-L6-v2")
    ap.add_argument("--splits", required=True, help="a seed-S folder of export_fewshot_splits")
    ap.add_argument("--method", required=True, choices=["npg", "wo_pg", "pt"])
    ap.add_argument("--prompt-layer", type=int, default=4, help="paper PL (1-based); pt forces 1")
    ap.add_argument("--prompt-len", type=int, default=None, help="npg 5, static 20")
    ap.add_argument("--bottleneck", type=int, default=128)
    ap.add_argument("--input", choices=["template", "raw"], default="template")
    ap.add_argument("--head-token", choices=["mask", "cls"], default=None,
                    help="default: mask with the template, cls with raw text")
    ap.add_argument("--head-dropout", type=float, default=0.1)
    ap.add_argument("--prompt-dropout", type=float, default=None,
                    help="dropout on the prompt; default 0.1 for npg, 0 for static prompts")
    ap.add_argument("--prompt-std", type=float, default=1.0, help="static prompt N(0, std^2)")
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--head-lr", type=float, default=None, help="default: --lr")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--schedule", choices=["linear", "constant"], default="linear")
    ap.add_argument("--warmup-rate", type=float, default=0.06)
    ap.add_argument("--sampling", choices=["epoch", "per_step"], default="epoch",
                    help="epoch: shuffled passes, last batch partial; per_step: 16 drawn afresh each step")
    ap.add_argument("--clip", type=float, default=1.0, help="0 = no clipping")
    ap.add_argument("--backbone-dropout", choices=["on", "off"], default="on",
                    help="dropout in the frozen layers during training")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--eval-batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--load", default=None,
                    help="petune's delta.safetensors: load its delta and head, evaluate, no training")
    args = ap.parse_args()

    import torch
    import transformers
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)  # data order

    train = read_split(f"{args.splits}/train.jsonl")
    dev = read_split(f"{args.splits}/dev.jsonl")
    test = read_split(f"{args.splits}/test.jsonl")
    head_token = args.head_token or ("mask" if args.input == "template" else "cls")
    if head_token == "mask" and args.input != "template":
        raise SystemExit("--head-token mask needs --input template")
    static = args.method in ("wo_pg", "pt")
    plen = args.prompt_len or (20 if static else 5)
    pdrop = args.prompt_dropout if args.prompt_dropout is not None else (0.0 if static else 0.1)
    k = 0 if args.method == "pt" else args.prompt_layer - 1  # layers run before the prompt

    bert = transformers.AutoModel.from_pretrained(args.model, attn_implementation="eager")
    for p in bert.parameters():
        p.requires_grad_(False)
    d = bert.config.hidden_size
    n_layers = bert.config.num_hidden_layers

    class Delta(nn.Module):
        def __init__(self):
            super().__init__()
            if static:
                self.prompt = nn.Parameter(torch.randn(plen, d) * args.prompt_std)
            else:
                self.down = nn.Linear(d, args.bottleneck)
                self.up = nn.Linear(args.bottleneck, plen * d)

        def forward(self, h, training):  # h [B, T, d] -> [B, l, d]
            if static:
                p = self.prompt.unsqueeze(0).expand(h.size(0), -1, -1)
            else:
                p = self.up(torch.relu(self.down(h[:, 0]))).view(h.size(0), plen, d)  # row-major tokens
            return nn.functional.dropout(p, pdrop, training)

    delta = Delta()
    head = nn.Linear(d, 2)

    def encode(batch):
        key = "ids_template" if args.input == "template" else "ids_raw"
        n = max(len(x[key]) for x in batch)
        ids = torch.zeros(len(batch), n, dtype=torch.long)
        mask = torch.zeros(len(batch), n, dtype=torch.long)
        for i, x in enumerate(batch):
            ids[i, : len(x[key])] = torch.tensor(x[key])
            mask[i, : len(x[key])] = 1
        pos = torch.tensor([x["mask_pos"] if head_token == "mask" else 0 for x in batch])
        labels = torch.tensor([x["label"] for x in batch])
        return ids, mask, pos, labels

    def forward(ids, mask, pos, training):
        bert.train(training and args.backbone_dropout == "on")
        ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min  # [B,1,1,T]
        with torch.no_grad():
            h = bert.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
            for i in range(k):
                h = bert.encoder.layer[i](h, attention_mask=ext)
                h = h[0] if isinstance(h, tuple) else h
        prompt = delta(h, training)
        h = torch.cat([prompt, h], 1)  # [B, l+T, d]
        ext = torch.cat([torch.zeros(ids.size(0), 1, 1, plen), ext], -1)  # [B,1,1,l+T]
        for i in range(k, n_layers):
            h = bert.encoder.layer[i](h, attention_mask=ext)
            h = h[0] if isinstance(h, tuple) else h
        tok = h[torch.arange(ids.size(0)), pos + plen]  # [B, d]: the head reads past the prompt
        return head(nn.functional.dropout(tok, args.head_dropout, training))

    def accuracy(data):
        delta.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(data), args.eval_batch):
                ids, mask, pos, labels = encode(data[s : s + args.eval_batch])
                correct += (forward(ids, mask, pos, False).argmax(-1) == labels).sum().item()
        delta.train()
        return correct / len(data)

    decay, no_decay = [], []
    for name, p in delta.named_parameters():
        (no_decay if name.endswith("bias") else decay).append(p)
    head_lr = args.head_lr if args.head_lr is not None else args.lr
    groups = [
        {"params": decay, "weight_decay": args.weight_decay, "lr": args.lr},
        {"params": no_decay, "weight_decay": 0.0, "lr": args.lr},
        {"params": [head.weight], "weight_decay": args.weight_decay, "lr": head_lr},
        {"params": [head.bias], "weight_decay": 0.0, "lr": head_lr},
    ]
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)
    warmup = int(args.warmup_rate * args.steps) if args.schedule == "linear" else 0

    def factor(step):
        if args.schedule == "constant":
            return 1.0
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (args.steps - step) / max(1, args.steps - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    params = [p for g in groups for p in g["params"]]

    if args.load:
        # Forward fidelity: petune's trained tensors in this re-creation, eval mode.
        from safetensors.torch import load_file
        w = load_file(args.load)
        if static:
            delta.prompt.data.copy_(w["delta.prompt_embedding.weight"])
        else:
            for mine, theirs in [(delta.down, "proj_down"), (delta.up, "proj_up")]:
                mine.weight.data.copy_(w[f"delta.prompt_generator.{theirs}.weight"])
                mine.bias.data.copy_(w[f"delta.prompt_generator.{theirs}.bias"])
        head.weight.data.copy_(w["head.classifier.weight"])
        head.bias.data.copy_(w["head.classifier.bias"])
        print(json.dumps({"method": args.method, "loaded": args.load,
                          "dev_acc": round(100 * accuracy(dev), 2),
                          "test_acc": round(100 * accuracy(test), 2)}))
        return

    order, at = [], 0
    curve, best, best_step, best_state = [], -1.0, -1, None
    t0 = time.time()
    for step in range(1, args.steps + 1):
        if args.sampling == "per_step":
            idx = torch.randperm(len(train), generator=gen)[: args.batch].tolist()
        else:
            if at >= len(order):
                order, at = torch.randperm(len(train), generator=gen).tolist(), 0
            idx, at = order[at : at + args.batch], at + args.batch
        ids, mask, pos, labels = encode([train[i] for i in idx])
        loss = nn.functional.cross_entropy(forward(ids, mask, pos, True), labels)
        loss.backward()
        if args.clip > 0:
            nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if step % args.eval_every == 0 or step == args.steps:
            acc = accuracy(dev)
            curve.append([step, round(100 * acc, 2), round(loss.item(), 4)])
            if acc > best:
                best, best_step = acc, step
                best_state = ({n: t.clone() for n, t in delta.state_dict().items()},
                              {n: t.clone() for n, t in head.state_dict().items()})
    delta.load_state_dict(best_state[0])
    head.load_state_dict(best_state[1])
    test_acc = accuracy(test)
    settings = {k_: v for k_, v in vars(args).items() if k_ not in ("model", "threads")}
    settings.update({"head_token": head_token, "prompt_len": plen, "prompt_dropout": pdrop,
                     "head_lr": head_lr, "insert_after_layers": k})
    print(json.dumps({
        "method": args.method,
        "test_acc": round(100 * test_acc, 2),
        "best_dev": round(100 * best, 2),
        "best_step": best_step,
        "dev_curve": curve,
        "seconds": round(time.time() - t0, 1),
        "settings": settings,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }))


if __name__ == "__main__":
    main()
