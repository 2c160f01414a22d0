"""Where `verify` finds the recorded commit: MANIFEST's repository, the current directory's, `--repo`, the remote."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reprobuild.manifest.repo import RepositoryError, is_remote_url, repository_for
from tests.foundation.helpers import git_commit


def _head(repo: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Path, str]:
    """A work tree with one commit, and a bare repository cloned from it (the "remote")."""
    work = tmp_path / "work"
    (work / "README").parent.mkdir(parents=True)
    (work / "README").write_text("hello\n")
    git_commit(work)
    bare = tmp_path / "remote" / "app.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare, _head(work)


def _outside(tmp_path: Path) -> Path:
    """A directory in no git repository, holding a manifest file."""
    d = tmp_path / "loose"
    d.mkdir()
    (d / "manifest.json").write_text("{}\n")
    return d


def test_the_repository_holding_the_manifest(origin: tuple[Path, str], tmp_path: Path) -> None:
    bare, commit = origin
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(bare), str(clone)], check=True)
    (clone / "build").mkdir()
    with repository_for(clone / "build" / "manifest.json", commit, cwd=_outside(tmp_path)) as found:
        assert found == clone.resolve()


def test_a_fresh_clone_as_current_directory(origin: tuple[Path, str], tmp_path: Path) -> None:
    bare, commit = origin
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(bare), str(clone)], check=True)
    manifest = _outside(tmp_path) / "manifest.json"
    with repository_for(manifest, commit, cwd=clone) as found:
        assert found == clone.resolve()


@pytest.mark.parametrize("form", ["file-url", "path"])
def test_repo_url_is_cloned(origin: tuple[Path, str], tmp_path: Path, form: str) -> None:
    bare, commit = origin
    where = bare.as_uri() if form == "file-url" else str(bare)
    manifest = _outside(tmp_path) / "manifest.json"
    with repository_for(manifest, commit, repo=where, cwd=tmp_path) as found:
        if form == "path":
            assert found == bare.resolve()  # a local repository is used as it is
        else:
            assert found != bare and found.name == "repo.git"
        out = subprocess.run(
            ["git", "-C", str(found), "cat-file", "-t", commit], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "commit"
    if form == "file-url":
        assert not found.exists()  # the clone lives only as long as the rebuild


def test_the_recorded_remote_is_cloned(origin: tuple[Path, str], tmp_path: Path) -> None:
    bare, commit = origin
    loose = _outside(tmp_path)
    with repository_for(loose / "manifest.json", commit, remote=bare.as_uri(), cwd=loose) as found:
        assert has(found, commit)


def test_a_repository_without_the_commit_falls_through_to_the_next(origin: tuple[Path, str], tmp_path: Path) -> None:
    bare, commit = origin
    other = tmp_path / "other"
    (other / "x").parent.mkdir()
    (other / "x").write_text("x\n")
    git_commit(other, when=1700000001)
    with repository_for(other / "manifest.json", commit, remote=bare.as_uri(), cwd=other) as found:
        assert has(found, commit)


def test_the_error_names_everything_tried(origin: tuple[Path, str], tmp_path: Path) -> None:
    _, commit = origin
    loose = _outside(tmp_path)
    with pytest.raises(RepositoryError) as e, repository_for(loose / "manifest.json", commit, cwd=loose):
        pass
    message = e.value.message
    assert "the repository holding the manifest" in message and "not a git repository" in message
    assert "the current directory's repository" in message
    assert "the remote recorded in the manifest: the manifest records none" in message
    assert e.value.hint is not None and "--repo" in e.value.hint


def test_a_missing_commit_and_a_failed_clone_are_named(origin: tuple[Path, str], tmp_path: Path) -> None:
    bare, _ = origin
    loose = _outside(tmp_path)
    missing = "f" * 40
    with pytest.raises(RepositoryError) as e, repository_for(loose / "manifest.json", missing, repo=bare.as_uri()):
        pass
    assert f"--repo, {bare.as_uri()}: cloned, but the commit is not in it" in e.value.message
    gone = (tmp_path / "nowhere.git").as_uri()
    with pytest.raises(RepositoryError) as e, repository_for(loose / "manifest.json", missing, remote=gone, cwd=loose):
        pass
    assert f"the remote recorded in the manifest, {gone}: cloning failed" in e.value.message


def test_recorded_remotes_are_data() -> None:
    for ok in ("https://host/org/app", "ssh://git@host/org/app.git", "git@host:org/app.git", "file:///srv/app.git"):
        assert is_remote_url(ok), ok
    for bad in ("ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/x", "/srv/app.git", "fd::3", ""):
        assert not is_remote_url(bad), bad


def test_a_custom_transport_in_a_manifest_is_refused(tmp_path: Path) -> None:
    loose = _outside(tmp_path)
    with (
        pytest.raises(RepositoryError) as e,
        repository_for(loose / "manifest.json", "a" * 40, remote="ext::sh -c true", cwd=loose),
    ):
        pass
    assert "not a git URL" in e.value.message


def test_a_commit_that_is_not_a_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="not a full git commit name"), repository_for(tmp_path, "--all"):
        pass


def has(repo: Path, commit: str) -> bool:
    return subprocess.run(["git", "-C", str(repo), "cat-file", "-e", commit], check=False).returncode == 0
