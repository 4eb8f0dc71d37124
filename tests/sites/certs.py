"""Organizations made without a Fabric CA, for bundle tests: their CAs and the identities a bundle names."""

from __future__ import annotations

from dataclasses import dataclass

from fabricml.network.bundle import FORMAT
from fabricml.network.identities import NODE_OU_CONFIG
from tests.certs import Issued, issue


@dataclass(frozen=True)
class FakeOrg:
    """An organization's CAs and the identities a bundle names, made without a Fabric CA."""

    name: str
    msp_id: str
    host: str
    ca: Issued
    tls_ca: Issued
    admin: Issued
    orderer_tls: Issued
    orderer_identity: Issued

    @classmethod
    def make(cls, name: str, host: str = "127.0.99.1", base: int = 30000) -> FakeOrg:
        ca = issue(f"ca.{name}", "Fabric", ca=True)
        tls_ca = issue(f"tlsca.{name}", "TLS", ca=True)
        return cls(
            name,
            f"{name.title()}MSP",
            host,
            ca,
            tls_ca,
            issue("admin", "admin", ca),
            issue(f"orderer0.{name}", "orderer", tls_ca),
            issue("orderer0", "orderer", ca),
        )

    def body(self, base: int = 30000) -> dict[str, object]:
        return {
            "format": FORMAT,
            "name": self.name,
            "mspId": self.msp_id,
            "caCert": self.ca.pem,
            "tlsCaCert": self.tls_ca.pem,
            "nodeOUs": NODE_OU_CONFIG,
            "peer": {"name": f"peer0.{self.name}", "address": f"{self.host}:{base + 10}"},
            "orderers": [
                {
                    "name": f"orderer0.{self.name}",
                    "address": f"{self.host}:{base + 20}",
                    "tlsCert": self.orderer_tls.pem,
                    "identityCert": self.orderer_identity.pem,
                }
            ],
            "ca": f"https://{self.host}:{base}",
            "artifactStore": f"https://{self.host}:{base + 50}",
            "adminApi": f"https://{self.host}:{base + 60}",
        }
