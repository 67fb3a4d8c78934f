#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/: a few tiny valid files and
a few broken ones per target, so the fuzzers start from real structure.

Run from the repository root (needs gguf, safetensors, numpy and torch, as in
/work/venv-ref; the tokenizer seeds are cut down from the SmolLM2 tokenizer.json
in the data folder that scripts/data_dir.py names):
    /work/venv-ref/bin/python fuzz/make_seeds.py
The output is committed; rerunning it rewrites the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V
from safetensors.numpy import save as st_save

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
sys.path.insert(0, str(ROOT / "scripts"))
from data_dir import data_dir  # noqa: E402

DATA = data_dir()


def gguf_bytes(build, alignment: int | None = None) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seed.gguf"
        w = gguf.GGUFWriter(path, "llama")
        if alignment:
            w.add_custom_alignment(alignment)
        build(w)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path.read_bytes()


def gguf_seeds() -> dict[str, bytes]:
    def full(w):
        w.add_uint32("llama.block_count", 2)
        w.add_float32("llama.rope.freq_base", 10000.0)
        w.add_bool("tokenizer.ggml.add_bos_token", True)
        w.add_key_value("tokenizer.ggml.tokens", ["<s>", "a", "Ġb"], V.ARRAY, sub_type=V.STRING)
        w.add_key_value("tokenizer.ggml.token_type", [3, 1, 1], V.ARRAY, sub_type=V.INT32)
        w.add_key_value("nested", [[1, 2], [3]], V.ARRAY)
        w.add_key_value("u64", 2**40, V.UINT64)
        w.add_key_value("f64", 0.5, V.FLOAT64)
        w.add_tensor("norm.weight", np.arange(8, dtype=np.float32))
        w.add_tensor("tok.weight", gguf.quants.quantize(np.ones((2, 32), np.float32), Q.Q8_0), raw_dtype=Q.Q8_0)
        w.add_tensor("k.weight", np.zeros((1, 144), np.uint8), raw_dtype=Q.Q4_K)

    def metadata_only(w):
        w.add_string("general.name", "tiny")

    def one_tensor(w):
        w.add_tensor("w", np.ones((2, 3), dtype=np.float16))

    valid = gguf_bytes(full)
    v2 = bytearray(gguf_bytes(one_tensor))
    v2[4] = 2
    return {
        "valid_full.gguf": valid,
        "valid_metadata_only.gguf": gguf_bytes(metadata_only),
        "valid_align64.gguf": gguf_bytes(one_tensor, alignment=64),
        "valid_v2.gguf": bytes(v2),
        "bad_truncated.gguf": valid[: len(valid) * 2 // 3],
        "bad_magic.gguf": b"GGUX" + valid[4:64],
        "bad_version1.gguf": b"GGUF" + struct.pack("<IQQ", 1, 0, 0),
    }


def safetensors_seeds() -> dict[str, bytes]:
    valid = st_save({"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                     "ids": np.arange(4, dtype=np.int32),
                     "h": np.ones(3, dtype=np.float16)},
                    metadata={"format": "pt"})
    header = b'{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"s":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}'
    header += b" " * (-len(header) % 8)
    bf16 = struct.pack("<Q", len(header)) + header + bytes(range(8))
    return {
        "valid.safetensors": valid,
        "valid_bf16_scalar.safetensors": bf16,
        "bad_truncated.safetensors": valid[: len(valid) - 5],
        "bad_json.safetensors": struct.pack("<Q", 12) + b'{"a": {"dty',
        "bad_f64.safetensors": st_save({"d": np.zeros(2, dtype=np.float64)}),
    }


def tokenizer_seeds() -> dict[str, bytes]:
    src = DATA / "tokenizers" / "SmolLM2-135M-Instruct" / "tokenizer.json"
    full = json.loads(src.read_text(encoding="utf-8"))
    # Keep the specials, the 256 byte tokens and the first merges whose parts
    # and result survive: a real structure in a few kilobytes.
    keep = 330
    model = full["model"]
    vocab = {t: i for t, i in model["vocab"].items() if i < keep}
    merges = [m for m in model["merges"] if m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab]
    small = dict(full)
    small["added_tokens"] = [a for a in full["added_tokens"] if a["id"] < keep]
    small["model"] = dict(model, vocab=vocab, merges=merges)
    string_merges = dict(small, model=dict(small["model"], merges=[" ".join(m) for m in merges]))

    # SentencePiece-style BPE (Llama 2 layout): byte fallback, "▁" for spaces.
    sp_vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        sp_vocab[f"<0x{b:02X}>"] = len(sp_vocab)
    for piece in ["▁", "t", "h", "e", "a", "▁t", "he", "▁the", "▁a"]:
        sp_vocab[piece] = len(sp_vocab)
    sentencepiece = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [
            {"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True} for c, i in (("<unk>", 0), ("<s>", 1), ("</s>", 2))],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": sp_vocab,
                  "merges": [["▁", "t"], ["h", "e"], ["▁t", "he"], ["▁", "a"]]},
    }
    dump = lambda o: json.dumps(o, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return {
        "smollm2_small.json": dump(small),
        "smollm2_small_string_merges.json": dump(string_merges),
        "sentencepiece_small.json": dump(sentencepiece),
        "bad_no_merges.json": dump(dict(small, model={k: v for k, v in small["model"].items() if k != "merges"})),
        "bad_truncated.json": dump(small)[:300],
    }


def main() -> None:
    for target, seeds in (("fuzz_gguf", gguf_seeds()), ("fuzz_safetensors", safetensors_seeds()),
                          ("fuzz_tokenizer_json", tokenizer_seeds())):
        out = CORPUS / target
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for name, data in seeds.items():
            (out / name).write_bytes(data)
            print(f"wrote {(out / name).relative_to(ROOT)} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
