"""A console script that needs MarkupSafe's C extension: the smoke test fails if it is not this machine's."""

import platform

from markupsafe import _speedups, escape


def main() -> None:
    print(escape("<multi-app>"), platform.machine(), _speedups.__name__)
