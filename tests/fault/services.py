"""Each org's `fabricml serve` as the fault matrix and the soak run it: restartable on the
same receipt log, asked over mutual TLS; and the small approved model they serve."""

from __future__ import annotations

import json
import ssl
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fabricml.attest.service_tls import client_context, identity_files
from fabricml.gateway.profile import ConnectionProfile
from fabricml.models.mlp import MLP, save
from fabricml.network.network import Network
from fabricml.registry.connect import open_registry
from fabricml.registry.service import ModelRegistration
from tests.fault.nodes import FABRICML

PORT_OFFSET = 41  # an org's inference port, as `fabricml fed demo` serves
FEATURES = 30  # breast_cancer's


@dataclass
class Service:
    """One org's inference service; `work` holds its receipt log and its output."""

    net: Network
    org: str
    model: str
    work: Path
    identity: str = "auditor"  # predictions are open, proofs for members, claims for the org admin
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.net.topology.org(self.org).port(PORT_OFFSET)}"

    @property
    def tls(self) -> ssl.SSLContext:
        o = self.net.topology.org(self.org)
        return client_context(self.net, o, identity_files(self.net, o, self.identity))

    def start(self, timeout: float = 180) -> None:
        self.launch()
        self.wait_serving(timeout)

    def launch(self) -> None:
        where = ["--topology", str(self.net.topology.source), "--state-dir", str(self.net.layout.root)]
        port = str(self.net.topology.org(self.org).port(PORT_OFFSET))
        argv = [*FABRICML, "serve", "--org", self.org, "--model", self.model, "--port", port,
                "--data-dir", str(self.work / f"receipts-{self.org}"), *where]  # fmt: skip
        with (self.work / f"serve-{self.org}.log").open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def wait_serving(self, timeout: float = 180) -> None:
        assert self.proc is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            try:
                if http("GET", f"{self.url}/healthz", self.tls)["status"] == "serving":
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"inference service of {self.org} did not come up; see serve-{self.org}.log")

    def kill(self) -> None:
        """SIGKILL: no chance to anchor what is pending (its restart must)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # anchors what is pending before it exits
            self.proc.wait(timeout=120)

    def proof(self, sequence: int, timeout: float = 180) -> dict[str, Any] | None:
        """The receipt's anchored proof once it has one; None after `timeout`."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                found: dict[str, Any] = http("GET", f"{self.url}/v1/receipts/{sequence}/proof", self.tls)
            except OSError:
                found = {}
            if "batch" in found:  # 202 {"status": "pending"} until anchored
                return found
            time.sleep(1)
        return None


def http(method: str, url: str, tls: ssl.SSLContext, body: Any = None, timeout: float = 60) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout, context=tls) as resp:
        return json.loads(resp.read())


def register_model(net: Network, ref: str) -> None:
    """A small model (breast_cancer's 30 features), registered by org1 and approved by org1
    and org2: the majority that makes it deployable."""
    name, version = ref.split("@")
    profile = ConnectionProfile.load(net.layout.profile(net.topology.org("org1")))
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model_dir = save(MLP([FEATURES, 16, 2]), Path(tmp) / "model")
        with open_registry(profile, "trainer") as reg:
            reg.register(model_dir, ModelRegistration(name, version, ["Org1MSP"]))
    for org in ("org1", "org2"):
        with open_registry(ConnectionProfile.load(net.layout.profile(net.topology.org(org))), "admin") as reg:
            reg.approve(ref)
