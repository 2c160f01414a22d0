"""In-image determinism hook and doctor (installed as ``_repro_build_determinism``).

This file is copied verbatim into images next to a ``.pth`` line (``import _repro_build_determinism``)
and a policy file (``_repro_build_determinism.json``). It uses only the standard library and costs
nothing measurable at start-up: it appends one finder to ``sys.meta_path`` that answers ``None`` for
every module except the watched frameworks. When ``torch`` or ``tensorflow`` is first imported, the
runtime switches that have no environment form are turned on right after the module finishes loading:

- torch: ``torch.use_deterministic_algorithms(True)``, ``torch.backends.cudnn.deterministic = True``,
  ``torch.backends.cudnn.benchmark = False`` (PyTorch "Reproducibility" notes);
- tensorflow: ``tf.config.experimental.enable_op_determinism()`` (TF >= 2.9).

``REPRO_BUILD_DETERMINISM`` controls it: unset/``1``/``strict`` = on (ops without a deterministic
implementation raise), ``warn`` = on with ``warn_only=True`` for torch, ``0``/``off`` = disabled.

This module runs at every interpreter start of an image whose policy covers a framework, so it imports
nothing beyond ``os`` and ``sys`` (already loaded by then) and stays small: compiling it costs well
under a millisecond when there is no byte-code cache. The doctor lives in :mod:`.hookdoctor`
(``python -m _repro_build_determinism_doctor`` in the image).
"""

import os
import sys

# Not `from typing import TYPE_CHECKING`: importing typing at every interpreter start costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only: importing these at interpreter start-up would cost time in every process
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

MODULE = "_repro_build_determinism"
ENV_SWITCH = "REPRO_BUILD_DETERMINISM"
WATCHED = ("torch", "tensorflow")

#: What the hook did, by framework: {"torch": {"applied": True, "error": None}, ...}
APPLIED: "dict[str, dict[str, object]]" = {}


def mode() -> str:
    """``strict``, ``warn`` or ``off`` from ``REPRO_BUILD_DETERMINISM``."""
    value = os.environ.get(ENV_SWITCH, "1").strip().lower()
    if value in ("0", "off", "false", "no", "disabled"):
        return "off"
    if value == "warn":
        return "warn"
    return "strict"


def _apply_torch(module: object) -> None:
    torch = module
    torch.use_deterministic_algorithms(True, warn_only=mode() == "warn")  # type: ignore[attr-defined]
    cudnn = torch.backends.cudnn  # type: ignore[attr-defined]
    cudnn.deterministic = True
    cudnn.benchmark = False


def _apply_tensorflow(module: object) -> None:
    module.config.experimental.enable_op_determinism()  # type: ignore[attr-defined]


_APPLY = {"torch": _apply_torch, "tensorflow": _apply_tensorflow}


def apply(name: str, module: object) -> None:
    """Turn on ``name``'s runtime switches; record, never raise (the doctor reports failures)."""
    try:
        _APPLY[name](module)
        APPLIED[name] = {"applied": True, "error": None}
    except Exception as e:  # a framework too old or too new must not break the import itself
        APPLIED[name] = {"applied": False, "error": f"{type(e).__name__}: {e}"}
        sys.stderr.write(f"repro-build determinism hook: could not configure {name}: {e}\n")


class _Loader:
    """Delegates to the real loader, then applies the switches once the module has executed."""

    def __init__(self, loader: object, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: object) -> object:
        return self._loader.create_module(spec)  # type: ignore[attr-defined]

    def exec_module(self, module: object) -> None:
        for finder in sys.meta_path:
            if type(finder).__name__ == "_Finder":
                finder.pending.discard(self._name)  # type: ignore[attr-defined]
        self._loader.exec_module(module)  # type: ignore[attr-defined]
        apply(self._name, module)

    def __getattr__(self, attr: str) -> object:
        return getattr(self._loader, attr)


class _Finder:
    """A ``sys.meta_path`` entry that only reacts to the first import of a watched framework."""

    def __init__(self, frameworks: tuple[str, ...]) -> None:
        self.pending = set(frameworks)

    def find_spec(
        self, name: str, path: "Sequence[str] | None" = None, target: "ModuleType | None" = None
    ) -> "ModuleSpec | None":
        if name not in self.pending:
            return None
        # `pending` shrinks only when the module really executes: importlib.util.find_spec() also asks.
        spec = None
        for finder in sys.meta_path:
            if type(finder).__name__ == "_Finder" or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, name)  # type: ignore[assignment]  # duck-typed Loader
        return spec


def install(frameworks: tuple[str, ...] = WATCHED) -> bool:
    """Add the finder once (idempotent); False when disabled by ``REPRO_BUILD_DETERMINISM``.

    The image's ``.pth`` line calls this with the frameworks its policy covers.
    """
    if mode() == "off":
        return False
    if any(type(f).__name__ == "_Finder" for f in sys.meta_path):
        return True
    # First in line: the path finder would otherwise answer before this finder is asked.
    sys.meta_path.insert(0, _Finder(tuple(f for f in frameworks if f in _APPLY)))
    return True
