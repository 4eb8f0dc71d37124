"""The ledger layer's retry policy, with only the gRPC stub faked: what is retried, the
budget, commit status before resubmission, and event streams resuming after a drop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import ledger_pb2
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import chaincode_event_pb2, events_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from fabricml.gateway import (
    NO_RETRY,
    CommitError,
    CommitStatusError,
    EndorseError,
    ErrorDetail,
    EvaluateError,
    Failure,
    GatewayError,
    RefusalCode,
    RetryPolicy,
    SubmitError,
    classify,
    connect,
    is_refusal,
    signer_from_pem,
)
from fabricml.gateway.retry import DEFAULT, Budget
from tests.unit.test_gateway_client import FakeChannel, _identity, _prepared_envelope

FAST = RetryPolicy(first_delay=0.001, max_delay=0.004, resubmit_after=0.05, status_probe=0.01)
U, D, A, F = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.FAILED_PRECONDITION,
)
PEER_DOWN = (
    'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: '
    'dial tcp 127.0.0.1:24110: connect: connection refused"'
)


def rpc_error(code: grpc.StatusCode, message: str = "boom", *details: str) -> grpc.aio.AioRpcError:
    """A gRPC error as the Gateway sends it: code, message and ErrorDetails."""
    packed = []
    for text in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(gateway_pb2.ErrorDetail(address="127.0.0.1:24110", msp_id="Org2MSP", message=text))
        packed.append(any_detail)
    status = status_pb2.Status(code=code.value[0], message=message, details=packed)
    return grpc.aio.AioRpcError(
        code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString())),
        details=message,
    )


def gateway_error(code: grpc.StatusCode, message: str = "boom", *details: str) -> GatewayError:
    return GatewayError(message, code, [ErrorDetail("127.0.0.1:24110", "Org2MSP", d) for d in details])


NO_COMBINATION = "no combination of peers can be derived which satisfy the endorsement policy: "
T, M, P = Failure.TRANSIENT, Failure.MISMATCH, Failure.PERMANENT
CASES: list[tuple[grpc.StatusCode, str, tuple[str, ...], Failure]] = [
    (U, "failed to connect to all addresses; Connection refused", (), T),
    (U, "Stream removed (Socket closed)", (), T),
    (D, "submit timeout expired while broadcasting to ordering service", (), T),
    (U, "no orderers could successfully process transaction", (), T),
    (A, "failed to collect enough transaction endorsements", (PEER_DOWN,), T),
    (A, "failed to endorse", ("error in simulation: could not launch chaincode x: connection failed",), T),
    (F, NO_COMBINATION + "no peer combination can satisfy the endorsement policy", (), T),
    (A, "failed to collect enough transaction endorsements", ("ProposalResponsePayloads do not match",), M),
    (A, "failed to endorse", ("chaincode response 500, CONFLICT: task t exists",), P),
    (U, "refused", ("chaincode response 500, EXHAUSTED: balance 3 < 5",), P),
    (grpc.StatusCode.UNKNOWN, "evaluate call: chaincode response 500, Function NoSuch not found", (), P),
    (F, NO_COMBINATION + "No metadata was found for chaincode nope in channel c", (), P),
    (A, "failed to endorse", ("access denied: channel [c] creator org unknown",), P),
    (grpc.StatusCode.PERMISSION_DENIED, "permission denied", (), P),
    (grpc.StatusCode.INVALID_ARGUMENT, "a signed proposal is required", (), P),
]


@pytest.mark.parametrize(("code", "message", "details", "expected"), CASES)
def test_only_transport_failures_are_transient_and_a_chaincode_answer_never_is(
    code: grpc.StatusCode, message: str, details: tuple[str, ...], expected: Failure
) -> None:
    assert classify(gateway_error(code, message, *details)) is expected


def test_an_invalid_commit_or_any_other_error_is_permanent_but_a_stale_read() -> None:
    assert classify(CommitError("tx", 10, "ENDORSEMENT_POLICY_FAILURE", 9)) is Failure.PERMANENT
    assert classify(CommitError("tx", 11, "MVCC_READ_CONFLICT", 9)) is Failure.STALE
    assert classify(CommitError("tx", 12, "PHANTOM_READ_CONFLICT", 9)) is Failure.STALE
    assert classify(ValueError("not a gateway error")) is Failure.PERMANENT


def test_delays_double_up_to_the_cap_with_half_of_each_jittered() -> None:
    policy = RetryPolicy(first_delay=0.5, max_delay=3.0)
    low = policy.delays(lambda: 0.0)
    high = policy.delays(lambda: 1.0)
    assert [next(low) for _ in range(6)] == [0.25, 0.5, 1.0, 1.5, 1.5, 1.5]
    assert [next(high) for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


@pytest.mark.parametrize(
    "bad",
    [
        {"attempts": 0},
        {"mismatch_attempts": 0},
        {"stale_attempts": 0},
        {"total_seconds": -1},
        {"resubmit_after": 0},
    ],
)
def test_a_policy_out_of_range_is_refused_by_name(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        RetryPolicy(**bad)


class Clock:
    """A clock that moves only when the budget sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _tries(policy: RetryPolicy, error: BaseException, clock: Clock | None = None) -> int:
    clock = clock or Clock()
    budget = Budget(policy, clock=clock, sleep=clock.sleep)

    async def go() -> int:
        while await budget.pause(error, "test"):
            pass
        return budget.tries

    return asyncio.run(go())


def test_the_budget_stops_at_its_attempts() -> None:
    assert _tries(RetryPolicy(attempts=5, first_delay=0.01), gateway_error(U)) == 5


def test_the_budget_stops_before_a_pause_would_pass_its_total_time() -> None:
    clock = Clock()
    policy = RetryPolicy(attempts=1000, total_seconds=10.0, first_delay=1.0, max_delay=2.0)
    tries = _tries(policy, gateway_error(U), clock)
    assert 5 <= tries < 20 and clock.now <= 10.0 and max(clock.slept) <= 2.0


def test_disagreeing_endorsements_get_only_their_own_few_tries() -> None:
    assert _tries(RetryPolicy(mismatch_attempts=3, first_delay=0.001),
                  gateway_error(A, "x", "ProposalResponsePayloads do not match")) == 3  # fmt: skip


def test_a_permanent_failure_gets_no_second_try() -> None:
    assert _tries(RetryPolicy(), gateway_error(A, "x", "chaincode response 500, INVALID: bad")) == 1


STALE = CommitError("tx", 11, "MVCC_READ_CONFLICT", 9)
MISMATCH = gateway_error(A, "x", "ProposalResponsePayloads do not match")


def test_stale_reads_get_their_own_budget_larger_than_disagreements_get() -> None:
    assert DEFAULT.stale_attempts > DEFAULT.mismatch_attempts
    assert _tries(RetryPolicy(first_delay=0.001, max_delay=0.001), STALE) == DEFAULT.stale_attempts


def test_stale_reads_and_disagreements_spend_their_budgets_apart() -> None:
    clock = Clock()
    budget = Budget(RetryPolicy(mismatch_attempts=3, stale_attempts=4, first_delay=0.001), clock, clock.sleep)

    async def go(errors: list[BaseException]) -> list[bool]:
        return [await budget.pause(e, "test") for e in errors]

    # three stale reads leave all three tries for disagreement, and two of those leave the fourth stale try
    assert asyncio.run(go([STALE, STALE, STALE, MISMATCH, MISMATCH])) == [True] * 5
    assert asyncio.run(go([STALE])) == [False]
    assert (budget.stale_reads, budget.mismatches, budget.tries) == (4, 2, 6)


def test_the_stale_budget_stays_inside_attempts_and_total_seconds() -> None:
    assert _tries(RetryPolicy(attempts=5, stale_attempts=12, first_delay=0.001), STALE) == 5
    clock = Clock()
    policy = RetryPolicy(attempts=1000, stale_attempts=1000, total_seconds=10.0, first_delay=1, max_delay=2)
    tries = _tries(policy, STALE, clock)
    assert 5 <= tries < 20 and clock.now <= 10.0


class ScriptedStub:
    """The Gateway's gRPC stub, failing each method as scripted before it answers."""

    def __init__(self, commit_code: int = transaction_pb2.VALID) -> None:
        self.calls: dict[str, list[Any]] = {"Evaluate": [], "Endorse": [], "Submit": [], "CommitStatus": []}
        # None in a method's list: that call answers
        self.failures: dict[str, list[grpc.aio.AioRpcError | None]] = {k: [] for k in self.calls}
        self.commit_code = commit_code
        self.committed = False  # whether a submitted envelope reached a block
        self.status_timeouts: list[float] = []

    def _fail(self, method: str, request: Any) -> None:
        self.calls[method].append(request)
        failure = self.failures[method].pop(0) if self.failures[method] else None
        if failure is not None:
            raise failure

    async def Evaluate(self, request: Any, timeout: float) -> Any:
        self._fail("Evaluate", request)
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(status=200, payload=b"read")
        )

    async def Endorse(self, request: Any, timeout: float) -> Any:
        self._fail("Endorse", request)
        return gateway_pb2.EndorseResponse(prepared_transaction=_prepared_envelope(b"written"))

    async def Submit(self, request: Any, timeout: float) -> Any:
        self.committed = True  # the orderer took it, even if the reply is lost below
        self._fail("Submit", request)
        return gateway_pb2.SubmitResponse()

    async def CommitStatus(self, request: Any, timeout: float) -> Any:
        self.status_timeouts.append(timeout)
        self._fail("CommitStatus", request)
        if not self.committed:
            raise rpc_error(D, "Deadline Exceeded")
        return gateway_pb2.CommitStatusResponse(result=self.commit_code, block_number=7)


def _contract(stub: Any, policy: RetryPolicy = FAST) -> Any:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sign, hash_ = signer_from_pem(pem)
    gw = connect(FakeChannel(), _identity(key), sign, hash_, retry=policy)
    gw._client.gateway = stub
    return gw.get_network("consortium").get_contract("fabricml")


def test_an_endorsement_through_a_restarting_peer_is_sent_again_as_the_same_signed_proposal() -> None:
    stub = ScriptedStub()
    stub.failures["Endorse"] = [rpc_error(U, "Connection refused"), rpc_error(A, "failed", PEER_DOWN)]
    assert asyncio.run(_contract(stub).submit_transaction("Put", "k", "v")) == b"written"
    sent = [r.proposed_transaction.SerializeToString() for r in stub.calls["Endorse"]]
    assert len(sent) == 3 and len(set(sent)) == 1
    assert len(stub.calls["Submit"]) == 1


def test_a_chaincode_refusal_is_not_retried() -> None:
    stub = ScriptedStub()
    stub.failures["Endorse"] = [rpc_error(A, "failed to endorse", "chaincode response 500, CONFLICT: done")]
    with pytest.raises(EndorseError):
        asyncio.run(_contract(stub).submit_transaction("Join", "t"))
    assert len(stub.calls["Endorse"]) == 1 and stub.calls["Submit"] == []


def test_an_invalid_commit_is_not_retried() -> None:
    stub = ScriptedStub(commit_code=transaction_pb2.ENDORSEMENT_POLICY_FAILURE)
    with pytest.raises(CommitError):
        asyncio.run(_contract(stub).submit_transaction("Put", "k", "v"))
    assert len(stub.calls["Endorse"]) == 1 and len(stub.calls["Submit"]) == 1


class StaleStub(ScriptedStub):
    """The first `stale` transactions commit invalid on a stale read; later ones are valid."""

    def __init__(self, stale: int) -> None:
        super().__init__()
        self.stale = stale
        self.valid = 0  # transactions that committed valid

    async def CommitStatus(self, request: Any, timeout: float) -> Any:
        answer = await super().CommitStatus(request, timeout)
        if len(self.calls["Submit"]) <= self.stale:  # still one of the stale transactions
            answer.result = transaction_pb2.MVCC_READ_CONFLICT
        else:
            self.valid += 1
        return answer


def test_a_stale_read_is_endorsed_again_as_a_new_proposal() -> None:
    stub = StaleStub(1)
    assert asyncio.run(_contract(stub).submit_transaction("Join", "t")) == b"written"
    proposals = [r.proposed_transaction.SerializeToString() for r in stub.calls["Endorse"]]
    assert len(proposals) == 2 and len(set(proposals)) == 2  # a fresh proposal, a new tx id
    assert len(stub.calls["Submit"]) == 2


def test_a_transaction_on_a_busy_record_that_loses_ten_races_still_commits_once() -> None:
    stub = StaleStub(10)
    assert FAST.mismatch_attempts < 10
    assert asyncio.run(_contract(stub).submit_transaction("Register", "m")) == b"written"
    proposals = {r.proposed_transaction.SerializeToString() for r in stub.calls["Endorse"]}
    assert len(proposals) == len(stub.calls["Submit"]) == 11 and stub.valid == 1


def test_a_stale_read_that_keeps_conflicting_stops_at_the_stale_budget() -> None:
    stub = ScriptedStub(commit_code=transaction_pb2.MVCC_READ_CONFLICT)
    with pytest.raises(CommitError) as err:
        asyncio.run(_contract(stub).submit_transaction("Put", "k", "v"))
    assert err.value.code_name == "MVCC_READ_CONFLICT" and classify(err.value) is Failure.STALE
    assert len(stub.calls["Endorse"]) == len(stub.calls["Submit"]) == FAST.stale_attempts


def test_disagreeing_endorsers_still_stop_at_the_mismatch_budget() -> None:
    stub = ScriptedStub()
    stub.failures["Endorse"] = [rpc_error(A, "failed", "ProposalResponsePayloads do not match")] * 100
    with pytest.raises(EndorseError) as err:
        asyncio.run(_contract(stub).submit_transaction("Put", "k", "v"))
    assert classify(err.value) is Failure.MISMATCH
    assert len(stub.calls["Endorse"]) == FAST.mismatch_attempts and stub.calls["Submit"] == []


def test_a_refusal_after_a_stale_read_is_not_retried() -> None:
    stub = StaleStub(1)  # the second proposal finds the first org's join already done
    done = rpc_error(A, "failed to endorse", "chaincode response 500, ALREADY_DONE: joined")
    stub.failures["Endorse"] = [None, done]
    with pytest.raises(EndorseError) as err:
        asyncio.run(_contract(stub).submit_transaction("Join", "t"))
    assert is_refusal(err.value, RefusalCode.ALREADY_DONE)
    assert len(stub.calls["Endorse"]) == 2 and len(stub.calls["Submit"]) == 1 and stub.valid == 0


def test_a_submit_whose_reply_was_lost_is_asked_about_and_not_sent_again() -> None:
    stub = ScriptedStub()
    stub.failures["Submit"] = [rpc_error(D, "submit timeout expired while broadcasting to ordering service")]
    assert asyncio.run(_contract(stub).submit_transaction("Transfer", "Org2MSP", "5")) == b"written"
    assert len(stub.calls["Submit"]) == 1  # it committed: sending it again could only add noise
    assert len(stub.calls["CommitStatus"]) >= 1


def test_a_submit_that_did_not_reach_the_orderers_is_sent_again_as_the_same_envelope() -> None:
    stub = ScriptedStub()

    async def refused(request: Any, timeout: float) -> Any:
        stub.calls["Submit"].append(request)
        if len(stub.calls["Submit"]) < 3:
            raise rpc_error(U, "no orderers could successfully process transaction")
        stub.committed = True
        return gateway_pb2.SubmitResponse()

    stub.Submit = refused  # type: ignore[method-assign]
    assert asyncio.run(_contract(stub).submit_transaction("Put", "k", "v")) == b"written"
    envelopes = [r.prepared_transaction.SerializeToString() for r in stub.calls["Submit"]]
    assert len(envelopes) == 3 and len(set(envelopes)) == 1
    assert len(stub.calls["Endorse"]) == 1  # never a fresh proposal: that would be a second transaction


def test_a_transaction_an_orderer_lost_is_sent_again_after_resubmit_after() -> None:
    stub = ScriptedStub()
    lost = [True]

    async def loses_the_first(request: Any, timeout: float) -> Any:
        stub.calls["Submit"].append(request)
        stub.committed = not lost.pop() if lost else True
        return gateway_pb2.SubmitResponse()

    stub.Submit = loses_the_first  # type: ignore[method-assign]
    assert asyncio.run(_contract(stub).submit_transaction("Put", "k", "v")) == b"written"
    envelopes = [r.prepared_transaction.SerializeToString() for r in stub.calls["Submit"]]
    assert len(envelopes) == 2 and envelopes[0] == envelopes[1]
    assert stub.status_timeouts[0] == FAST.resubmit_after  # not the 60 s commit deadline


def test_a_peer_down_while_waiting_for_the_commit_is_asked_again() -> None:
    stub = ScriptedStub()
    stub.failures["CommitStatus"] = [rpc_error(U, "Stream removed (Socket closed)")]
    assert asyncio.run(_contract(stub).submit_transaction("Put", "k", "v")) == b"written"
    assert len(stub.calls["CommitStatus"]) == 2 and len(stub.calls["Submit"]) == 1


def test_the_commit_step_alone_does_not_retry_its_own_deadline() -> None:
    stub = ScriptedStub()
    contract = _contract(stub)

    async def go() -> None:
        transaction = await contract.new_proposal("Put").endorse()
        stub.committed = False
        commit = await transaction.submit()
        stub.committed = False
        await commit.status(timeout=0.01)

    stub.Submit = lambda request, timeout: _no_commit(stub, request)  # type: ignore[method-assign]
    with pytest.raises(CommitStatusError) as err:
        asyncio.run(go())
    assert err.value.code == D and len(stub.calls["CommitStatus"]) == 1


async def _no_commit(stub: ScriptedStub, request: Any) -> Any:
    stub.calls["Submit"].append(request)
    return gateway_pb2.SubmitResponse()


def test_evaluate_rides_out_a_restart_and_without_retries_fails_at_once() -> None:
    stub = ScriptedStub()
    stub.failures["Evaluate"] = [rpc_error(U, "Connection refused"), rpc_error(D, "evaluate timeout expired")]
    assert asyncio.run(_contract(stub).evaluate_transaction("Get", "k")) == b"read"
    assert len(stub.calls["Evaluate"]) == 3
    once = ScriptedStub()
    once.failures["Evaluate"] = [rpc_error(U, "Connection refused")]
    with pytest.raises(EvaluateError):
        asyncio.run(_contract(once, NO_RETRY).evaluate_transaction("Get", "k"))
    assert len(once.calls["Evaluate"]) == 1


def test_when_the_budget_is_spent_the_last_error_is_raised() -> None:
    stub = ScriptedStub()
    stub.failures["Submit"] = [rpc_error(U, "no orderers could successfully process transaction")] * 10
    stub.committed = False

    async def never(request: Any, timeout: float) -> Any:
        stub.calls["Submit"].append(request)
        raise rpc_error(U, "no orderers could successfully process transaction")

    stub.Submit = never  # type: ignore[method-assign]
    with pytest.raises(SubmitError) as err:
        asyncio.run(_contract(stub, RetryPolicy(attempts=4, first_delay=0.001)).submit_transaction("Put"))
    assert err.value.code == U and len(stub.calls["Submit"]) == 4


# ---- event streams -----------------------------------------------------------------------


class FakeStream:
    """One server-stream call: yields its responses, then fails (or waits) like a dropped peer."""

    def __init__(self, responses: list[Any], then: grpc.aio.AioRpcError | None) -> None:
        self.responses = list(responses)
        self.then = then
        self.cancelled = False

    async def read(self) -> Any:
        if self.responses:
            return self.responses.pop(0)
        if self.then is not None:
            raise self.then
        await asyncio.sleep(3600)

    def cancel(self) -> None:
        self.cancelled = True


def _events(block: int, *txs: str) -> Any:
    return gateway_pb2.ChaincodeEventsResponse(
        block_number=block,
        events=[
            chaincode_event_pb2.ChaincodeEvent(tx_id=t, chaincode_id="fabricml", event_name="E") for t in txs
        ],
    )


class StreamStub(ScriptedStub):
    """A peer whose chaincode-event stream drops after each scripted batch."""

    def __init__(self, batches: list[list[Any]], height: int = 40) -> None:
        super().__init__()
        self.batches = batches
        self.height = height
        self.opened: list[gateway_pb2.ChaincodeEventsRequest] = []

    def ChaincodeEvents(self, signed: Any) -> FakeStream:
        self.opened.append(gateway_pb2.ChaincodeEventsRequest.FromString(signed.request))
        batch = self.batches.pop(0) if self.batches else []
        return FakeStream(batch, rpc_error(U, "Stream removed (Socket closed)") if self.batches else None)

    async def Evaluate(self, request: Any, timeout: float) -> Any:
        self._fail("Evaluate", request)
        info = ledger_pb2.BlockchainInfo(height=self.height).SerializeToString()
        return gateway_pb2.EvaluateResponse(result=proposal_response_pb2.Response(status=200, payload=info))


async def _take(stream: Any, n: int) -> list[Any]:
    out = []
    async for item in stream:
        out.append(item)
        if len(out) == n:
            break
    stream.close()
    return out


def _open(stub: Any, make: Callable[[Any], Any]) -> list[Any]:
    contract = _contract(stub)
    network = contract_network(contract)

    async def go() -> list[Any]:
        stream = make(network)
        await stream.ready()
        return await _take(stream, 5)

    return asyncio.run(go())


def contract_network(contract: Any) -> Any:
    from fabricml.gateway.gateway import Network

    return Network(contract._client, "consortium")


def test_a_dropped_event_stream_resumes_after_the_last_event_without_loss_or_repeat() -> None:
    stub = StreamStub([[_events(41, "a", "b")], [_events(41, "c"), _events(43, "d")], [_events(44, "e")]])
    got = _open(stub, lambda net: net.chaincode_events("fabricml"))
    assert [e.transaction_id for e in got] == ["a", "b", "c", "d", "e"]
    starts = [(r.start_position.specified.number, r.after_transaction_id) for r in stub.opened]
    assert starts == [(40, ""), (41, "b"), (43, "d")]  # the height when opened, then after each last event


def test_an_event_stream_with_a_checkpoint_resumes_from_it_and_then_from_what_it_handed_out() -> None:
    from fabricml.gateway import InMemoryCheckpointer

    checkpoint = InMemoryCheckpointer()
    checkpoint.checkpoint_transaction(12, "x")
    stub = StreamStub([[_events(12, "y")], [_events(13, "z", "w", "v", "u")]])
    got = _open(stub, lambda net: net.chaincode_events("fabricml", checkpointer=checkpoint))
    assert [e.transaction_id for e in got] == ["y", "z", "w", "v", "u"]
    assert [(r.start_position.specified.number, r.after_transaction_id) for r in stub.opened] == [
        (12, "x"),
        (12, "y"),
    ]
    assert stub.calls["Evaluate"] == []  # a known start needs no height


def test_a_dropped_block_stream_resumes_at_the_next_block() -> None:
    from fabric_protos.common import common_pb2

    def block(n: int) -> Any:
        return events_pb2.DeliverResponse(block=common_pb2.Block(header=common_pb2.BlockHeader(number=n)))

    opened: list[int] = []
    batches = [[block(40), block(41)], [block(42)], [block(43), block(44)]]

    class Deliver:
        def Deliver(self, requests: Any) -> FakeStream:
            envelope = next(iter(requests))
            payload = common_pb2.Payload.FromString(envelope.payload)
            from fabric_protos.orderer import ab_pb2

            opened.append(ab_pb2.SeekInfo.FromString(payload.data).start.specified.number)
            batch = batches.pop(0) if batches else []
            return FakeStream(batch, rpc_error(U, "Socket closed") if batches else None)

    stub = StreamStub([])
    contract = _contract(stub)
    contract._client.deliver = Deliver()
    network = contract_network(contract)

    async def go() -> list[Any]:
        stream = network.block_events()
        await stream.ready()
        return await _take(stream, 5)

    got = asyncio.run(go())
    assert [b.header.number for b in got] == [40, 41, 42, 43, 44]
    assert opened == [40, 42, 43]


def test_closing_a_stream_ends_it_even_while_it_waits_to_reconnect() -> None:
    stub = StreamStub([[], [], []])
    stub.batches = [[]] * 1000  # drops at once, every time
    contract = _contract(stub, RetryPolicy(first_delay=30, max_delay=30))
    network = contract_network(contract)

    async def go() -> float:
        stream = network.chaincode_events("fabricml")
        await stream.ready()
        loop = asyncio.get_running_loop()
        start = loop.time()
        loop.call_later(0.2, stream.close)
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
        return loop.time() - start

    assert asyncio.run(go()) < 5
