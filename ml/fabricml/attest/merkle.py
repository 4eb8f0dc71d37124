"""Merkle trees over receipts, RFC 6962 style: domain-separated leaf and node hashes, so a
leaf can never be passed off as an inner node. The chaincode implements the same rules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

LEAF, NODE = b"\x00", b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (RFC 6962's k)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: list[bytes]) -> bytes:
    """Root of already-hashed leaves."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root(leaves[:k]), root(leaves[k:]))


@dataclass(frozen=True)
class InclusionProof:
    index: int
    size: int
    path: tuple[bytes, ...]  # sibling hashes from the leaf up

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "size": self.size, "path": [p.hex() for p in self.path]}

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> InclusionProof:
        path = raw.get("path")
        if not isinstance(path, list):
            raise ValueError("proof path must be a list of hex hashes")
        return cls(int(str(raw["index"])), int(str(raw["size"])), tuple(bytes.fromhex(str(p)) for p in path))


def prove(leaves: list[bytes], index: int) -> InclusionProof:
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} is outside a tree of {len(leaves)}")

    def path(nodes: list[bytes], i: int) -> list[bytes]:
        if len(nodes) == 1:
            return []
        k = _split(len(nodes))
        if i < k:
            return [*path(nodes[:k], i), root(nodes[k:])]
        return [*path(nodes[k:], i - k), root(nodes[:k])]

    return InclusionProof(index, len(leaves), tuple(path(leaves, index)))


def root_from_proof(leaf: bytes, proof: InclusionProof) -> bytes:
    """Recompute the root a proof leads to (RFC 9162 section 2.1.3.2)."""
    if not 0 <= proof.index < proof.size:
        raise ValueError("proof index outside its tree")
    fn, sn, r = proof.index, proof.size - 1, leaf
    for p in proof.path:
        if sn == 0:
            raise ValueError("proof is longer than its tree")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof is shorter than its tree")
    return r


def verify(leaf: bytes, proof: InclusionProof, expected_root: bytes) -> bool:
    try:
        return root_from_proof(leaf, proof) == expected_root
    except ValueError:
        return False
