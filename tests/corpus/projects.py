"""The real-world corpus: released sdists across the common build backends, pinned by sha256.

Each pin is the sha256 the package index this machine uses gave on 2026-11-27 in uv's PEP 751 answer
(``uv pip compile --no-deps --no-binary :all: --format pylock.toml``); for all but siphash24 and meson-python
it was checked with ``pip download --no-deps --no-binary :all: NAME==VERSION`` and
``sha256sum`` of the ``.tar.gz`` (same value). levenshtein 0.27.5 (the scikit-build-core project; 0.26.1
was refused by today's scikit-build-core) was checked the same way.
Chosen to cover each backend and kind while keeping the whole corpus (four builds each) under about ten
minutes on two cores: small pure-Python projects, and C/Cython/C++ extensions that compile in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.sdists import Sdist


@dataclass(frozen=True)
class Project:
    sdist: Sdist
    backend: str
    kind: str  # "pure", "C", "Cython", "C++", …


def _p(name: str, version: str, sha256: str, backend: str, kind: str) -> Project:
    return Project(Sdist(name, version, sha256), backend, kind)


CORPUS: tuple[Project, ...] = (
    # setuptools: setup.py/setup.cfg only, [build-system] without [project], PEP 621, setuptools-scm
    _p("six", "1.17.0", "ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81", "setuptools", "pure"),
    _p("docopt", "0.6.2", "49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491", "setuptools", "pure"),
    _p("requests", "2.32.3", "55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760", "setuptools", "pure"),
    _p(
        "python-dateutil",
        "2.9.0.post0",
        "37dd54208da7e1cd875388217d5e00ebd4179249f90fb72437e91a35459a0ad3",
        "setuptools+scm",
        "pure",
    ),
    _p("markupsafe", "3.0.2", "ee55d3edf80167e48ea11a923c7386f4669df67d7994554387f84e7d8b0a2bf0", "setuptools", "C"),
    _p("msgpack", "1.1.0", "dd432ccc2c72b914e4cb77afce64aab761c1137cc698be3984eee260bcb2896e", "setuptools", "C"),
    _p("wrapt", "1.16.0", "5f370f952971e7d17c7d1ead40e49f32345a7f7a5373571ef44d800d06b1899d", "setuptools", "C"),
    _p("pyyaml", "6.0.2", "d584d9ec91ad65861cc08d42e834324ef890a082e591037abe114850ff7bbc3e", "setuptools", "Cython"),
    _p(
        "frozenlist",
        "1.5.0",
        "81d5af29e61b9c8348e876d442253723928dce6433e0e76cd925cd83f1b4b817",
        "in-tree (setuptools)",
        "Cython",
    ),
    # hatchling / hatch-vcs
    _p("attrs", "24.2.0", "5cfb1b9148b5b086569baec03f20d7b6bf3bcacc9a42bebf87ffaaca362f6346", "hatch-vcs", "pure"),
    _p("iniconfig", "2.0.0", "2d91e135bf72d31a410b17c16da610a82cb55f6b0477d1a902134b24a455b8b3", "hatch-vcs", "pure"),
    _p("urllib3", "2.2.3", "e7d814a81dad81e6caf2ec9fdedb284ecc9c73076b62654547cc64ccdcae26e9", "hatchling", "pure"),
    # flit-core
    _p("idna", "3.10", "12f65c9b470abda6dc35cf8e63cc574b1c52b11df2c86030af0ac09b01b13ea9", "flit-core", "pure"),
    _p("packaging", "24.2", "c228a6dc5e932d346bc5739379109d49e8853dd8223571c7c5b55260edc0b97f", "flit-core", "pure"),
    _p("tomli", "2.2.1", "cd45e1dc79c835ce60f7404ec8119f2eb06d38b1deba146f07ced3bbc44505ff", "flit-core", "pure"),
    _p(
        "typing-extensions",
        "4.12.2",
        "1a7ead55c7e559dd4dee8856e3a88b41225abfe1ce8df57b7c13915fe121ffb8",
        "flit-core",
        "pure",
    ),
    # poetry-core ([tool.poetry], no [project])
    _p("tomlkit", "0.13.2", "fff5fe59a87295b278abd31bec92c15d9bc4a06885ab12bcea52c71119392e79", "poetry-core", "pure"),
    _p("crashtest", "0.4.1", "80d7b1f316ebfbd429f648076d6275c877ba30ba48979de4191714a75266f0ce", "poetry-core", "pure"),
    # pdm-backend
    _p("unearth", "0.17.2", "0b8a2afd3476f1ab6155fc579501ac47fffe43547d88a70e5a5b76a7fe6caa2c", "pdm-backend", "pure"),
    _p(
        "findpython", "0.6.2", "e0c75ba9f35a7f9bb4423eb31bd17358cccf15761b6837317719177aeff46723", "pdm-backend", "pure"
    ),
    # scikit-build-core (CMake)
    _p(
        "levenshtein",
        "0.27.5",
        "22021caf5867a46fae5ab927bbdcb430599d7e5ee3898449cbbe430ff07b7d08",
        "scikit-build-core",
        "Cython, C++",
    ),
    # meson-python
    _p("siphash24", "1.7", "6e90fee5f199ea25b4e7303646b31872a437174fe885a93dbd4cf7784eb48164", "meson-python", "C"),
    _p(
        "meson-python",
        "0.17.1",
        "efb91f69f2e19eef7bc9a471ed2a4e730088cc6b39eacaf3e49fc4f930eb5f83",
        "meson-python (itself)",
        "pure",
    ),
)
