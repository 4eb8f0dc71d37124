"""The approved model served by every org's inference service, with one receipt per org
verified end to end (signature, chain, inclusion proof, anchored batch)."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Callable
from typing import Any

from fabricml.attest.caller import call, predict, proof
from fabricml.attest.service_tls import client_context, identity_files
from fabricml.attest.verify import service_ca, verify_receipt
from fabricml.contracts import AttestationClient, open_contract
from fabricml.federation.data import Dataset
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from fabricml.network.topology import Organization

from .agents import DemoError, cli_command

INFERENCE_PORT_OFFSET = 41
ROWS = 16
Log = Callable[[str], None]


def serve_and_attest(net: Network, ref: str, test: Dataset, log: Log) -> list[dict[str, Any]]:
    """Each org's service loads the approved model (digest-checked), answers test rows with
    signed receipts and anchors them; one receipt per org is verified end to end."""
    procs: list[tuple[Organization, subprocess.Popen[bytes]]] = []
    try:
        for o in net.topology.organizations:
            cmd = cli_command(
                net, "serve", "--org", o.name, "--model", ref, "--port", str(o.port(INFERENCE_PORT_OFFSET))
            )
            with (net.layout.root / "federated" / f"serve-{o.name}.log").open("wb") as out:
                procs.append((o, subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)))
        results = [_ask_and_verify(net, o, p, test) for o, p in procs]
    finally:
        for _, p in procs:
            p.terminate()
            p.wait(timeout=30)
    for r in results:
        log(
            f"{r['org']}'s inference service answered {r['answers']} rows (accuracy {r['accuracy']:.2f}); "
            f"receipt {r['sequence']} anchored and verified: {r['receiptVerified']}"
        )
    return [{k: v for k, v in r.items() if k != "sequence"} for r in results]


def _ask_and_verify(
    net: Network, o: Organization, proc: subprocess.Popen[bytes], test: Dataset
) -> dict[str, Any]:
    url = f"https://127.0.0.1:{o.port(INFERENCE_PORT_OFFSET)}"
    # Predictions are open; a receipt's proof is for members, so the org's auditor asks.
    tls = client_context(net, o, identity_files(net, o, "auditor"))
    _wait_healthy(url, proc, tls)
    answer = predict(url, tls, test.features[:ROWS].tolist())
    predicted = [int(max(range(len(x)), key=x.__getitem__)) for x in answer["outputs"]]
    accuracy = sum(int(a == b) for a, b in zip(predicted, test.labels[:ROWS].tolist(), strict=True)) / ROWS
    bundle = proof(url, tls, answer["receipt"]["sequence"])
    profile = ConnectionProfile.load(net.layout.profile(o))
    with open_contract(profile, "auditor", AttestationClient) as attestation:
        checks = verify_receipt(bundle, service_ca(profile, o.msp_id), attestation)
    receipt_file = net.layout.root / "federated" / f"receipt-{o.name}.json"
    receipt_file.write_text(json.dumps(bundle, indent=1, sort_keys=True))
    return {
        "org": o.name,
        "url": url,
        "answers": ROWS,
        "accuracy": accuracy,
        "sequence": answer["receipt"]["sequence"],
        "receiptVerified": all(ch.ok for ch in checks),
        "receipt": str(receipt_file),
    }


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], tls: ssl.SSLContext, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise DemoError(f"the inference service at {url} exited with {proc.returncode}")
        try:
            if call("GET", f"{url}/healthz", tls)["status"] == "serving":
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise DemoError(f"the inference service at {url} did not become healthy in {timeout}s")
