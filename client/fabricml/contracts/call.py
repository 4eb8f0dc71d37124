"""Each transaction written once, as a `Call`, and run on either Gateway client.

A typed-client method builds one Call (function, arguments, evaluate or submit, how to
read the answer) and hands it to `_run`. On the synchronous facade that runs it at once;
`AsyncContract` runs the very same method on the asyncio client, so the API and the
inference service use the methods the CLI and the agents use."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from fabricml.gateway import Contract as AsyncGatewayContract

T = TypeVar("T")
C = TypeVar("C", bound="ContractClient")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One transaction: what the chaincode is asked and how its answer is read."""

    function: str
    args: tuple[str, ...]
    read: Callable[[bytes], T]
    submit: bool = False
    transient: Mapping[str, bytes] | None = None
    endorsing_organizations: tuple[str, ...] = ()


class Send(Protocol):
    """evaluate_transaction or submit_transaction of fabricml.gateway.sync.Contract."""

    def __call__(
        self,
        function: str,
        *arguments: str | bytes,
        transient: Mapping[str, str | bytes] | None = None,
        endorsing_organizations: Iterable[str] = (),
    ) -> bytes: ...


class GatewayContract(Protocol):
    """The synchronous Gateway contract (fabricml.gateway.sync.Contract) as a typed client uses it."""

    @property
    def evaluate_transaction(self) -> Send: ...

    @property
    def submit_transaction(self) -> Send: ...


class ContractClient:
    """Base of the typed clients: one per contract, over one Gateway contract."""

    CONTRACT: ClassVar[str]  # the contract's name in the chaincode, e.g. "Federation"

    def __init__(self, contract: GatewayContract | None) -> None:
        self._contract = contract  # None: methods return their Call instead (see AsyncContract)

    def _run(self, call: Call[T]) -> T:
        if self._contract is None:
            return cast(T, call)
        send = self._contract.submit_transaction if call.submit else self._contract.evaluate_transaction
        raw = send(
            call.function,
            *call.args,
            transient=call.transient,
            endorsing_organizations=call.endorsing_organizations,
        )
        return call.read(raw)


class AsyncContract(Generic[C]):
    """A typed client's methods on the asyncio Gateway client:
    `await federation.call(lambda f: f.get_task(task_id))`."""

    def __init__(self, client: type[C], contract: AsyncGatewayContract) -> None:
        self.client = client
        self._planner = client(None)
        self._contract = contract

    async def call(self, use: Callable[[C], T]) -> T:
        """Run the one transaction `use` asks of the client; raises what the method documents."""
        planned: Any = use(self._planner)
        if not isinstance(planned, Call):
            raise TypeError(
                f"{self.client.__name__}: call() takes exactly one method call, e.g. lambda c: c.x()"
            )
        send = self._contract.submit_transaction if planned.submit else self._contract.evaluate_transaction
        raw = await send(
            planned.function,
            *planned.args,
            transient=planned.transient,
            endorsing_organizations=planned.endorsing_organizations,
        )
        return cast(T, planned.read(raw))


def evaluate(read: Callable[[bytes], T], function: str, *args: str) -> Call[T]:
    """A query: endorsed by one peer, never ordered."""
    return Call(function, args, read)


def submit(read: Callable[[bytes], T], function: str, *args: str, **options: Any) -> Call[T]:
    """A transaction: endorsed, ordered and committed (waits for the commit)."""
    return Call(function, args, read, submit=True, **options)


def nothing(_: bytes) -> None:
    """The reader of a transaction that returns no value."""
