#!/usr/bin/env python3
"""Golden scores for tokenlora's task metrics (tests/eval/task_metrics_test.cc).

Independent references: rouge-score 0.1.2 (Google's ROUGE-L, default tokenizer,
no stemming) for CodeAlpaca, and the SQuAD v1.1 evaluation's normalization,
exact match and F1, written here from its published definition (Python's re,
str.lower and str.split do the Unicode work). Real SQuAD dev answers and real
CodeAlpaca outputs are mixed with hand-made hard cases.

Run once with the reference venv: /work/venv-ref/bin/python scripts/make_golden_eval.py
"""
import collections
import json
import os
import re
import string
import sys

from rouge_score import rouge_scorer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from data_dir import data_dir  # noqa: E402  $TOKENLORA_DATA, data/ or ../shared/data

DATA = str(data_dir())


def squad_normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_f1(prediction, truth):
    p = squad_normalize(prediction).split()
    t = squad_normalize(truth).split()
    common = collections.Counter(p) & collections.Counter(t)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(p)
    recall = same / len(t)
    return 2 * precision * recall / (precision + recall)


def main():
    squad_cases = [
        ("The Denver Broncos", ["Denver Broncos", "the Denver Broncos"]),
        ("Denver Broncos.", ["Denver Broncos"]),
        ("  a  Carolina   Panthers ", ["Carolina Panthers"]),
        ("Santa Clara, California", ["Levi's Stadium", "Santa Clara, California"]),
        ("Levis Stadium", ["Levi's Stadium"]),
        ("the the the", ["the"]),
        ("theater", ["the ater"]),
        ("an apple and a pear", ["apple and pear"]),
        ("\u201cthe\u201d answer", ["answer"]),          # curly quotes are not ASCII punctuation
        ("1,000\u00a0people", ["1000 people"]),            # NBSP is whitespace to str.split
        ("caf\u00e9 au lait", ["cafe au lait"]),
        ("the\u2013war", ["war"]),                          # an en dash is a word boundary
        ("Super Bowl 50 was won by Denver", ["Denver Broncos"]),
        ("", ["Denver"]),
        ("1998", ["1998", "in 1998"]),
    ]
    # Real dev answers: the first 40 questions, each first answer as the
    # prediction against all answers, and a near miss.
    with open(os.path.join(DATA, "squad", "dev.jsonl"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= 40:
                break
            r = json.loads(line)
            answers = r["answers"]["text"]
            squad_cases.append((answers[-1], answers))
            squad_cases.append(("It was " + answers[0] + " in the end", answers))
    squad = []
    for pred, refs in squad_cases:
        squad.append({"prediction": pred, "references": refs, "normalized": squad_normalize(pred),
                      "exact_match": float(max(squad_normalize(pred) == squad_normalize(r) for r in refs)),
                      "f1": max(squad_f1(pred, r) for r in refs)})

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge_cases = [
        ("the cat sat", "the cat on the mat"),
        ("def add(a, b):\n    return a + b", "def add(x, y):\n    return x + y"),
        ("SELECT * FROM users;", "SELECT name FROM users WHERE id = 1;"),
        ("", "anything"),
        ("!!!", "???"),
        ("Caf\u00e9 2024 r\u00e9sum\u00e9", "cafe 2024 resume"),
        ("A_B-C d.e", "a b c d e"),
    ]
    with open(os.path.join(DATA, "codealpaca", "code_alpaca_2k.jsonl"), encoding="utf-8") as f:
        records = [json.loads(l) for l in f][:60]
    for a, b in zip(records[0::2], records[1::2]):
        rouge_cases.append((a["output"], b["output"]))      # unrelated pairs
        rouge_cases.append((a["output"][: len(a["output"]) // 2] + " " + b["instruction"], a["output"]))
    rouge = []
    for pred, ref in rouge_cases:
        s = scorer.score(ref, pred)["rougeL"]
        rouge.append({"prediction": pred, "reference": ref, "fmeasure": s.fmeasure})

    out = os.path.join(ROOT, "tests", "golden", "eval", "metrics.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"source": "scripts/make_golden_eval.py (rouge-score 0.1.2; SQuAD v1.1 evaluation definition)",
                   "squad": squad, "rouge_l": rouge}, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"wrote {out}: {len(squad)} SQuAD cases, {len(rouge)} ROUGE-L cases", file=sys.stderr)


if __name__ == "__main__":
    main()
