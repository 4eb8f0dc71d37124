"""The peers' and orderers' operations endpoints, which speak TLS: /healthz answers anyone
(members' dashboards, container probes); /metrics and /logspec take the org's operator
certificate only (Fabric checks it against the operator CA, the one client root)."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

from .layout import SiteLayout


def url(address: str, path: str) -> str:
    """An operations endpoint's URL, e.g. url("127.0.0.1:7012", "/healthz")."""
    return f"https://{address}{path}"


def tls_context(server_ca: Path, operator: SiteLayout | None = None) -> ssl.SSLContext:
    """Trusts the node's TLS CA; presents `operator`'s certificate when given (to read
    /metrics, or to change /logspec)."""
    ctx = ssl.create_default_context(cafile=str(server_ca))
    if operator is not None:
        ctx.load_cert_chain(operator.operator_cert, operator.operator_key)
    return ctx


def site_context(site: SiteLayout) -> ssl.SSLContext:
    """Towards the site's own nodes, as its operator."""
    return tls_context(site.tls_ca_cert, site)


def fetch(address: str, path: str, ctx: ssl.SSLContext, timeout: float = 2.0) -> str | None:
    """The body of a 200 answer, or None (refused, unreachable, not ready)."""
    try:
        with urllib.request.urlopen(url(address, path), timeout=timeout, context=ctx) as resp:
            return str(resp.read().decode()) if resp.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None
