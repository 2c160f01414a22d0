"""Looking for uv from several threads at once, in a fresh interpreter (an image build checks its locks on
one thread while the project wheel's build starts on another): uv's finder reads ``sysconfig``, whose
first use is not thread-safe."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import threading
from reprobuild import uvbin
errors = []
def look():
    try:
        uvbin.find_uv()
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=look) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors)
"""


def test_threads_looking_for_uv_at_once_all_find_it() -> None:
    for _ in range(15):  # a fresh interpreter each time: the race is in sysconfig's first use
        out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "[]", out.stdout
