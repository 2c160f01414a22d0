"""The corpus runner records a project that runs past its time as an outcome instead of ending the run."""

from __future__ import annotations

from tests.corpus.projects import CORPUS
from tests.corpus.runner import run_isolated


def test_a_project_past_its_time_is_an_outcome() -> None:
    outcome = run_isolated(CORPUS[0], timeout=0.01)
    assert (outcome.name, outcome.plain.built, outcome.repro.built) == (CORPUS[0].sdist.name, False, False)
    assert outcome.plain.error.startswith("timed out after 0 s")
