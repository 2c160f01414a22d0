"""The distribution-spec 1.1 referrers API in front of the real registry, which lacks it (Debian's 2.8).

The proxy (:func:`tests.oci.registry.servers.proxy_to`) records each manifest the registry accepts that
carries a ``subject``, as a registry with the API does (``spec.md`` "Pushing Manifests with Subject":
it answers with an ``OCI-Subject`` header), and answers ``GET /v2/<name>/referrers/<digest>`` with an
image index of their descriptors (``artifactType``, or the config's media type when there is none, and the
manifest's annotations; ``?artifactType=`` filters). Everything else is the real registry's answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.oci.registry.servers import Exchange, Proxy, Upstream, proxy_to

_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class ReferrersAPI:
    """What the proxy has seen: referrers by (repository, subject digest)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self.referrers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.queries: list[str] = []

    def before(self, exchange: Exchange, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        match = _MANIFEST.match(urlsplit(exchange.path).path)
        if exchange.method == "PUT" and match:
            try:
                obj = json.loads(body)
            except ValueError:
                obj = None
            subject = obj.get("subject") if isinstance(obj, dict) else None
            if isinstance(subject, dict):
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
                desc: dict[str, Any] = {
                    "mediaType": obj.get("mediaType"),
                    "digest": digest,
                    "size": len(body),
                    "artifactType": obj.get("artifactType") or (obj.get("config") or {}).get("mediaType"),
                }
                if obj.get("annotations"):
                    desc["annotations"] = obj["annotations"]
                with self._lock:
                    self._pending[(match["name"], match["ref"])] = (str(subject.get("digest")), desc)
        return headers, body

    def hook(self, handler: object, exchange: Exchange, upstream: Upstream) -> Upstream | None:
        url = urlsplit(exchange.path)
        manifest = _MANIFEST.match(url.path)
        if exchange.method == "PUT" and manifest:
            with self._lock:
                pending = self._pending.pop((manifest["name"], manifest["ref"]), None)
                if pending is None or upstream.status != 201:
                    return None
                subject, desc = pending
                self.referrers.setdefault((manifest["name"], subject), {})[desc["digest"]] = desc
            return Upstream(upstream.status, [*upstream.headers, ("OCI-Subject", subject)], upstream.body)
        referrers = _REFERRERS.match(url.path)
        if exchange.method == "GET" and referrers:
            self.queries.append(referrers["digest"])
            wanted = parse_qs(url.query).get("artifactType")
            with self._lock:
                listed = list(self.referrers.get((referrers["name"], referrers["digest"]), {}).values())
            if wanted:
                listed = [d for d in listed if d.get("artifactType") in wanted]
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}).encode()
            return Upstream(200, [("Content-Type", OCI_INDEX)], body)
        return None


@contextmanager
def registry_with_referrers_api(upstream: str) -> Iterator[tuple[Proxy, ReferrersAPI]]:
    """The real registry at ``upstream`` behind a proxy that adds the referrers API."""
    api = ReferrersAPI()
    with proxy_to(upstream, hook=api.hook, before=api.before) as proxy:
        yield proxy, api
