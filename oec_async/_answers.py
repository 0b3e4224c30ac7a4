"""The API's answers checked against the questions asked.

A listing of environment X that holds a backup of environment Y, a ``GET /backups/X``
answered with backup Y: trusted, such an answer files a backup under the wrong folder or
reports the wrong environment as backed up. Each endpoint states what its answer must
say (``id`` is the one asked for, every item belongs to the environment asked for, every
item has the status filtered on), and one check here compares.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Expect", "contradictions", "describe", "entries_of"]

#: Attribute name -> the value the question implies.
Expect = Mapping[str, object]


def _plain(value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else value


def entries_of(answer: object) -> Sequence[object]:
    """The objects a listing answer holds: a page's ``items``, a cursor page's ``data``,
    or a plain list's elements."""
    if isinstance(answer, list | tuple):
        return answer
    for name in ("items", "data"):
        held = getattr(answer, name, None)
        if isinstance(held, list | tuple):
            return held
    raise TypeError(f"{type(answer).__name__} is not a listing")


def _differences(obj: object, expect: Expect, where: str) -> Iterable[str]:
    for name, asked in expect.items():
        got = getattr(obj, name, None)
        # A field the answer leaves out (or null) does not contradict: the platform may omit
        # any field but an id. The converter already refuses a missing required field.
        if got is not None and _plain(got) != _plain(asked):
            yield f"{where}{name} is {_plain(got)}, asked {_plain(asked)}"


def contradictions(
    answer: object, *, whole: Expect | None = None, each: Expect | None = None
) -> list[str]:
    """Every way ``answer`` contradicts the question: ``whole`` about the answer itself,
    ``each`` about every entry of a listing. Empty when the answer fits."""
    found = list(_differences(answer, whole or {}, ""))
    if each:
        for index, entry in enumerate(entries_of(answer)):
            found.extend(_differences(entry, each, f"entry {index}: "))
    return found


def describe(found: list[str], *, limit: int = 3) -> str:
    """The contradictions as one line of a message."""
    shown = "; ".join(found[:limit])
    more = f" (and {len(found) - limit} more)" if len(found) > limit else ""
    return f"the answer is not about what was asked: {shown}{more}"
