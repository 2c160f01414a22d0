"""The layering of docs/explanation/architecture.md, checked on every import in src/ (function-level ones too).

A module may import from its own layer and the layers below it, never from a layer above (a back
edge), and the imports between modules must form no cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src"
PACKAGE = "reprobuild"

#: Bottom to top; each layer is a list of module prefixes (a package stands for all its modules). A
#: module belongs to the layer of its longest matching prefix, so the few modules placed apart from
#: their package are named here, each with why; docs/explanation/architecture.md draws the same table.
LAYERS: list[tuple[str, list[str]]] = [
    (
        "foundation",
        [
            "reprobuild",  # the package's __init__: its version
            "reprobuild.errors",
            "reprobuild.distribution",
            "reprobuild.fsutil",
            "reprobuild.urls",
            "reprobuild.epoch",
            "reprobuild.uvbin",
            "reprobuild.templates",
            "reprobuild.cache",
            "reprobuild.cachekey",
            "reprobuild.retry",
            "reprobuild.download",
            "reprobuild.platforms",
            "reprobuild.tomlvalues",
            "reprobuild.lockdefaults",
            "reprobuild.lockdir",
        ],
    ),
    ("oci", ["reprobuild.oci"]),
    # The build manifest's schema (typed sections, strict reading, name and path checks): below attest, whose
    # provenance is derived from a manifest, and below image and manifest, which write and rebuild from it.
    ("manifest-schema", ["reprobuild.manifest.schema", "reprobuild.manifest.validate"]),
    ("base", ["reprobuild.base"]),
    ("attest", ["reprobuild.attest"]),
    ("determinism", ["reprobuild.determinism"]),
    (
        "project",
        [
            "reprobuild.pep517",
            "reprobuild.pyproject",
            "reprobuild.dockerfile_base",
            "reprobuild.gitinfo",
            # The source tree and its version control: config reads backend metadata from an export.
            "reprobuild.wheel.source",
            "reprobuild.wheel.vcs",
        ],
    ),
    ("config", ["reprobuild.config"]),
    (
        "lock",
        [
            "reprobuild.lock",
            # The wheel files a lock names (selection, origins, the download cache): `lock` records them,
            # `image` installs them.
            "reprobuild.image.wheels",
            "reprobuild.image.wheelsources",
        ],
    ),
    ("wheel", ["reprobuild.wheel"]),
    (
        "image",
        ["reprobuild.image"],
    ),
    (
        "manifest",
        [
            "reprobuild.manifest",
            # The JSON summary of an image build, which names the manifest file.
            "reprobuild.image.summary",
        ],
    ),
    ("commands", ["reprobuild.dockerfile", "reprobuild.init"]),
    ("cli", ["reprobuild.cli", "reprobuild.__main__"]),
]

#: Back edges that remain for now, as (importing module, imported package or module); each is a debt to
#: pay, so the list only shrinks. (The last one, determinism.doctor -> config, went with `Target.policy`.)
KNOWN_BACK_EDGES: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _owner(name: str) -> str:
    """The module that ``name`` (a module, or a name imported from one) lives in."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str, path: Path) -> Iterator[str]:
    """Every repro-build module ``module`` imports, at any depth of the code (``TYPE_CHECKING`` too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from pkg import mod` imports the module `pkg.mod`; `from mod import name` the module `mod`.
            names = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                yield _owner(name)


GRAPH = {module: sorted(set(_imports(module, path)) - {module}) for module, path in MODULES.items()}


def _layer(module: str) -> tuple[int, str]:
    """(index, prefix) of the layer ``module`` belongs to, by its longest matching prefix (the package
    itself, ``reprobuild``, stands only for its ``__init__``: a new module must be placed)."""
    best: tuple[int, str] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != PACKAGE and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > len(best[1])):
                best = (index, prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and to docs/explanation/architecture.md"
    return best


def _known(module: str, imported: str) -> bool:
    return any(module == a and (imported == b or imported.startswith(b + ".")) for a, b in KNOWN_BACK_EDGES)


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_no_import_goes_up_a_layer() -> None:
    back = [
        f"{module} ({LAYERS[_layer(module)[0]][0]}) imports {imported} ({LAYERS[_layer(imported)[0]][0]})"
        for module, imported_all in GRAPH.items()
        for imported in imported_all
        if _layer(imported)[0] > _layer(module)[0] and not _known(module, imported)
    ]
    assert back == [], "imports against the layering of docs/explanation/architecture.md:\n" + "\n".join(back)


def test_known_back_edges_still_exist() -> None:
    """An exception that is no longer needed is removed, so the list only ever shrinks."""
    for module, imported in KNOWN_BACK_EDGES:
        assert any(i == imported or i.startswith(imported + ".") for i in GRAPH[module]), (module, imported)


def _cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root, imported in GRAPH.items():
        if root in index:
            continue
        work = [(root, iter(imported))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(GRAPH[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    assert _cycles() == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": ["b"], "b": ["a"], "c": []}, [["a", "b"]]),
        ({"a": ["b"], "b": ["c"], "c": []}, []),
        ({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    monkeypatch: pytest.MonkeyPatch, graph: dict[str, list[str]], expected: list[list[str]]
) -> None:
    monkeypatch.setattr(f"{__name__}.GRAPH", graph)
    assert _cycles() == expected


def test_function_level_imports_count() -> None:
    """An import inside a function is an edge like any other (it is how cycles used to hide)."""
    module = "reprobuild.wheel.build"
    assert "reprobuild.wheel.container" in GRAPH[module]  # imported inside `open_runner`
