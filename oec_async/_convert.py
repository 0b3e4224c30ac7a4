"""The one cattrs converter that reads (and writes) every model.

Tolerant where the platform varies (unknown keys ignored, unknown enum values kept,
``pages`` accepted for ``total_pages``, naive timestamps read as UTC) and strict where a
missing value would be a lie (a backup without an id is an error, not ``None``).
"""

from __future__ import annotations

import enum
import math
import types
import typing
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

import cattrs
from cattrs.preconf.json import make_converter

from oec_async.models import BackupPage

__all__ = ["converter", "structure", "unstructure"]

T = TypeVar("T")

converter = make_converter(forbid_extra_keys=False)


def _structure_uuid(value: Any, _: type) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a UUID string, got {type(value).__name__}")
    return uuid.UUID(value)


def _structure_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        parsed = datetime.fromtimestamp(value, tz=UTC)
    else:
        raise TypeError(f"expected an ISO 8601 timestamp, got {type(value).__name__}")
    # The API documents UTC; a timestamp without an offset is read as UTC, never as local.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


_BOOL_WORDS = {"true": True, "false": False}


def _structure_bool(value: Any, _: type) -> bool:
    # cattrs' default is bool(value), which reads the string "false" as True: a backup
    # would claim is_verified for a deployment that quotes its booleans.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.strip().lower()]
    raise TypeError(f"expected a boolean, got {type(value).__name__}")


def _structure_loose_id(value: Any, _: Any) -> uuid.UUID | str | None:
    # An id this SDK only shows (a server's, say): a UUID when it reads as one, else kept
    # as sent. An unexpected kind of id must not break a listing.
    if value is None or isinstance(value, uuid.UUID):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"expected an id, got {type(value).__name__}")
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return str(value)


converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook_func(
    lambda tp: tp == (uuid.UUID | str | None), _structure_loose_id
)
converter.register_structure_hook(uuid.UUID, _structure_uuid)
converter.register_unstructure_hook(uuid.UUID, str)
converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook(datetime, lambda dt: dt.isoformat())


def _enum_in_union(tp: Any) -> type[enum.Enum] | None:
    """The Enum of a ``SomeEnum | str [| None]`` union, else None."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    args = typing.get_args(tp)
    enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
    if len(enums) == 1 and str in args:
        return enums[0]
    return None


def _make_open_enum_hook(tp: Any) -> Any:
    enum_cls = _enum_in_union(tp)
    assert enum_cls is not None  # noqa: S101 - guarded by the predicate
    optional = type(None) in typing.get_args(tp)

    def hook(value: Any, _: Any) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        try:
            return enum_cls(value)
        except ValueError:
            return value  # forward compatible: an unknown value is kept as a string

    return hook


converter.register_structure_hook_factory(
    lambda tp: _enum_in_union(tp) is not None, _make_open_enum_hook
)
converter.register_unstructure_hook_func(
    lambda tp: _enum_in_union(tp) is not None,
    lambda value: value.value if isinstance(value, enum.Enum) else value,
)

_structure_page_fields = converter.gen_structure_attrs_fromdict(BackupPage)


def _structure_page(value: Any, _: type) -> BackupPage:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    data = dict(value)
    if data.get("total_pages") is None:
        if data.get("pages") is not None:
            data["total_pages"] = data["pages"]
        else:
            size = data.get("page_size") or 0
            total = data.get("total") or 0
            data["total_pages"] = math.ceil(total / size) if size else 1
    return _structure_page_fields(data, BackupPage)


converter.register_structure_hook(BackupPage, _structure_page)


def structure(data: Any, cls: type[T]) -> T:
    """Build a model from decoded JSON; raises ``cattrs`` errors on bad input."""
    return converter.structure(data, cls)


def unstructure(obj: Any) -> Any:
    """A model as JSON-ready data (UUIDs and datetimes as strings)."""
    return converter.unstructure(obj)


def describe_error(exc: BaseException) -> str:
    """A one-line, readable account of why structuring failed."""
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc)
