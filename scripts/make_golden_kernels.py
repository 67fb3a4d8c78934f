#!/usr/bin/env python3
"""Golden files for the kernel tests (tests/kernels/), made with gguf-py.

Run with the reference environment (CI never runs this; the outputs are
committed):

    /work/venv-ref/bin/python scripts/make_golden_kernels.py

Everything is deterministic (fixed seed). Files written to
tests/golden/kernels/, all little-endian and headerless (sizes follow from
the file length; manifest.json records counts and the gguf-py version):

  dequant_<type>.bin   random blocks: random bytes for the quant fields, random
                       finite f16 scales (|d| in [1e-3, 1e-1], mins up to ±2)
                       plus a few edge blocks (d = 0, subnormal d, large d)
  dequant_<type>.f32   gguf.quants.dequantize of those blocks
  quant_input.f32      floats to quantize (varied blocks, see make_quant_input)
  quantize_<type>.bin  gguf.quants.quantize(quant_input, type) for the types
                       gguf-py can quantize (Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 F16 BF16)
  convert_input.f32    special values for f32 -> f16/bf16 (NaN, inf, ties,
                       subnormals, overflow)
  convert_f16.bin / convert_bf16.bin   numpy/gguf-py conversions of those

The K-quant quantizers are our own (no gguf-py quantizer exists); the tests
check their error bound and that our dequantizer, which matches gguf-py on the
random blocks here for every bit pattern of the scale and quant fields, reads
them back.
"""
from __future__ import annotations

import importlib.metadata
import json
import pathlib

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T

SEED = 20240611
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "kernels"

# type -> (number of random blocks, layout of the f16 fields as (byte offset, kind))
# kind: "d" scale (|d| in [1e-3, 1e-1], random sign), "m" Q4_1/Q5_1 offset
# (|m| <= 2), "kd" K-quant super-scale (positive, [1e-4, 1e-2]).
BLOCK_TYPES: dict[str, tuple[T, int, list[tuple[int, str]]]] = {
    "q8_0": (T.Q8_0, 64, [(0, "d")]),
    "q4_0": (T.Q4_0, 64, [(0, "d")]),
    "q4_1": (T.Q4_1, 64, [(0, "d"), (2, "m")]),
    "q5_0": (T.Q5_0, 64, [(0, "d")]),
    "q5_1": (T.Q5_1, 64, [(0, "d"), (2, "m")]),
    "q4_K": (T.Q4_K, 24, [(0, "kd"), (2, "kd")]),
    "q5_K": (T.Q5_K, 24, [(0, "kd"), (2, "kd")]),
    "q6_K": (T.Q6_K, 24, [(208, "kd")]),
}

# f16 bit patterns for the edge blocks appended after the random ones.
EDGE_SCALES = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00]


def random_f16(rng: np.random.Generator, kind: str) -> np.float16:
    if kind == "d":
        mag = rng.uniform(1e-3, 1e-1)
        return np.float16(mag if rng.random() < 0.7 else -mag)
    if kind == "m":
        return np.float16(rng.uniform(-2.0, 2.0))
    return np.float16(rng.uniform(1e-4, 1e-2))


def make_blocks(rng: np.random.Generator, qtype: T, n_random: int,
                fields: list[tuple[int, str]]) -> np.ndarray:
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n = n_random + len(EDGE_SCALES)
    blocks = rng.integers(0, 256, size=(n, type_size), dtype=np.uint8)
    for b in range(n):
        for offset, kind in fields:
            if b < n_random:
                bits = random_f16(rng, kind).view(np.uint16)
            else:
                bits = np.uint16(EDGE_SCALES[b - n_random])
            blocks[b, offset:offset + 2] = np.frombuffer(np.uint16(bits).tobytes(), dtype=np.uint8)
    return blocks


def make_quant_input(rng: np.random.Generator) -> np.ndarray:
    """4096 floats (16 K-blocks / 128 32-blocks) exercising the quantizers' corners."""
    parts = [
        rng.normal(0.0, 0.02, 1024),           # weight-like
        rng.uniform(-1.0, 1.0, 1024),
        rng.normal(0.0, 1.0, 512) * 10.0 ** rng.integers(-3, 3, 512),  # mixed magnitudes
        np.abs(rng.normal(0.0, 0.5, 256)),     # all positive
        -np.abs(rng.normal(0.0, 0.5, 256)),    # all negative
        np.zeros(32),                          # d = 0 everywhere
        np.full(32, 0.375),                    # constant block (Q4_1/Q5_1: d = 0)
        # Q8_0 ties: amax 127 -> d = 1, x·(1/d) hits k + 0.5 exactly.
        np.array([127.0, 2.5, -3.5, 0.5, -0.5, 1.5, -1.5, 126.5] * 4),
        # equal magnitudes of both signs: argmax must take the first one.
        np.array([-8.0, 8.0, 4.0, -4.0] * 8),
        np.array([8.0, -8.0, 4.0, -4.0] * 8),
        # Q4_0 ties: max -8 -> d = 1, x + 8.5 lands on integers.
        np.array([-8.0, -0.5, 0.5, 1.5, -1.5, 7.5, -7.5, 6.5] * 4),
        rng.normal(0.0, 1e-6, 32),             # f16-subnormal scales
        rng.normal(0.0, 1e3, 64),              # large values
        rng.normal(0.0, 0.02, 736),
    ]
    x = np.concatenate(parts).astype(np.float32)
    assert x.size == 4096, x.size
    return x


def make_convert_input(rng: np.random.Generator) -> np.ndarray:
    special = np.array([
        0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan,
        65504.0, 65519.99, 65520.0, 1e6, -1e6,          # f16 max, overflow threshold
        6.1035156e-05, 6.0975552e-05, 5.9604645e-08,    # f16 normal min, subnormals
        2.9802322e-08, 2.9802326e-08, 1e-9,              # half of the smallest subnormal, ties
        1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11,         # f16 round-to-even ties
        1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8,           # bf16 ties
        3.4028235e38, 1e-40, -1e-45,                     # f32 max, f32 subnormals
    ], dtype=np.float32)
    bits = np.frombuffer(np.array([0x7FC00001, 0xFF800001, 0x7F800001], dtype=np.uint32).tobytes(),
                         dtype=np.float32)  # NaN payloads (quiet/signalling)
    randoms = (rng.normal(0.0, 1.0, 456) * 10.0 ** rng.integers(-9, 6, 456)).astype(np.float32)
    return np.concatenate([special, bits, randoms]).astype(np.float32)


def main() -> None:
    rng = np.random.default_rng(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"gguf_version": importlib.metadata.version("gguf"),
                      "numpy_version": np.__version__, "seed": SEED, "files": {}}

    for name, (qtype, n_random, fields) in BLOCK_TYPES.items():
        blocks = make_blocks(rng, qtype, n_random, fields)
        values = gguf.quants.dequantize(blocks.reshape(-1), qtype).astype(np.float32)
        assert np.all(np.isfinite(values)), name
        (OUT / f"dequant_{name}.bin").write_bytes(blocks.tobytes())
        (OUT / f"dequant_{name}.f32").write_bytes(values.astype("<f4").tobytes())
        manifest["files"][f"dequant_{name}"] = {"blocks": int(blocks.shape[0]),
                                                "elements": int(values.size)}

    # Plain f16/bf16 rows: random non-NaN bit patterns.
    for name, qtype in (("f16", T.F16), ("bf16", T.BF16)):
        raw = rng.integers(0, 1 << 16, size=1024, dtype=np.uint16)
        exp_all_ones = (raw & 0x7C00) == 0x7C00 if name == "f16" else (raw & 0x7F80) == 0x7F80
        raw = raw[~exp_all_ones]
        values = gguf.quants.dequantize(raw.view(np.uint8), qtype).astype(np.float32)
        (OUT / f"dequant_{name}.bin").write_bytes(raw.astype("<u2").tobytes())
        (OUT / f"dequant_{name}.f32").write_bytes(values.astype("<f4").tobytes())
        manifest["files"][f"dequant_{name}"] = {"elements": int(values.size)}

    x = make_quant_input(rng)
    (OUT / "quant_input.f32").write_bytes(x.astype("<f4").tobytes())
    for name, qtype in (("q8_0", T.Q8_0), ("q4_0", T.Q4_0), ("q4_1", T.Q4_1), ("q5_0", T.Q5_0),
                        ("q5_1", T.Q5_1), ("f16", T.F16), ("bf16", T.BF16)):
        q = np.asarray(gguf.quants.quantize(x.reshape(1, -1), qtype))
        (OUT / f"quantize_{name}.bin").write_bytes(q.tobytes())
        manifest["files"][f"quantize_{name}"] = {"bytes": int(q.nbytes)}

    c = make_convert_input(rng)
    (OUT / "convert_input.f32").write_bytes(c.astype("<f4").tobytes())
    with np.errstate(over="ignore"):
        (OUT / "convert_f16.bin").write_bytes(c.astype(np.float16).astype("<f2").tobytes())
    bf16 = np.asarray(gguf.quants.quantize(c.reshape(1, -1), T.BF16))
    (OUT / "convert_bf16.bin").write_bytes(bf16.tobytes())
    manifest["files"]["convert"] = {"values": int(c.size)}

    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes to {OUT}")


if __name__ == "__main__":
    main()
