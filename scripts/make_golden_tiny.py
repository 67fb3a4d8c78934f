#!/usr/bin/env python3
"""Golden logits for the tiny random models of tests/model/tiny_model.cc,
from an independent reference: Hugging Face transformers (PyTorch, float32)
loading the very files our writers produce (GGUF through gguf-py's
dequantizer, safetensors natively).

Run once, by hand, after building the tests (CI never runs this):

    cmake -S . -B build -G Ninja && ninja -C build model_tests
    ~/venv-ref/bin/python scripts/make_golden_tiny.py build/tests/model_tests

Writes tests/golden/model/tiny_models.json.
"""
import json
import os
import subprocess
import sys
import tempfile

import torch
import transformers
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "model", "tiny_models.json")
PROMPT = [256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33]  # TinyPromptIds()
N_GREEDY = 16
TOP_K = 20


def load(path):
    if path.endswith(".gguf"):
        return AutoModelForCausalLM.from_pretrained(os.path.dirname(path),
                                                    gguf_file=os.path.basename(path),
                                                    dtype=torch.float32)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def main():
    tests_binary = sys.argv[1]
    out = {"reference": f"transformers {transformers.__version__}, torch {torch.__version__}, float32",
           "prompt_ids": PROMPT, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TOKENLORA_TINY_EXPORT_DIR=tmp)
        subprocess.run([tests_binary, "--gtest_filter=TinyModelExport.*"], env=env, check=True)
        for name in sorted(os.listdir(tmp)):
            path = os.path.join(tmp, name)
            model = load(path).eval()
            seq = list(PROMPT)
            with torch.no_grad():
                logits = model(torch.tensor([seq])).logits[0]
                for _ in range(N_GREEDY):
                    seq.append(int(torch.argmax(model(torch.tensor([seq])).logits[0, -1])))
            top = torch.topk(logits, TOP_K, dim=-1)
            key = name[:-5] if name.endswith(".gguf") else name
            out["models"][key] = {
                "top_ids": top.indices.tolist(),
                "top_logits": [[round(float(v), 6) for v in row] for row in top.values],
                "last_logits": [round(float(v), 6) for v in logits[-1]],
                "greedy_ids": seq[len(PROMPT):],
            }
            print(key, "top-1 at last position:", int(top.indices[-1][0]), file=sys.stderr)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", OUT, os.path.getsize(OUT), "bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
