"""One exception per failing step, each with the transaction ID and per-peer details."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from fabric_protos.gateway import gateway_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class ErrorDetail:
    """What one peer or orderer said when the Gateway tried it."""

    address: str
    msp_id: str
    message: str


class GatewayError(Exception):
    """A Gateway call failed. Carries the gRPC status code and the per-endpoint details."""

    def __init__(
        self, message: str, code: grpc.StatusCode, details: list[ErrorDetail], transaction_id: str = ""
    ):
        super().__init__(message)
        self.code = code
        self.details = details
        self.transaction_id = transaction_id

    def __str__(self) -> str:
        text = super().__str__()
        if self.transaction_id:
            text += f" (transaction {self.transaction_id})"
        for d in self.details:
            text += f"\n  {d.address} ({d.msp_id}): {d.message}"
        return text


class EvaluateError(GatewayError):
    """Evaluating a transaction failed."""


class EndorseError(GatewayError):
    """Collecting endorsements failed."""


class SubmitError(GatewayError):
    """Sending the endorsed transaction to the orderers failed."""


class CommitStatusError(GatewayError):
    """Asking for the transaction's commit status failed (not the same as an invalid commit)."""


class CommitError(Exception):
    """The transaction was committed to a block but marked invalid."""

    def __init__(self, transaction_id: str, code: int, code_name: str, block_number: int):
        super().__init__(
            f"transaction {transaction_id} failed to commit with status {code_name} in block {block_number}"
        )
        self.transaction_id = transaction_id
        self.code = code
        self.code_name = code_name
        self.block_number = block_number


def details_of(err: grpc.RpcError) -> list[ErrorDetail]:
    """The gateway.ErrorDetail messages from a gRPC error's status details, if any."""
    try:
        status = rpc_status.from_call(err)
    except (ValueError, AttributeError):
        return []
    if status is None:
        return []
    out = []
    for any_detail in status.details:
        detail = gateway_pb2.ErrorDetail()
        if any_detail.Unpack(detail):
            out.append(ErrorDetail(detail.address, detail.msp_id, detail.message))
    return out


def wrap(kind: type[GatewayError], err: grpc.RpcError, transaction_id: str = "") -> GatewayError:
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = err.details() if hasattr(err, "details") else str(err)
    wrapped = kind(str(message), code, details_of(err), transaction_id)
    wrapped.__cause__ = err
    return wrapped
