#!/usr/bin/env python3
"""Golden logits for the LoRA mixer, from PEFT itself.

Base: the tiny random Llama of tests/tiny_model.cc (safetensors, f32),
exported by the test binary. Five random PEFT adapters of different ranks,
target sets and options are created with peft, saved with save_pretrained
(and committed under tests/data/lora/), and logits are computed by
transformers + peft in float32 for:

  * the base, and each adapter alone;
  * a weighted `cat` mixture (add_weighted_adapter, combination_type="cat"),
    which our `exact` mode must match;
  * current PEFT's `linear` merge (equal ranks required), for `peft-linear`;
  * PEFT 0.4.0's `linear` merge, for `peft04-linear`. 0.4.0 is not
    installed; merge_peft04() below re-does its add_weighted_adapter
    (peft/tuners/lora.py of the 0.4.0 wheel) on the current objects:
        A = Σ_j w_j·scaling_j·A_j,  B = Σ_i B_i,  new lora_alpha = r (scale 1).

Also writes tests/data/lora/qv.gguf: adapter `qv` as llama.cpp's
convert_lora_to_gguf.py would (lora_b of q/k permuted like the base's q/k by
convert_hf_to_gguf's LlamaModel.permute), through gguf-py, independently of
our own writer.

Run once, by hand, after building the tests (CI never runs this):

    ninja -C build lora_tests
    /work/venv-ref/bin/python scripts/make_golden_lora.py build/tests/lora_tests
"""
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import gguf
import numpy as np
import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "lora")
OUT = os.path.join(ROOT, "tests", "golden", "lora", "peft_logits.json")
PROMPT = [256, 72, 101, 108, 108, 111, 44, 32]  # LoraPromptIds()

# name -> (LoraConfig kwargs, dtype the tensors are stored in)
# Names avoid substrings of "lora_" (PEFT warns: they clash with its prefix).
ADAPTERS = {
    "qv": (dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]), torch.float32),
    "attn": (dict(r=4, lora_alpha=8, use_rslora=True, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
             torch.float16),
    "mlp": (dict(r=16, lora_alpha=32, target_modules=["gate_proj", "up_proj", "down_proj"],
                 rank_pattern={"layers.1.mlp.down_proj": 8}, alpha_pattern={"up_proj": 8}), torch.float16),
    "qv2": (dict(r=8, lora_alpha=32, target_modules=["q_proj", "v_proj"]), torch.bfloat16),
    "regex": (dict(r=2, lora_alpha=4, target_modules=r".*\.layers\.0\.self_attn\.(k_proj|o_proj)"), torch.float32),
    "v1": (dict(r=2, lora_alpha=2, target_modules=["v_proj"], layers_to_transform=[1], layers_pattern="layers"),
           torch.float32),
}
# PEFT's merges need every merged module adapted by at least one of the
# adapters, and one type of target_modules (list or regex) among them.
CAT = (["qv", "attn", "mlp"], [0.7, 1.3, -0.5])  # adapters[0] without rsLoRA: merged scaling 1
LINEAR = (["qv", "qv2"], [0.6, -0.4])            # equal ranks and targets (0.4.0 needs both)


def lora_layers(model):
    return [m for m in model.modules() if isinstance(m, peft.tuners.lora.LoraLayer)]


def randomize(model, name, dtype, gen):
    """Random nonzero A and B, rounded to the storage dtype so that what PEFT
    computes with is exactly what the committed file holds."""
    for m in lora_layers(model):
        if name not in m.lora_A:
            continue
        a, b = m.lora_A[name].weight, m.lora_B[name].weight
        with torch.no_grad():
            a.copy_((torch.rand(a.shape, generator=gen) * 2 - 1) / math.sqrt(a.shape[1]))
            b.copy_((torch.rand(b.shape, generator=gen) * 2 - 1) * 0.1)
            a.copy_(a.to(dtype).float())
            b.copy_(b.to(dtype).float())


def save_adapter(model, name, dtype, tmp):
    model.save_pretrained(tmp, selected_adapters=[name])
    src = os.path.join(tmp, name)
    dst = os.path.join(DATA, name)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    tensors = {k: v.to(dtype).contiguous() for k, v in load_file(os.path.join(src, "adapter_model.safetensors")).items()}
    save_file(tensors, os.path.join(dst, "adapter_model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(src, "adapter_config.json")) as f:
        config = json.load(f)
    config["base_model_name_or_path"] = "tokenlora tiny llama (tests/tiny_model.cc)"
    with open(os.path.join(dst, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)


def merge_peft04(model, adapters, weights, new_name):
    """PEFT 0.4.0 LoraModel.add_weighted_adapter(..., combination_type="linear")."""
    ranks = {model.peft_config[a].r for a in adapters}
    assert len(ranks) == 1, "0.4.0 linear needs equal ranks"
    r = ranks.pop()
    config = dataclasses.replace(model.peft_config[adapters[0]], r=r, lora_alpha=r, use_rslora=False)
    model.add_adapter(new_name, config)
    for m in lora_layers(model):
        if new_name not in m.lora_A:
            continue
        a, b = m.lora_A[new_name].weight, m.lora_B[new_name].weight
        with torch.no_grad():
            a.zero_()
            b.zero_()
            for adapter, w in zip(adapters, weights):
                # 0.4.0 assumes every merged adapter adapts every module of adapters[0].
                assert adapter in m.lora_A, (adapter, "0.4.0 would fail on a module it does not adapt")
                a += m.lora_A[adapter].weight * w * m.scaling[adapter]
                b += m.lora_B[adapter].weight
        assert m.scaling[new_name] == 1.0


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf_adapter(name, hf_config):
    """Adapter `name` as llama.cpp LoRA GGUF (convert_lora_to_gguf.py layout)."""
    cfg, _ = ADAPTERS[name]
    tensors = load_file(os.path.join(DATA, name, "adapter_model.safetensors"))
    roles = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
             "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    w = gguf.GGUFWriter(os.path.join(DATA, name + ".gguf"), "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(cfg["lora_alpha"]))
    for key in sorted(tensors):
        parts = key.split(".")  # base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight
        layer, module, ab = int(parts[4]), parts[6], parts[7]
        t = tensors[key].float().numpy()
        if ab == "lora_B" and module == "q_proj":
            t = permute(t, hf_config.num_attention_heads, hf_config.num_attention_heads)
        if ab == "lora_B" and module == "k_proj":
            t = permute(t, hf_config.num_attention_heads, hf_config.num_key_value_heads)
        suffix = "lora_a" if ab == "lora_A" else "lora_b"
        w.add_tensor(f"blk.{layer}.{roles[module]}.weight.{suffix}", np.ascontiguousarray(t, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    tests_binary = sys.argv[1]
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(20240601)
    os.makedirs(DATA, exist_ok=True)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TOKENLORA_LORA_EXPORT_DIR=tmp)
        subprocess.run([tests_binary, "--gtest_filter=LoraGoldenExport.*"], env=env, check=True)
        base_dir = os.path.join(tmp, "llama_safetensors_f32")
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
        hf_config = base.config
        ids = torch.tensor([PROMPT])
        with torch.no_grad():
            base_logits = base(ids).logits[0].clone()

        model = None
        for name, (cfg, dtype) in ADAPTERS.items():
            config = LoraConfig(task_type="CAUSAL_LM", lora_dropout=0.0, **cfg)
            if model is None:
                model = get_peft_model(base, config, adapter_name=name)
            else:
                model.add_adapter(name, config)
            randomize(model, name, dtype, gen)
            save_adapter(model, name, dtype, os.path.join(tmp, "save"))
        model.eval()

        cases = []

        def record(case, mode, weights, adapter):
            model.set_adapter(adapter)
            with torch.no_grad():
                logits = model(ids).logits[0]
            cases.append({"name": case, "mode": mode, "weights": weights,
                          "logits": [[round(float(v), 6) for v in row] for row in logits]})
            print(case, "max |logits - base| =", float((logits - base_logits).abs().max()), file=sys.stderr)

        with torch.no_grad(), model.disable_adapter():
            logits = model(ids).logits[0]
        cases.append({"name": "base", "mode": "exact", "weights": {},
                      "logits": [[round(float(v), 6) for v in row] for row in logits]})
        for name in ADAPTERS:
            record(name, "exact", {name: 1.0}, name)

        model.add_weighted_adapter(CAT[0], CAT[1], "cat_mix", combination_type="cat")
        assert all(m.scaling["cat_mix"] == 1.0 for m in lora_layers(model) if "cat_mix" in m.scaling)
        record("cat", "exact", dict(zip(*CAT)), "cat_mix")

        model.add_weighted_adapter(LINEAR[0], LINEAR[1], "linear_mix", combination_type="linear")
        assert all(m.scaling["linear_mix"] == 1.0 for m in lora_layers(model) if "linear_mix" in m.scaling)
        record("linear", "peft-linear", dict(zip(*LINEAR)), "linear_mix")

        merge_peft04(model, LINEAR[0], LINEAR[1], "peft04_mix")
        record("peft04", "peft04-linear", dict(zip(*LINEAR)), "peft04_mix")

    write_gguf_adapter("qv", hf_config)
    out = {"reference": f"peft {peft.__version__}, transformers {transformers.__version__}, "
                        f"torch {torch.__version__}, float32; peft04 = PEFT 0.4.0 linear re-done in the script",
           "prompt_ids": PROMPT, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(DATA) for f in fs)
    print("wrote", OUT, os.path.getsize(OUT), "bytes; adapters", size, "bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
