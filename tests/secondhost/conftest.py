"""The second host's timings appear in the test session's summary (CI logs show them without `-s`)."""

from __future__ import annotations

import pytest

#: Lines the second-host tests add: how long the chroot and every step on each host took.
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("second host")
        for line in SUMMARY:
            terminalreporter.write_line(line)
