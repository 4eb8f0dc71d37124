"""Approved models and running inference services on the session network."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from fabricml.attest.receipts import payload_digest
from fabricml.attest.service_tls import client_context, identity_files
from fabricml.gateway import sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.models.mlp import MLP, save
from fabricml.network.network import Network
from fabricml.registry.connect import open_registry
from fabricml.registry.service import ModelRegistration
from tests.conftest import FABRICML, network_options

FEATURES = 30


# TLS towards each started service, as the admin of the service's org (start_service fills it).
SERVICE_TLS: dict[str, ssl.SSLContext] = {}


def http(
    method: str, url: str, body: Any = None, raw: bytes | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, Any]:
    """A request to a service, over mutual TLS as its org's admin unless `context` says otherwise."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    tls = context or next((c for base, c in SERVICE_TLS.items() if url.startswith(base + "/")), None)
    try:
        with urllib.request.urlopen(req, timeout=30, context=tls) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def register_model(
    network: Network, tmp: Path, name: str, version: str, seed: int, approvers: tuple[str, ...]
) -> str:
    torch.manual_seed(seed)
    model_dir = save(MLP([FEATURES, 16, 2]), tmp / f"{name}-{version}")
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org("org1")))
    with open_registry(profile, "trainer") as reg:
        reg.register(model_dir, ModelRegistration(name, version, ["Org1MSP"]))
    for org in approvers:
        p = ConnectionProfile.load(network.layout.profile(network.topology.org(org)))
        with open_registry(p, "admin") as reg:
            reg.approve(f"{name}@{version}")
    return f"{name}@{version}"


@pytest.fixture(scope="module")
def approved_model(network: Network, tmp_path_factory: pytest.TempPathFactory) -> str:
    return register_model(
        network,
        tmp_path_factory.mktemp("models"),
        f"claims-{uuid.uuid4().hex[:6]}",
        "1.0",
        0,
        ("org1", "org2"),
    )


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log: Path

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)


ServiceFactory = Callable[..., Service]


@pytest.fixture
def start_service(network: Network, tmp_path: Path) -> Iterator[ServiceFactory]:
    started: list[Service] = []
    # Free offsets of org1's block: +60 is its admin API, +41 the default inference port.
    ports = iter(range(network.topology.org("org1").port(70), network.topology.org("org1").port(99)))

    def start(
        model: str, org: str = "org1", *extra: str, data_dir: Path | None = None, wait: bool = True
    ) -> Service:
        port = next(ports)
        data = data_dir or tmp_path / f"receipts-{org}-{port}"
        log = tmp_path / f"service-{port}.log"
        argv = [
            *FABRICML,
            "serve",
            "--model",
            model,
            "--org",
            org,
            "--port",
            str(port),
            "--data-dir",
            str(data),
            *network_options(network),
            *extra,
        ]
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ})
        service = Service(f"https://127.0.0.1:{port}", proc, data, log)
        o = network.topology.org(org)
        SERVICE_TLS[service.url] = client_context(network, o, identity_files(network, o, "admin"))
        started.append(service)
        if wait:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise AssertionError(f"service exited: {log.read_text()[-2000:]}")
                try:
                    if http("GET", f"{service.url}/healthz")[0] == 200:
                        return service
                except (urllib.error.URLError, ConnectionError):
                    pass
                time.sleep(0.3)
            raise AssertionError(f"service did not come up: {log.read_text()[-2000:]}")
        return service

    yield start
    for s in started:
        s.kill(signal.SIGKILL)
        SERVICE_TLS.pop(s.url, None)


def rows(n: int = 1, value: float = 0.5) -> list[list[float]]:
    return [[value + i / 100] * FEATURES for i in range(n)]


def proof_of(service: Service, sequence: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http("GET", f"{service.url}/v1/receipts/{sequence}/proof")
        if status == 200:
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"receipt {sequence} was not anchored within {timeout}s")


def contract(
    network: Network, org: str, identity: str, channel: sync.Channel, name: str = "Attestation"
) -> sync.Contract:
    """A contract of the chaincode for one of org's identities, over channel."""
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org(org)))
    ident, signer, hash_ = profile.identity(identity)
    return (
        sync.connect(channel, ident, signer, hash_)
        .get_network(network.topology.channel)
        .get_contract(network.topology.chaincode_name, name)
    )


def open_claim(
    network: Network, model_name: str, k: int, amount: str = "1250.00", org: str = "org1"
) -> tuple[str, list[list[float]]]:
    """An org admin opens a claim on one input row; returns "<MSP ID>:<id>" and the input."""
    inputs = rows(1, 0.33)
    profile = ConnectionProfile.load(network.layout.profile(network.topology.org(org)))
    with profile.peer().sync_channel() as channel:
        claim = json.loads(
            contract(network, org, "admin", channel).submit_transaction(
                "OpenClaim", f"claim-{uuid.uuid4().hex[:8]}", payload_digest({"inputs": inputs}), model_name,
                str(k), amount,
            )
        )  # fmt: skip
    return str(claim["id"]), inputs
