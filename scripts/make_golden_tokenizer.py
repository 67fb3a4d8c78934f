#!/usr/bin/env python3
"""Golden data for tests/tokenizer (run by hand; CI never runs it).

    /work/venv-ref/bin/python scripts/make_golden_tokenizer.py

Needs: tokenizers, transformers, sentencepiece, gguf; the shared data folder
(scripts/data_dir.py: $TOKENLORA_DATA, data/ or ../shared/data).

Writes
  tests/data/tokenizer/spm_llama2/tokenizer.model      SentencePiece BPE, 2000 pieces
  tests/data/tokenizer/spm_llama2/tokenizer.json       its HF form, Llama-2 hub layout
  tests/data/tokenizer/spm_llama2/tokenizer_config.json
  tests/data/tokenizer/spm_metaspace/tokenizer.json    its HF form, Metaspace layout
  tests/data/tokenizer/spm_llama2.gguf                 vocab-only GGUF (llama.cpp keys)
  tests/golden/tokenizer/encode.jsonl                  strings + reference ids
  tests/golden/tokenizer/added_tokens_patch.json       lstrip/rstrip/single_word/normalized cases
  tests/golden/tokenizer/long.json                     very long runs: id count and checksum
  tests/golden/tokenizer/variants.json                 other pre-tokenizer/normalizer settings
  tests/golden/tokenizer/chat.json                     chat templates rendered by transformers

The SentencePiece model is trained like Llama 2's (BPE, byte_fallback,
identity normalisation, dummy prefix, digits split, whitespace kept) on text
from the shared data, so byte fallback is exercised by anything non-English.

HF layouts of the small model:
  * spm_llama2: what meta-llama/Llama-2-7b-hf ships, i.e. the `legacy=True`
    converter output: normalizer Sequence[Prepend("▁"), Replace(" ", "▁")],
    no pre-tokenizer, BPE with byte_fallback, unk "<unk>", fuse_unk. This is
    the layout that agrees with SentencePiece itself (and with llama.cpp's GGUF
    path, which re-adds the prefix space after every special token as legacy
    does), so the GGUF loader is checked against these ids.
  * spm_metaspace: what transformers 5 `LlamaTokenizer` (legacy=False) builds:
    no normalizer, Metaspace(prepend_scheme="first", split=False). It differs
    from SentencePiece on text that starts with a space and after special
    tokens; it has its own ids.
Merges for both come from transformers' own SentencePiece extraction (piece id
order, which is score order for a BPE model).

encode.jsonl, one JSON object a line:
  {"text": s}, or {"ref": [file under the data folder, 0-based line, field path]},
  or {"refs": [ref0, ref1], "fmt": "...{0}...{1}..."} (two texts glued into
  a chat-like string), then ids per tokenizer. Keys, and the key they fall
  back to when absent (absent = identical ids, to keep the file small):
    smollm2      SmolLM2-135M-Instruct tokenizer.json, parse_special
    smollm2_raw  -> smollm2       special tokens encoded as text
    spm          spm_llama2, parse_special
    spm_raw      -> spm
    spm_meta     -> spm           spm_metaspace, parse_special
    spm_meta_raw -> spm_meta
    flags        -> smollm2       SmolLM2 with added-token options changed by
    flags_raw    -> smollm2_raw   tests/golden/tokenizer/added_tokens_patch.json
    llama3_pre   -> smollm2       SmolLM2's vocabulary with Llama 3's pre-tokenizer
    qwen2_pre    -> llama3_pre    ... with Qwen2's (its NFC normalizer left out,
                                  as llama.cpp does)
  "parse_special=False" is tokenizers' `encode_special_tokens = True`.
"""

import json
import os
import random
import sys
from pathlib import Path

import gguf
import sentencepiece as spm
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE
from transformers import LlamaTokenizer, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from data_dir import data_dir  # noqa: E402

DATA = data_dir()  # $TOKENLORA_DATA, data/ (scripts/fetch-data) or ../shared/data
SMOLLM2_JSON = DATA / "tokenizers/SmolLM2-135M-Instruct/tokenizer.json"
OUT_DATA = ROOT / "tests/data/tokenizer"
OUT_GOLDEN = ROOT / "tests/golden/tokenizer"

# ---------------------------------------------------------------------------
# Chat templates, verbatim from the models' tokenizer_config.json files.
# ---------------------------------------------------------------------------
CHATML_SMOLLM2 = (  # HuggingFaceTB/SmolLM2-135M-Instruct (also in its GGUF)
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
CHATML_QWEN2 = (  # Qwen/Qwen2-0.5B-Instruct
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
CHATML_PLAIN = (  # teknium/OpenHermes-2.5-Mistral-7B: ChatML without a default system message
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA2 = (  # meta-llama/Llama-2-7b-chat-hf ('\\n' is a Jinja escape inside the template text)
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
LLAMA3 = (  # meta-llama/Meta-Llama-3-8B-Instruct
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
ZEPHYR = (  # HuggingFaceH4/zephyr-7b-beta
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}")

# name, template, bos, eos, expected ChatFormat, whether roles must alternate user/assistant
CHAT_TEMPLATES = [
    ("smollm2", CHATML_SMOLLM2, "<|im_start|>", "<|im_end|>", "chatml", False),
    ("qwen2", CHATML_QWEN2, None, "<|im_end|>", "chatml", False),
    ("chatml", CHATML_PLAIN, "<s>", "<|im_end|>", "chatml", False),
    ("llama2", LLAMA2, "<s>", "</s>", "llama2", True),
    ("llama3", LLAMA3, "<|begin_of_text|>", "<|eot_id|>", "llama3", False),
    ("zephyr", ZEPHYR, "<s>", "</s>", "zephyr", False),
]

CONVERSATIONS = [
    [("user", "Hello!")],
    [("system", "You are terse."), ("user", "What is 2+2?")],
    [("system", "You are terse."), ("user", "What is 2+2?"), ("assistant", "4"), ("user", "And 3+3?")],
    [("user", "  padded question \n"), ("assistant", "\tpadded answer  "), ("user", "\n")],
    [("user", "Ünïcödé 你好 🙂\nsecond line"), ("assistant", "Sure: ٣ + ½")],
    [("system", "  Be brief.  "), ("user", "List: <|im_start|> [INST] <s>")],
    [("user", "")],
    [("user", "Hi"), ("assistant", "Hello, how can I help?")],
]


# Added-token options SmolLM2 does not use, applied to its tokenizer.json (by
# the test too): lstrip, rstrip, single_word, non-special and normalized tokens.
ADDED_TOKENS_PATCH = {
    "set": [{"id": 1, "lstrip": True}, {"id": 2, "rstrip": True}, {"id": 3, "single_word": True}],
    "append": [
        {"id": 49152, "content": "tokenlora", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": True, "special": False},
        {"id": 49153, "content": " world!", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": False},
        {"id": 49154, "content": "<think>", "single_word": False, "lstrip": True, "rstrip": True,
         "normalized": False, "special": False},
        {"id": 49155, "content": "zqx", "single_word": True, "lstrip": False, "rstrip": False,
         "normalized": False, "special": False},
        # Content already in the vocabulary: tokenizers keeps the vocabulary's id, not 49156.
        {"id": 49156, "content": "tokenizer", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": False},
    ],
}
FLAG_STRINGS = [
    "say tokenlora now", "tokenlora", "hello world! and world!", "world!world!", "  <think>  reasoning  </think>",
    "<think>", "x<think>y", "x<repo_name>y", "x <repo_name> y", "<repo_name>", "(<repo_name>)", "é<repo_name>",
    "a  <|im_start|>  b", "\t\n<|im_start|>", "<|im_end|>   \n next", "x<|im_end|>\u3000y",
    "zqx azqx zqx. zqx_ _zqx ézqx zqx", "zqx", "zqxzqx", "a zqx", "tokenizers detokenizer tokenizer", " <think> <|im_start|> <|im_end|> ",
]


# The split patterns of meta-llama/Meta-Llama-3-8B and Qwen/Qwen2-0.5B tokenizer.json.
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")


def smollm2_with_pre(pattern, ignore_merges):
    """SmolLM2's vocabulary and merges under another model's pre-tokenizer."""
    j = json.loads(SMOLLM2_JSON.read_text(encoding="utf-8"))
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    j["model"]["ignore_merges"] = ignore_merges
    return Tokenizer.from_str(json.dumps(j))


# Pre-tokenizer and normalizer settings the real tokenizers above do not use,
# each applied to a base tokenizer.json (the test applies the same JSON).
BYTE_LEVEL_NO_REGEX = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}


def split(pattern, behavior, invert=False, regex=True):
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex" if regex else "String": pattern}, "behavior": behavior,
         "invert": invert}, BYTE_LEVEL_NO_REGEX]}


VARIANTS = [
    {"name": "split_string_removed", "base": "smollm2", "pre_tokenizer": split(" ", "Removed", regex=False)},
    {"name": "split_letters_inverted", "base": "smollm2", "pre_tokenizer": split(r"\p{L}+", "Isolated", True)},
    {"name": "split_merged_with_previous", "base": "smollm2", "pre_tokenizer": split(r"\s+", "MergedWithPrevious")},
    {"name": "split_merged_with_next", "base": "smollm2", "pre_tokenizer": split(r"\s+", "MergedWithNext")},
    {"name": "split_contiguous", "base": "smollm2", "pre_tokenizer": split(r"\p{P}", "Contiguous")},
    {"name": "byte_level_prefix_space", "base": "smollm2",
     "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}},
    {"name": "digit_runs", "base": "smollm2", "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}},
    {"name": "normalizer_regex_replace", "base": "smollm2",
     "normalizer": {"type": "Replace", "pattern": {"Regex": r"\s{2,}"}, "content": " "}},
    {"name": "metaspace_split_always", "base": "spm_metaspace",
     "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}},
    {"name": "metaspace_never", "base": "spm_metaspace",
     "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": False}},
]


def variant_tokenizer(variant):
    path = SMOLLM2_JSON if variant["base"] == "smollm2" else OUT_DATA / "spm_metaspace/tokenizer.json"
    j = json.loads(path.read_text(encoding="utf-8"))
    for key in ("pre_tokenizer", "normalizer"):
        if key in variant:
            j[key] = variant[key]
    return Tokenizer.from_str(json.dumps(j))


def patched_smollm2():
    j = json.loads(SMOLLM2_JSON.read_text(encoding="utf-8"))
    for change in ADDED_TOKENS_PATCH["set"]:
        token = next(t for t in j["added_tokens"] if t["id"] == change["id"])
        token.update({k: v for k, v in change.items() if k != "id"})
    j["added_tokens"] += ADDED_TOKENS_PATCH["append"]
    return Tokenizer.from_str(json.dumps(j))


# Very long inputs (regex backtracking, merge queues): text = unit * count + suffix.
LONG_INPUTS = [(" ", 200000, "x"), ("a", 200000, ""), ("\n", 100000, " y"), ("1", 100000, ""),
               ("😀", 50000, ""), ("ab ", 100000, ""), ("你好", 30000, "")]


def checksum(ids):
    """sum((i + 1) * id) mod 2^64: cheap to recompute in C++."""
    return sum((i + 1) * t for i, t in enumerate(ids)) % (1 << 64)


def say(*args):
    print(*args, file=sys.stderr)


# ---------------------------------------------------------------------------
# Test strings
# ---------------------------------------------------------------------------
def handmade_strings():
    s = [
        "", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "\t\t\tx", "a", "A", "ab", "The capital of France is",
        "Hello world", "Hello  world", " Hello world", "Hello world ", "Hello world   ", "  leading and trailing  ",
        "line1\nline2\r\nline3\rline4", "tabs\tin\tthe\ttext", "mixed \t \n \r\n whitespace", "trailing newline\n",
        "para one.\n\npara two.\n\n\n", "word\u00a0nbsp", "ideographic\u3000space", "en\u2002space em\u2003space",
        "thin\u2009space", "mongolian\u180evowel sep", "line\u2028separator", "para\u2029separator",
        "zero\u200bwidth", "no\u200cjoin\u200dzwj", "nel\u0085char", "vt\u000bff\u000cx", "bom\ufeffin text",
        "don't", "I'LL", "we've", "they're", "she'd", "it's", "'s", "'S", "O'Neil's", "rock 'n' roll", "''quoted''",
        "0", "7", "42", "123", "1234", "12345678901234567890", "3.14159265358979", "1,000,000", "-42", "+1e-10",
        "2024-01-15", "12:34:56", "$1,234.56", "50%", "1st 2nd 3rd 4th", "0x1F 0b1010 0o777", "v1.2.3-rc4",
        "１２３ fullwidth digits", "٠١٢٣٤٥٦٧٨٩ Arabic-Indic", "०१२३ Devanagari digits", "½ ¾ ⅓ ² ³ ¹", "Ⅻ Roman numeral",
        "〇一二三 numerals", "phone: +1 (555) 123-4567", "π ≈ 3.14", "x² + y² = z²",
        "你好，世界！", "日本語のテキストです。", "한국어 텍스트", "中文English混合text", "繁體中文與简体中文",
        "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "हिन्दी में लिखा गया वाक्य।", "สวัสดีชาวโลก", "Привет, мир!",
        "Γειά σου Κόσμε", "Ελληνικά και English", "ქართული", "Հայերեն", "தமிழ் உரை", "ᚠᛇᚻ runes", "𐌰𐌱 gothic",
        "café", "cafe\u0301", "naïve résumé", "Ångström", "A\u030angstro\u0308m", "ﬁ ligature", "Ǆ dž digraph",
        "Z\u0351\u0352a\u0353\u0354l\u0355g\u0356o\u0357", "e\u0301\u0302\u0303\u0304\u0305", "\u0301 leading mark",
        "straße STRASSE", "İstanbul ı", "ΣΊΣΥΦΟΣ σίσυφος", "ǅ ǈ ǋ titlecase",
        "🙂", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🏴‍☠️", "🇫🇷🇩🇪🇯🇵", "🇺🇸 flag", "❤️", "✌🏿 peace", "👩🏾‍💻 coder", "🧑‍🤝‍🧑",
        "emoji🙂glued", "🙂🙂🙂🙂🙂", "1️⃣ keycap", "©®™", "☃ snowman ☃", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math", "𝟘𝟙𝟚 math digits",
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi there<|im_end|>\n",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat?<|im_end|>\n<|im_start|>assistant\n",
        "text<|im_end|>text", " <|im_end|> ", "<|im_start|><|im_end|>", "<|im_start|", "|im_start|>", "< |im_start| >",
        "<|IM_START|>", "<|im_start|><|im_start|>", "<<|im_start|>>", "<|endoftext|><|endoftext|>x",
        "<repo_name>tokenlora<file_sep>main.cc", "<filename>a.py\n<gh_stars>10", "<jupyter_code>print(1)",
        "<s>", "</s>", "<unk>", "<s>Hello</s>", "a<s>b", "<s> leading space after bos", "x </s> y", "<s><s></s>",
        "[INST] question [/INST]", "<<SYS>>\nsys\n<</SYS>>", "<|start_header_id|>user<|end_header_id|>",
        "<|user|>\nhi</s>", "<0x41>", "<0x0A>", "▁", "▁▁word", "word▁", "Ġ Ċ ĉ", "â€™ mojibake",
        "def f(x):\n    return x * 2\n", "int main() {\n\treturn 0;\n}\n", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
        "if __name__ == '__main__':\n    main()", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
        "<div class=\"x\">Hello &amp; goodbye</div>", "SELECT * FROM users WHERE id = 42;", "a->b::c<T>(d)",
        "x = y if z else w  # comment", "    indented\n        more\n    back", "#include <vector>\n", "~/.bashrc && ls -la | grep x",
        "https://example.com/path?query=1&b=2#frag", "user@example.com", "C:\\Windows\\System32", "@mention #hashtag",
        "!!!???...", "---", "***bold***", "___", "....", "…", "“smart quotes” ‘single’", "«guillemets»", "—em dash–en dash",
        "a" * 300, "ab" * 200, " " * 50 + "x", "\n" * 20, "1" * 100, "😀" * 40, "hello " * 60,
        "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "tHe QuIcK bRoWn",
        "supercalifragilisticexpialidocious", "antidisestablishmentarianism", "pneumonoultramicroscopicsilicovolcanoconiosis",
    ]
    # Every Unicode whitespace character and a few control characters, alone and between words.
    for cp in [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x180E, 0x2000, 0x2007, 0x200A,
               0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0x00, 0x01, 0x7F, 0xAD, 0xFFFD, 0x10FFFF, 0xE000]:
        c = chr(cp)
        s += [c, "a" + c + "b", "a " + c + " b", "a " + c + "b", "a" + c + c + " b", c + c + "x", "x" + c + c]
    return s


def random_strings(rng, n):
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r",
        "   ",
        ".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`",
        "éèêëàâäôöûüçñÅØß",
        "你好世界中文日本語한국어",
        "مرحباשלוםनमस्ते",
        "🙂👍🏽🎉❤️🇫🇷\u200d",
        "\u0301\u0308\u20e3\ufe0f",
        "<|im_start|><|im_end|><s></s>",
        "'s 't 're ",
    ]
    out = []
    for _ in range(n):
        length = rng.randint(1, 60)
        s = "".join(rng.choice(rng.choice(pools)) for _ in range(length))
        out.append(s)
    return out


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def get_field(obj, field):
    for part in field.split("."):
        obj = obj[part]
    return obj


def shared_refs():
    """Real texts as (ref, text); the test re-reads the text from the data folder."""
    refs = []

    def take(rel, field, count, stride, max_chars):
        rows = read_jsonl(DATA / rel)
        taken = 0
        seen = set()
        for line in range(0, len(rows), stride):
            text = get_field(rows[line], field)
            if not text or len(text) > max_chars or text in seen:
                continue
            seen.add(text)
            refs.append(([rel, line, field], text))
            taken += 1
            if taken == count:
                break

    take("gsm8k/train.jsonl", "question", 420, 17, 2000)
    take("gsm8k/train.jsonl", "answer", 120, 41, 2000)
    take("gsm8k/test.jsonl", "question", 60, 19, 2000)
    take("arc_challenge/ARC-Challenge-Train.jsonl", "question.stem", 300, 3, 2000)
    take("arc_challenge/ARC-Challenge-Dev.jsonl", "question.stem", 60, 3, 2000)
    take("squad/dev.jsonl", "context", 80, 61, 1200)
    take("squad/dev.jsonl", "question", 120, 83, 2000)
    take("codealpaca/code_alpaca_2k.jsonl", "instruction", 200, 7, 2000)
    take("codealpaca/code_alpaca_2k.jsonl", "input", 120, 11, 2000)
    take("codealpaca/code_alpaca_2k.jsonl", "output", 160, 5, 1500)
    return refs


# ---------------------------------------------------------------------------
# Small SentencePiece model and its HF / GGUF forms
# ---------------------------------------------------------------------------
def training_texts():
    texts = []
    for row in read_jsonl(DATA / "gsm8k/train.jsonl"):
        texts += [row["question"], row["answer"]]
    for row in read_jsonl(DATA / "arc_challenge/ARC-Challenge-Train.jsonl"):
        texts.append(row["question"]["stem"])
        texts += [c["text"] for c in row["question"]["choices"]]
    seen = set()
    for row in read_jsonl(DATA / "squad/dev.jsonl"):
        if row["context"] not in seen:
            seen.add(row["context"])
            texts.append(row["context"])
        texts.append(row["question"])
    for row in read_jsonl(DATA / "codealpaca/code_alpaca_2k.jsonl"):
        texts += [row["instruction"], row["input"], row["output"]]
    return [t for t in texts if t]


def train_spm(model_path):
    import io
    texts = training_texts()
    say(f"training SentencePiece BPE on {len(texts)} texts, {sum(map(len, texts)) / 1e6:.1f} M chars")
    buf = io.BytesIO()
    # Llama 2's trainer settings, scaled down. num_threads=1 and no shuffling keep it deterministic.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=buf, model_type="bpe", vocab_size=2000, byte_fallback=True,
        normalization_rule_name="identity", add_dummy_prefix=True, remove_extra_whitespaces=False,
        split_digits=True, allow_whitespace_only_pieces=True, character_coverage=0.9995, num_threads=1,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, max_sentence_length=1 << 16, minloglevel=2,
        input_sentence_size=0, shuffle_input_sentence=False)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(buf.getvalue())


def build_hf_spm(model_path):
    """Returns (llama2-layout Tokenizer, metaspace-layout Tokenizer)."""
    import shutil
    import tempfile
    # Convert from tokenizer.model alone: from_pretrained would otherwise pick
    # up a tokenizer.json written by an earlier run.
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(model_path, Path(tmp) / "tokenizer.model")
        meta = LlamaTokenizer.from_pretrained(tmp, legacy=False).backend_tokenizer
    model = json.loads(meta.to_str())["model"]
    vocab = model["vocab"]
    merges = [tuple(m) for m in model["merges"]]

    legacy = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    legacy.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    legacy.pre_tokenizer = None
    legacy.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                        decoders.Strip(" ", 1, 0)])
    legacy.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")])
    legacy.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                          special_tokens=[("<s>", 1)])
    return legacy, meta


def write_spm_gguf(sp, path):
    from sentencepiece import sentencepiece_model_pb2 as pb
    proto = pb.ModelProto()
    proto.ParseFromString(sp.serialized_model_proto())
    tokens, scores, types = [], [], []
    for piece in proto.pieces:
        tokens.append(piece.piece)
        scores.append(piece.score)
        # SentencePiece piece types map 1:1 onto llama.cpp's token types.
        types.append({piece.NORMAL: 1, piece.UNKNOWN: 2, piece.CONTROL: 3, piece.USER_DEFINED: 4,
                      piece.UNUSED: 5, piece.BYTE: 6}[piece.type])
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    w.add_chat_template(LLAMA2)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------
def encode(tok, text, parse_special):
    tok.encode_special_tokens = not parse_special
    return tok.encode(text, add_special_tokens=False).ids


def chat_golden():
    """{"templates": {name: {template, bos, eos, format}}, "cases": [...]}; "expected" null = must be refused."""
    from tokenizers import Tokenizer as T
    cases = []
    templates = {}
    for name, template, bos, eos, fmt, alternate in CHAT_TEMPLATES:
        templates[name] = {"template": template, "bos": bos, "eos": eos, "format": fmt}
        specials = [t for t in (bos, eos) if t]
        backend = T(BPE(vocab={t: i for i, t in enumerate(specials)}, merges=[]))
        backend.add_special_tokens(specials)
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos)
        tok.chat_template = template
        for conv in CONVERSATIONS:
            messages = [{"role": r, "content": c} for r, c in conv]
            for gen in (False, True):
                try:
                    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
                except Exception as e:  # Llama 2 refuses a system message after the first or roles out of turn
                    say(f"chat {name}: {type(e).__name__}: {e}")
                    text = None
                cases.append({"name": name, "messages": messages, "add_generation_prompt": gen, "expected": text})
        if alternate:  # a case the template rejects
            bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
            cases.append({"name": name, "messages": bad, "add_generation_prompt": False, "expected": None})
    return {"templates": templates, "cases": cases}


def main():
    rng = random.Random(20240601)
    spm_dir = OUT_DATA / "spm_llama2"
    train_spm(spm_dir / "tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=str(spm_dir / "tokenizer.model"))
    legacy, meta = build_hf_spm(spm_dir / "tokenizer.model")
    legacy.save(str(spm_dir / "tokenizer.json"))
    (OUT_DATA / "spm_metaspace").mkdir(parents=True, exist_ok=True)
    meta.save(str(OUT_DATA / "spm_metaspace/tokenizer.json"))
    (spm_dir / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "legacy": True, "chat_template": LLAMA2}, indent=2) + "\n")
    write_spm_gguf(sp, OUT_DATA / "spm_llama2.gguf")

    smol = Tokenizer.from_file(str(SMOLLM2_JSON))
    assert encode(smol, "The capital of France is", True) == [504, 3575, 282, 4649, 314]

    flags = patched_smollm2()
    llama3_pre = smollm2_with_pre(LLAMA3_PATTERN, True)
    qwen2_pre = smollm2_with_pre(QWEN2_PATTERN, False)
    items = [({"text": s}, s) for s in handmade_strings() + FLAG_STRINGS]
    items += [({"text": s}, s) for s in random_strings(rng, 300)]
    items += [({"ref": ref}, text) for ref, text in shared_refs()]
    # Shared texts glued to special tokens and to each other, to get long mixed inputs.
    refs = shared_refs()
    glue = ["<|im_start|>user\n{0}<|im_end|>\n<|im_start|>assistant\n{1}<|im_end|>", "<s>[INST] {0} [/INST] {1}</s>"]
    for i in range(0, 120, 3):
        a, b = refs[i * 7 % len(refs)], refs[(i * 13 + 5) % len(refs)]
        for fmt in glue:
            items.append(({"refs": [a[0], b[0]], "fmt": fmt}, fmt.replace("{0}", a[1]).replace("{1}", b[1])))

    lines = []
    sp_disagree = 0
    for key, text in items:
        row = dict(key)
        ids = {
            "smollm2": encode(smol, text, True), "smollm2_raw": encode(smol, text, False),
            "spm": encode(legacy, text, True), "spm_raw": encode(legacy, text, False),
            "spm_meta": encode(meta, text, True), "spm_meta_raw": encode(meta, text, False),
            "flags": encode(flags, text, True), "flags_raw": encode(flags, text, False),
            "llama3_pre": encode(llama3_pre, text, True), "qwen2_pre": encode(qwen2_pre, text, True),
        }
        if sp.encode(text) != ids["spm_raw"]:
            sp_disagree += 1
            say("sentencepiece != HF:", repr(text[:80]))
        fallback = {"smollm2_raw": "smollm2", "spm_raw": "spm", "spm_meta": "spm", "spm_meta_raw": "spm_meta",
                    "flags": "smollm2", "flags_raw": "smollm2_raw", "llama3_pre": "smollm2",
                    "qwen2_pre": "llama3_pre"}
        for k, v in ids.items():
            if k not in fallback or v != ids[fallback[k]]:
                row[k] = v
        lines.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")))

    OUT_GOLDEN.mkdir(parents=True, exist_ok=True)
    (OUT_GOLDEN / "added_tokens_patch.json").write_text(json.dumps(ADDED_TOKENS_PATCH, indent=1) + "\n")
    (OUT_GOLDEN / "encode.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    long_cases = []
    for unit, count, suffix in LONG_INPUTS:
        text = unit * count + suffix
        row = {"unit": unit, "count": count, "suffix": suffix}
        for key, tok in (("smollm2", smol), ("spm", legacy)):
            ids = encode(tok, text, True)
            row[key] = {"n": len(ids), "checksum": checksum(ids)}
        long_cases.append(row)
    (OUT_GOLDEN / "long.json").write_text(json.dumps(long_cases, ensure_ascii=False, indent=1) + "\n")
    variant_cases = []
    variant_toks = [(v["name"], variant_tokenizer(v)) for v in VARIANTS]
    for text in [t for t in handmade_strings() if len(t) <= 80] + random_strings(random.Random(5), 60):
        variant_cases.append({"text": text, "ids": {name: encode(tok, text, True) for name, tok in variant_toks}})
    (OUT_GOLDEN / "variants.json").write_text(
        json.dumps({"variants": VARIANTS, "cases": variant_cases}, ensure_ascii=False, separators=(",", ":")) + "\n")
    chat = chat_golden()
    (OUT_GOLDEN / "chat.json").write_text(json.dumps(chat, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    say(f"{len(lines)} strings ({sum(1 for k, _ in items if 'text' not in k)} from shared data), "
        f"{len(chat['cases'])} chat cases; SentencePiece disagrees with HF on {sp_disagree}")


if __name__ == "__main__":
    main()
