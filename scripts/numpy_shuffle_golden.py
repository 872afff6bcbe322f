#!/usr/bin/env python3
"""Golden values for petune's port of numpy's legacy RandomState (MT19937) and shuffle.

The few-shot protocol of the LPT authors (encoder-only/data/generate_low_resource_data.py in
github.com/xyltt/LPT) calls `np.random.seed(seed)` then `np.random.shuffle(train_lines)` on a
Python list. petune re-implements that generator in Rust (crates/petune-train/src/data/numpy_rng.rs);
this script prints the numbers its tests compare against. Run it by hand in a throwaway venv:

    python3 -m venv /tmp/npvenv && /tmp/npvenv/bin/pip install numpy
    /tmp/npvenv/bin/python scripts/numpy_shuffle_golden.py

and paste the output into crates/petune-train/tests/data_numpy_rng.rs (with the numpy version).
numpy guarantees the legacy RandomState stream is frozen across versions.

With `--mr .assets/mr/movieReviewSnippets_GroundTruth.txt` it also prints petune's MR split
(an independent Python version of `stratified_split` in crates/petune-train/src/data/fewshot.rs)
for the ignored test in crates/petune-train/tests/data_mr.rs, and with `--write-pool DIR` writes
that pool as `DIR/mr/train.tsv` (`label\ttext`), ready for the authors' unmodified
generate_low_resource_data.py (`--task mr --data_dir DIR`; it also wants a `DIR/mr/test.tsv`).
"""

import argparse
import os

import numpy as np

SEEDS = [100, 13, 21, 42, 87, 0, 1, 4294967295]


def main():
    print(f"# numpy {np.__version__}")
    # Raw 32-bit MT19937 outputs right after np.random.seed(seed).
    for seed in SEEDS:
        np.random.seed(seed)
        raw = np.random.mtrand._rand._bit_generator.random_raw(6)
        print(f"raw seed={seed}: {[int(x) for x in raw]}")
    # Permutations of a Python list range(n), the same code path as the authors' list of rows.
    for seed in SEEDS:
        for n in [1, 2, 3, 5, 10, 17, 33]:
            np.random.seed(seed)
            xs = list(range(n))
            np.random.shuffle(xs)
            print(f"perm seed={seed} n={n}: {xs}")
    # Longer lists: the head of the permutation and a position-weighted checksum.
    for seed in [100, 13, 21, 42, 87]:
        for n in [1000, 8605]:
            np.random.seed(seed)
            xs = list(range(n))
            np.random.shuffle(xs)
            checksum = sum(i * x for i, x in enumerate(xs)) % 1_000_000_007
            print(f"long seed={seed} n={n}: head={xs[:12]} checksum={checksum}")


def py_round_alloc(sizes, total, den):
    """The authors' allocation: Python round (half-even) shares, remainder to the last."""
    out = [round(total * n / den) for n in sizes[:-1]]
    out.append(total - sum(out))
    return out


def mr_split(path, seed, test_size=2000):
    with open(path, encoding="utf-8", newline="") as f:
        rows = [line.split("\t") for line in f.read().split("\r\n") if line]
    ids = [int(r[0]) for r in rows]
    labels = [1 if i <= 5152 else 0 for i in ids]
    n = len(rows)
    counts = [labels.count(0), labels.count(1)]
    want = py_round_alloc(counts, test_size, n)
    np.random.seed(seed)
    perm = list(range(n))
    np.random.shuffle(perm)
    is_test = [False] * n
    for i in perm:
        if want[labels[i]] > 0:
            want[labels[i]] -= 1
            is_test[i] = True
    test_ids = [ids[i] for i in range(n) if is_test[i]]
    pool = [(labels[i], rows[i][2], ids[i]) for i in range(n) if not is_test[i]]
    return test_ids, pool


def mr_section(path, write_pool):
    for seed in [42, 0]:
        test_ids, pool = mr_split(path, seed)
        pos = sum(1 for i in test_ids if i <= 5152)
        print(f"mr seed={seed}: test={len(test_ids)} pos={pos} pool={len(pool)} "
              f"test_id_sum={sum(test_ids)} first_test_ids={test_ids[:8]}")
        if write_pool and seed == 42:
            os.makedirs(os.path.join(write_pool, "mr"), exist_ok=True)
            with open(os.path.join(write_pool, "mr", "train.tsv"), "w", encoding="utf-8") as f:
                for label, text, _ in pool:
                    f.write(f"{label}\t{text}\n")
            with open(os.path.join(write_pool, "mr", "pool_ids.txt"), "w") as f:
                f.write("\n".join(str(i) for _, _, i in pool) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--mr", help="path to movieReviewSnippets_GroundTruth.txt")
    ap.add_argument("--write-pool", help="directory to write the seed-42 MR pool into")
    args = ap.parse_args()
    main()
    if args.mr:
        mr_section(args.mr, args.write_pool)
