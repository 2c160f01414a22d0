"""In-image determinism hook and doctor (installed as ``_repro_build_determinism``).

This file is copied verbatim into images next to a ``.pth`` line
(``import _repro_build_determinism as _m; _m.install(frameworks, seed, switches)``) and a policy file
(``_repro_build_determinism.json``). It uses only the standard library and costs nothing measurable at
start-up: it appends one finder to ``sys.meta_path`` that answers ``None`` for every module except the
watched ones. When a watched module is first imported, it is configured right after it finishes loading:

- torch: ``torch.use_deterministic_algorithms(deterministic_algorithms, warn_only=warn_only)``,
  ``torch.backends.cudnn.deterministic = deterministic_algorithms``, ``torch.backends.cudnn.benchmark =
  cudnn_benchmark`` (PyTorch "Reproducibility" notes), ``torch.set_num_threads(OMP_NUM_THREADS)``;
- tensorflow: ``tf.config.experimental.enable_op_determinism()`` (TF >= 2.8);
- with a seed: ``random.seed(n)``, ``numpy.random.seed(n)`` (the legacy global ``RandomState``),
  ``torch.manual_seed(n)`` (CPU and every CUDA device) and ``tf.random.set_seed(n)``, each at the first
  import of ``random``, ``numpy.random``, ``torch``, ``tensorflow``. JAX has no global generator: its code
  passes a key, ``jax.random.key(int(os.environ["REPRO_BUILD_SEED"]))``; :func:`seed` returns the same number.

``REPRO_BUILD_DETERMINISM`` controls the switches: unset/``1``/``strict`` = as configured, ``warn`` = torch
only warns, ``0``/``off`` = the hook does nothing. ``REPRO_BUILD_SEED`` overrides the seed at run time
(an integer, or ``off``).

This module runs at every interpreter start of an image whose policy covers a framework or a seed, so it
imports nothing beyond ``os`` and ``sys`` (already loaded by then) and stays small. The doctor lives in
:mod:`.hookdoctor` (``python -m _repro_build_determinism_doctor`` in the image).
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
SEED_ENV = "REPRO_BUILD_SEED"
WATCHED = ("torch", "tensorflow")
#: The attribute that marks this hook's finder on ``sys.meta_path`` (the doctor looks for it too).
FINDER_MARKER = "_repro_build_determinism_finder"
#: Modules seeded at their first import, in no particular order (each is seeded on its own).
SEEDED_MODULES = ("random", "numpy.random", "torch", "tensorflow")
#: deterministic_algorithms, cudnn_benchmark, warn_only: the defaults when the .pth line gives none.
DEFAULT_SWITCHES = (True, False, False)

#: What the hook did, by module: {"torch": {"applied": True, "error": None, "seed": 0}, ...}
APPLIED: "dict[str, dict[str, object]]" = {}
#: The seed the .pth line installed (before ``REPRO_BUILD_SEED``), and the switches.
_installed_seed: "int | None" = None
_switches: "tuple[bool, bool, bool]" = DEFAULT_SWITCHES


def mode() -> str:
    """``strict``, ``warn`` or ``off`` from ``REPRO_BUILD_DETERMINISM``."""
    value = os.environ.get(ENV_SWITCH, "1").strip().lower()
    if value in ("0", "off", "false", "no", "disabled"):
        return "off"
    if value == "warn":
        return "warn"
    return "strict"


def seed(default: "int | None" = None) -> "int | None":
    """The seed in effect: ``REPRO_BUILD_SEED`` if set (``off`` = None), else the installed one, else ``default``.

    Raises ``ValueError`` for a value that is neither an integer from 0 to 2**32-1 nor ``off``.
    """
    text = os.environ.get(SEED_ENV)
    if text is None:
        return _installed_seed if _installed_seed is not None else default
    text = text.strip().lower()
    if text in ("off", "none", ""):
        return None
    value = int(text)
    if not 0 <= value < 2**32:
        raise ValueError(f"{SEED_ENV}={text} is not between 0 and 2**32-1")
    return value


def _threads() -> "int | None":
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _apply_torch(torch: "ModuleType") -> None:
    deterministic, benchmark, warn_only = _switches
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only or mode() == "warn")
    cudnn = torch.backends.cudnn
    cudnn.deterministic = deterministic
    cudnn.benchmark = benchmark
    threads = _threads()
    if threads is not None:
        torch.set_num_threads(threads)


def _apply_tensorflow(module: "ModuleType") -> None:
    module.config.experimental.enable_op_determinism()


_APPLY = {"torch": _apply_torch, "tensorflow": _apply_tensorflow}
_SEED = {
    "random": lambda m, n: m.seed(n),
    "numpy.random": lambda m, n: m.seed(n),
    "torch": lambda m, n: m.manual_seed(n),
    "tensorflow": lambda m, n: m.random.set_seed(n),
}


def apply(name: str, module: object, *, switches: bool = True) -> None:
    """Turn on ``name``'s runtime switches and seed it; record, never raise (the doctor reports failures)."""
    record: dict[str, object] = {"applied": False, "error": None}
    try:
        if switches and name in _APPLY:
            _APPLY[name](module)  # type: ignore[arg-type]
            record["applied"] = True
        n = seed()
        if n is not None and name in _SEED:
            _SEED[name](module, n)
            record["seed"] = n
    except Exception as e:  # a framework too old or too new must not break the import itself
        record["error"] = f"{type(e).__name__}: {e}"
        sys.stderr.write(f"repro-build determinism hook: could not configure {name}: {e}\n")
    APPLIED[name] = record


class _Loader:
    """Delegates to the real loader, then configures the module once it has executed."""

    def __init__(self, loader: object, name: str, finder: "_DeterminismFinder") -> None:
        self._loader = loader
        self._name = name
        self._finder = finder

    def create_module(self, spec: object) -> object:
        return self._loader.create_module(spec)  # type: ignore[attr-defined]

    def exec_module(self, module: object) -> None:
        self._finder.pending.discard(self._name)
        self._loader.exec_module(module)  # type: ignore[attr-defined]
        apply(self._name, module, switches=self._name in self._finder.frameworks)

    def __getattr__(self, attr: str) -> object:
        return getattr(self._loader, attr)


def is_ours(finder: object) -> bool:
    """Whether a ``sys.meta_path`` entry is this hook's finder (from this copy of the module or another)."""
    return getattr(finder, FINDER_MARKER, False) is True


class _DeterminismFinder:
    """A ``sys.meta_path`` entry that only reacts to the first import of a watched module.

    Recognised by its marker attribute, never by its class name: virtualenv's ``_virtualenv.pth`` puts a finder
    class called ``_Finder`` on ``sys.meta_path`` of every environment it creates.
    """

    _repro_build_determinism_finder = True

    def __init__(self, frameworks: "tuple[str, ...]", watched: "tuple[str, ...]") -> None:
        self.frameworks = frameworks
        self.pending = set(watched)

    def find_spec(
        self, name: str, path: "Sequence[str] | None" = None, target: "ModuleType | None" = None
    ) -> "ModuleSpec | None":
        if name not in self.pending:
            return None
        # `pending` shrinks only when the module really executes: importlib.util.find_spec() also asks.
        spec = None
        for finder in sys.meta_path:
            if is_ours(finder) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, name, self)  # type: ignore[assignment]  # duck-typed Loader
        return spec


def install(
    frameworks: "tuple[str, ...]" = WATCHED,
    seed_value: "int | None" = None,
    switches: "tuple[bool, bool, bool]" = DEFAULT_SWITCHES,
) -> bool:
    """Add the finder once (idempotent); False when disabled by ``REPRO_BUILD_DETERMINISM``.

    The image's ``.pth`` line calls this with the frameworks its policy covers, its seed and its switches.
    """
    if mode() == "off":
        return False
    if any(is_ours(f) for f in sys.meta_path):
        return True
    global _installed_seed, _switches  # noqa: PLW0603  # set once, by the .pth line
    _installed_seed = seed_value
    _switches = (bool(switches[0]), bool(switches[1]), bool(switches[2]))
    frameworks = tuple(f for f in frameworks if f in _APPLY)
    try:
        seeding = seed() is not None
    except ValueError as e:
        seeding = False
        APPLIED["seed"] = {"applied": False, "error": str(e)}
        sys.stderr.write(f"repro-build determinism hook: {e}; nothing is seeded\n")
    watched = tuple(dict.fromkeys(frameworks + (SEEDED_MODULES if seeding else ())))
    # A module imported before this .pth ran is configured now.
    for name in watched:
        if name in sys.modules:
            apply(name, sys.modules[name], switches=name in frameworks)
    # First in line: the path finder would otherwise answer before this finder is asked.
    sys.meta_path.insert(0, _DeterminismFinder(frameworks, tuple(n for n in watched if n not in sys.modules)))
    return True
