"""Progress without a TTY: each task named on a start line and an end line, with its true size.

The renderer is the CLI's (:class:`reprobuild.cli.progress.LineProgress`); the tasks are the library's
(layers compressed, wheels and ``.deb`` files downloaded). The sizes on the end lines must be the real
ones: a compression's total is the exact tar length, not the sum of the files in it.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest

from reprobuild.base.debian.fetch import DebCache
from reprobuild.cli.progress import LineProgress, end_line, progress_for_cli
from reprobuild.image.wheels import WheelCache, WheelPin
from reprobuild.oci.blobstore import BlobStore
from reprobuild.oci.compress import Compressor
from reprobuild.oci.layer import write_layer
from reprobuild.oci.progress import NO_PROGRESS, Progress, Task, human_size, size_with_bytes
from reprobuild.oci.tarwriter import LayerEntry, tar_bytes, tar_size

#: A start line ends with " ..."; an end line says "done, SIZE in T s".
_END = re.compile(r"^(?P<what>.+): done, (?:[\d.]+ [kMGT]B \((?P<bytes>\d+) bytes\)|(?P<small>\d+) bytes) in [\d.]+ s")


def _ends(text: str) -> dict[str, int]:
    """``{description: bytes}`` of every end line in ``text``."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = _END.match(line)
        if m:
            out[m.group("what")] = int(m.group("bytes") or m.group("small"))
    return out


def _lines(stream: io.StringIO) -> str:
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text  # no carriage-return bars, no escape sequences
    return text


_ENTRY_SETS = {
    "files": [LayerEntry.file("/app/a.txt", b"x" * 1000), LayerEntry.file("/app/b.bin", bytes(range(256)) * 300)],
    "long and non-ASCII paths (PAX headers)": [
        LayerEntry.file("/" + "d" * 120 + "/f", b"1"),
        LayerEntry.file("/usr/share/ünïcödé/файл.txt", b"text\n"),
        LayerEntry.symlink("/l", "/" + "t" * 150),
    ],
    "links and empty files": [
        LayerEntry.file("/e", b""),
        LayerEntry.file("/x/y", b"y" * 512),
        LayerEntry.hardlink("/x/z", "x/y"),
        LayerEntry.directory("/empty"),
    ],
    "nothing": [],
}


@pytest.mark.parametrize("name", sorted(_ENTRY_SETS))
@pytest.mark.parametrize("preserve", [False, True])
def test_tar_size_is_the_written_length(name: str, preserve: bool) -> None:
    entries = _ENTRY_SETS[name]
    assert tar_size(entries, 1_700_000_000, preserve_metadata=preserve) == len(
        tar_bytes(entries, 1_700_000_000, preserve_metadata=preserve)
    )


def test_compression_total_is_the_tar_not_the_files(tmp_path: Path) -> None:
    """The bar that reached "70.0/67.3 MB": the total was the files' size, the count the tar's."""
    entries = [LayerEntry.file(f"/app/f{i:03}", bytes([i]) * (700 + i)) for i in range(200)]
    stream = io.StringIO()
    layer = write_layer(
        entries,
        epoch=1_700_000_000,
        compressor=Compressor.gzip(),
        store=BlobStore(tmp_path),
        progress=LineProgress(stream),
        description="app",
    )
    text = _lines(stream)
    tar_length = len(tar_bytes(entries, 1_700_000_000))
    assert tar_length > sum(e.size for e in entries)  # headers and padding: why the old total was short
    lines = text.splitlines()
    assert lines[0] == f"compressing layer app ({human_size(tar_length)}) ..."
    assert _ends(text) == {"compressing layer app": tar_length}
    assert lines[-1].endswith(f", {size_with_bytes(layer.size)} gzip")


class _Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    def started(self, task: Task) -> None:
        self.events.append(("start", task.description, task.done))

    def finished(self, task: Task, error: BaseException | None) -> None:
        self.events.append(("error" if error else "end", task.description, task.done))


def test_a_failed_task_says_so_and_counts_restarts_once() -> None:
    stream = io.StringIO()
    progress = LineProgress(stream)
    with pytest.raises(RuntimeError), progress.task("pulling layer 1/1 (numpy) sha256:0123", 10) as task:
        task(4)
        task.restart()
        task(10)
        raise RuntimeError("connection reset")
    assert task.done == 10
    text = _lines(stream)
    assert text.splitlines() == [
        "pulling layer 1/1 (numpy) sha256:0123 (10 bytes) ...",
        f"{end_line(task, RuntimeError())}",
    ]
    assert text.splitlines()[1].startswith("pulling layer 1/1 (numpy) sha256:0123: failed after ")


def test_heartbeat_lines_while_a_task_runs() -> None:
    stream = io.StringIO()
    with LineProgress(stream, heartbeat=0).task("pushing layer 2/3 (app) sha256:ab", 3_000_000) as task:
        task(1_000_000)
    lines = _lines(stream).splitlines()
    assert lines[1].startswith("pushing layer 2/3 (app) sha256:ab: 1.0 MB of 3.0 MB after ")
    assert len(lines) == 3


def test_names_from_the_outside_are_escaped() -> None:
    stream = io.StringIO()
    with LineProgress(stream).task("pulling layer 1/1 (\x1b]0;pwned\x07) sha256:00", 1) as task:
        task(1)
    assert "\x1b" not in stream.getvalue() and "\\x1b]0;pwned\\x07" in stream.getvalue()


def test_quiet_shows_nothing_and_a_pipe_gets_lines(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_for_cli(True) as progress:
        assert progress is NO_PROGRESS
    with progress_for_cli(False) as progress:  # pytest's captured stderr is not a TTY
        assert isinstance(progress, LineProgress)
        with progress.task("downloading x.whl", 3) as task:
            task(3)
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "downloading x.whl (3 bytes) ..."
    assert _ends(err) == {"downloading x.whl": 3}


def test_wheel_download_is_a_named_line_and_a_cache_hit_is_silent(tmp_path: Path) -> None:
    wheel = tmp_path / "index" / "demo-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"PK" + bytes(5000))
    pin = WheelPin("demo", "1.0", wheel.name, hashlib.sha256(wheel.read_bytes()).hexdigest(), 5002)
    cache = WheelCache(tmp_path / "cache", staging=tmp_path / "stage")
    stream = io.StringIO()
    cache.fetch(pin, wheel.as_uri(), LineProgress(stream))
    text = _lines(stream)
    assert text.splitlines()[0] == f"downloading {wheel.name} from a local directory (5.0 kB) ..."
    assert _ends(text) == {f"downloading {wheel.name} from a local directory": 5002}
    again = io.StringIO()
    cache.fetch(pin, wheel.as_uri(), LineProgress(again))
    assert again.getvalue() == ""  # nothing was downloaded, so no row (and no empty bar) at all


def test_deb_download_is_a_named_line(tmp_path: Path) -> None:
    deb = tmp_path / "mirror" / "pool" / "main" / "h" / "hello_1.0_amd64.deb"
    deb.parent.mkdir(parents=True)
    deb.write_bytes(b"!<arch>\n" + bytes(range(256)) * 400)
    data = deb.read_bytes()
    stream = io.StringIO()
    got = DebCache(tmp_path / "cache").get(
        hashlib.sha256(data).hexdigest(), len(data), deb.as_uri(), "hello 1.0", progress=LineProgress(stream)
    )
    assert got.read_bytes() == data
    text = _lines(stream)
    assert (
        text.splitlines()[0] == f"downloading hello_1.0_amd64.deb from a local directory ({human_size(len(data))}) ..."
    )
    assert _ends(text) == {"downloading hello_1.0_amd64.deb from a local directory": len(data)}


def test_recorder_sees_each_task_once(tmp_path: Path) -> None:
    recorder = _Recorder()
    write_layer(
        [LayerEntry.file("/a", b"a")],
        epoch=0,
        compressor=Compressor.none(),
        store=BlobStore(tmp_path),
        progress=recorder,
    )
    assert [e[0] for e in recorder.events] == ["start", "end"]
    assert recorder.events[1][2] == len(tar_bytes([LayerEntry.file("/a", b"a")], 0))
