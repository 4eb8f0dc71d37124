"""A caller of another org's inference service: ask for answers, then wait for the
receipt's proof bundle (what `fabricml attest verify` checks)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

PROOF_SECONDS = 60.0


def call(method: str, url: str, tls: ssl.SSLContext, body: Any | None = None) -> Any:
    """One JSON request over mutual TLS; its decoded answer."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with _open(req, tls) as resp:
        return json.loads(resp.read())


def _open(req: urllib.request.Request | str, tls: ssl.SSLContext) -> Any:
    """urlopen; an HTTP error status raises ServiceError with the service's own reason."""
    try:
        return urllib.request.urlopen(req, timeout=30, context=tls)
    except urllib.error.HTTPError as exc:
        url = req if isinstance(req, str) else req.full_url
        raise ServiceError(f"{url}: HTTP {exc.code}: {exc.read()[:500].decode(errors='replace')}") from None


class ServiceError(OSError):
    """The service answered with an error status; the message carries its reason."""


def predict(url: str, tls: ssl.SSLContext, inputs: list[Any]) -> dict[str, Any]:
    """The service's answer: {"outputs": [...], "receipt": {...}}."""
    answer: dict[str, Any] = call("POST", f"{url}/v1/predict", tls, {"inputs": inputs})
    return answer


def proof(url: str, tls: ssl.SSLContext, sequence: int, timeout: float = PROOF_SECONDS) -> dict[str, Any]:
    """Receipt `sequence` with its inclusion proof, once its batch is anchored on the
    ledger; TimeoutError after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        with _open(f"{url}/v1/receipts/{sequence}/proof", tls) as r:
            if r.status == 200:  # 202: not anchored yet
                found: dict[str, Any] = json.loads(r.read())
                return found
        if time.monotonic() > end:
            raise TimeoutError(f"receipt {sequence} at {url} was not anchored within {timeout:.0f} s")
        time.sleep(0.3)


def wait_serving(url: str, tls: ssl.SSLContext, timeout: float) -> None:
    """Return once the service's /healthz says `serving`; TimeoutError after `timeout` s."""
    end = time.monotonic() + timeout
    while True:
        try:
            if call("GET", f"{url}/healthz", tls)["status"] == "serving":
                return
        except OSError:  # not listening yet (a 503 while revoked is an HTTPError, an OSError)
            pass
        if time.monotonic() > end:
            raise TimeoutError(f"the inference service at {url} was not serving within {timeout:.0f} s")
        time.sleep(0.5)
