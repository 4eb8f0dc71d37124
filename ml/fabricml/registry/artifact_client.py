"""Fetches and uploads blobs at another org's artifact server over mutual TLS."""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path
from urllib.parse import urlparse

from .artifacts import ArtifactError
from .digests import check_digest, sha256_bytes


class ArtifactClient:
    def __init__(self, url: str, ca_files: list[Path], cert: Path, key: Path, timeout: float = 30.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "https" or not parsed.hostname or not parsed.port:
            raise ValueError(f"artifact server URL must be https://host:port, got {url!r}")
        self.host, self.port, self.timeout = parsed.hostname, parsed.port, timeout
        self.context = ssl.create_default_context()
        for ca in ca_files:
            self.context.load_verify_locations(cafile=str(ca))
        self.context.load_cert_chain(cert, key)

    def _request(self, method: str, digest: str, body: bytes | None = None) -> tuple[int, bytes]:
        check_digest(digest)
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)
        try:
            conn.request(method, f"/v1/blobs/{digest}", body=body)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def has(self, digest: str) -> bool:
        return self._request("HEAD", digest)[0] == 200

    def get(self, digest: str) -> bytes:
        status, data = self._request("GET", digest)
        if status != 200:
            raise ArtifactError(
                f"artifact server {self.host}:{self.port} answered {status} for blob {digest}"
            )
        if sha256_bytes(data) != digest:
            raise ArtifactError(f"blob {digest} from {self.host}:{self.port} does not match its digest")
        return data

    def put(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        status, body = self._request("PUT", digest, data)
        if status != 201:
            raise ArtifactError(f"upload refused ({status}): {body.decode(errors='replace').strip()}")
        return digest
