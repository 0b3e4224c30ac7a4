"""Which environments a command works on (API.md section 9).

A union without duplicates, in this order: explicit ``ENV_ID`` arguments, ``--from-file``
(``-``: standard input), ``--project`` (its environments), ``--all`` (every environment
the key sees); then ``--exclude`` removes, then ``--shard K/N`` keeps shard K's share.
Everything that can be checked locally (ids, the file) is checked before any request.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import attrs

from oec_async._shard import shard_of
from oec_async.cli._argtypes import Shard
from oec_async.errors import ConfigurationError

if TYPE_CHECKING:
    from oec_async._client import OECClient
    from oec_async.cli._output import Output

__all__ = ["Selection", "apply_selection", "parse_id_lines", "read_id_file"]

STDIN = "-"


def parse_id_lines(lines: Iterable[str], source: str) -> list[uuid.UUID]:
    """Environment ids, one per line; ``#`` starts a comment, blank lines are skipped.

    Raises:
        ConfigurationError: a line that is not a UUID, as ``source:line: ...``.
    """
    ids = []
    for number, line in enumerate(lines, start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            ids.append(uuid.UUID(entry))
        except ValueError:
            shown = repr(entry) if len(entry) <= 64 else f"{len(entry)} characters"
            raise ConfigurationError(
                f"--from-file {source}:{number}: {shown} is not an environment id (a UUID)"
            ) from None
    return ids


def read_id_file(name: str, stdin: TextIO | None = None) -> list[uuid.UUID]:
    """The ids in the file ``name`` (``-``: standard input).

    Raises:
        ConfigurationError: unreadable, not text, or a line that is not an id; the
            message names the file (and the line).
    """
    if name == STDIN:
        stream = stdin or sys.stdin
        return parse_id_lines(stream.read().splitlines(), "<stdin>")
    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"--from-file {path}: cannot read it ({exc.strerror or exc})"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"--from-file {path}: not a text file (UTF-8)") from None
    return parse_id_lines(text.splitlines(), str(path))


def apply_selection(
    candidates: Iterable[uuid.UUID], excluded: Iterable[uuid.UUID], shard: Shard | None
) -> list[uuid.UUID]:
    """The union (first occurrence kept), without ``excluded``, of ``shard``'s share."""
    dropped = set(excluded)
    unique = [env for env in dict.fromkeys(candidates) if env not in dropped]
    if shard is None:
        return unique
    return [env for env in unique if shard_of(env, shard.count) == shard.index]


@attrs.frozen
class Selection:
    """What the command line asked for, checked, before any request."""

    explicit: tuple[uuid.UUID, ...] = ()
    projects: tuple[uuid.UUID, ...] = ()
    everything: bool = False
    excluded: tuple[uuid.UUID, ...] = ()
    shard: Shard | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, out: Output) -> Selection:
        """The selection of ``pull``'s or ``list-environments``' arguments.

        Raises:
            ConfigurationError: an id argument that is not a UUID, or a bad ``--from-file``.
        """
        explicit: list[uuid.UUID] = []
        for value in getattr(args, "env_ids", ()):
            try:
                explicit.append(uuid.UUID(value.strip()))
            except ValueError:
                shown = repr(value) if len(value) <= 64 else "a long string"
                raise ConfigurationError(f"ENV_ID must be a UUID, got {shown}") from None
        from_file = getattr(args, "from_file", None)
        if from_file is not None:
            listed = read_id_file(from_file)
            if not listed:
                out.warn(f"--from-file {from_file} lists no environment id")
            explicit += listed
        return cls(
            explicit=tuple(explicit),
            projects=tuple(args.projects),
            everything=getattr(args, "everything", False),
            excluded=tuple(args.excluded),
            shard=args.shard,
        )

    @property
    def discovers(self) -> bool:
        """Whether the API is asked which environments there are."""
        return self.everything or bool(self.projects)

    @property
    def empty(self) -> bool:
        """Nothing at all was asked for."""
        return not (self.explicit or self.discovers)

    async def resolve(
        self, client: OECClient, on_found: Callable[[int], None] | None = None
    ) -> Sequence[uuid.UUID]:
        """The environment ids selected, in order: explicit ones first, then those the
        API lists; ``on_found(count)`` hears of each one discovered."""
        found: list[uuid.UUID] = list(self.explicit)
        if self.discovers:
            projects = None if self.everything else list(self.projects)
            async for env in client.iter_environments(project_ids=projects):
                found.append(env.id)
                if on_found is not None:
                    on_found(len(found))
        return apply_selection(found, self.excluded, self.shard)
