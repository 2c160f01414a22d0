"""The real-world corpus (``tests/corpus/projects.py``): every sdist plain ``uv build`` builds, repro-build
builds from a checkout without edits, and at least 90 % of them bit-identical across varied path, umask,
TZ and locale; any that differ are named with the members that differ.

One test, about ten minutes on two cores (projects are built two at a time); ``benchmarks/RESULTS.md``
has the table from ``python -m tests.corpus.runner``. ``CORPUS_PROJECTS=levenshtein,frozenlist`` runs only
those projects (each must then build as plain ``uv build`` does, and differ only with a named cause);
``python -m tests.corpus.runner NAME ...`` prints their table.
"""

from __future__ import annotations

import os

import pytest

from tests.corpus.projects import CORPUS, Project
from tests.corpus.runner import run_corpus, table

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.corpus]


def _selected() -> tuple[Project, ...]:
    names = [n.strip() for n in os.environ.get("CORPUS_PROJECTS", "").split(",") if n.strip()]
    by_name = {p.sdist.name: p for p in CORPUS}
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        pytest.fail(f"CORPUS_PROJECTS names {unknown}, not in the corpus: {sorted(by_name)}")
    return tuple(by_name[n] for n in names)


def test_real_sdists_build_and_reproduce() -> None:
    selected = _selected()
    if not selected:
        assert len(CORPUS) >= 20
        assert len({p.backend.split(" ")[0].split("+")[0] for p in CORPUS}) >= 8  # every backend family
    outcomes = run_corpus(selected or CORPUS, jobs=2)
    report = table(outcomes)
    print(report)
    plain_built = [o for o in outcomes if o.plain.built]
    if not selected:
        assert len(plain_built) >= 20, report
    not_built = [f"{o.name}: {o.repro.error}" for o in plain_built if not o.repro.built]
    assert not_built == [], report
    identical = [o for o in plain_built if o.repro.identical]
    assert len(identical) >= 0.9 * len(plain_built) or selected, report
    for o in plain_built:
        if not o.repro.identical:
            assert o.repro.differences, f"{o.name}: differs without a named cause\n{report}"
