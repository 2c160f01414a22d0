"""The one verified-download path (``reprobuild.download``) and its retry policy, against a faulty HTTP
server on 127.0.0.1: transient answers, drip-feed, wrong bytes, 404, dropped bodies, a large file."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reprobuild.download import Timeouts, fetch_bytes, fetch_file
from reprobuild.errors import DigestMismatchError, DownloadError
from reprobuild.image.wheels import WheelCache, WheelPin
from reprobuild.retry import RetryPolicy, is_transient_status
from tests.oci.registry.servers import serving

BODY = os.urandom(300_000)
SHA = hashlib.sha256(BODY).hexdigest()


@dataclass
class Script:
    """What the server does: ``faults`` are consumed one per request (None: serve the file honestly)."""

    body: bytes = BODY
    faults: list[str | int | None] = field(default_factory=list)
    seen: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self, headers: dict[str, str]) -> str | int | None:
        with self.lock:
            self.seen.append(headers)
            return self.faults.pop(0) if self.faults else None


@contextmanager
def faulty(script: Script) -> Iterator[str]:
    """Serve ``script.body`` at ``/f`` with the scripted faults; yields the URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            fault = script.next_fault({k.lower(): v for k, v in self.headers.items()})
            body = script.body
            if isinstance(fault, int):
                self.send_response(fault)
                if fault == 429:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = 0
            rng = self.headers.get("Range")
            if rng and fault != "ignore-range":
                start = int(rng.removeprefix("bytes=").rstrip("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            part = body[start:]
            if fault == "wrong":
                part = bytes(b ^ 0xFF for b in part[:1]) + part[1:]
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            try:
                if fault == "drip":
                    for i in range(len(part)):
                        self.wfile.write(part[i : i + 1])
                        self.wfile.flush()
                        time.sleep(0.2)
                elif fault == "drop":
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(part)
            except OSError:
                pass

    with serving(Handler) as host:
        yield f"http://{host}/f"


def _policy(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(retries=3, backoff=0.01, sleep=sleeps.append)


def test_schedule_is_deterministic_bounded_and_honours_retry_after() -> None:
    policy = RetryPolicy(retries=6, backoff=0.5, max_backoff=4.0)
    assert [policy.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.delay(0, "3") == 3.0 and policy.delay(2, "1") == 2.0 and policy.delay(0, "600") == 4.0
    assert policy.delay(0, "Thu, 01 Jan 1970 00:00:00 GMT") == 0.5  # a date in the past asks for nothing
    assert [s for s in range(400, 600) if is_transient_status(s)] == [408, 429] + [
        s for s in range(500, 600) if s not in (501, 505)
    ]


def test_transient_503_then_success(tmp_path: Path) -> None:
    script = Script(faults=[503, 502, None])
    sleeps: list[float] = []
    with faulty(script) as url:
        got = fetch_file(url, tmp_path / "f", sha256=SHA, size=len(BODY), what="f", policy=_policy(sleeps))
    assert got.read_bytes() == BODY
    assert len(script.seen) == 3 and sleeps == [0.01, 0.02]
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    assert (got.stat().st_mode & 0o777) == 0o644


def test_429_waits_as_long_as_retry_after_says(tmp_path: Path) -> None:
    sleeps: list[float] = []
    with faulty(Script(faults=[429])) as url:
        fetch_file(url, tmp_path / "f", sha256=SHA, size=len(BODY), what="f", policy=_policy(sleeps))
    assert sleeps == [1.0]


def test_persistent_5xx_is_bounded(tmp_path: Path) -> None:
    script = Script(faults=[500] * 10)
    with faulty(script) as url, pytest.raises(DownloadError, match=r"HTTP 500.*after 4 attempts") as e:
        fetch_file(url, tmp_path / "f", sha256=SHA, size=len(BODY), what="the file f", policy=_policy([]))
    assert len(script.seen) == 4 and "the file f" in e.value.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status", [404, 403, 400, 501])
def test_final_answers_are_not_retried(tmp_path: Path, status: int) -> None:
    script = Script(faults=[status] * 5)
    sleeps: list[float] = []
    with faulty(script) as url, pytest.raises(DownloadError, match=f"HTTP {status}") as e:
        fetch_file(url, tmp_path / "f", sha256=SHA, size=len(BODY), what="f", policy=_policy(sleeps))
    assert len(script.seen) == 1 and sleeps == []
    assert e.value.hint is not None and "not retried" in e.value.hint
    assert list(tmp_path.iterdir()) == []


def test_drip_feed_ends_at_the_deadline(tmp_path: Path) -> None:
    with faulty(Script(faults=["drip"] * 5)) as url:
        start = time.monotonic()
        with pytest.raises(DownloadError, match="too slowly"):
            fetch_file(
                url,
                tmp_path / "f",
                sha256=SHA,
                size=None,
                what="f",
                policy=_policy([]),
                timeouts=Timeouts(connect=2, read=2, overall=1.5),
            )
        assert time.monotonic() - start < 6  # the whole body would take 16 hours
    assert list(tmp_path.iterdir()) == []


def test_wrong_bytes_are_never_published(tmp_path: Path) -> None:
    dest = tmp_path / "f"
    with faulty(Script(faults=["wrong"])) as url, pytest.raises(DigestMismatchError, match=f"expected sha256:{SHA}"):
        fetch_file(url, dest, sha256=SHA, size=len(BODY), what="f", policy=_policy([]))
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_cache_entry_is_evicted_and_fetched_again(tmp_path: Path) -> None:
    cache = WheelCache(tmp_path / "cache", staging=tmp_path / "stage")
    pin = WheelPin("demo", "1.0", "demo-1.0-py3-none-any.whl", SHA, len(BODY))
    entry = cache.store.path(cache.digest(pin))
    entry.parent.mkdir(parents=True)
    entry.write_bytes(BODY[:-1] + bytes([BODY[-1] ^ 0xFF]))  # always wrong (a fixed b"!" is BODY one time in 256)
    script = Script()
    with faulty(script) as url:
        assert cache.fetch(pin, url).read_bytes() == BODY
        assert len(script.seen) == 1 and entry.read_bytes() == BODY
        assert cache.fetch(pin, url) == cache.path(pin) and len(script.seen) == 1  # verified hit: no request


def test_a_dropped_body_resumes_with_range(tmp_path: Path) -> None:
    script = Script(faults=["drop", "drop"])
    with faulty(script) as url:
        got = fetch_file(url, tmp_path / "f", sha256=SHA, size=len(BODY), what="f", policy=_policy([]))
    assert got.read_bytes() == BODY
    half = len(BODY) // 2
    assert [h.get("range") for h in script.seen] == [None, f"bytes={half}-", f"bytes={half + (len(BODY) - half) // 2}-"]


def test_a_server_ignoring_range_is_read_again_from_the_start(tmp_path: Path) -> None:
    script = Script(faults=["drop", "ignore-range"])
    with faulty(script) as url:
        got = fetch_file(url, tmp_path / "f", sha256=SHA, size=len(BODY), what="f", policy=_policy([]))
    assert got.read_bytes() == BODY


def test_unreachable_server_is_retried_then_named(tmp_path: Path) -> None:
    from tests.testbed import free_port

    sleeps: list[float] = []
    url = f"http://user:pw@127.0.0.1:{free_port()}/f"
    with pytest.raises(DownloadError, match=r"cannot connect.*after 4 attempts") as e:
        fetch_file(url, tmp_path / "f", sha256=SHA, size=1, what="f", policy=_policy(sleeps))
    assert sleeps == [0.01, 0.02, 0.04]
    assert "pw" not in e.value.message


def test_fetch_bytes_is_bounded(tmp_path: Path) -> None:
    with faulty(Script(faults=[503])) as url:
        assert fetch_bytes(url, "f", policy=_policy([])) == BODY
        with pytest.raises(DownloadError, match="more than the 1000"):
            fetch_bytes(url, "f", limit=1000, policy=_policy([]))


def test_memory_stays_flat_for_a_large_file(tmp_path: Path) -> None:
    """64 MiB through the fetch with Python's allocations traced: the peak is a few reads, not the file."""
    block = os.urandom(1 << 20)
    blocks = 64
    digest = hashlib.sha256()
    for _ in range(blocks):
        digest.update(block)

    class Big(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(block) * blocks))
            self.end_headers()
            for _ in range(blocks):
                self.wfile.write(block)

    progress: list[int] = []
    with serving(Big) as host:
        tracemalloc.start()
        try:
            got = fetch_file(
                f"http://{host}/big",
                tmp_path / "big",
                sha256=digest.hexdigest(),
                size=len(block) * blocks,
                what="big",
                progress=progress.append,
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert got.stat().st_size == len(block) * blocks and sum(progress) == len(block) * blocks
    assert peak < 8 << 20, f"peak {peak} bytes"


def test_file_urls_go_through_the_same_checks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(BODY)
    dest = tmp_path / "out" / "f"
    assert fetch_file(src.as_uri(), dest, sha256=SHA, size=len(BODY), what="f").read_bytes() == BODY
    with pytest.raises(DigestMismatchError):
        fetch_file(src.as_uri(), tmp_path / "out" / "g", sha256="0" * 64, size=None, what="g")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f"]
