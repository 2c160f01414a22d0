"""repro-build passes values as parameters, never through its own process environment.

Setting ``os.environ`` to hand a value to a callee (as ``verify`` once did with ``SOURCE_DATE_EPOCH``)
leaks it into everything else the process runs and is undone only if every path restores it. A child
process gets its variables through its own ``env=`` mapping instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "reprobuild"
_MUTATORS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def _is_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)


def mutations(tree: ast.AST) -> list[int]:
    """Line numbers where ``os.environ`` is assigned to, deleted from or mutated, or ``os.putenv`` is called."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        else:
            targets = []
        if any(isinstance(t, ast.Subscript) and _is_environ(t.value) for t in targets):
            lines.add(targets[0].lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            mutator = node.func.attr in _MUTATORS and _is_environ(node.func.value)
            if mutator or node.func.attr in ("putenv", "unsetenv"):
                lines.add(node.lineno)
    return sorted(lines)


def test_the_finder_finds_each_form() -> None:
    code = "import os\nos.environ['A'] = '1'\nos.environ.update(A='1')\ndel os.environ['A']\nos.putenv('A', '1')\n"
    assert mutations(ast.parse(code)) == [2, 3, 4, 5]
    assert mutations(ast.parse("import os\nenv = {**os.environ, 'A': '1'}\nos.environ.get('A')\n")) == []


def test_no_module_of_repro_build_mutates_its_environment() -> None:
    found = [
        f"{path.relative_to(SRC.parent)}:{line}"
        for path in sorted(SRC.rglob("*.py"))
        for line in mutations(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == []
