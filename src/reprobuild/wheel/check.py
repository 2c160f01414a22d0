"""``repro-build wheel --check``: build twice under different host conditions and compare the bytes.

The normalised build environment (:func:`reprobuild.wheel.build.normalised_env`) fixes what the
*backend* sees; this check proves that the result does not depend on what the *host* gives. The two
builds differ in (:data:`VARIANTS`):

* the umask of the process that exports the source (0022 vs 0002);
* ``TZ`` (``Etc/GMT+12`` vs ``Etc/GMT-14``: 26 hours apart) and the locale (``C.UTF-8`` vs another
  one from ``locale -a``) in the environment the build starts from;
* the file creation order of the exported source (sorted vs reverse-sorted);
* and, necessarily, the wall-clock time.

The build path is not among them: every build of a project runs at the same fixed path
(:mod:`reprobuild.wheel.buildroot`), so it cannot differ.

Equal sha256 for every artifact means reproducible. Otherwise :mod:`reprobuild.wheel.diffreport`
explains each differing member; with ``report_dir`` both builds' artifacts are kept for ``diffoscope``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from reprobuild.config import Config
from reprobuild.epoch import Epoch
from reprobuild.errors import WheelError
from reprobuild.fsutil import atomic_write_text, make_output_dir
from reprobuild.wheel.build import (
    Built,
    HostRunner,
    build_in,
    history_needed,
    open_runner,
    prepare,
    say_left_out,
    scm_variables,
)
from reprobuild.wheel.buildenv import Log, Runner
from reprobuild.wheel.buildroot import fixed_build_root
from reprobuild.wheel.diffreport import MemberDifference, diff_artifacts
from reprobuild.wheel.outputs import Artifact, ArtifactKind


class NotReproducibleError(WheelError):
    """The double build gave different bytes (a check that ran and found a difference: exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Variant:
    """The host conditions of one of the two builds."""

    label: str
    dir_prefix: str
    umask: int
    tz: str
    locale: str
    reverse: bool

    def describe(self) -> str:
        order = "reverse-sorted" if self.reverse else "sorted"
        return f"umask {self.umask:04o}, TZ={self.tz}, LC_ALL={self.locale}, {order} file creation"


def other_locale() -> str:
    """A locale other than C.UTF-8 that this machine has (``locale -a``), else ``C``."""
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=False).stdout.split()
    except FileNotFoundError:
        out = []
    normal = {x.lower().replace("-", ""): x for x in out}
    for candidate in ("en_US.utf8", "de_DE.utf8", "POSIX"):
        if candidate.lower().replace("-", "") in normal:
            return normal[candidate.lower().replace("-", "")]
    return "C"


def variants() -> tuple[Variant, Variant]:
    """The two sets of host conditions (see the module docstring)."""
    return (
        Variant("a", "repro-build-check-a-", 0o022, "Etc/GMT+12", "C.UTF-8", reverse=False),
        Variant("b", "repro-build-check-bbbbbbbbbbbbbbbb-", 0o002, "Etc/GMT-14", other_locale(), reverse=True),
    )


@dataclass(frozen=True)
class Comparison:
    """One artifact kind, built twice."""

    kind: ArtifactKind
    a: Artifact
    b: Artifact
    differences: tuple[MemberDifference, ...]

    @property
    def identical(self) -> bool:
        return self.a.sha256 == self.b.sha256 and self.a.filename == self.b.filename


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a double build."""

    comparisons: tuple[Comparison, ...]
    variants: tuple[Variant, Variant]
    epoch: Epoch
    report_dir: Path | None

    @property
    def identical(self) -> bool:
        return all(c.identical for c in self.comparisons)

    def report_lines(self) -> list[str]:
        """A human report: one block per artifact, each differing member with the kind of difference."""
        a, b = self.variants
        lines = [f"build {a.label}: {a.describe()}", f"build {b.label}: {b.describe()}"]
        for c in self.comparisons:
            if c.identical:
                lines.append(f"{c.a.filename}: identical ({c.a.sha256})")
                continue
            name = c.a.filename if c.a.filename == c.b.filename else f"{c.a.filename} vs {c.b.filename}"
            lines.append(f"{name}: DIFFERENT")
            lines.append(f"  a: {c.a.sha256}")
            lines.append(f"  b: {c.b.sha256}")
            lines.extend(f"  {d}" for d in c.differences)
        if self.report_dir is not None:
            lines.append(f"both builds kept in {self.report_dir} (a/, b/; compare with `diffoscope`)")
        return lines

    def error(self) -> NotReproducibleError:
        differing = [c for c in self.comparisons if not c.identical]
        members = sorted({d.member for c in differing for d in c.differences if d.member})
        what = ", ".join(c.a.filename for c in differing)
        return NotReproducibleError(
            f"the double build is not reproducible: {what} differ"
            + (f" (members: {', '.join(members[:8])}{', …' if len(members) > 8 else ''})" if members else ""),
            hint="the report above names each difference; pass `--report DIR` to keep both builds for `diffoscope`",
        )


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _variant_environ(base: Mapping[str, str], v: Variant) -> dict[str, str]:
    return {**base, "TZ": v.tz, "LC_ALL": v.locale, "LANG": v.locale}


def check_wheel(
    config: Config,
    *,
    allow_dirty: bool = False,
    epoch: Epoch | None = None,
    sdist: bool = True,
    wheel: bool = True,
    in_container: bool | None = None,
    report_dir: Path | None = None,
    log: Log | None = None,
) -> CheckResult:
    """Build twice under :func:`variants` and compare; nothing is written to ``dist/``.

    With ``report_dir`` both builds' artifacts are copied to ``report_dir/a`` and ``report_dir/b``
    and the report to ``report_dir/report.txt`` (whether or not they differ).
    """
    if not (sdist or wheel):
        raise WheelError("nothing to check: both the sdist and the wheel were switched off")
    lock, resolved, tree = prepare(config, allow_dirty=allow_dirty, epoch=epoch, out_dir=config.root / "dist")
    say = log or (lambda _m: None)
    say_left_out(tree, say)
    pair = variants()
    history = history_needed(tree, lock)
    builds: list[tuple[Built, Path]] = []
    with contextlib.ExitStack() as stack:
        runner = stack.enter_context(
            open_runner(config, resolved, lock, in_container, scm_variables(config, tree, lock))
        )
        for v in pair:
            keep = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=v.dir_prefix)))
            r: Runner = runner
            if isinstance(runner, HostRunner):
                r = replace(runner, environ=_variant_environ(runner.environ, v))
            with fixed_build_root(config.project.name) as root, _umask(v.umask):
                say(f"build {v.label} in {root}")
                built = build_in(
                    root, tree, resolved, r, sdist=sdist, wheel=wheel, reverse=v.reverse, log=say, history=history
                )
                built = _move_out(built, keep)
            builds.append((built, keep))
        comparisons = []
        for kind in ("sdist", "wheel"):
            pa = getattr(builds[0][0], kind)
            pb = getattr(builds[1][0], kind)
            if pa is None or pb is None:
                continue
            diffs = diff_artifacts(pa, pb)
            comparisons.append(Comparison(kind, Artifact.of(kind, pa), Artifact.of(kind, pb), diffs))
        result = CheckResult(tuple(comparisons), pair, resolved, report_dir)
        if report_dir is not None:
            _keep(report_dir, builds, result)
    return result


def _move_out(built: Built, dest: Path) -> Built:
    """``built`` with its artifacts moved out of the build root (the next build empties it)."""

    def move(path: Path | None) -> Path | None:
        if path is None:
            return None
        return Path(shutil.move(path, dest / path.name))

    return replace(built, sdist=move(built.sdist), wheel=move(built.wheel))


def _keep(report_dir: Path, builds: list[tuple[Built, Path]], result: CheckResult) -> None:
    for (built, _root), label in zip(builds, ("a", "b"), strict=True):
        d = report_dir / label
        if d.exists():
            shutil.rmtree(d)
        make_output_dir(d)
        for p in (built.sdist, built.wheel):
            if p is not None:
                shutil.copyfile(p, d / p.name)
    atomic_write_text(report_dir / "report.txt", "\n".join(result.report_lines()) + "\n")
