"""The two ways the platform pages a listing, each written once (API.md sections 2, 8).

- numbered pages (``page``/``page_size``, ``total_pages``): an environment's backups;
- a cursor envelope (``data`` + ``pagination{has_more, next_cursor}``): projects.

(The third listing, a project's environments, is a plain array: no paging at all.)

Both walk pages through a ``fetch`` function the endpoint gives, and stop on what the
answers say, never on a guess; :func:`unique` drops an entry seen on an earlier page (a
list that shifts while it is paged shows an entry twice).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Hashable, Iterable
from typing import Any, Protocol, TypeVar

from oec_async.errors import InvalidResponseError
from oec_async.models import BackupPage, CursorPage

__all__ = ["by_cursor", "by_page_number", "entries", "unique"]

T = TypeVar("T")
P = TypeVar("P")


class _HasId(Protocol):
    @property
    def id(self) -> Hashable: ...


E = TypeVar("E", bound=_HasId)


async def by_page_number(
    fetch: Callable[[int], Awaitable[BackupPage]],
) -> AsyncIterator[BackupPage]:
    """Pages 1, 2, ... until an empty or short page, or the last one ``total_pages`` names.

    A short page ends the walk whatever ``total_pages`` claims: asking beyond it would
    only return empty pages (or loop, on a deployment that miscounts).
    """
    number = 1
    while True:
        page = await fetch(number)
        yield page
        if not page.items or len(page.items) < page.page_size or number >= page.total_pages:
            return
        number += 1


async def by_cursor(
    fetch: Callable[[str | None], Awaitable[CursorPage[T]]],
    *,
    what: str,
    path: str,
) -> AsyncIterator[CursorPage[T]]:
    """Pages of a cursor envelope, from no cursor until ``has_more`` is false.

    Raises:
        InvalidResponseError: a page says there is more but gives no cursor, or gives a
            cursor already followed (stopping there would silently drop the rest of
            ``what``: a new environment never backed up).
    """
    cursor: str | None = None
    followed: set[str] = set()
    while True:
        page = await fetch(cursor)
        yield page
        if not page.pagination.has_more:
            return
        cursor = page.pagination.next_cursor
        if not cursor or cursor in followed:
            problem = "gave no next_cursor" if not cursor else "repeated a cursor"
            raise InvalidResponseError(
                f"the listing of {what} says it has more but {problem}: the rest cannot be listed",
                status=200,
                method="GET",
                path=path,
            )
        followed.add(cursor)


async def entries(pages: AsyncIterable[P], of: Callable[[P], Iterable[T]]) -> AsyncIterator[T]:
    """The entries of every page, in order (``of(page)``: a page's list)."""
    async for page in pages:
        for entry in of(page):
            yield entry


async def unique(listed: AsyncIterable[E]) -> AsyncIterator[E]:
    """Each entry once, by ``id``, in first-seen order."""
    seen: set[Any] = set()
    async for entry in listed:
        if entry.id not in seen:
            seen.add(entry.id)
            yield entry
