"""Ledger records as frozen dataclasses, read from the chaincode's JSON once.

Field names are the chaincode's JSON tags in snake case (`msp_id` is `mspId`, `tx_id` is
`txId`); Go's `null` for an empty slice or map reads as an empty tuple or dict. Fields a
newer chaincode adds are kept in `extra` and written back by `to_json`, so a record
survives a round trip through an older client."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, Self, TypeVar

from typing_extensions import dataclass_transform

T = TypeVar("T")


class RecordError(ValueError):
    """The ledger's answer does not have the shape this client expects."""


def json_name(field_name: str) -> str:
    """`phase_deadline` -> `phaseDeadline`."""
    head, *rest = field_name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(dataclasses.field,))
@dataclasses.dataclass(frozen=True, kw_only=True)
class Record:
    """Base of every ledger record: a subclass is a frozen, keyword-only dataclass."""

    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    RENAMED: ClassVar[Mapping[str, str]] = {}  # field -> JSON name where the rule above does not fit

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)

    @classmethod
    def from_json(cls, raw: Any, where: str = "") -> Self:
        """Read one record from parsed JSON (a dict); RecordError names what does not fit."""
        where = where or cls.__name__
        if not isinstance(raw, Mapping):
            raise RecordError(f"{where}: expected an object, got {type(raw).__name__}")
        values: dict[str, Any] = {}
        known = set()
        for f, kind in _fields(cls):
            name = cls.RENAMED.get(f.name, json_name(f.name))
            known.add(name)
            if name in raw:
                values[f.name] = _read(kind, raw[name], f"{where}.{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(f"{where}: the ledger's answer has no field {name!r}")
        extra = {k: v for k, v in raw.items() if k not in known}
        return cls(**values, extra=extra)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """Read one record from a transaction's result."""
        return cls.from_json(_parse(raw, cls.__name__))

    def to_json(self) -> dict[str, Any]:
        """The record as the chaincode writes it (camelCase keys), extra fields included."""
        out: dict[str, Any] = dict(self.extra)
        for f, _ in _fields(type(self)):
            out[type(self).RENAMED.get(f.name, json_name(f.name))] = _write(getattr(self, f.name))
        return out


def _parse(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(f"{what}: the ledger's answer is not JSON: {exc}") from None


def many(cls: type[T]) -> typing.Callable[[bytes], tuple[T, ...]]:
    """A reader for a JSON list of records (Go's null is an empty list)."""

    def read(raw: bytes) -> tuple[T, ...]:
        result: tuple[T, ...] = _read(tuple[cls, ...], _parse(raw, cls.__name__), cls.__name__)  # type: ignore[valid-type]
        return result

    return read


_FIELDS: dict[type, tuple[tuple[dataclasses.Field[Any], Any], ...]] = {}


def _fields(cls: type[Record]) -> tuple[tuple[dataclasses.Field[Any], Any], ...]:
    """The record's fields with their resolved types (resolved once per class)."""
    if cls not in _FIELDS:
        hints = typing.get_type_hints(cls)
        _FIELDS[cls] = tuple((f, hints[f.name]) for f in dataclasses.fields(cls) if f.name != "extra")
    return _FIELDS[cls]


_SCALARS: dict[Any, tuple[type, ...]] = {str: (str,), bool: (bool,), int: (int,), float: (int, float)}


def _read(kind: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (types.UnionType, typing.Union):  # X | None
        if value is None:
            return None
        return _read(next(a for a in args if a is not type(None)), value, where)
    if isinstance(kind, type) and issubclass(kind, Record):
        return kind.from_json(value, where)
    if origin is tuple:
        return tuple(_read(args[0], v, f"{where}[{i}]") for i, v in enumerate(_as(list, value, where)))
    if origin in (dict, Mapping):
        return {str(k): _read(args[1], v, f"{where}.{k}") for k, v in _as(dict, value, where).items()}
    if kind in _SCALARS:
        ok = isinstance(value, _SCALARS[kind]) and (kind is bool or not isinstance(value, bool))
        if not ok:
            raise RecordError(f"{where}: expected {kind.__name__}, got {json.dumps(value)[:80]}")
        return float(value) if kind is float else value
    raise TypeError(f"{where}: no reader for {kind!r}")


def _as(kind: type[T], value: Any, where: str) -> T:
    if value is None:
        return kind()  # Go writes an empty slice or map as null
    if not isinstance(value, kind):
        raise RecordError(f"{where}: expected a {kind.__name__}, got {type(value).__name__}")
    return value


def _write(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, tuple):
        return [_write(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _write(v) for k, v in value.items()}
    return value
