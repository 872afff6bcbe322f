#!/usr/bin/env python3
"""Writes examples/data/topics/{train,test}.csv, the five-class topic data set of the
README and docs/own-data.md, from the headlines in scripts/topics_sentences.py.

The 300 headlines (60 per class: business, health, politics, science, sports) were
written by hand for petune's documentation; they are not taken from any news source.
Each class is shuffled with random.Random(12) and split 40 / 20; each file is then
shuffled with random.Random(13). Standard library only:

    python3 scripts/make_topics_example.py
"""
import csv
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import topics_sentences as s  # noqa: E402

CLASSES = {"business": s.BUSINESS, "health": s.HEALTH, "politics": s.POLITICS,
           "science": s.SCIENCE, "sports": s.SPORTS}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "data", "topics")
os.makedirs(out, exist_ok=True)
rng = random.Random(12)
train, test = [], []
for label, lines in CLASSES.items():
    assert len(lines) == 60 and len(set(lines)) == 60, label
    lines = list(lines)
    rng.shuffle(lines)
    train += [(t, label) for t in lines[:40]]
    test += [(t, label) for t in lines[40:]]
for name, rows in (("train.csv", train), ("test.csv", test)):
    random.Random(13).shuffle(rows)
    with open(os.path.join(out, name), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label"])
        w.writerows(rows)
    print(f"wrote {name}: {len(rows)} rows")
