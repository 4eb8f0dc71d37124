"""How to reach each org's API and dashboard, and which certificates to authenticate with."""

from __future__ import annotations

from fabricml.network.layout import Layout
from fabricml.network.topology import Topology

from .context import api_port


def access_lines(topo: Topology, layout: Layout) -> list[str]:
    """URLs of each org's API and dashboard, and the certificates to authenticate with."""
    lines = []
    for org in topo.organizations:
        url = f"https://{org.address(api_port(org))}"
        lines.append(f"{org.name}: dashboard {url}/   API {url}/api/v1/   OpenAPI {url}/openapi.json")
        for identity, can in (("admin", "read and write"), ("auditor", "read and verify")):
            msp = layout.msp(org, identity)
            keys = sorted((msp / "keystore").glob("*")) if (msp / "keystore").is_dir() else []
            key = keys[0] if keys else msp / "keystore" / "<key>"
            lines.append(
                f"  as {identity} ({can}): curl --cacert {layout.ca_cert(org)} "
                f"--cert {msp / 'signcerts' / 'cert.pem'} --key {key} {url}/api/v1/whoami"
            )
    lines.append(
        "Browsers: import the certificate and key (e.g. as PKCS#12: openssl pkcs12 -export -in CERT "
        "-inkey KEY -out admin.p12) and trust the org's CA (ca.pem); see docs/api.md."
    )
    return lines
