"""Deliberately non-reproducible: writes the current time (in nanoseconds) into a packaged file."""

import time
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class StampHook(BuildHookInterface):
    def initialize(self, version, build_data):
        stamp = Path(self.root) / "build-stamp.txt"
        stamp.write_text(f"built at {time.time_ns()}\n")
        build_data["force_include"][str(stamp)] = "unreproducible/stamp.txt"
