#!/usr/bin/env python3
"""Golden files for tests/io, made and checked by the reference Python readers/writers.

Two directions of interop between tokenlora's GGUF/safetensors code and the
independent Python implementations (gguf-py and the `safetensors` package):

1. Python writes, tokenlora reads. This script writes small deterministic files
   into tests/data/io/ with gguf-py's GGUFWriter and safetensors' save_file,
   plus a JSON file per model describing what it holds (keys, types, values,
   tensor names, dtypes, shapes, offsets, an FNV-1a 64 checksum of each
   tensor's bytes and its first values). tests/io/golden_test.cc reads them
   with our readers and compares. The outputs are committed; CI never runs
   this script.

2. tokenlora writes, Python reads. The script runs the built io_tests binary
   with --gtest_filter='IoExport.*' and TOKENLORA_IO_EXPORT_DIR set; that test
   writes written_by_tokenlora.{gguf,safetensors} plus written_by_tokenlora.json
   (what they hold). The script then reads them with gguf.GGUFReader and
   safetensors.safe_open and checks every key, type, value, tensor and byte.

Run from the repository root, after building io_tests:
    cmake -S . -B build-io -G Ninja -DTOKENLORA_BENCH=OFF && ninja -C build-io io_tests
    /work/venv-ref/bin/python scripts/make_golden_io.py [--io-tests build-io/tests/io_tests]
(the venv needs gguf, safetensors, numpy and torch). Exits non-zero on any
mismatch. --skip-export only regenerates the golden files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V
from safetensors import safe_open
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "io"

# GGUF value type -> the name tokenlora's GgufTypeName() gives it.
TYPE_NAMES = {
    V.UINT8: "u8", V.INT8: "i8", V.UINT16: "u16", V.INT16: "i16", V.UINT32: "u32",
    V.INT32: "i32", V.FLOAT32: "f32", V.BOOL: "bool", V.STRING: "string", V.ARRAY: "array",
    V.UINT64: "u64", V.INT64: "i64", V.FLOAT64: "f64",
}
NAME_TO_TYPE = {v: k for k, v in TYPE_NAMES.items()}
NUMPY_OF = {
    "u8": np.uint8, "i8": np.int8, "u16": np.uint16, "i16": np.int16, "u32": np.uint32,
    "i32": np.int32, "f32": np.float32, "u64": np.uint64, "i64": np.int64, "f64": np.float64,
}
# tokenlora's DType names (tensor/dtype.cc) for the ggml types used here.
DTYPE_NAMES = {
    Q.F32: "f32", Q.F16: "f16", Q.BF16: "bf16", Q.Q8_0: "q8_0", Q.Q4_0: "q4_0",
    Q.Q4_1: "q4_1", Q.Q5_0: "q5_0", Q.Q5_1: "q5_1", Q.Q4_K: "q4_K", Q.Q5_K: "q5_K",
    Q.Q6_K: "q6_K", Q.I32: "i32",
}


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def first_values(raw: bytes, dtype: str, n: int = 4) -> list:
    """The first few elements of a plain-typed tensor, as JSON numbers."""
    if dtype in ("f32", "F32"):
        return [float(x) for x in np.frombuffer(raw, np.float32)[:n]]
    if dtype in ("f16", "F16"):
        return [float(x) for x in np.frombuffer(raw, np.float16)[:n]]
    if dtype in ("bf16", "BF16"):
        u = np.frombuffer(raw, np.uint16)[:n].astype(np.uint32) << 16
        return [float(x) for x in u.view(np.float32)]
    if dtype in ("i32", "I32"):
        return [int(x) for x in np.frombuffer(raw, np.int32)[:n]]
    return []


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------
# 1. Python writes, tokenlora reads.


def gguf_metadata(w: gguf.GGUFWriter) -> dict:
    """Adds one key of every type and returns {key: {type, value}} for the JSON."""
    meta = {}

    def add(key, value, type_name, sub=None):
        if type_name == "array":
            w.add_key_value(key, value, V.ARRAY, sub_type=NAME_TO_TYPE[sub] if sub else None)
            meta[key] = {"type": f"array[{sub}]", "value": value}
        else:
            w.add_key_value(key, value, NAME_TO_TYPE[type_name])
            meta[key] = {"type": type_name, "value": value}

    add("test.u8", 255, "u8")
    add("test.i8", -128, "i8")
    add("test.u16", 65535, "u16")
    add("test.i16", -32768, "i16")
    add("test.u32", 4294967295, "u32")
    add("test.i32", -2147483648, "i32")
    add("test.u64", 18446744073709551615, "u64")
    add("test.i64", -9223372036854775808, "i64")
    add("test.f32", float(np.float32(1e-5)), "f32")
    add("test.f64", 3.141592653589793, "f64")
    add("test.bool", True, "bool")
    add("test.string", "héllo wörld ▁ <|im_start|>\nline2", "string")
    add("test.empty_string", "", "string")
    for sub, values in [("u8", [0, 255]), ("i8", [-1, 127]), ("u16", [1, 2]), ("i16", [-3]),
                        ("u32", [3, 4]), ("i32", [-5, 6]), ("u64", [2**63]), ("i64", [-2**62]),
                        ("f32", [0.5, -2.25]), ("f64", [1e300]), ("bool", [True, False])]:
        add(f"test.array.{sub}", values, "array", sub)
    add("test.array.string", ["a", "", "Ġthe", "x" * 100], "array", "string")
    # Nested arrays: gguf-py infers the inner element type (i32 for ints).
    w.add_key_value("test.nested", [[1, 2], [3]], V.ARRAY)
    meta["test.nested"] = {"type": "array[array[i32]]", "value": [[1, 2], [3]]}
    return meta


def gguf_tensors(w: gguf.GGUFWriter, rng: np.random.Generator) -> list:
    """Adds one tensor of every dtype tokenlora loads; returns their JSON records."""
    records = []

    def add(name, qtype, shape, raw: np.ndarray):
        # raw is the tensor's bytes (uint8) in ggml layout, shaped [rows, row_bytes].
        w.add_tensor(name, raw, raw_dtype=qtype)
        data = raw.tobytes()
        records.append({"name": name, "dtype": DTYPE_NAMES[qtype], "shape": list(shape),
                        "nbytes": len(data), "fnv1a64": fnv1a64(data),
                        "first_values": first_values(data, DTYPE_NAMES[qtype])})

    f32 = rng.standard_normal((4, 64)).astype(np.float32)
    add("plain.f32", Q.F32, [4, 64], f32.view(np.uint8))
    add("plain.f16", Q.F16, [4, 64], f32.astype(np.float16).view(np.uint8))
    add("plain.bf16", Q.BF16, [4, 64], gguf.quants.quantize(f32, Q.BF16).view(np.uint8))
    ids = np.arange(-8, 8, dtype=np.int32).reshape(2, 8)
    add("plain.i32", Q.I32, [2, 8], ids.view(np.uint8))
    for qtype in (Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1):
        raw = gguf.quants.quantize(f32, qtype)  # gguf-py's own quantizer
        add(f"quant.{DTYPE_NAMES[qtype]}", qtype, [4, 64], raw)
    for qtype, block_bytes in ((Q.Q4_K, 144), (Q.Q5_K, 176), (Q.Q6_K, 210)):
        # gguf-py cannot quantize K-quants; random blocks exercise the layout.
        raw = rng.integers(0, 256, (2, block_bytes), dtype=np.uint8)
        add(f"quant.{DTYPE_NAMES[qtype]}", qtype, [2, 256], raw)
    return records


def finish_gguf(w: gguf.GGUFWriter, path: Path, meta: dict, tensors: list, alignment: int) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # Offsets as gguf-py's own reader sees them, relative to the data section.
    reader = gguf.GGUFReader(path)
    by_name = {t.name: t for t in reader.tensors}
    data_start = min(t.data_offset for t in reader.tensors)
    for rec in tensors:
        rec["offset"] = int(by_name[rec["name"]].data_offset) - data_start
    write_json(path.with_suffix(".json"), {
        "file": path.name, "version": 3, "alignment": alignment,
        "data_offset": int(data_start), "metadata": meta, "tensors": tensors})


def make_gguf_files(rng: np.random.Generator) -> None:
    path = OUT / "gguf_py_small.gguf"
    w = gguf.GGUFWriter(path, "llama")
    meta = {"general.architecture": {"type": "string", "value": "llama"}}
    meta.update(gguf_metadata(w))
    finish_gguf(w, path, meta, gguf_tensors(w, rng), 32)

    path = OUT / "gguf_py_align64.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    meta = {"general.architecture": {"type": "string", "value": "llama"},
            "general.alignment": {"type": "u32", "value": 64}}
    records = []
    for i, n in enumerate((3, 17, 1)):  # odd sizes: each tensor needs padding
        x = np.arange(n, dtype=np.float32) * (i + 1)
        w.add_tensor(f"t{i}", x)
        data = x.tobytes()
        records.append({"name": f"t{i}", "dtype": "f32", "shape": [n], "nbytes": len(data),
                        "fnv1a64": fnv1a64(data), "first_values": first_values(data, "f32")})
    finish_gguf(w, path, meta, records, 64)


def tensor_bytes(t: torch.Tensor) -> bytes:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def safetensors_records(tensors: dict, offsets: dict) -> list:
    records = []
    for name, t in tensors.items():
        data = tensor_bytes(t)
        dtype = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                 torch.int32: "I32"}[t.dtype]
        records.append({"name": name, "dtype": dtype, "shape": list(t.shape), "nbytes": len(data),
                        "offset": offsets[name], "fnv1a64": fnv1a64(data),
                        "first_values": first_values(data, dtype)})
    return records


def header_offsets(path: Path) -> dict:
    """data_offsets[0] of every tensor, read straight from the header JSON."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    return {k: v["data_offsets"][0] for k, v in header.items() if k != "__metadata__"}


def make_safetensors_files() -> None:
    g = torch.Generator().manual_seed(1234)
    tensors = {
        "model.embed_tokens.weight": torch.randn(6, 4, generator=g).to(torch.bfloat16),
        "lm_head.weight": torch.randn(4, 6, generator=g).to(torch.float16),
        "model.norm.weight": torch.randn(4, generator=g),
        "position_ids": torch.arange(10, dtype=torch.int32).reshape(2, 5),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }
    # One key: the Rust writer keeps metadata in a hash map, so the order of
    # several keys (and the file's bytes) would change from run to run.
    metadata = {"note": "golden ✓"}
    path = OUT / "safetensors_py_small.safetensors"
    save_file(tensors, path, metadata=metadata)
    write_json(path.with_suffix(".json"), {
        "file": path.name, "metadata": metadata,
        "tensors": safetensors_records(tensors, header_offsets(path))})

    # A dtype tokenlora refuses, to check the error names tensor and dtype.
    save_file({"model.w": torch.zeros(2, dtype=torch.float64)}, OUT / "safetensors_py_f64.safetensors")

    # A sharded model directory, as transformers' save_pretrained lays it out.
    shard_dir = OUT / "sharded"
    shard_dir.mkdir(exist_ok=True)
    shards = {
        "model-00001-of-00002.safetensors": {
            "model.layers.0.self_attn.q_proj.weight": torch.randn(4, 4, generator=g),
            "model.embed_tokens.weight": torch.randn(8, 4, generator=g).to(torch.float16)},
        "model-00002-of-00002.safetensors": {
            "lm_head.weight": torch.randn(8, 4, generator=g).to(torch.bfloat16)},
    }
    weight_map, records, total = {}, [], 0
    for file, ts in shards.items():
        save_file(ts, shard_dir / file, metadata={"format": "pt"})
        for rec in safetensors_records(ts, header_offsets(shard_dir / file)):
            rec["file"] = file
            records.append(rec)
            weight_map[rec["name"]] = file
            total += rec["nbytes"]
    write_json(shard_dir / "model.safetensors.index.json",
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})
    write_json(OUT / "sharded.json", {"tensors": records})


# ---------------------------------------------------------------------------
# 2. tokenlora writes, Python reads.


class Checker:
    def __init__(self):
        self.failures = []

    def eq(self, what, got, want):
        if got != want:
            self.failures.append(f"{what}: got {got!r}, expected {want!r}")


def field_value(field):
    """A GGUFReader field as a Python value (nested arrays come back flattened)."""
    main = field.types[0]
    if main == V.ARRAY:
        if field.types[-1] == V.STRING:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if main == V.STRING:
        return bytes(field.parts[-1]).decode("utf-8")
    return field.parts[-1].tolist()[0]


def flatten(x):
    return [y for item in x for y in flatten(item)] if isinstance(x, list) else [x]


def check_our_gguf(path: Path, expected: dict, c: Checker) -> None:
    reader = gguf.GGUFReader(path)  # raises on anything malformed
    fields = {k: f for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    c.eq("gguf version", int(reader.fields["GGUF.version"].parts[-1][0]), 3)
    c.eq("gguf alignment", reader.alignment, expected["alignment"])
    c.eq("gguf keys", list(fields), [m["key"] for m in expected["metadata"]])
    for m in expected["metadata"]:
        f = fields.get(m["key"])
        if f is None:
            continue
        # "array[array[i32]]" -> [ARRAY, ARRAY, INT32], as gguf-py lists types.
        want_types = [NAME_TO_TYPE[t] for t in m["type"].replace("]", "").split("[")]
        if m["value"] == []:
            want_types = want_types[:1]  # gguf-py learns element types from the first element
        c.eq(f"type of {m['key']}", list(f.types), want_types)
        got, want = field_value(f), m["value"]
        if m["type"].startswith("array[array"):
            got, want = got, flatten(want)
        if "f32" in m["type"]:
            want = [float(np.float32(x)) for x in want] if isinstance(want, list) else float(np.float32(want))
        c.eq(f"value of {m['key']}", got, want)
    tensors = {t.name: t for t in reader.tensors}
    c.eq("gguf tensor names", [t.name for t in reader.tensors], [t["name"] for t in expected["tensors"]])
    data_start = min(t.data_offset for t in reader.tensors)
    for t in expected["tensors"]:
        r = tensors.get(t["name"])
        if r is None:
            continue
        c.eq(f"type of {t['name']}", DTYPE_NAMES.get(Q(r.tensor_type)), t["dtype"])
        c.eq(f"shape of {t['name']}", [int(x) for x in reversed(r.shape)], t["shape"])
        c.eq(f"offset of {t['name']}", int(r.data_offset) - data_start, t["offset"])
        c.eq(f"bytes of {t['name']}", int(r.n_bytes), t["nbytes"])
        c.eq(f"checksum of {t['name']}", fnv1a64(r.data.tobytes()), t["fnv1a64"])


def check_our_safetensors(path: Path, expected: dict, c: Checker) -> None:
    with safe_open(str(path), framework="pt") as f:  # raises on anything malformed
        c.eq("safetensors metadata", f.metadata(), expected["metadata"])
        c.eq("safetensors names", sorted(f.keys()), sorted(t["name"] for t in expected["tensors"]))
        for t in expected["tensors"]:
            x = f.get_tensor(t["name"])
            dtype = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                     torch.int32: "I32"}.get(x.dtype)
            c.eq(f"dtype of {t['name']}", dtype, t["dtype"])
            c.eq(f"shape of {t['name']}", list(x.shape), t["shape"])
            data = tensor_bytes(x)
            c.eq(f"checksum of {t['name']}", fnv1a64(data), t["fnv1a64"])


def check_export(io_tests: Path) -> int:
    if not io_tests.exists():
        print(f"error: {io_tests} not found; build it first:\n"
              "  cmake -S . -B build-io -G Ninja -DTOKENLORA_BENCH=OFF && ninja -C build-io io_tests",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TOKENLORA_IO_EXPORT_DIR=tmp)
        subprocess.run([str(io_tests), "--gtest_filter=IoExport.*"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        expected = json.loads((Path(tmp) / "written_by_tokenlora.json").read_text(encoding="utf-8"))
        c = Checker()
        for g in expected["gguf"]:
            check_our_gguf(Path(tmp) / g["file"], g, c)
        check_our_safetensors(Path(tmp) / expected["safetensors"]["file"], expected["safetensors"], c)
    for f in c.failures:
        print("MISMATCH:", f, file=sys.stderr)
    n_gguf = len(expected["gguf"])
    print(f"checked {n_gguf} GGUF and 1 safetensors file written by tokenlora: "
          f"{'OK' if not c.failures else f'{len(c.failures)} mismatches'}")
    return 1 if c.failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--io-tests", type=Path, default=ROOT / "build-io" / "tests" / "io_tests")
    ap.add_argument("--skip-export", action="store_true", help="only write the golden files")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    make_gguf_files(np.random.default_rng(42))
    make_safetensors_files()
    for p in sorted(OUT.rglob("*")):
        if p.is_file():
            print(f"wrote {p.relative_to(ROOT)} ({p.stat().st_size} bytes)")
    return 0 if args.skip_export else check_export(args.io_tests)


if __name__ == "__main__":
    sys.exit(main())
