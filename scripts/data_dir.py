#!/usr/bin/env python3
"""Where tokenlora's data sets live: the one rule every script follows (and
tests/test_util.cc DataDir() in C++).

  1. $TOKENLORA_DATA, when set and not empty: an existing copy anywhere;
  2. else data/ in the checkout, where scripts/fetch-data downloads to;
  3. else ../shared/data beside the checkout (this project's machines);
  4. else data/ in the checkout (absent: run scripts/fetch-data).

The folder holds gsm8k/, arc_challenge/, squad/, codealpaca/ and tokenizers/
as README.md ("Data sets") describes. Run as a program, prints the folder.
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_dir(root: Path = ROOT) -> Path:
    env = os.environ.get("TOKENLORA_DATA", "")
    if env:
        return Path(env)
    own = root / "data"
    if own.is_dir():
        return own
    shared = root.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    return own


if __name__ == "__main__":
    print(data_dir())
    sys.exit(0)
