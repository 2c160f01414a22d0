"""Exit codes: 0 ok, 1 a difference, 2 any error; bad input or environment never ends in a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reprobuild.cli import main as cli_main
from tests.manifest.schemacheck import sample

CLI = (sys.executable, "-m", "reprobuild")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m["outputs"].pop("manifest_digest"), "outputs.manifest_digest"),
        (lambda m: m.update(outputs=[]), "outputs"),
        (lambda m: m["outputs"].update(layers=[{"digest": "x"}]), "outputs.layers[0].diff_id"),
        (lambda m: m["outputs"].update(config_digest="sha256:../../etc"), "outputs.config_digest"),
        (lambda m: m["outputs"].update(layers="abc"), "outputs.layers"),
    ],
)
def test_gate_with_a_malformed_manifest_is_an_error(tmp_path: Path, edit: Any, field: str) -> None:
    data = sample()  # a whole manifest: the edit is its one flaw
    edit(data)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(data))
    (tmp_path / "layout").mkdir()
    out = subprocess.run(
        [*CLI, "verify", str(manifest), "--image", f"oci-layout:{tmp_path / 'layout'}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert field in out.stderr and str(manifest) in out.stderr and "Traceback" not in out.stderr


def test_unexpected_exception_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(args: object) -> int:
        raise KeyError("outputs")

    def full(args: object) -> int:
        raise OSError(28, "No space left on device", "/build/x")

    import reprobuild.cli.inspect as inspect_cmd

    monkeypatch.setattr(inspect_cmd, "run", boom)
    assert cli_main.main(["inspect", "oci-layout:x"]) == 2
    err = capsys.readouterr().err
    assert "internal error: KeyError" in err and "REPRO_BUILD_TRACEBACK=1" in err
    monkeypatch.setattr(inspect_cmd, "run", full)
    assert cli_main.main(["inspect", "oci-layout:x"]) == 2
    assert "No space left on device (/build/x)" in capsys.readouterr().err
    monkeypatch.setenv("REPRO_BUILD_TRACEBACK", "1")
    with pytest.raises(OSError):
        cli_main.main(["inspect", "oci-layout:x"])


def test_diff_on_a_corrupt_blob_is_an_error_naming_it(tmp_path: Path) -> None:
    from reprobuild.oci.layout import write_layout
    from tests.oci.helpers import small_image

    a, b = small_image(tmp_path / "sa", b"a\n"), small_image(tmp_path / "sb", b"b\n")
    write_layout(tmp_path / "A", a)
    write_layout(tmp_path / "B", b)
    blob = tmp_path / "B" / "blobs" / "sha256" / b.layers[0].digest.hex
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    out = subprocess.run(
        [*CLI, "diff", f"oci-layout:{tmp_path / 'A'}", f"oci-layout:{tmp_path / 'B'}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and str(b.layers[0].digest) in out.stderr and "internal error" not in out.stderr
