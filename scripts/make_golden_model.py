#!/usr/bin/env python3
"""Golden logits and greedy continuations for the default model, from an
independent reference: Hugging Face transformers (PyTorch, float32), which
loads the GGUF file itself (dequantizing its weights with gguf-py).

Run once, by hand, in a venv OUTSIDE the repository that has torch,
transformers and gguf (CI never runs this; only its small output is
committed):

    python3 -m venv ~/venv-ref && ~/venv-ref/bin/pip install torch transformers gguf
    scripts/fetch-models
    ~/venv-ref/bin/python scripts/make_golden_model.py

Writes tests/golden/model/smollm2_135m_q4_1.json: for each prompt, the prompt
token ids (from the HF tokenizer), 64 greedy tokens (full forward each step,
no cache, EOS not special), and the top-20 logits at every position of
prompt + continuation.
"""
import hashlib
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIR = os.path.join(ROOT, "models")
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(ROOT, "tests", "golden", "model", "smollm2_135m_q4_1.json")
N_GREEDY = 64
TOP_K = 20

PLAIN_PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many "
    "clips in May. How many clips did Natalia sell altogether in April and May?\n\nAnswer:",
    "Once upon a time, in a small village by the sea, there lived",
    "Les élèves ont étudié l'histoire de la Révolution française. 🇫🇷 日本語も少し。",
]
CHAT_PROMPTS = [
    "What is the boiling point of water at sea level?",
    "Write a Python function that reverses a string.",
    "Which gas do plants absorb from the atmosphere?\nChoices:\nA. Oxygen\nB. Carbon dioxide\n"
    "C. Nitrogen\nD. Helium",
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=MODEL_FILE)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=MODEL_FILE,
                                                 dtype=torch.float32)
    model.eval()
    cases = []
    prompts = [(f"plain_{i}", p, False) for i, p in enumerate(PLAIN_PROMPTS)]
    prompts += [(f"chat_{i}", p, True) for i, p in enumerate(CHAT_PROMPTS)]
    for name, text, chat in prompts:
        if chat:
            formatted = tok.apply_chat_template([{"role": "user", "content": text}],
                                                tokenize=False, add_generation_prompt=True)
            ids = tok(formatted, add_special_tokens=False).input_ids
        else:
            formatted = text
            ids = tok(text, add_special_tokens=False).input_ids
        seq = list(ids)
        with torch.no_grad():
            for _ in range(N_GREEDY):
                logits = model(torch.tensor([seq])).logits[0, -1]
                seq.append(int(torch.argmax(logits)))
            logits = model(torch.tensor([seq[:-1]])).logits[0]  # [len-1, vocab]
        top = torch.topk(logits, TOP_K, dim=-1)
        cases.append({
            "name": name,
            "chat": chat,
            "text": formatted,
            "prompt_ids": ids,
            "greedy_ids": seq[len(ids):],
            "top_ids": top.indices.tolist(),
            "top_logits": [[round(float(v), 5) for v in row] for row in top.values],
        })
        print(name, len(ids), "prompt tokens; greedy:", repr(tok.decode(seq[len(ids):])[:60]),
              file=sys.stderr)
    out = {
        "model_file": MODEL_FILE,
        "model_sha256": sha256(os.path.join(MODEL_DIR, MODEL_FILE)),
        "reference": f"transformers {transformers.__version__}, torch {torch.__version__}, float32",
        "top_k": TOP_K,
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("wrote", OUT, os.path.getsize(OUT), "bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
