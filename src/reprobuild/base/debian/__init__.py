"""The embedded Debian base: a Python runtime image built from pinned ``.deb`` files.

No registry and no Docker: the packages come from a Debian mirror (by default the machine's apt
sources; a time-pinned snapshot archive URL of the form
``<snapshot-mirror>/archive/debian/<YYYYMMDDTHHMMSSZ>`` is recommended, since its Release never
changes), are pinned by sha256 in a lock, unpacked in Python without maintainer scripts, and
written as one canonical OCI layer. Modelled on Google's distroless images and apko's lock.

API (plain functions with explicit arguments; the config module wires ``base = "debian:<suite>"``
and ``[tool.repro-build.debian]`` to them)::

    from reprobuild.base.debian.lock import BaseInputs, make_lock, write_lock, read_lock, check_lock
    from reprobuild.base.debian.lock import packages_with_defaults, default_lock_path, DEFAULT_PACKAGES
    from reprobuild.base.debian.build import build_base, write_outputs
    from reprobuild.base.debian.fetch import DebCache, default_cache_dir
    from reprobuild.base.debian.sources import default_mirror

    inputs = BaseInputs(suite, arch, mirror, packages_with_defaults(extra))  # mirror None: apt sources
    # optional: extra_suites=(("bookworm-updates", None), ("bookworm-security", None)) for fixes
    # published after the point release (11 of the 49 default packages, libssl3 and python3.11
    # among them, had newer versions there when this was written)
    lock = make_lock(inputs, DebCache(default_cache_dir()))          # network: Release + index
    write_lock(default_lock_path(project_dir, suite, arch), lock)
    check_lock(path, inputs, cache)                                  # StaleLockError (exit 1) naming changes
    built = build_base(read_lock(path), cache=cache, store=BlobStore(dir), epoch=None, offline=False)
    built.image                                                      # reprobuild.oci.image.Image (1 layer)
    write_outputs(built, out_dir, suite=suite, arch=arch)            # oci/ layout, docker-load .tar, info

Modules: :mod:`.sources` (apt sources), :mod:`.release` (InRelease + gpgv), :mod:`.packages`
(Packages index, relation grammar), :mod:`.version` (dpkg version order), :mod:`.resolve`
(dependency closure), :mod:`.lock`, :mod:`.fetch` (sha256-keyed cache), :mod:`.deb` (ar +
tar reading), :mod:`.rootfs` (unpacking rules and generated files), :mod:`.build` (image).
"""
