"""The real-world sdist corpus: plain `uv build` vs repro-build, built twice each (see tests/corpus/runner.py).

Prints the table kept in RESULTS.md: for each pinned sdist, whether each tool built it and whether its two
builds (different path, umask, TZ and locale) were bit-identical, the time ratio of repro-build's wheel
step to plain `uv build`, and the members that differ.

    .venv/bin/python benchmarks/bench_corpus.py [--jobs 2] [NAME ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.corpus.runner import main

if __name__ == "__main__":
    raise SystemExit(main())
