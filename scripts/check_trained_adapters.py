#!/usr/bin/env python3
"""PEFT loads the committed task adapters and computes the same held-out loss.

For each adapter under adapters/ (F16 PEFT directories written by
scripts/train-adapters), transformers loads the default base GGUF
(dequantized to f32), PEFT loads the adapter, and the answer-token
cross-entropy over the same validation records the trainer used is
compared with the last `val_loss` of adapters/TASK/train_log.jsonl (which
tokenlora computed with the f32 weights before they were stored as F16).
The base model's loss (adapter disabled) is printed beside it.

    /work/venv-ref/bin/python scripts/check_trained_adapters.py [TASK...]
"""
import json
import os
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from data_dir import data_dir  # noqa: E402  $TOKENLORA_DATA, data/ or ../shared/data

DATA = str(data_dir())
MAX_LEN = {"gsm8k": 256, "arc_challenge": 256, "squad": 384, "codealpaca": 256}


def records(path, begin, n):
    with open(path, encoding="utf-8") as f:
        lines = [l for l in f if l.strip()]
    return [json.loads(l) for l in lines[begin:begin + n]]


def val_records(task):
    if task == "gsm8k":
        return records(os.path.join(DATA, "gsm8k/test.jsonl"), 0, 100)
    if task == "arc_challenge":
        return records(os.path.join(DATA, "arc_challenge/ARC-Challenge-Test.jsonl"), 0, 100)
    if task == "squad":
        return records(os.path.join(DATA, "squad/dev.jsonl"), 5696, 100)
    return records(os.path.join(DATA, "codealpaca/code_alpaca_2k.jsonl"), round(0.9 * 2017), 100)


def prompt_and_answer(task, r):
    """The reference code's record formats (prompt up to "Answer:", then the answer)."""
    if task == "gsm8k":
        return f"Question: {r['question']}\n\nAnswer:", " " + r["answer"]
    if task == "arc_challenge":
        q = r["question"]
        choices = "\n".join(f"{c['label']}. {c['text']}" for c in q["choices"])
        return f"Question: {q['stem']}\nChoices: {choices}\n\nAnswer:", " " + r["answerKey"]
    if task == "squad":
        return (f"Context:\n{r['context']}\n\nQuestion: {r['question']}\n\nAnswer:",
                " " + r["answers"]["text"][0])
    inp = f"\nInput: {r['input']}" if r["input"] else ""
    return f"{r['instruction']}{inp}\n\nAnswer:", " " + r["output"]


def sequence(tok, task, r):
    p_text, a_text = prompt_and_answer(task, r)
    p = tok(p_text, add_special_tokens=False)["input_ids"]
    a = tok(a_text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    max_len = MAX_LEN[task]
    if len(p) + len(a) > max_len:  # the trainer's cut: keep the prompt's end and >= max_len/4 of answer
        keep = min(len(a), max(1, max_len // 4))
        if len(p) + keep > max_len:
            p = p[len(p) - (max_len - keep):]
        a = a[:max_len - len(p)]
    return p, a


def mean_loss(model, seqs):
    total, n = 0.0, 0
    with torch.no_grad():
        for p, a in seqs:
            ids = torch.tensor([p + a])
            logits = model(input_ids=ids).logits[0].double()
            logp = torch.log_softmax(logits, dim=-1)
            for i, t in enumerate(a):
                total -= logp[len(p) + i - 1, t].item()
            n += len(a)
    return total / n


def main():
    torch.set_num_threads(2)
    tasks = sys.argv[1:] or ["gsm8k", "arc_challenge", "squad", "codealpaca"]
    gguf = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    d, f = os.path.split(gguf)
    # The official tokenizer.json: transformers' tokenizer rebuilt from the GGUF
    # splits runs of spaces differently (e.g. "\n    1" in code), which
    # tokenlora's GGUF tokenizer does not (it matches tokenizer.json).
    tok = PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(DATA, "tokenizers", "SmolLM2-135M-Instruct", "tokenizer.json"),
        eos_token=AutoTokenizer.from_pretrained(d, gguf_file=f).eos_token)  # the GGUF's EOS, as the trainer
    for task in tasks:
        base = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
        model = PeftModel.from_pretrained(base, os.path.join(ROOT, "adapters", task)).eval()
        seqs = [sequence(tok, task, r) for r in val_records(task)]
        ours = [json.loads(l) for l in open(os.path.join(ROOT, "adapters", task, "train_log.jsonl"))]
        ours = [j["val_loss"] for j in ours if "val_loss" in j]
        peft_loss = mean_loss(model, seqs)
        with model.disable_adapter():
            base_loss = mean_loss(model, seqs)
        print(json.dumps({"task": task, "peft_val_loss": peft_loss, "tokenlora_val_loss": ours[-1],
                          "peft_base_loss": base_loss, "tokenlora_base_loss": ours[0]}))


if __name__ == "__main__":
    main()
