"""`repro-build dockerfile`: deterministic rendering (golden files), errors, and the template engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.cli.main import main
from reprobuild.config import load_config
from reprobuild.dockerfile import image_env, render_dockerfile
from reprobuild.errors import ConfigError, ReproBuildError
from reprobuild.templates import render, template_text, templates_root
from tests.golden import Golden
from tests.templates.helpers import EXAMPLE, GOLDEN, LOADED_BASE, pinned_project


@pytest.mark.parametrize("target", ["cpu", "cuda"])
def test_example_golden(target: str, golden: Golden) -> None:
    config = load_config(EXAMPLE)
    text = render_dockerfile(config, target, base_image=LOADED_BASE)
    golden.text(GOLDEN / f"hello-ml-{target}.Dockerfile", text)
    assert text == render_dockerfile(load_config(EXAMPLE), target, base_image=LOADED_BASE)


def test_registry_base_golden(tmp_path: Path, golden: Golden) -> None:
    config = load_config(pinned_project(tmp_path / "p"))
    base = config.target("slim").base
    assert base.kind == "registry" and base.digest
    text = render_dockerfile(config, "slim")
    # FROM names the base by digest; the digest itself comes from Dockerfile.base, so it is masked for the golden.
    assert f"\nFROM {base.reference}\n" in text
    assert "@" + base.digest in text
    golden.text(GOLDEN / "pinned-slim.Dockerfile", text.replace(base.digest, "<digest of stage slim>"))


def test_env_is_sorted_and_layered(tmp_path: Path) -> None:
    config = load_config(pinned_project(tmp_path / "p"))
    env = image_env(config, config.target("slim"))
    assert list(env) == sorted(env)
    assert env["APP_MODE"] == "slim"  # the target's env wins over the project's
    assert env["PYTHONHASHSEED"] == "0" and env["MKL_CBWR"] == "COMPATIBLE"
    text = render_dockerfile(config, "slim")
    # `$` and quotes are escaped so BuildKit does not expand or cut them.
    assert 'QUOTED="a \\"b\\" \\$HOME \\\\ c"' in text


def test_debian_base_needs_base_image() -> None:
    config = load_config(EXAMPLE)
    with pytest.raises(ConfigError, match="debian:bookworm") as info:
        render_dockerfile(config, "cpu")
    assert info.value.hint is not None and "--base-image" in info.value.hint


def test_bad_base_image_and_target() -> None:
    config = load_config(EXAMPLE)
    with pytest.raises(ConfigError, match="not an image reference"):
        render_dockerfile(config, "cpu", base_image="a b")
    with pytest.raises(ConfigError, match="no target named 'gpu'"):
        render_dockerfile(config, "gpu", base_image=LOADED_BASE)


def test_cli_prints_the_dockerfile(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["dockerfile", "--project", str(EXAMPLE), "--target", "cuda", "--base-image", LOADED_BASE])
    assert code == 0
    out = capsys.readouterr().out
    assert out == render_dockerfile(load_config(EXAMPLE), "cuda", base_image=LOADED_BASE)


def test_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dockerfile", "--project", str(EXAMPLE), "--target", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "\nhint: " in err
    assert main(["dockerfile", "--project", str(EXAMPLE), "--base-image", LOADED_BASE]) == 2
    assert "several targets" in capsys.readouterr().err
    assert main(["dockerfile", "--project", str(EXAMPLE), "--target", "cpu", "--wheels-dir", "."]) == 2
    assert "--context" in capsys.readouterr().err


def test_render_is_strict_both_ways() -> None:
    with pytest.raises(ReproBuildError, match="no value for: flag_sets"):
        render("Dockerfile.tmpl", {k: "x" for k in _identifiers("Dockerfile.tmpl") if k != "flag_sets"})
    values = dict.fromkeys(_identifiers("Dockerfile.tmpl"), "x")
    with pytest.raises(ReproBuildError, match="no placeholder for: surplus"):
        render("Dockerfile.tmpl", {**values, "surplus": "y"})
    with pytest.raises(ReproBuildError, match="missing"):
        template_text("no-such.tmpl")


def test_every_template_renders_without_leftovers() -> None:
    root = templates_root()
    names = ["Dockerfile.tmpl", *(f"init/{p.name}" for p in root.joinpath("init").iterdir())]
    assert len(names) >= 5
    for name in names:
        text = render(name, dict.fromkeys(_identifiers(name), "v"))
        assert "@@" not in text and text.endswith("\n") and not text.endswith("\n\n")


def _identifiers(name: str) -> list[str]:
    from reprobuild.templates import _Template

    return list(_Template(template_text(name)).get_identifiers())
