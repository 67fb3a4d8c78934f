#!/usr/bin/env python3
"""Writes a GGUF with the exact shapes of a 7B model and random weights, for
speed benchmarks at the paper's scale (tokenlora bench beside llama-bench).

Shapes: llama2-7b (32 layers, 4096 hidden, 11008 FFN, 32 heads, vocab 32000)
and qwen2-7b (28 layers, 3584 hidden, 18944 FFN, 28 query / 4 key-value
heads, q/k/v biases, vocab 152064). Types: q4_0 (every matrix Q4_0) and
q4_k_m (llama.cpp's Q4_K_M recipe: Q4_K, with Q6_K for the output head and
for attn_v / ffn_down of the layers llama.cpp gives more bits).

Every quant block is random and valid: random quants, and scales drawn so a
matrix's values stay around ±0.03 (the activations stay finite through all
layers; the text is nonsense, the speed is a 7B model's). The tokenizer is
SmolLM2's byte-level BPE taken from a GGUF given with --tokenizer-from,
cut to the vocabulary size (merges whose parts fall outside are dropped) or
padded with unused control tokens.

Never commit the output (4 GB). Needs numpy and gguf (PyPI); the wrapper
scripts/make-bench-gguf makes a venv with them.
"""
import argparse
import sys
import time

import numpy as np

try:
    import gguf
except ImportError:
    sys.exit("make_bench_gguf.py: needs the gguf package (pip install gguf numpy); scripts/make-bench-gguf makes a venv")

SHAPES = {
    "llama2-7b": dict(arch="llama", vocab=32000, d=4096, layers=32, ff=11008, heads=32, kv_heads=32,
                      ctx=4096, rope_theta=10000.0, eps=1e-5, qkv_bias=False),
    "qwen2-7b": dict(arch="qwen2", vocab=152064, d=3584, layers=28, ff=18944, heads=28, kv_heads=4,
                     ctx=32768, rope_theta=1000000.0, eps=1e-6, qkv_bias=True),
}
Q = gguf.GGMLQuantizationType
# (elements per block, bytes per block)
BLOCK = {Q.Q4_0: (32, 18), Q.Q4_K: (256, 144), Q.Q6_K: (256, 210)}


def f16_bytes(values):
    return np.asarray(values, dtype=np.float16).view(np.uint8)


def random_matrix(rng, qtype, rows, cols):
    """[rows, row_bytes] uint8: valid random blocks of qtype."""
    per, nbytes = BLOCK[qtype]
    assert cols % per == 0, (qtype, cols)
    nb = cols // per
    data = rng.integers(0, 256, size=(rows, nb, nbytes), dtype=np.uint8)
    if qtype == Q.Q4_0:  # d (f16), 16 bytes of nibbles: value = d·(q − 8)
        data[:, :, 0:2] = f16_bytes(rng.uniform(0.002, 0.004, size=(rows, nb))).reshape(rows, nb, 2)
    elif qtype == Q.Q4_K:  # d, dmin (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
        data[:, :, 0:2] = f16_bytes(rng.uniform(2e-5, 4e-5, size=(rows, nb))).reshape(rows, nb, 2)
        data[:, :, 2:4] = f16_bytes(rng.uniform(2e-5, 4e-5, size=(rows, nb))).reshape(rows, nb, 2)
    elif qtype == Q.Q6_K:  # 128 ql, 64 qh, 16 int8 scales, d (f16) last: value = d·sc·(q − 32)
        data[:, :, 208:210] = f16_bytes(rng.uniform(0.5e-5, 1e-5, size=(rows, nb))).reshape(rows, nb, 2)
    return data.reshape(rows, nb * nbytes)


def more_bits(layer, n_layers):
    # llama.cpp's use_more_bits(i_layer, n_layers) for Q4_K_M's attn_v and ffn_down.
    return layer < n_layers // 8 or layer >= 7 * n_layers // 8 or (layer - n_layers // 8) % 3 == 2


def tokenizer_from(path, vocab):
    r = gguf.GGUFReader(path)

    def field(name):
        f = r.fields[name]
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            if f.types[-1] == gguf.GGUFValueType.STRING:
                return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
            return [int(f.parts[i][0]) for i in f.data]
        if f.types[0] == gguf.GGUFValueType.STRING:
            return bytes(f.parts[f.data[0]]).decode("utf-8")
        return int(f.parts[f.data[0]][0])

    tokens, types, merges = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.token_type"), field(
        "tokenizer.ggml.merges")
    if field("tokenizer.ggml.model") != "gpt2":
        sys.exit(f"make_bench_gguf.py: {path}: expected a gpt2 (byte-level BPE) tokenizer")
    pre = field("tokenizer.ggml.pre")
    bos, eos = field("tokenizer.ggml.bos_token_id"), field("tokenizer.ggml.eos_token_id")
    if vocab <= len(tokens):
        tokens, types = tokens[:vocab], types[:vocab]
        kept = set(tokens)
        merges = [m for m in merges if m.split(" ")[0] in kept and m.split(" ")[1] in kept
                  and m.replace(" ", "") in kept]
    else:
        pad = vocab - len(tokens)
        tokens = tokens + [f"<|bench_pad_{i}|>" for i in range(pad)]
        types = types + [int(gguf.TokenType.CONTROL)] * pad
    return tokens, types, merges, pre, bos, eos


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--type", choices=["q4_0", "q4_k_m"], required=True)
    ap.add_argument("--tokenizer-from", required=True, help="a GGUF with a gpt2 tokenizer (models/SmolLM2-135M-Instruct.Q4_1.gguf)")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    s = SHAPES[a.shape]
    rng = np.random.default_rng(a.seed)
    tokens, types, merges, pre, bos, eos = tokenizer_from(a.tokenizer_from, s["vocab"])

    w = gguf.GGUFWriter(a.output, s["arch"])
    w.add_name(f"random {a.shape} {a.type} (tokenlora benchmark file)")
    w.add_context_length(s["ctx"])
    w.add_embedding_length(s["d"])
    w.add_block_count(s["layers"])
    w.add_feed_forward_length(s["ff"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_freq_base(s["rope_theta"])
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0 if a.type == "q4_0" else gguf.LlamaFileType.MOSTLY_Q4_K_M)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)

    d, ff, hd = s["d"], s["ff"], s["d"] // s["heads"]
    kv = s["kv_heads"] * hd
    base = Q.Q4_0 if a.type == "q4_0" else Q.Q4_K
    head = Q.Q4_0 if a.type == "q4_0" else Q.Q6_K
    plan = [("token_embd.weight", base, s["vocab"], d)]
    for i in range(s["layers"]):
        wide = Q.Q6_K if a.type == "q4_k_m" and more_bits(i, s["layers"]) else base
        p = f"blk.{i}."
        plan += [(p + "attn_q.weight", base, d, d), (p + "attn_k.weight", base, kv, d),
                 (p + "attn_v.weight", wide, kv, d), (p + "attn_output.weight", base, d, d),
                 (p + "ffn_gate.weight", base, ff, d), (p + "ffn_up.weight", base, ff, d),
                 (p + "ffn_down.weight", wide, d, ff)]
    plan.append(("output.weight", head, s["vocab"], d))

    ones = np.ones(d, dtype=np.float32)
    w.add_tensor("output_norm.weight", ones)
    for i in range(s["layers"]):
        w.add_tensor(f"blk.{i}.attn_norm.weight", ones)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", ones)
        if s["qkv_bias"]:
            w.add_tensor(f"blk.{i}.attn_q.bias", np.zeros(d, dtype=np.float32))
            w.add_tensor(f"blk.{i}.attn_k.bias", np.zeros(kv, dtype=np.float32))
            w.add_tensor(f"blk.{i}.attn_v.bias", np.zeros(kv, dtype=np.float32))
    total = sum(rows * cols // BLOCK[t][0] * BLOCK[t][1] for _, t, rows, cols in plan)
    done, start = 0, time.time()
    for name, qtype, rows, cols in plan:
        m = random_matrix(rng, qtype, rows, cols)
        w.add_tensor(name, m, raw_dtype=qtype)
        done += m.nbytes
        rate = done / max(time.time() - start, 1e-9)
        bar = "#" * int(30 * done / total)
        print(f"\r[{bar:<30}] {done / 2**30:5.2f}/{total / 2**30:.2f} GiB  {rate / 2**20:6.0f} MiB/s  "
              f"ETA {(total - done) / rate:4.0f} s  {name:<28}", end="", file=sys.stderr, flush=True)
    print(f"\nwriting {a.output}", file=sys.stderr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=True)
    w.close()
    print(f"{a.output}: {a.shape} {a.type}, {total / 2**30:.2f} GiB of weights", file=sys.stderr)


if __name__ == "__main__":
    main()
