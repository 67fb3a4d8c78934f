#!/usr/bin/env python3
"""Golden for one LoRA training step, from PyTorch + PEFT.

Base: the tiny random Llama of tests/tiny_model.cc (safetensors, f32),
exported by the test binary. A PEFT LoRA (r=4, alpha=8, no dropout) on
q_proj, v_proj and down_proj; A keeps PEFT's kaiming-uniform init (seeded),
B is set to small random values (PEFT starts it at zero, which would leave
A without a gradient in the first step).

One step on a batch of two sequences of different lengths (token lists
BATCH below, the same as in tests/train/train_golden_test.cc), the loss
being the mean cross-entropy over the answer tokens of both (prompt
positions masked with -100, as Hugging Face SFT does; each sequence runs
unpadded, which equals right padding with an attention mask):

    loss.backward()
    torch.nn.utils.clip_grad_norm_(lora params, 0.05)   # small enough to clip
    torch.optim.AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01).step()

Also checks once that PEFT loads an adapter written by tokenlora's trainer
(the test binary trains one on the tiny base, all seven projections) and
computes the loss tokenlora computed with it; the two losses are recorded in
one_step.json under "peft_check".

Writes tests/golden/train/:
    initial/        the adapter before the step (PEFT save_pretrained, f32)
    one_step.json   loss, gradient norm before clipping, hyper-parameters
    one_step.safetensors  per module: grad_A, grad_B (before clipping), A and B after the step

Run once, by hand, after building the tests (CI never runs this):

    ninja -C build train_tests
    /work/venv-ref/bin/python scripts/make_golden_train.py build/tests/train_tests
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "train")
# (tokens, n_prompt): loss on tokens[n_prompt:], each predicted from the position before.
BATCH = [([256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114], 5),
         ([256, 65, 110, 115, 119, 101, 114, 58, 32, 52, 50, 33, 257, 10, 84, 104], 9)]
RANK, ALPHA, LR, WD, MAX_NORM = 4, 8, 1e-3, 0.01, 0.05
TARGETS = ["q_proj", "v_proj", "down_proj"]


def check_trained_adapter(tmp):
    """PEFT loads the adapter tokenlora trained and gives tokenlora's loss."""
    from peft import PeftModel
    base = AutoModelForCausalLM.from_pretrained(os.path.join(tmp, "llama_safetensors_f32"), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, os.path.join(tmp, "trained")).eval()
    with open(os.path.join(tmp, "trained_loss.json")) as f:
        ours = json.load(f)["loss"]
    total, loss = 0, 0.0
    with torch.no_grad():
        for tokens, n_prompt in BATCH:
            logits = model(input_ids=torch.tensor([tokens])).logits[0, :-1].double()
            labels = torch.tensor(tokens[1:])
            labels[: n_prompt - 1] = -100
            loss += torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100, reduction="sum").item()
            total += len(tokens) - n_prompt
    loss /= total
    print(f"PEFT loads tokenlora's trained adapter: loss {loss:.7f}, tokenlora {ours:.7f}")
    assert abs(loss - ours) <= 1e-5 * abs(ours), (loss, ours)
    return {"tokenlora_loss": ours, "peft_loss": loss}


def main():
    tests_binary = sys.argv[1]
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TOKENLORA_TRAIN_EXPORT_DIR=tmp)
        subprocess.run([tests_binary, "--gtest_filter=TrainGoldenExport.*"], env=env, check=True)
        base = AutoModelForCausalLM.from_pretrained(os.path.join(tmp, "llama_safetensors_f32"), dtype=torch.float32)
        config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
        model = get_peft_model(base, config)
        gen = torch.Generator().manual_seed(1)
        names = []
        for name, p in model.named_parameters():
            if "lora_B" in name:
                with torch.no_grad():
                    p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * 0.1)
            if p.requires_grad:
                names.append(name)
        shutil.rmtree(os.path.join(OUT, "initial"), ignore_errors=True)
        model.save_pretrained(os.path.join(tmp, "initial"))
        os.makedirs(OUT, exist_ok=True)
        shutil.copytree(os.path.join(tmp, "initial"), os.path.join(OUT, "initial"))
        cfg_path = os.path.join(OUT, "initial", "adapter_config.json")
        with open(cfg_path) as f:
            cfg = json.load(f)
        cfg["base_model_name_or_path"] = "tokenlora tiny llama (tests/tiny_model.cc)"
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
        readme = os.path.join(OUT, "initial", "README.md")
        if os.path.exists(readme):
            os.remove(readme)
        peft_check = check_trained_adapter(tmp)

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    total_targets = sum(len(t) - n for t, n in BATCH)
    loss_sum = torch.zeros((), dtype=torch.float64)
    for tokens, n_prompt in BATCH:
        ids = torch.tensor([tokens])
        logits = model(input_ids=ids).logits[0, :-1].double()  # position t predicts t + 1
        labels = torch.tensor(tokens[1:])
        labels[: n_prompt - 1] = -100
        loss_sum = loss_sum + torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")
    loss = loss_sum / total_targets
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in zip(names, params)}
    grad_norm = torch.nn.utils.clip_grad_norm_(params, MAX_NORM)
    opt = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=WD)
    opt.step()

    tensors = {}
    for n, p in zip(names, params):
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight
        key = n.replace("base_model.model.", "", 1).replace(".default.weight", "")
        tensors[key + ".grad"] = grads[n].float().contiguous()
        tensors[key + ".after"] = p.detach().float().contiguous()
    save_file(tensors, os.path.join(OUT, "one_step.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(OUT, "one_step.json"), "w") as f:
        json.dump({"loss": loss.item(), "grad_norm": grad_norm.item(), "rank": RANK, "alpha": ALPHA, "lr": LR,
                   "weight_decay": WD, "max_grad_norm": MAX_NORM, "targets": TARGETS,
                   "batch": [{"tokens": t, "n_prompt": n} for t, n in BATCH],
                   "peft_check": peft_check, "torch": torch.__version__}, f, indent=2)
    print(f"loss {loss.item():.6f} grad_norm {grad_norm.item():.6f}; wrote {OUT}")


if __name__ == "__main__":
    main()
