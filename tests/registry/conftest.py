"""Registries of each org's identities on the session network, model folders to register,
and a real artifact server process on its own harness PKI (no ledger)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from fabricml.registry.connect import open_registry
from fabricml.registry.service import ModelRegistry

from .store_harness import Pki, StoreProcess, free_port

RegistryFactory = Callable[..., ModelRegistry]


@pytest.fixture
def registry(network: Network) -> Iterator[RegistryFactory]:
    """registry(org="org1", identity="trainer") -> that org's ModelRegistry."""
    with ExitStack() as stack:

        def make(org: str = "org1", identity: str = "trainer") -> ModelRegistry:
            profile = ConnectionProfile.load(network.layout.profile(network.topology.org(org)))
            return stack.enter_context(open_registry(profile, identity))

        yield make


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small model folder: weights, config, tokenizer in a subfolder."""
    d = tmp_path / "model"
    (d / "tokenizer").mkdir(parents=True)
    (d / "model.safetensors").write_bytes(os.urandom(4096))
    (d / "config.json").write_text('{"layers": 2}')
    (d / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    return d


def unique(name: str = "m") -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[StoreProcess]:
    """An artifact server process with a fresh harness PKI, stopped after the test."""
    store = StoreProcess(Pki.make(tmp_path / "pki"), tmp_path / "store", free_port(), tmp_path / "server.log")
    store.start()
    try:
        yield store
    finally:
        store.stop()
