"""The inference service: serves one approved model version and signs a receipt per answer.

It loads the version only if the ledger says it is approved and its bytes match the
registered digests (and its own org has not suspended it), stops serving when a
revocation, deprecation or its own org's suspension event arrives, batches concurrent
requests into one forward pass, and anchors its receipts' Merkle roots on the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from cryptography import x509
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field

from fabricml.contracts import AttestationClient, async_contract
from fabricml.contracts.attestation import ReceiptProof
from fabricml.gateway import CommitError, GatewayError, connect
from fabricml.gateway.profile import ConnectionProfile
from fabricml.models import mlp
from fabricml.registry.connect import open_registry

from .anchoring import Anchorer, GroupCommit, ReceiptLog
from .guard import Callers, ServiceGuard
from .receipts import ReceiptIssuer, certificate_digest, payload_digest

log = logging.getLogger("fabricml.inference")
ReceiptMode = Literal["batch", "per-inference", "off"]


@dataclass
class ServiceConfig:
    profile: Path
    model: str
    state_dir: Path
    identity: str = "inference"
    receipts: ReceiptMode = "batch"
    anchor_every: int = 256  # receipts per anchored batch...
    anchor_ms: int = 500  # ...or this many milliseconds, whichever comes first
    max_batch_rows: int = 256  # dynamic batching: rows per forward pass
    max_wait_ms: float = 2.0  # how long the first request waits for company
    max_rows: int = 1024  # rows per request
    max_body_bytes: int = 1 << 20
    device: str = field(default_factory=mlp.device)
    # Who may call the routes beyond predict (guard.py), by the client certificate of mutual TLS.
    own_ca: Path | None = None  # this org's CA: its admins' certificates
    member_cas: tuple[Path, ...] = ()  # every member org's CA
    crls: tuple[Path, ...] = ()  # each member CA's revocation list, in the order of member_cas


class PredictRequest(BaseModel):
    inputs: list[list[float]] = Field(min_length=1, description="Rows of features.")


class ServiceUnavailable(RuntimeError):
    pass


class _Batcher:
    """Concurrent requests share one forward pass: the first waits up to max_wait for others."""

    def __init__(self, model: torch.nn.Module, device: str, max_rows: int, max_wait: float) -> None:
        self.model, self.device, self.max_rows, self.max_wait = model, device, max_rows, max_wait
        self.queue: asyncio.Queue[tuple[torch.Tensor, asyncio.Future[torch.Tensor]]] = asyncio.Queue()

    async def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        future: asyncio.Future[torch.Tensor] = asyncio.get_running_loop().create_future()
        await self.queue.put((rows, future))
        return await future

    async def run(self) -> None:
        while True:
            items = [await self.queue.get()]
            deadline = time.monotonic() + self.max_wait
            rows = items[0][0].shape[0]
            while rows < self.max_rows:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self.queue.get(), timeout))
                except TimeoutError:
                    break
                rows += items[-1][0].shape[0]
            try:
                with torch.inference_mode():
                    out = self.model(torch.cat([x for x, _ in items]).to(self.device)).float().cpu()
                start = 0
                for x, future in items:
                    future.set_result(out[start : start + x.shape[0]])
                    start += x.shape[0]
            except Exception as exc:  # one bad batch fails its requests, not the server
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)


class InferenceService:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.profile = ConnectionProfile.load(config.profile)
        self.revoked = ""
        self.receipts = ReceiptLog(config.state_dir)
        self.metrics = CollectorRegistry()
        self.requests = Counter(
            "fabricml_inference_requests", "Predict requests", ["status"], registry=self.metrics
        )
        self.latency = Histogram("fabricml_inference_seconds", "Predict latency", registry=self.metrics)
        self.anchored = Gauge("fabricml_receipts_anchored", "Last receipt anchored", registry=self.metrics)
        self.pending = Gauge(
            "fabricml_receipts_pending", "Receipts awaiting anchoring", registry=self.metrics
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        cfg = self.config
        # Refuses an unapproved or revoked version and any byte that differs from the ledger.
        model_dir = Path(tempfile.mkdtemp(prefix="fabricml-model-"))
        identity, signer, hash_ = self.profile.identity(cfg.identity)
        with open_registry(self.profile, cfg.identity) as registry:
            if identity.msp_id in registry.deployable(cfg.model).suspended_by:
                raise ServiceUnavailable(f"{identity.msp_id} suspended its use of {cfg.model}")
            registry.load(cfg.model, model_dir)
            self.manifest_digest = registry.get(cfg.model).manifest_digest
        self.model = mlp.load(model_dir, cfg.device)
        self.identity, self.signer = identity, signer
        self.cert_digest = certificate_digest(x509.load_pem_x509_certificate(identity.credentials))
        self.subject = cfg.identity
        self.issuer = ReceiptIssuer(identity, self.subject, signer, self.cert_digest)
        self.channel = self.profile.peer().channel()
        self.attestation = async_contract(self.channel, self.profile, cfg.identity, AttestationClient)
        # per-inference: every receipt is its own batch, anchored before its response.
        per_batch = 1 if cfg.receipts == "per-inference" else cfg.anchor_every
        self.anchorer = Anchorer(self.receipts, self.attestation, cfg.model, per_batch, cfg.anchor_ms / 1000)

        if cfg.receipts != "off":
            await self.anchorer.recover(identity.msp_id, self.subject)
            await self.anchorer.anchor_pending()  # receipts left over from before a crash
        self._next_receipt = self.receipts.next_sequence
        self.wal = GroupCommit(self.receipts)
        self.batcher = _Batcher(self.model, cfg.device, cfg.max_batch_rows, cfg.max_wait_ms / 1000)
        self._tasks.append(asyncio.create_task(self.batcher.run()))
        if cfg.receipts == "batch":
            self._tasks.append(asyncio.create_task(self.anchorer.run()))
        network = connect(self.channel, identity, signer, hash_).get_network(self.profile.channel_name)
        self._tasks.append(asyncio.create_task(self._watch_revocations(network)))
        log.info("serving %s on %s (receipts: %s)", cfg.model, cfg.device, cfg.receipts)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.config.receipts != "off":
            with contextlib.suppress(Exception):
                await self.anchorer.anchor_pending()
        await self.channel.close()

    async def _watch_revocations(self, network: Any) -> None:
        events = network.chaincode_events(self.profile.chaincode_name)
        async with events:
            async for event in events:
                self._on_event(event.event_name, json.loads(event.payload))

    def _on_event(self, name: str, record: dict[str, Any]) -> None:
        """Revocation and deprecation stop every org's service; a suspension only ours."""
        if name in ("ModelRevoked", "ModelDeprecated"):
            if f"{record['name']}@{record['version']}" == self.config.model:
                self.revoked = record["status"]
                log.warning("%s was %s on the ledger; no longer serving it", self.config.model, self.revoked)
        elif name in ("ModelSuspended", "ModelResumed"):
            if record["ref"] != self.config.model or record["mspId"] != self.identity.msp_id:
                return
            if name == "ModelSuspended" and not self.revoked:
                self.revoked = f"suspended by {record['mspId']}"
                log.warning("%s: %s; no longer serving it", self.config.model, self.revoked)
            elif name == "ModelResumed" and self.revoked.startswith("suspended"):
                self.revoked = ""
                log.warning("%s: %s resumed its use; serving it again", self.config.model, record["mspId"])

    async def predict(self, inputs: list[list[float]]) -> dict[str, Any]:
        if self.revoked:
            raise ServiceUnavailable(f"{self.config.model} is {self.revoked} on the ledger and is not served")
        rows = torch.tensor(inputs, dtype=torch.float32)
        outputs = (await self.batcher(rows)).tolist()
        if self.config.receipts == "off":
            return {"outputs": outputs}
        # Numbered and issued without yielding to the event loop, so WAL order is sequence order.
        receipt = self.issuer.issue(
            self.config.model,
            self.manifest_digest,
            payload_digest({"inputs": inputs}),
            payload_digest({"outputs": outputs}),
            self._next_receipt,
        )
        self._next_receipt += 1
        await self.wal.write(receipt)
        if self.config.receipts == "per-inference":
            while self.receipts.batch_of(receipt.sequence) is None:
                await self.anchorer.anchor_pending()

        else:
            self.anchorer.notify()
        return {"outputs": outputs, "receipt": receipt.document}


def create_app(config: ServiceConfig) -> FastAPI:
    service = InferenceService(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.stop()

    app = FastAPI(title="fabricml inference service", lifespan=lifespan)
    app.state.service = service

    callers = Callers.load(config.own_ca, config.member_cas, config.crls)
    app.add_middleware(ServiceGuard, callers=callers, max_body_bytes=config.max_body_bytes)

    _answer_routes(app, service)
    _status_routes(app, service)
    return app


def _answer_routes(app: FastAPI, service: InferenceService) -> None:
    """Predictions with receipts, and claims attested on-chain."""
    config = service.config

    @app.post("/v1/predict")
    async def predict(body: PredictRequest) -> JSONResponse:
        if len(body.inputs) > config.max_rows:
            service.requests.labels("refused").inc()
            raise HTTPException(413, f"at most {config.max_rows} rows per request, got {len(body.inputs)}")
        width = service.model.inputs
        bad = [i for i, row in enumerate(body.inputs) if len(row) != width]
        if bad:
            service.requests.labels("refused").inc()
            raise HTTPException(422, f"every row needs {width} features; rows {bad[:5]} do not")
        with service.latency.time():
            try:
                result = await service.predict(body.inputs)
            except ServiceUnavailable as exc:
                service.requests.labels("unavailable").inc()
                raise HTTPException(503, str(exc)) from None
        service.requests.labels("ok").inc()
        return JSONResponse(result)

    @app.post("/v1/claims/{claim_id}")
    async def attest_claim(claim_id: str, body: PredictRequest) -> dict[str, Any]:
        """Answer a claim's input and attest the answer on-chain for this org (k-of-n)."""
        if config.receipts == "off":
            raise HTTPException(409, "this service runs without receipts and cannot attest claims")
        try:
            result = await service.predict(body.inputs)
        except ServiceUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
        sequence = result["receipt"]["sequence"]
        bundle = service.receipts.proof(sequence)
        while bundle is None:
            await service.anchorer.anchor_pending()
            bundle = service.receipts.proof(sequence)
        proof = ReceiptProof(bundle["receipt"], bundle["batch"], bundle["proof"])
        try:
            claim = await service.attestation.call(lambda a: a.attest_claim(claim_id, proof))
        except (GatewayError, CommitError) as exc:
            raise HTTPException(
                409, f"the ledger refused the attestation: {str(exc).splitlines()[0]}"
            ) from None
        return {**result, "claim": claim.to_json()}


def _status_routes(app: FastAPI, service: InferenceService) -> None:
    """Receipt proofs, health and metrics."""
    config = service.config

    @app.get("/v1/receipts/{sequence}/proof")
    async def proof(sequence: int) -> JSONResponse:
        if sequence not in service.receipts.receipts:
            raise HTTPException(404, f"no receipt {sequence}")
        found = service.receipts.proof(sequence)
        if found is None:
            return JSONResponse({"status": "pending", "detail": "not yet anchored; retry shortly"}, 202)
        return JSONResponse({**found, "certificate": service.identity.credentials.decode()})

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        status = service.revoked or "serving"
        body = {
            "status": status,
            "model": config.model,
            "device": config.device,
            "pendingReceipts": len(service.receipts.pending()),
        }
        return JSONResponse(body, 200 if not service.revoked else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        service.anchored.set(service.receipts.last_anchored_receipt)
        service.pending.set(len(service.receipts.pending()))
        return Response(generate_latest(service.metrics), media_type=CONTENT_TYPE_LATEST)
