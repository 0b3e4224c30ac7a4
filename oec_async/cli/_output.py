"""Where a command's words go: results on stdout, the rest on stderr, and ``--quiet``
honoured in one place (nothing at all on success; errors always; a ``--json`` document
when asked for)."""

from __future__ import annotations

import argparse
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any

from oec_async.cli._messages import cli_message, error_text

if TYPE_CHECKING:
    from rich.console import Console

    from oec_async.cli._progress import ProgressView

__all__ = ["Output"]


class Output:
    """A command's output, as its ``--quiet`` and ``--json`` flags say.

    Args:
        args: the parsed command line (``quiet`` and ``json`` are read, when present).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet: bool = getattr(args, "quiet", False)
        self.json: bool = getattr(args, "json", False)

    @property
    def chatty(self) -> bool:
        """Whether anything but errors and the ``--json`` document may be printed."""
        return not self.quiet

    @property
    def tables(self) -> bool:
        """Whether results are printed for people (not ``--json``, not ``--quiet``)."""
        return not (self.quiet or self.json)

    @cached_property
    def console(self) -> Console:
        """The console tables are printed on (stdout)."""
        from rich.console import Console  # noqa: PLC0415 - rich loads when output does

        # Tables keep whole ids on one line when piped (no terminal width to respect).
        return Console(
            soft_wrap=False,
            highlight=False,
            emoji=False,  # ":cat:" in a path is not an emoji
            width=None if sys.stdout.isatty() else 200,
        )

    def print(self, *objects: Any) -> None:
        """A result for people, on stdout (not with ``--quiet``/``--json``)."""
        if not self.tables:
            return
        if all(isinstance(o, str) for o in objects):
            # A line of text is printed as it is: never wrapped (a path cut in two is no
            # path) and never read as markup (``[old]`` in a path is not a style).
            self.console.print(*objects, soft_wrap=True, markup=False)
        else:
            self.console.print(*objects)  # tables fit the width

    def heading(self, title: str, rest: str = "") -> None:
        """A bold ``title`` followed by plain ``rest`` (the demo's steps)."""
        if self.tables:
            from rich.text import Text  # noqa: PLC0415 - rich loads when output does

            text = Text(title, style="bold")
            text.append(rest)
            self.console.print(text, soft_wrap=True)

    def json_document(self, value: Any) -> None:
        """The ``--json`` result on stdout, when asked for."""
        if self.json:
            from oec_async.cli._render import print_json  # noqa: PLC0415

            print_json(value)

    def warn(self, text: str) -> None:
        """``warning: ...`` on stderr (not with ``--quiet``)."""
        if self.chatty:
            print(f"warning: {cli_message(text)}", file=sys.stderr, flush=True)

    def error(self, text: str | BaseException) -> None:
        """``error: ...`` on stderr, always; redacted, in flag names."""
        from oec_async._redact import redact_text  # noqa: PLC0415

        shown = (
            error_text(text) if isinstance(text, BaseException) else cli_message(redact_text(text))
        )
        print(f"error: {shown}", file=sys.stderr, flush=True)

    def progress(self, *, batch: bool = False) -> ProgressView:
        """The progress view: nothing with ``--quiet`` or ``--json``."""
        from oec_async.cli._progress import make_progress_view  # noqa: PLC0415

        return make_progress_view(quiet=self.quiet or self.json, batch=batch)
