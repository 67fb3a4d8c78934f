#!/usr/bin/env python3
"""Golden data for tests/router and the WordPiece Unicode tables (run by hand; CI never runs it).

    /work/venv-ref/bin/python scripts/make_golden_router.py [tables|wordpiece|embeddings|router|check-weights|all]

Needs: tokenizers, sentence-transformers, torch, safetensors; the model in
models/all-MiniLM-L6-v2 (scripts/fetch-models) and the shared data folder
(scripts/data_dir.py: $TOKENLORA_DATA, data/ or ../shared/data).

Writes
  src/tokenizer/wordpiece_unicode.cc        `tables`: the character classes of
      tokenizers' BertNormalizer and BertPreTokenizer, read off the library
      itself one code point at a time. The library's Unicode tables are of
      several ages (its punctuation and "other" categories predate Unicode 9,
      its NFD and lower-casing are recent), so no single Unicode version
      reproduces it; probing it does.
  tests/golden/router/wordpiece.jsonl       `wordpiece`: strings + HF ids
  tests/golden/router/embeddings.json       `embeddings`: texts (inline or refs)
  tests/golden/router/embeddings.f16        ... their sentence-transformers
      embeddings, [n_texts, 384] float16 little-endian
  tests/golden/router/router.json           `router`: formatted records (to
      check the built-in templates), prompts and the weights of the reference's
      similarity()
  tests/golden/router/router.f32            ... centroids [4, 384] then prompt
      embeddings [n_prompts, 384], float32 little-endian
  tests/golden/router/whitening.json        `whitening`: small synthetic task
      embeddings (float32 values), the whitening numpy fits to them (mean,
      (S + lambda·tr(S)/dim·I)^(-1/2) by eigendecomposition) and the whitened
      cosines of unit query vectors to the task centroids (as they are)
      (needs numpy only)
`check-weights` compares models/all-MiniLM-L6-v2/model.safetensors with the
official file's sha256 (prints the finding; writes nothing).

Texts are {"text": s}, or {"ref": [file under the data folder, 0-based line,
"field.path"]} (numbers in the path index lists), or {"refs": [ref, ...],
"sep": s} (texts joined), so long data-set texts are not copied here.
"""

import hashlib
import json
import os
import random
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from data_dir import data_dir  # noqa: E402

DATA = data_dir()  # $TOKENLORA_DATA, data/ (scripts/fetch-data) or ../shared/data
MODEL_DIR = ROOT / "models/all-MiniLM-L6-v2"
OUT_GOLDEN = ROOT / "tests/golden/router"
TABLES_CC = ROOT / "src/tokenizer/wordpiece_unicode.cc"
OFFICIAL_SHA256 = "1377e9af0ca0b016a9f2aa584d6fc71ab3ea6804fae21ef9fb1416e2944057ac"

_lines_cache = {}


def data_lines(rel):
    if rel not in _lines_cache:
        with open(DATA / rel, encoding="utf-8") as f:
            _lines_cache[rel] = f.read().split("\n")
    return _lines_cache[rel]


def resolve_row(row):
    if "text" in row:
        return row["text"]
    if "refs" in row:
        return row["sep"].join(resolve_ref(r) for r in row["refs"])
    return resolve_ref(row["ref"])


def resolve_ref(ref):
    rel, line, path = ref
    value = json.loads(data_lines(rel)[line])
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


# ---------------------------------------------------------------------------
# Unicode tables of tokenizers' BertNormalizer / BertPreTokenizer
# ---------------------------------------------------------------------------
def code_points():
    return (cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)


def to_ranges(cps):
    out = []
    for cp in sorted(cps):
        if out and out[-1][1] + 1 == cp:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def hangul_nfd(cp):
    s = cp - 0xAC00
    lead, vowel, trail = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
    return chr(lead) + chr(vowel) + (chr(trail) if trail != 0x11A7 else "")


def make_tables():
    import tokenizers
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    clean = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    chinese = BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    fold = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=True)
    pre = BertPreTokenizer()
    control, clean_space, chinese_cps, fold_removed, punct, space = [], [], [], [], [], []
    fold_map = {}
    for cp in code_points():
        c = chr(cp)
        s = clean.normalize_str(c)
        if s == "":
            control.append(cp)
        elif s == " " and c != " ":
            clean_space.append(cp)
        elif s != c:
            sys.exit(f"clean_text maps U+{cp:04X} to {s!r}: the table format assumes removal or a space")
        s = chinese.normalize_str(c)
        if s == " " + c + " ":
            chinese_cps.append(cp)
        elif s != c:
            sys.exit(f"handle_chinese_chars maps U+{cp:04X} to {s!r}")
        s = fold.normalize_str(c)
        if s == "":
            fold_removed.append(cp)
        elif s != c:
            if 0xAC00 <= cp <= 0xD7A3:
                if s != hangul_nfd(cp):
                    sys.exit(f"Hangul U+{cp:04X} does not decompose algorithmically")
            else:
                if len(s) > 3:
                    sys.exit(f"U+{cp:04X} folds to {len(s)} characters; the table holds 3")
                if fold.normalize_str(s) != s:
                    sys.exit(f"folding U+{cp:04X} is not idempotent")
                fold_map[cp] = s
        words = [w for w, _ in pre.pre_tokenize_str("a" + c + "a")]
        if words == ["a", c, "a"]:
            punct.append(cp)
        elif words == ["a", "a"]:
            space.append(cp)
        elif words != ["a" + c + "a"]:
            sys.exit(f"BertPreTokenizer splits U+{cp:04X} unexpectedly: {words}")

    def ranges_cc(name, cps, comment):
        rs = to_ranges(cps)
        items = [f"{{0x{a:X}, 0x{b:X}}}" for a, b in rs]
        lines = [", ".join(items[i:i + 6]) + "," for i in range(0, len(items), 6)]
        return f"// {comment} ({len(cps)} code points)\nconstexpr CodeRange {name}[] = {{\n" + \
            "\n".join("    " + l for l in lines) + "\n};\n"

    singles = [(cp, s) for cp, s in sorted(fold_map.items())]
    items = []
    for cp, s in singles:
        outs = [f"0x{ord(ch):X}" for ch in s]
        items.append(f"{{0x{cp:X}, {len(s)}, {{{', '.join(outs)}}}}}")
    fold_lines = [", ".join(items[i:i + 4]) + "," for i in range(0, len(items), 4)]
    text = f"""// GENERATED by scripts/make_golden_router.py tables from tokenizers {tokenizers.__version__};
// do not edit. The character classes of Hugging Face tokenizers' BertNormalizer
// and BertPreTokenizer, read off the library one code point at a time: its
// tables are of several Unicode versions (punctuation and "other" predate
// Unicode 9; NFD and lower-casing are recent), so probing it is the only way
// to reproduce it exactly.
#include "tokenizer/wordpiece_unicode.h"

namespace tokenlora::tokenizer_internal {{
namespace {{

{ranges_cc("kControl", control, "clean_text removes these: NUL, U+FFFD and categories Cc/Cf/Co/Cs as the library knows them, less tab/LF/CR")}
// clean_text turns these into a space ({len(clean_space)} code points)
constexpr CodeRange kCleanSpace[] = {{
    {", ".join(f"{{0x{a:X}, 0x{b:X}}}" for a, b in to_ranges(clean_space))},
}};

{ranges_cc("kChinese", chinese_cps, "handle_chinese_chars puts spaces around these")}
{ranges_cc("kFoldRemoved", fold_removed, "strip_accents + lowercase remove these (non-spacing marks)")}
{ranges_cc("kPunctuation", punct, "BertPreTokenizer isolates these")}
// BertPreTokenizer splits on these ({len(space)} code points)
constexpr CodeRange kWhitespace[] = {{
    {", ".join(f"{{0x{a:X}, 0x{b:X}}}" for a, b in to_ranges(space))},
}};

// strip_accents + lowercase: NFD, drop non-spacing marks, lower-case. Hangul
// syllables (U+AC00..U+D7A3) decompose algorithmically and are not listed.
// {len(singles)} code points.
constexpr FoldMapping kFold[] = {{
{chr(10).join("    " + l for l in fold_lines)}
}};

}}  // namespace

const WordPieceUnicodeTables& GetWordPieceUnicodeTables() {{
  static const WordPieceUnicodeTables tables{{kControl, kCleanSpace, kChinese, kFoldRemoved,
                                             kPunctuation, kWhitespace, kFold,
                                             "tokenizers {tokenizers.__version__}"}};
  return tables;
}}

}}  // namespace tokenlora::tokenizer_internal
"""
    TABLES_CC.write_text(text, encoding="utf-8")
    print(f"wrote {TABLES_CC.relative_to(ROOT)}: {len(control)} control, {len(chinese_cps)} CJK, "
          f"{len(fold_removed)} marks, {len(punct)} punctuation, {len(space)} whitespace, {len(singles)} folds")


# ---------------------------------------------------------------------------
# WordPiece strings
# ---------------------------------------------------------------------------
HAND_WRITTEN = [
    "", " ", "   ", "\t\n\r", "\u00a0\u2003\u3000", "Hello, world!", "hello world", "HELLO WORLD",
    "Héllo Wörld ÀÉÎÕÜ àéîõü ç Ç ñ Ñ", "naïve café résumé coöperate", "İstanbul ıi IİıI", "Straße STRASSE ß ẞ",
    "ﬁ ﬂ ﬃ ﬄ", "Ⅻ ⅻ ① ² ³ ½", "ΑΣ ΟΔΟΣ σς Σ", "Ǆ ǅ ǆ ǈ", "ǅungla", "Ⓐ ⓐ",
    "the quick brown fox jumps over the lazy dog", "unaffable unbelievable supercalifragilisticexpialidocious",
    "中文字符测试", "我爱北京天安门", "日本語のテキストです。", "한국어 텍스트 입니다", "漢字かな交じり文",
    "豈 更 車 賈", "\U00020000\U0002A6D6\U0002F800", "abc中def", "ＡＢＣ　ｄｅｆ １２３", "ｶﾀｶﾅ",
    "😀 😃 😄 😁", "🥰🫠🤖", "👨‍👩‍👧‍👦", "👍🏽 ✌️", "☃ ★ ☆ ♥", "🇩🇪🇫🇷", "e\u0301 e\u0300 a\u0308", "\u0301abc",
    "x\u200by\u200cz\u200dw\ufeffv", "a\u00adb", "\u202eevil\u202c", "\x00\x01\x02abc\x7f\x1b[31m",
    "\ufffd", "a\ufffdb", "\U000E0001\U000E0041", "\uE000\uF8FF\U000F0000", "\u0378\u0379", "\U0010FFFF",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Привет, мир!", "Γειά σου Κόσμε",
    "Tiếng Việt có dấu", "Ελληνικά ᾗ ᾷ", "ქართული", "Հայերեն", "ᐊᐃᐅ", "ཀཁགང", "ꦲꦤꦕꦫꦏ",
    "a.b,c;d:e!f?g", "(parens) [brackets] {braces} <angles>", "'single' \"double\" `back`",
    "«guillemets» „quotes“ ‘curly’ “curly”", "em—dash en–dash ‒ ― ‐", "…ellipsis…", "¿Qué? ¡Sí!",
    "@#$%^&*_+=|\\~", "§ ¶ † ‡ • ‰ ′ ″", "₹100 €20 £5 ¥1000 $3.50", "50% off 3/4 1,000,000 3.14159",
    "1+1=2 2*3=6 10/2=5 2^10=1024", "<<48/2=24>>", "#### 72", "e-mail: someone@example.com",
    "https://example.com/path?query=1&x=y#frag", "C:\\Users\\name\\file.txt", "/usr/local/bin/python3",
    "def f(x):\n    return x**2  # square\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "SELECT * FROM users WHERE id = 42;", "console.log(`template ${x}`);", "#include <stdio.h>",
    "std::vector<std::string> v{\"a\", \"b\"};", "x => x * 2", "fn main() { println!(\"hi\"); }",
    "<div class=\"a\">text</div>", "{\"json\": [1, 2, {\"k\": null}]}", "$ ls -la | grep foo > out.txt",
    "[CLS] [SEP] [MASK] [PAD] [UNK]", "hi [MASK] x", "hi[MASK]x", "[mask] [Mask]", "[CLS][SEP]", "[UNK]x",
    "a" * 100, "a" * 101, "é" * 100, "é" * 101, "ab" * 60, "x" * 250, "word " * 300, "中" * 300,
    "Mr. O'Neil's dog—isn't it?", "don't won't can't I'm you're", "U.S.A. e.g. i.e. etc.",
    "CamelCaseWordsHere snake_case_words kebab-case-words", "ALLCAPS lowercase MiXeD",
    "tab\tseparated\tvalues", "line1\nline2\r\nline3\rline4", "trailing spaces   ", "   leading spaces",
    "\u2028line sep\u2029para sep", "\x85next line\x0bvt\x0cff", "\x1c\x1d\x1e\x1f", "\u180e\u2060\u2061",
]

POOLS = {
    "ascii": [chr(c) for c in range(0x20, 0x7F)] + ["\t", "\n", " ", " ", " "],
    "latin": [chr(c) for c in range(0xA0, 0x250)],
    "greek_cyrillic": [chr(c) for c in range(0x370, 0x530)],
    "combining": [chr(c) for c in range(0x300, 0x370)] + [chr(c) for c in range(0x1AB0, 0x1B00)],
    "cjk": [chr(c) for c in range(0x4E00, 0x4F00)] + [chr(c) for c in range(0x3040, 0x3100)] +
           [chr(c) for c in range(0xF900, 0xF950)] + [chr(c) for c in range(0xFF00, 0xFF70)],
    "hangul": [chr(c) for c in range(0xAC00, 0xAD00)] + [chr(c) for c in range(0x1100, 0x1200)],
    "indic": [chr(c) for c in range(0x900, 0xE00)],
    "punct": [chr(c) for c in range(0x2000, 0x2070)] + [chr(c) for c in range(0x2E00, 0x2E60)] +
             [chr(c) for c in range(0x3000, 0x3040)],
    "emoji": [chr(c) for c in range(0x1F300, 0x1FB00)] + ["\u200d", "\ufe0f"],
    "any": None,
}


def random_strings(rng, n):
    out = []
    names = list(POOLS)
    for i in range(n):
        k = rng.choice(names)
        length = rng.choice([1, 2, 3, 5, 8, 13, 30, 80])
        chars = []
        for _ in range(length):
            if k == "any" or rng.random() < 0.05:
                cp = rng.randrange(0x110000)
                while 0xD800 <= cp <= 0xDFFF:
                    cp = rng.randrange(0x110000)
                chars.append(chr(cp))
            else:
                pool = POOLS[k] if rng.random() < 0.8 else POOLS["ascii"]
                chars.append(rng.choice(pool))
        out.append("".join(chars))
    return out


def data_refs(rng):
    """(ref, text) pairs from every data set, fields that matter to the router."""
    refs = []

    def sample(rel, fields, count):
        lines = [l for l in data_lines(rel) if l]
        for line in rng.sample(range(len(lines)), count):
            for field in fields:
                ref = [rel, line, field]
                refs.append((ref, resolve_ref(ref)))

    sample("gsm8k/train.jsonl", ["question", "answer"], 120)
    sample("gsm8k/test.jsonl", ["question"], 60)
    sample("arc_challenge/ARC-Challenge-Train.jsonl", ["question.stem", "question.choices.0.text"], 80)
    sample("arc_challenge/ARC-Challenge-Test.jsonl", ["question.stem"], 60)
    sample("squad/dev.jsonl", ["question", "context", "answers.text.0"], 80)
    sample("squad/train_subset.jsonl", ["question"], 40)
    sample("codealpaca/code_alpaca_2k.jsonl", ["instruction", "input", "output"], 110)
    return refs


def make_wordpiece():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    rng = random.Random(1234)
    rows = [({"text": s}, s) for s in HAND_WRITTEN]
    rows += [({"text": s}, s) for s in random_strings(rng, 900)]
    rows += [({"ref": ref}, text) for ref, text in data_refs(rng)]
    OUT_GOLDEN.mkdir(parents=True, exist_ok=True)
    with open(OUT_GOLDEN / "wordpiece.jsonl", "w", encoding="utf-8") as f:
        for row, text in rows:
            row["ids"] = tok.encode(text).ids
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote wordpiece.jsonl: {len(rows)} strings")


# ---------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------
def embedding_texts(rng):
    rows = [({"text": s}, s) for s in HAND_WRITTEN[:60]]
    rows += [({"text": s}, s) for s in [
        "", "A", "The cat sat on the mat.", " ".join(["long"] * 400),
        " ".join(f"word{i}" for i in range(300)), "Question: What is 2+2?\n\nAnswer:",
        "Create a basic C# program to print out the current date and time.\n    \nAnswer:",
    ]]
    rows += [({"text": s}, s) for s in random_strings(rng, 30)]
    for ref, text in data_refs(rng)[::5]:
        rows.append(({"ref": ref}, text))
    # Long texts (> 256 word pieces): SQuAD contexts, alone and three joined.
    squad = [l for l in data_lines("squad/dev.jsonl") if l]
    for line in rng.sample(range(len(squad)), 10):
        rows.append(({"ref": ["squad/dev.jsonl", line, "context"]}, resolve_ref(["squad/dev.jsonl", line, "context"])))
    for _ in range(12):
        row = {"refs": [["squad/dev.jsonl", line, "context"] for line in rng.sample(range(len(squad)), 3)],
               "sep": "\n\n"}
        rows.append((row, resolve_row(row)))
    return rows


def make_embeddings():
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(MODEL_DIR), device="cpu")
    rng = random.Random(99)
    rows = embedding_texts(rng)
    texts = [t for _, t in rows]
    emb = model.encode(texts, batch_size=16, convert_to_numpy=True, normalize_embeddings=False)
    tok = model.tokenizer
    n_long = sum(1 for t in texts if len(tok(t)["input_ids"]) > 256)
    (OUT_GOLDEN / "embeddings.f16").write_bytes(emb.astype("<f2").tobytes())
    meta = {"model": "all-MiniLM-L6-v2", "dim": int(emb.shape[1]), "dtype": "f16",
            "texts": [r for r, _ in rows]}
    (OUT_GOLDEN / "embeddings.json").write_text(json.dumps(meta, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote embeddings: {len(texts)} texts, {n_long} longer than 256 pieces")


# ---------------------------------------------------------------------------
# Router: templates and the reference's similarity()
# ---------------------------------------------------------------------------
def hf_arc(record):  # the AI2 file's record in the HF ai2_arc row form the reference reads
    return {"question": record["question"]["stem"],
            "choices": {"text": [c["text"] for c in record["question"]["choices"]],
                        "label": [c["label"] for c in record["question"]["choices"]]},
            "answerKey": record["answerKey"]}


# Transcriptions of jb-01/LoRA-TLE utils/data.py cleanEmbeddigns (format only).
def fmt_arc(example):
    choices = "\n".join(f"{label}. {text}" for label, text in zip(example["choices"]["label"], example["choices"]["text"]))
    return f"Question: {example['question']}\nChoices: {choices}\n\nAnswer: {example['answerKey']}"


def fmt_codealpaca(example):
    if example["input"] != "":
        return f"{example['instruction']}\nInput: {example['input']}\n\nAnswer: {example['output']}"
    return f"{example['instruction']}\n\nAnswer: {example['output']}"


def fmt_gsm8k(example):
    return f"Question: {example['question']}\n\nAnswer: {example['answer']}"


def fmt_squad(example):
    return f"Context:\n{example['context']}\n\nQuestion: {example['question']}\n\nAnswer: {example['answers']['text'][0]}"


TASKS = [  # the reference's order: ai2_arc, gsm8k, CodeAlpaca, SQuAD
    ("arc_challenge", "arc_challenge/ARC-Challenge-Train.jsonl", lambda r: fmt_arc(hf_arc(r))),
    ("gsm8k", "gsm8k/train.jsonl", fmt_gsm8k),
    ("codealpaca", "codealpaca/code_alpaca_2k.jsonl", fmt_codealpaca),
    ("squad", "squad/dev.jsonl", fmt_squad),
]
CENTROID_RECORDS = 48  # first N records of each file; enough to make distinct centroids


def reference_similarity(prompt_embedding, centroids):
    """similarity() of jb-01/LoRA-TLE evals.py on given embeddings, step by step."""
    import torch

    scores = []
    for centroid in centroids:
        cos = torch.nn.CosineSimilarity(dim=0, eps=1e-6)
        scores.append(cos(prompt_embedding, centroid))
    temperature = 4.0
    max_index = scores.index(max(scores))
    scores[max_index] *= temperature
    return torch.nn.functional.softmax(torch.tensor(scores), dim=0)


def make_router():
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(MODEL_DIR), device="cpu")
    centroids, formatted = [], []
    for name, rel, fmt in TASKS:
        lines = [l for l in data_lines(rel) if l][:CENTROID_RECORDS]
        texts = [fmt(json.loads(l)) for l in lines]
        for i in range(0, len(texts), 7):
            formatted.append({"task": name, "file": rel, "line": i, "text": texts[i]})
        emb = torch.tensor(model.encode(texts, batch_size=16))
        centroids.append(torch.mean(emb, dim=0))
    prompts = [
        "Create a basic C# program to print out the current date and time.\n    \nAnswer:",
        "What is the cosine similarity between two vectors?\n\nAnswer:",
        "", "hello", "Question: Janet has 3 apples and buys 5 more. How many does she have?\n\nAnswer:",
    ]
    rng = random.Random(7)
    for rel, field in [("gsm8k/test.jsonl", "question"), ("arc_challenge/ARC-Challenge-Test.jsonl", "question.stem"),
                       ("squad/dev.jsonl", "question"), ("codealpaca/code_alpaca_2k.jsonl", "instruction")]:
        lines = [l for l in data_lines(rel) if l]
        for line in rng.sample(range(len(lines)), 12):
            prompts.append(resolve_ref([rel, line, field]))
    prompt_emb = [torch.tensor(e) for e in model.encode(prompts)]
    # Embeddings no text gives, for the policy's corners: all similarities 0
    # (ties, and the eps of CosineSimilarity), all negative (the reference
    # then shrinks the largest), and a random direction.
    gen = torch.Generator().manual_seed(3)
    synthetic = {
        "zero vector": torch.zeros(384),
        "minus the sum of the centroids": -torch.nn.functional.normalize(torch.stack(centroids).sum(0), dim=0),
        "minus the arc_challenge centroid": -torch.nn.functional.normalize(centroids[0], dim=0),
        "random direction": torch.nn.functional.normalize(torch.randn(384, generator=gen), dim=0),
    }
    prompts += [None] * len(synthetic)
    prompt_emb += list(synthetic.values())
    weights = [reference_similarity(e, centroids).tolist() for e in prompt_emb]
    sims = [[float(torch.nn.CosineSimilarity(dim=0, eps=1e-6)(e, c)) for c in centroids] for e in prompt_emb]
    blob = torch.stack(centroids).numpy().astype("<f4").tobytes() + \
        torch.stack(prompt_emb).numpy().astype("<f4").tobytes()
    (OUT_GOLDEN / "router.f32").write_bytes(blob)
    meta = {"tasks": [{"name": n, "file": rel, "records": CENTROID_RECORDS} for n, rel, _ in TASKS],
            "dim": 384, "temperature": 4.0, "formatted": formatted,
            "prompts": [{"text": p, "weights": w, "similarities": s} for p, w, s in zip(prompts, weights, sims)]}
    for row, name in zip(meta["prompts"][-len(synthetic):], synthetic):
        del row["text"]
        row["synthetic"] = name
    (OUT_GOLDEN / "router.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote router golden: {len(prompts)} prompts, {len(formatted)} formatted records")


def check_weights():
    """Is the fetched model.safetensors the official file, up to its header?"""
    from safetensors.numpy import load_file, save_file
    import tempfile

    path = MODEL_DIR / "model.safetensors"
    data = path.read_bytes()
    print(f"{path.relative_to(ROOT)}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    tensors = load_file(str(path))
    extra = {k: v for k, v in tensors.items() if k == "embeddings.position_ids"}
    for name, t in extra.items():
        print(f"  extra buffer {name}: {t.dtype} {list(t.shape)}, equals arange: {bool((t == range(t.shape[-1])).all())}")
    rest = {k: v for k, v in tensors.items() if k not in extra}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.safetensors"
        save_file(rest, str(out), metadata={"format": "pt"})
        recon = out.read_bytes()
    digest = hashlib.sha256(recon).hexdigest()
    print(f"  without {', '.join(extra) or 'nothing'}, re-serialised: {len(recon)} bytes, sha256 {digest}")
    print("  => MATCHES the official model.safetensors" if digest == OFFICIAL_SHA256 else
          "  => does NOT match the official model.safetensors")


def make_whitening():
    import numpy as np
    dim, lam = 6, 0.1
    tasks = []
    for t, n in enumerate([5, 7, 4]):
        rows = np.array([[np.cos(0.7 * i + 1.3 * j + 2.1 * t) + (0.8 if j == t else 0.0) for j in range(dim)]
                         for i in range(n)])
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        tasks.append(rows.astype(np.float32))
    x = [r.astype(np.float64) for r in tasks]
    centroids = np.stack([r.mean(0) for r in x])
    mean = centroids.mean(0)
    within = sum(np.cov(r.T, bias=True) for r in x) / len(x)
    reg = within + lam * np.trace(within) / dim * np.eye(dim)
    w, v = np.linalg.eigh(reg)
    whiten = v @ np.diag(w ** -0.5) @ v.T
    queries = np.array([[np.sin(0.9 * q + 0.4 * j) for j in range(dim)] for q in range(3)])

    def unit(a):
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    zq = unit((unit(queries) - mean) @ whiten)
    zc = unit((centroids - mean) @ whiten)  # a centroid is a mean of unit vectors: not re-normalised
    out = {"source": "scripts/make_golden_router.py whitening (numpy " + np.__version__ + ")",
           "dim": dim, "lambda": lam,
           "tasks": [r.tolist() for r in tasks],
           "centroids": centroids.tolist(), "mean": mean.tolist(), "matrix": whiten.tolist(),
           "queries": queries.tolist(), "similarities": (zq @ zc.T).tolist()}
    path = ROOT / "tests/golden/router/whitening.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    steps = {"tables": make_tables, "wordpiece": make_wordpiece, "embeddings": make_embeddings,
             "router": make_router, "whitening": make_whitening, "check-weights": check_weights}
    if what == "all":
        for fn in steps.values():
            fn()
    elif what in steps:
        steps[what]()
    else:
        sys.exit(f"unknown step {what!r}; steps: {', '.join(steps)}, all")


if __name__ == "__main__":
    main()
