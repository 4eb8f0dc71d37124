"""What must hold on the ledger after any crash fault, read back from the blocks alone:
tokens conserved, every task's rounds finalized with no honest participant slashed,
no inference receipt batch anchored twice."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_event_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2

from fabricml.gateway import sync
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network


@dataclass
class Ledger:
    """The valid chaincode events of every block, in commit order, and how many copies of
    one transaction ID reached a block (a resubmitted envelope is marked DUPLICATE_TXID)."""

    events: list[tuple[str, bytes]] = field(default_factory=list)
    duplicates: int = 0
    height: int = 0

    def named(self, name: str) -> list[dict[str, Any]]:
        """The JSON payloads of the events called `name` (the contracts' events are JSON)."""
        return [json.loads(payload) for n, payload in self.events if n == name]


def _tx_event(raw: bytes) -> tuple[str, bytes] | None:
    payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(raw).payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    if header.type != common_pb2.ENDORSER_TRANSACTION:
        return None
    for action in transaction_pb2.Transaction.FromString(payload.data).actions:
        cap = transaction_pb2.ChaincodeActionPayload.FromString(action.payload)
        prp = proposal_response_pb2.ProposalResponsePayload.FromString(cap.action.proposal_response_payload)
        event = chaincode_event_pb2.ChaincodeEvent.FromString(
            proposal_pb2.ChaincodeAction.FromString(prp.extension).events
        )
        if event.event_name:
            return event.event_name, bytes(event.payload)
    return None


def read_ledger(network: sync.Network) -> Ledger:
    """Replay every block from the genesis block to the current height."""
    ledger = Ledger(height=network.height())
    if ledger.height <= 1:
        return ledger
    with network.block_events(start_block=0) as blocks:
        for block in blocks:
            flags = block.metadata.metadata[common_pb2.TRANSACTIONS_FILTER]
            for i, raw in enumerate(block.data.data):
                if flags[i] == transaction_pb2.DUPLICATE_TXID:
                    ledger.duplicates += 1
                found = _tx_event(raw) if flags[i] == transaction_pb2.VALID else None
                if found:
                    ledger.events.append(found)
            if block.header.number + 1 >= ledger.height:
                break
    return ledger


class Auditor:
    """One org's auditor on the ledger (through that org's peer)."""

    def __init__(self, net: Network, org: str = "org3") -> None:
        self.net = net
        profile = ConnectionProfile.load(net.layout.profile(net.topology.org(org)))
        identity, signer, hash_ = profile.identity("auditor")
        self.channel = profile.peer().sync_channel()
        self.network = sync.connect(self.channel, identity, signer, hash_).get_network(profile.channel_name)
        self.chaincode = profile.chaincode_name

    def call(self, contract: str, function: str, *args: str) -> Any:
        raw = self.network.get_contract(self.chaincode, contract).evaluate_transaction(function, *args)
        return json.loads(raw) if raw else None

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Auditor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- invariants --------------------------------------------------------------------

    def token_accounts(self, ledger: Ledger) -> tuple[int, int]:
        """(minted, held): every token ever minted, and balances plus every task's escrow."""
        minted = sum(int(m["amount"]) for m in ledger.named("TokensMinted"))
        balances = sum(
            int(self.call("Token", "GetBalance", o.msp_id)["amount"]) for o in self.net.topology.organizations
        )
        tasks = {t["id"] for t in ledger.named("TaskCreated")}
        escrow = sum(int(self.call("Federation", "GetTask", t)["escrow"]) for t in sorted(tasks))
        return minted, balances + escrow

    def rounds(self, task: str) -> list[dict[str, Any]]:
        state = self.call("Federation", "GetTask", task)
        last = state["round"] if state["status"] == "done" else state["round"] - 1
        return [self.call("Federation", "GetRound", task, str(r)) for r in range(1, last + 1)]

    def check_task(self, task: str, rounds: int) -> list[dict[str, Any]]:
        """The task is done, every round FINALIZED by every org, and no one was slashed."""
        state = self.call("Federation", "GetTask", task)
        assert state["status"] == "done", f"task {task} is {state['status']} at round {state['round']}"
        results = self.rounds(task)
        assert [r["status"] for r in results] == ["FINALIZED"] * rounds, results
        assert all(not r["slashed"] for r in results), [r["slashed"] for r in results]
        assert not any(p["slashed"] for p in state["participants"]), state["participants"]
        return results


def anchored_receipts(ledger: Ledger) -> Counter[tuple[str, str, int]]:
    """How often each receipt (service org, service subject, receipt number) is covered by
    an anchored batch: 1 for every receipt anchored, never 2."""
    covered: Counter[tuple[str, str, int]] = Counter()
    for b in ledger.named("BatchAnchored"):
        service = (b["service"]["mspId"], b["service"]["subject"])
        for n in range(int(b["firstReceipt"]), int(b["lastReceipt"]) + 1):
            covered[(*service, n)] += 1
    return covered
