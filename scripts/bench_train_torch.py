#!/usr/bin/env python3
"""PyTorch + PEFT CPU training speed, for comparison with `tokenlora train`.

Same base file (transformers dequantizes the GGUF to f32: PyTorch has no
CPU kernels for 4-bit weights), same records, template, tokenization
(prompt and answer tokenized separately, EOS appended, cut to --max-len),
LoRA r/alpha/dropout/targets, AdamW, batch and thread count. Batches are
right-padded with an attention mask, as Hugging Face training does; tokens/s
counts real (non-pad) tokens, as tokenlora does.

    /work/venv-ref/bin/python scripts/bench_train_torch.py \\
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data "$(scripts/data_dir.py)/gsm8k/train.jsonl" \\
        --records 16 --steps 3 --batch 4 --max-len 256 --threads 2
"""
import argparse
import json
import os
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--records", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rank", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d, f = os.path.split(os.path.abspath(args.model))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=16, lora_dropout=0.1,
                                             target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.train()
    seqs = []
    with open(args.data) as fh:
        for line in fh:
            if len(seqs) == args.records:
                break
            r = json.loads(line)
            prompt = f"Question: {r['question']}\n\nAnswer:"
            p = tok(prompt, add_special_tokens=False)["input_ids"]
            a = tok(" " + r["answer"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            ids = (p + a)[: args.max_len]
            seqs.append((ids, min(len(p), len(ids) - 1)))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    tokens, start = 0, None
    for step in range(args.steps + 1):  # step 0 warms up and is not timed
        if step == 1:
            start = time.perf_counter()
            tokens = 0
        batch = [seqs[(step * args.batch + i) % len(seqs)] for i in range(args.batch)]
        n = max(len(s) for s, _ in batch)
        ids = torch.full((len(batch), n), pad)
        mask = torch.zeros((len(batch), n), dtype=torch.long)
        labels = torch.full((len(batch), n), -100)
        for i, (s, n_prompt) in enumerate(batch):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
            labels[i, n_prompt: len(s)] = torch.tensor(s[n_prompt:])
            tokens += len(s)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad()
        print(f"step {step} loss {loss.item():.4f}", flush=True)
    secs = time.perf_counter() - start
    print(json.dumps({"tokens": tokens, "seconds": secs, "tokens_per_s": tokens / secs, "threads": args.threads}))


if __name__ == "__main__":
    main()
