"""Run every benchmark and rewrite benchmarks/RESULTS.md (what `nox -s bench` does).

Each benchmark compares against its peer in the same run and prints ratios; this script records the
machine, the tool versions, the exact command and the full output of each. Benchmarks are slow (about
ten minutes in all on 2 cores) and need the Docker engine, the Debian tools and network access to the
package index and the Debian mirror, like the test suite.

    python benchmarks/run_all.py [--only NAME ...] [--machine 'busy: what else ran']

``--only`` reruns some scripts and keeps the other sections of RESULTS.md as they were.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: (title, script, arguments): one section of RESULTS.md each, in this order.
BENCHMARKS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Layer compression: pinned libdeflate gzip vs single-thread zlib-6", "bench_compress.py", ("--rounds", "3")),
    ("Whole-image write vs skopeo copy", "bench_image_write.py", ("--rounds", "3")),
    ("Registry client: push/pull vs skopeo", "registry_transfer.py", ("--mib", "256", "--rounds", "3")),
    ("Registry client: blobs four at a time vs one at a time", "bench_parallel_push.py", ("--rounds", "5")),
    ("Debian base vs mmdebstrap", "bench_debian_base.py", ("--runs", "3")),
    ("Wheel: repro-build wheel vs uv build (C extension)", "bench_wheel.py", ("--rounds", "5")),
    ("C extension speed: msgpack built by repro-build vs uv build", "bench_cext_speed.py", ("--rounds", "5")),
    ("Real-world sdist corpus: plain uv build vs repro-build", "bench_corpus.py", ("--jobs", "2")),
    (
        "Image: repro-build image vs docker build + push, and container start-up",
        "bench_image.py",
        ("--rounds", "3", "--startup-runs", "5"),
    ),
    (
        "Registry cache: an empty layer cache with `--cache REF` vs without",
        "bench_registry_cache.py",
        ("--rounds", "3"),
    ),
    ("Verify: the gate vs a pull, the rebuild vs the build", "bench_verify.py", ("--gib", "1")),
    ("Determinism hook: interpreter start-up", "bench_hook.py", ("--runs", "200")),
    ("Byte-code: container start-up with and without .pyc", "bench_bytecode.py", ("--runs", "15")),
    ("A PyTorch CPU image (needs a local torch CPU wheel; skipped without one)", "bench_torch_image.py", ()),
    (
        "Scale: cold build + push of three growing images vs docker build + push (torch skipped without its wheel)",
        "bench_scale.py",
        ("--rounds", "3"),
    ),
)


#: Reading notes kept with every regeneration (why the numbers are what they are).
NOTES = """## Notes

- Timings on a 2-core machine move with whatever else runs; each script interleaves its peer round by
  round, and the ratios are what to read. The compression speed-up needs the second core to be free: the
  CPU cost per byte is that of libdeflate (see the compression section).
- Whole-image write: skopeo's gzip is klauspost/pgzip, a faster DEFLATE than zlib whose bytes follow the
  Go module version. repro-build's gzip is libdeflate, pinned in a wheel, for stable bytes; `compression =
  { algorithm = "zstd" }` closes the rest of the gap.
- Debian base: the peer is `mmdebstrap --variant=essential` (it runs maintainer scripts in a chroot;
  `--variant=custom` with the same 49 packages fails, as dpkg needs `/bin/sh`). Its tar is uncompressed;
  ours includes gzip. `python:3.11-slim`'s published size was not looked up: no registry is reachable here.
- Wheel: repro-build extracts the sdist itself (so `-ffile-prefix-map` can name the build directory) and
  runs the wheel step offline, as the sdist step has just cached the hash-pinned backend.
- C extension speed: machine load moves the milliseconds between runs; the three wheels are timed
  interleaved, so read the ratios and the `.so` sizes. "CFLAGS replaced" is how repro-build built C
  extensions before its prefix map moved to `CPPFLAGS` (setuptools replaced `-O3 -DNDEBUG` with it).
- Image: the peer is the Dockerfile `repro-build dockerfile` renders, built with BuildKit `--network none`
  from the same wheels; `docker push` recompresses every layer, the base's included. Both sides start
  with the wheels on disk; "cold" means no build outputs, no layer cache and a pruned builder cache.
  Rounds are interleaved (who goes first alternates) and each measure is read as the median of the
  per-round ratios, with their spread. After a one-line app change repro-build reuses the third-party
  layers as a whole and installs only the project wheel; the rest of that time is mostly the project
  wheel's build (the backend runs in a fresh process) and the push. Start-up: the first line of the
  service's output after `docker run`, the same entrypoint in both images.
- Registry cache: both builds start with no layer cache; with `--cache REF` the layers still have their
  inputs installed and their tar hashed (that is how a layer read from a registry is checked), but none
  is compressed.
- Verify: the gate reads manifests only, so its time does not grow with the image; the rebuild skips the
  layer cache and checks out the recorded commit.
- Hook: `python -c pass` in a venv holding exactly the hook layer of an image (the hook ships as an
  unchecked-hash pyc) vs one without it.
- Scale: the same cold build + push as the image benchmark, for three images of growing size: the example
  (numpy), benchmarks/projects/sklearn-service (scikit-learn, scipy, numpy; its locks are committed) and the
  torch CPU app (locked at the start of the run from a local torch CPU wheel; skipped without one). Both
  sides write every installed file to disk (ours into a work tree removed at the end, the peer's into the
  engine's storage, compressed again by `docker push`), so their times grow with the unpacked size; the
  least-squares lines say how fast, per 100 MB of compressed image.
"""


def _version(*cmd: str) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


def _machine() -> list[str]:
    mem = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total = next((line.split()[1] for line in meminfo.read_text().splitlines() if line.startswith("MemTotal")), "")
        mem = f", {int(total) / (1 << 20):.0f} GiB memory" if total else ""
    return [
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs{mem}, {platform.platform()}",
        f"- Python {platform.python_version()}; {_version(sys.executable, '-m', 'uv', '--version')}",
        f"- {_version('/usr/bin/docker', 'version', '--format', 'docker engine {{.Server.Version}}')}; "
        f"{_version('skopeo', '--version')}; {_version('mmdebstrap', '--version')}",
    ]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min) / {five:.1f} (5 min)"


def _sections(text: str) -> dict[str, str]:
    """The ``## title`` sections of an existing RESULTS.md, by title (the notes excluded)."""
    found: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        if title != "Notes":
            found[title] = f"## {title}\n{body}".rstrip() + "\n"
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", default=None, help="script names to run (default: all)")
    parser.add_argument(
        "--machine",
        default=None,
        help="how quiet the machine was, in words, recorded with every section run (e.g. 'quiet', "
        "'busy: other test suites ran on the same cores and engine')",
    )
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = HERE / "RESULTS.md"
    # With --only, the sections of the scripts not run are kept as they were (each says when it ran).
    previous = results.read_text() if args.only and results.exists() else ""
    kept = _sections(previous)
    full = re.search(r"^(?:Run on|Full run on) ([0-9-]+ [0-9:]+ UTC)", previous, re.MULTILINE)
    when = (
        f"Full run on {full.group(1) if full else 'an earlier date'}; sections rerun alone say when they finished "
        f"(last on {now}):"
        if args.only
        else f"Full run on {now}:"
    )
    lines = [
        "# Benchmark results",
        "",
        "Written by `nox -s bench` (`python benchmarks/run_all.py`); every benchmark runs its peer in the same",
        "run and reports ratios. Each section gives the exact command, when it ran, the machine's load average",
        "before and after, and its full output; what is measured and why is in the docstring of each script.",
        "",
        when,
        "",
        *_machine(),
        "",
    ]
    failures = 0
    for title, script, extra in BENCHMARKS:
        if args.only and script not in args.only and script.removesuffix(".py") not in args.only:
            if title in kept:
                lines += [kept[title]]
            continue
        command = ["python", f"benchmarks/{script}", *extra]
        print(f"== {title}: {' '.join(command)}", flush=True)
        before = _load()
        start = time.monotonic()
        out = subprocess.run(
            [sys.executable, str(HERE / script), *extra], cwd=ROOT, capture_output=True, text=True, check=False
        )
        took = time.monotonic() - start
        body = out.stdout.strip() or "(no output)"
        if out.returncode != 0:
            failures += 1
            body += f"\n\nFAILED with exit code {out.returncode}:\n{out.stderr.strip()[-3000:]}"
        print(body, flush=True)
        ran = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        machine = f"; machine: {args.machine}" if args.machine else ""
        lines += [
            f"## {title}",
            "",
            f"Command: `{' '.join(command)}` ({took:.0f} s, finished {ran}; load average on "
            f"{os.cpu_count()} CPUs before {before}, after {_load()}{machine})",
            "",
            "```",
            body,
            "```",
            "",
        ]
    results.write_text("\n".join(lines) + NOTES)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
