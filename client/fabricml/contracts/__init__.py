"""Typed clients of the fabricml chaincode's contracts, one module per contract.

Each method is one transaction over the Gateway ladder, takes and returns frozen
dataclasses, and lists in its docstring the refusal codes it can raise. Open one with
`open_contract(profile, identity, FederationClient)`, several on one connection with
`open_connection(profile, identity)`, or on the asyncio client with `async_contract`.

Every method raises fabricml.gateway.GatewayError when the ledger refuses (read the code
with fabricml.gateway.refusal_of; each docstring lists the codes it may carry),
CommitError when a submitted transaction is ordered but marked invalid (e.g. an MVCC
conflict), and RecordError when the answer does not have the expected shape."""

from .attestation import AttestationClient
from .call import AsyncContract, Call, ContractClient
from .connect import OrgConnection, async_contract, open_connection, open_contract
from .consortium import ConsortiumClient
from .federation import FederationClient
from .records import Record, RecordError
from .registry import RegistryClient
from .token import TokenClient

__all__ = [
    "AsyncContract",
    "AttestationClient",
    "Call",
    "ConsortiumClient",
    "ContractClient",
    "FederationClient",
    "OrgConnection",
    "Record",
    "RecordError",
    "RegistryClient",
    "TokenClient",
    "async_contract",
    "open_connection",
    "open_contract",
]
