"""A small client for the OCI distribution API: verified pulls, exact pushes, tags.

Anonymous, basic and bearer-token auth; credentials from Docker's ``config.json``, credential
helpers, or ``REPRO_BUILD_REGISTRY_USERNAME``/``REPRO_BUILD_REGISTRY_PASSWORD``. See
:mod:`reprobuild.oci.registry.client` for the contracts and why no existing library is wrapped.
"""

from __future__ import annotations

from reprobuild.oci.registry.client import ALL_MANIFEST_TYPES, RegistryClient, is_digest
from reprobuild.oci.registry.credentials import Credentials, CredentialStore

__all__ = [
    "ALL_MANIFEST_TYPES",
    "CredentialStore",
    "Credentials",
    "RegistryClient",
    "is_digest",
]
