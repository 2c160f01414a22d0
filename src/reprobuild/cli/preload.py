"""Import, on a thread, modules the main thread needs only later.

A warm ``repro-build image`` waits on the project wheel's build backend, a separate process, for a good
part of a second; the modules its later steps need (the manifest's schema, the registry client's HTTP
stack, the engine's SDK) would otherwise be imported after that wait, one after the other, on the
critical path. :func:`preload` imports them meanwhile. Python's import lock makes a module imported
here and needed by the main thread at the same moment a wait for it, never a second copy.

Nothing here changes what is imported or what it does, only when: a module that fails to import here
is left for the main thread, whose own import then raises the error where errors are reported.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence


def _import_all(names: Sequence[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            return  # the main thread imports it again and reports the error


def preload(names: Sequence[str]) -> threading.Thread:
    """Start importing ``names`` (in that order) on a thread; the interpreter waits for it at exit."""
    thread = threading.Thread(target=_import_all, args=(tuple(names),), name="repro-build-preload")
    thread.start()
    return thread
