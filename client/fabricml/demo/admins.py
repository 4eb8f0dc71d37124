"""The org admins' and auditors' typed clients, each connection opened once, and what
admins do before a task: mint tokens, enroll trainers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from fabricml.contracts import ContractClient, OrgConnection, TokenClient, open_connection
from fabricml.gateway.profile import ConnectionProfile
from fabricml.network.network import Network
from fabricml.network.processes import wait_until

C = TypeVar("C", bound=ContractClient)
Log = Callable[[str], None]


@dataclass
class OrgAdmins:
    """Every org's identities on this machine's consortium, connected on first use."""

    net: Network
    stack: ExitStack
    connections: dict[tuple[str, str], OrgConnection] = field(default_factory=dict)

    @classmethod
    @contextmanager
    def open(cls, net: Network) -> Iterator[OrgAdmins]:
        """Connections close on exit."""
        with ExitStack() as stack:
            yield cls(net, stack)

    def profile(self, org: str) -> ConnectionProfile:
        return ConnectionProfile.load(self.net.layout.profile(self.net.topology.org(org)))

    def client(self, org: str, identity: str, client: type[C]) -> C:
        """A typed client of one contract, as one of an org's identities."""
        key = (org, identity)
        if key not in self.connections:
            self.connections[key] = self.stack.enter_context(open_connection(self.profile(org), identity))
        return self.connections[key].client(client)

    def in_step(self, timeout: float = 60.0) -> None:
        """Wait until every org's peer has the blocks any of them has. A submit returns once
        the submitter's own peer committed it; another org's peer may be a block behind, and
        an endorsement there would not yet see the write."""

        def heights() -> list[int]:
            return [self._connection(org).network.height() for org in self.orgs]

        target = max(heights())
        if not wait_until(lambda: min(heights()) >= target, timeout, interval=0.05):
            raise TimeoutError(f"peers at heights {heights()} did not all reach {target} in {timeout:.0f} s")

    def _connection(self, org: str) -> OrgConnection:
        """Any open connection of the org, else its auditor's."""
        for (o, _), connection in self.connections.items():
            if o == org:
                return connection
        self.client(org, "auditor", TokenClient)
        return self.connections[(org, "auditor")]

    def msp(self, org: str) -> str:
        return self.net.topology.org(org).msp_id

    @property
    def orgs(self) -> list[str]:
        return [o.name for o in self.net.topology.organizations]

    @property
    def majority(self) -> list[str]:
        """The first orgs that make a majority of members: they vote and approve."""
        return self.orgs[: len(self.orgs) // 2 + 1]


def ensure_tokens(admins: OrgAdmins, needed: int, log: Log) -> None:
    """Mint what each org needs to stake and escrow, by a majority vote of member admins."""
    for org in admins.orgs:
        msp = admins.msp(org)
        have = admins.client(org, "auditor", TokenClient).get_balance(msp).amount
        if have >= needed:
            continue
        vote = f"demo-{uuid.uuid4().hex[:8]}"
        for voter in admins.majority:
            admins.client(voter, "admin", TokenClient).vote_mint(vote, msp, needed - have)
        log(f"minted {needed - have} tokens for {msp} (votes of {', '.join(admins.majority)})")


def ensure_trainer(admins: OrgAdmins, org: str, name: str) -> None:
    """Enroll `name` at the org's CA with role=trainer unless the org already has it."""
    from fabricml.network.identities import CertificateAuthority, IdentitySpec

    if name in admins.profile(org).identities():
        return
    net = admins.net
    ca = CertificateAuthority(net.binaries, net.layout, net.topology.org(org))
    secret = uuid.uuid4().hex
    ca.register(IdentitySpec(name, "client", "trainer"), secret=secret)
    ca.enroll(IdentitySpec(name, "client"), secret=secret)


def trainer_identities(admins: OrgAdmins, participants: list[str], per_org: int) -> list[tuple[str, str]]:
    """(org, identity) of every participant: the listed "org/identity" ones, or `trainer`,
    trainer2, trainer3... of every org, enrolled with role=trainer when missing."""
    wanted = [tuple(p.split("/", 1)) for p in participants] or [
        (org, "trainer" if i == 0 else f"trainer{i + 1}") for org in admins.orgs for i in range(per_org)
    ]
    out = []
    for spec in wanted:
        if len(spec) != 2 or spec[0] not in admins.orgs:
            raise ValueError(
                f"participant {'/'.join(spec)!r}: expected org/identity with org one of {admins.orgs}"
            )
        ensure_trainer(admins, spec[0], spec[1])
        out.append((spec[0], spec[1]))
    return out
