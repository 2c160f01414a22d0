"""SBOMs (SPDX 2.3, CycloneDX 1.6) and SLSA provenance of an image, attached to it as OCI 1.1 artifacts.

- :mod:`~reprobuild.attest.inventory`: what the image holds (the base's Debian packages, the wheels).
- :mod:`~reprobuild.attest.bom`, :mod:`~reprobuild.attest.spdx`, :mod:`~reprobuild.attest.cyclonedx`:
  the two SBOM formats, rendered from one value; no clock, no random identifiers.
- :mod:`~reprobuild.attest.provenance`: an in-toto Statement with a SLSA Provenance v1 predicate,
  derived from the build manifest.
- :mod:`~reprobuild.attest.referrers`: artifact manifests whose ``subject`` is the image, in an OCI
  layout and in a registry (referrers API, or the ``sha256-<hex>`` tag schema).
- :mod:`~reprobuild.attest.carry`: an image's attachments read from one location and written to another
  (``repro-build copy``), and listed (``repro-build inspect``, with :mod:`~reprobuild.attest.summary`'s line
  about each document).
"""
