"""What fabricml adds to Flower's messages: the run's settings, the reply's record of the
commitment (key REPLY_KEY), the dataset fingerprint an app may attach, and error replies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, RecordDict
from flwr.common.constant import ErrorCode

REPLY_KEY = "fabricml"  # ConfigRecord of a train reply: the commitment it was sent under
DATASET_KEY = "fabricml-dataset"  # optional ConfigRecord from the app: digest, rows, schemaDigest
DEFAULT_WAIT = 600.0


@dataclass(frozen=True)
class Settings:
    """The run's fabricml settings (Flower run config, `fabricml-*` keys)."""

    task: str
    profiles: str = ""  # folder of the orgs' connection profiles (<state dir>/profiles)
    participants: tuple[str, ...] = ()  # "org/identity" per partition-id (simulation)
    server: str = ""  # "org/identity" the Flower server posts as
    wait: float = DEFAULT_WAIT  # seconds to wait for the ledger (a quorum, closed commitments)

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Settings:
        task = str(config.get("fabricml-task", ""))
        if not task:
            raise ValueError(
                "the run config names no fabricml-task (e.g. --run-config \"fabricml-task='t1'\")"
            )
        return cls(
            task=task,
            profiles=str(config.get("fabricml-profiles", "")),
            participants=tuple(str(config.get("fabricml-participants", "")).split()),
            server=str(config.get("fabricml-server", "")),
            wait=float(config.get("fabricml-wait-seconds", DEFAULT_WAIT)),
        )


def node_identity(context: Context, settings: Settings) -> tuple[str, str]:
    """(org, identity) this node trains as: its node config's fabricml-org/-identity
    (deployment), else the run's participant list by partition-id (simulation)."""
    node = context.node_config
    if "fabricml-org" in node:
        return str(node["fabricml-org"]), str(node.get("fabricml-identity", "trainer"))
    if "partition-id" not in node or not settings.participants:
        raise ValueError("this node has no fabricml-org in its node config and the run lists no participants")
    index = int(node["partition-id"])
    if not 0 <= index < len(settings.participants):
        raise ValueError(f"partition {index} has no participant in {list(settings.participants)}")
    org, _, identity = settings.participants[index].partition("/")
    return org, identity or "trainer"


def error_reply(msg: Message, reason: str) -> Message:
    return Message(Error(code=ErrorCode.MOD_FAILED_PRECONDITION, reason=reason), reply_to=msg)


def only_arrays(content: RecordDict) -> tuple[str, ArrayRecord]:
    """The message's one ArrayRecord (the model), with its key."""
    records = list(content.array_records.items())
    if len(records) != 1:
        raise ValueError(f"expected exactly one ArrayRecord (the model), found {len(records)}")
    return records[0]


def arrays_like(template: ArrayRecord, arrays: list[np.ndarray]) -> ArrayRecord:
    """An ArrayRecord with the template's keys, in order."""
    return ArrayRecord({k: Array(np.asarray(a)) for k, a in zip(template.keys(), arrays, strict=True)})


@dataclass(frozen=True)
class CommitmentRecord:
    """What a train reply says about the commitment it was sent under."""

    participant: str
    digest: str
    samples: int
    uri: str
    context: dict[str, Any]  # the update header's binding (task, round, participant, nonce, dataset)

    def to_record(self) -> ConfigRecord:
        return ConfigRecord(
            {
                "participant": self.participant,
                "digest": self.digest,
                "samples": self.samples,
                "uri": self.uri,
                "context": json.dumps(self.context, sort_keys=True),
            }
        )

    @classmethod
    def of(cls, content: RecordDict) -> CommitmentRecord:
        """Raises ValueError when the reply carries no well-formed record."""
        if REPLY_KEY not in content.config_records:
            raise ValueError("the reply carries no fabricml commitment (is fabricml_mod on the ClientApp?)")
        r = content.config_records[REPLY_KEY]
        try:
            context = json.loads(str(r["context"]))
            out = cls(str(r["participant"]), str(r["digest"]), int(r["samples"]), str(r["uri"]), context)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"the reply's fabricml commitment is malformed: {exc}") from None
        if not isinstance(out.context, dict):
            raise ValueError("the reply's fabricml commitment has no header context")
        return out


def dataset_of(content: RecordDict) -> dict[str, Any]:
    """The dataset fingerprint the app attached to its reply ({} if none)."""
    if DATASET_KEY not in content.config_records:
        return {}
    r = content.config_records[DATASET_KEY]
    return {k: r[k] for k in ("digest", "rows", "schemaDigest") if k in r}
