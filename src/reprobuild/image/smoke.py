"""The smoke test: a target's ``smoke`` argv run in its loaded image, without a network, as the image's user.

A byte-identical image can still be broken (a console script that fails at import, a missing shared
library): the rebuild-verify proves the bytes, the smoke test proves the image starts. The argv replaces
the image's entrypoint and command; the container gets ``--network none`` and the user, environment and
working directory of the image config; it is removed afterwards. A non-zero exit (or no exit within the
timeout) is a :class:`SmokeTestError` naming the command, its exit code and the end of its output.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import time
from dataclasses import dataclass
from typing import Any

from reprobuild.errors import ImageError
from reprobuild.oci.engine import ENGINE_ERRORS

#: Seconds a smoke command may run.
TIMEOUT_S = 300
#: Characters of output kept in an error message (the end, where tracebacks end).
_TAIL = 4000


class SmokeTestError(ImageError):
    """The smoke command failed: the image was built (and verified), but it does not start."""

    exit_code = 1


@dataclass(frozen=True)
class SmokeResult:
    """A passed smoke test: the argv, its output and how long it ran."""

    argv: tuple[str, ...]
    output: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "exit_code": 0, "seconds": round(self.seconds, 3), "output": self.output}


def run_smoke(
    client: Any, image_id: str, argv: tuple[str, ...], *, target: str, timeout: int = TIMEOUT_S
) -> SmokeResult:
    """Run ``argv`` in ``image_id`` (loaded in the engine behind ``client``); raise :class:`SmokeTestError`."""
    command = shlex.join(argv)
    start = time.monotonic()
    try:
        container = client.containers.create(
            image_id, entrypoint=[argv[0]], command=list(argv[1:]), network_mode="none", detach=True
        )
    except ENGINE_ERRORS as e:
        raise SmokeTestError(
            f"target {target!r}: the smoke test `{command}` could not start: {e}",
            hint=f"check `smoke` in [tool.repro-build.targets.{target}]: its first word must be a program in the image",
        ) from e
    try:
        try:
            container.start()
            status = container.wait(timeout=timeout)
        except ENGINE_ERRORS as e:
            output = _output(container)
            raise SmokeTestError(
                f"target {target!r}: the smoke test `{command}` did not finish ({e}){_shown(output)}",
                hint=f"it must exit within {timeout} s without a network",
            ) from e
        output = _output(container)
        code = int(status.get("StatusCode", -1))
        logging.getLogger(__name__).debug(
            "`docker run --network none --entrypoint %s %s %s` exited %d in %.1fs",
            argv[0], image_id, shlex.join(argv[1:]), code, time.monotonic() - start,
        )  # fmt: skip
        if code != 0:
            raise SmokeTestError(
                f"target {target!r}: the smoke test `{command}` exited {code}{_shown(output)}",
                hint="the image was built, but its program fails: run it with "
                f"`docker run --rm --network none --entrypoint {shlex.quote(argv[0])} {image_id} "
                f"{shlex.join(argv[1:])}`".rstrip(),
            )
        return SmokeResult(argv, output, time.monotonic() - start)
    finally:
        with contextlib.suppress(*ENGINE_ERRORS):  # removal is housekeeping; the verdict stands
            container.remove(force=True)


def _output(container: Any) -> str:
    try:
        return bytes(container.logs(stdout=True, stderr=True)).decode("utf-8", "replace")
    except ENGINE_ERRORS as e:
        return f"(its output could not be read: {e})"


def _shown(output: str) -> str:
    text = output.rstrip()
    if not text:
        return " with no output"
    if len(text) > _TAIL:
        text = "…" + text[-_TAIL:]
    return ":\n" + "\n".join(f"  | {line}" for line in text.splitlines())
