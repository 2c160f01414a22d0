"""Writes the absolute build directory into a generated module, like meson-python's _build_config.py."""

from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        path = Path(self.root) / "src" / "embeds_path" / "_build_config.py"
        path.write_text(f"SOURCE_DIR = {self.root!r}\n", encoding="utf-8")
        build_data["force_include"][str(path)] = "embeds_path/_build_config.py"
