"""A Python client for Hyperledger Fabric's Gateway service.

The ladder follows the official clients: connect -> Gateway -> Network ->
Contract -> Proposal -> endorse -> Transaction -> submit -> Commit -> status.
"""

from .checkpoint import Checkpointer, FileCheckpointer, InMemoryCheckpointer
from .errors import (
    CommitError,
    CommitStatusError,
    EndorseError,
    ErrorDetail,
    EvaluateError,
    GatewayError,
    SubmitError,
)
from .events import BlockEvents, ChaincodeEvent, ChaincodeEvents
from .gateway import Contract, Gateway, Network, connect
from .identity import Identity, identity_from_msp, load_identity
from .pkcs11 import TokenError, TokenKey, TokenSigner, pkcs11_signer
from .refusals import Refusal, RefusalCode, is_refusal, refusal_of
from .signing import Hash, Signer, ecdsa_signer, ed25519_signer, sha256, signer_from_msp, signer_from_pem
from .transaction import Commit, Proposal, Status, Transaction

__all__ = [
    "BlockEvents",
    "ChaincodeEvent",
    "ChaincodeEvents",
    "Checkpointer",
    "Commit",
    "CommitError",
    "CommitStatusError",
    "Contract",
    "EndorseError",
    "ErrorDetail",
    "EvaluateError",
    "FileCheckpointer",
    "Gateway",
    "GatewayError",
    "Hash",
    "Identity",
    "InMemoryCheckpointer",
    "Network",
    "Proposal",
    "Refusal",
    "RefusalCode",
    "Signer",
    "Status",
    "SubmitError",
    "TokenError",
    "TokenKey",
    "TokenSigner",
    "Transaction",
    "connect",
    "ecdsa_signer",
    "ed25519_signer",
    "identity_from_msp",
    "is_refusal",
    "load_identity",
    "pkcs11_signer",
    "refusal_of",
    "sha256",
    "signer_from_msp",
    "signer_from_pem",
]
