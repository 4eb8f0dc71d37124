"""Deprecated names for the local consortium (`fabricml network ...`).

`Network` collided with `fabricml.gateway.Network`; the class is `Consortium` now (in
`consortium.py`), made of one `Site` per organization. These aliases keep older imports
working until their callers move."""

from __future__ import annotations

from .consortium import Consortium
from .identities import api_identity
from .site import PortBusyError
from .status import NodeStatus, json_status
from .supervisor import NetworkError, Node

Network = Consortium

__all__ = [
    "Consortium",
    "Network",
    "NetworkError",
    "Node",
    "NodeStatus",
    "PortBusyError",
    "api_identity",
    "json_status",
]
