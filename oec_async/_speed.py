"""The faster event loop of the ``speed`` extra (``pip install oec-async[speed]``: uvloop),
used where oec_async starts the loop itself, and never required.

A library cannot choose its caller's loop: a script that wants uvloop under its own
``asyncio.run()`` passes ``loop_factory=uvloop.new_event_loop`` (Python 3.12+), or runs
``asyncio.Runner(loop_factory=oec_async._speed.loop_factory())``. The receive path works on
either loop the same way (an ``asyncio.BufferedProtocol`` over the transport).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when uvloop is installed, else None (asyncio's own loop)."""
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop  # noqa: PLC0415 - only when installed

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop's loop when the ``speed`` extra is installed."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
