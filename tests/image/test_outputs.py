"""An image's layout and archive begun before the image is known (image/outputs.py): the same bytes as
written at once, whatever was copied early, and nothing left behind by a build that fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprobuild.errors import DigestMismatchError
from reprobuild.image.outputs import StagedOutputs
from reprobuild.oci.archive import write_archive
from reprobuild.oci.image import Image
from reprobuild.oci.layout import write_layout
from reprobuild.oci.validate import validate_layout
from tests.oci.helpers import small_image, tree_files


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def image(tmp_path: Path) -> Image:
    return small_image(tmp_path / "cache")


@pytest.fixture
def at_once(tmp_path: Path, image: Image) -> dict[str, bytes]:
    """The outputs written the plain way, after the image is known."""
    out = tmp_path / "at-once"
    write_layout(out / "oci", image, tag="cpu")
    write_archive(out / "image.tar", image, repo_tags=["app:cpu"])
    return _tree(out)


@pytest.mark.parametrize("early", ["none", "bottom", "all", "top only", "reversed"])
def test_the_bytes_do_not_depend_on_what_was_copied_early(
    tmp_path: Path, image: Image, at_once: dict[str, bytes], early: str
) -> None:
    layers = {
        "none": [],
        "bottom": image.layers[:1],
        "all": list(image.layers),
        "top only": image.layers[1:],  # not the bottom of the image: the archive starts again
        "reversed": image.layers[::-1],
    }[early]
    staged = tmp_path / "staged"
    with StagedOutputs(staged) as outputs:
        if early != "none":
            outputs.begin(layers)
        written = outputs.finish(image, tag="cpu", repo_tag="app:cpu")
    assert _tree(staged) == at_once
    assert written.digest == image.digest
    # The copied layers are read from the layout, not from the cache they came from.
    for layer in written.layers:
        if layer.digest in {c.digest for c in layers}:
            assert layer.path.parent == staged / "oci" / "blobs" / "sha256"
    validate_layout(staged / "oci")


def test_an_early_copy_the_image_does_not_keep_leaves_the_layout(
    tmp_path: Path, image: Image, at_once: dict[str, bytes]
) -> None:
    """Layers copied early and then planned again (a project file clashed with a third-party one)."""
    other = small_image(tmp_path / "other", text=b"another base\n")
    staged = tmp_path / "staged"
    with StagedOutputs(staged) as outputs:
        outputs.begin([*image.layers[:1], *other.layers])
        outputs.finish(image, tag="cpu", repo_tag="app:cpu")
    assert _tree(staged) == at_once


def test_a_corrupt_cached_layer_fails_the_outputs_and_leaves_no_archive(tmp_path: Path, image: Image) -> None:
    bottom = image.layers[0]
    bottom.path.chmod(0o644)
    bottom.path.write_bytes(bottom.path.read_bytes()[:-3])
    staged = tmp_path / "staged"
    with pytest.raises(DigestMismatchError, match=str(bottom.digest)), StagedOutputs(staged) as outputs:
        outputs.begin(image.layers[:1])
        outputs.finish(image, tag="cpu", repo_tag="app:cpu")
    assert not (staged / "image.tar").exists()
    assert not any(p.name.endswith(".tmp") for p in staged.rglob("*"))
    assert not (staged / "oci" / "blobs" / "sha256" / bottom.digest.hex).exists()


def test_a_build_failing_after_the_early_copies_leaves_no_archive(tmp_path: Path, image: Image) -> None:
    staged = tmp_path / "staged"
    with pytest.raises(RuntimeError, match="the project wheel"), StagedOutputs(staged) as outputs:
        outputs.begin(image.layers)
        raise RuntimeError("the project wheel failed to build")
    # No archive, whole or partial; the layout's copies are verified blobs without an index.json, in a
    # staging directory the build removes with its work tree.
    assert not any(name == "image.tar" or name.endswith(".tmp") for name in tree_files(staged))
    assert not (staged / "oci" / "index.json").exists()
