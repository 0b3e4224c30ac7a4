"""Where start-up time goes: ``python -X importtime`` of a command, by package.

``-X importtime`` prints one line per module, children before their parent and indented
one level deeper, with the module's own ("self") time and the time including what it
imported. Two views name the offenders:

- *with what it imports*: each outside package that the project's modules (or the
  program itself) import, with the cumulative time of those imports: what not importing
  it would save (aiohttp's includes the asyncio, yarl and multidict it pulls in);
- *own time*: self times summed by package (they add up to the whole).

The project's own modules count one by one (``oec_async.cli._app``), others by top-level
package (``aiohttp``, ``rich``).
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import Mapping, Sequence

import attrs

__all__ = ["ImportProfile", "import_profile", "parse_importtime"]

_OWN = "oec_async"


@attrs.frozen
class ImportProfile:
    total_ms: float
    inclusive: list[tuple[str, float]]  # outside packages we import, with what they import
    own: list[tuple[str, float]]  # every package, self time only


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == _OWN else parts[0]


def _ranked(values: Mapping[str, float]) -> list[tuple[str, float]]:
    return sorted(values.items(), key=lambda item: item[1], reverse=True)


def parse_importtime(stderr: str) -> ImportProfile:
    """Read ``-X importtime`` output; times in milliseconds."""
    own: defaultdict[str, float] = defaultdict(float)
    inclusive: defaultdict[str, float] = defaultdict(float)
    pending: list[tuple[int, str, float]] = []  # (depth, package, cumulative ms) w/o parent
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header line
        raw = fields[2]
        depth = (len(raw) - len(raw.lstrip()) - 1) // 2
        package = _package(raw.strip())
        own[package] += int(fields[0]) / 1000
        while pending and pending[-1][0] > depth:  # the children of this module
            _, child, cumulative = pending.pop()
            if package.startswith(_OWN) and not child.startswith(_OWN):
                inclusive[child] += cumulative
        pending.append((depth, package, int(fields[1]) / 1000))
    for _, package, cumulative in pending:  # imported by the program itself
        inclusive[package] += cumulative
    outside = {p: ms for p, ms in inclusive.items() if p.split(".")[0] != _OWN}
    return ImportProfile(sum(own.values()), _ranked(outside), _ranked(own))


def import_profile(python: str, arguments: Sequence[str], env: Mapping[str, str]) -> ImportProfile:
    """Run ``python -X importtime ARGUMENTS`` once; see :func:`parse_importtime`."""
    done = subprocess.run(
        [python, "-X", "importtime", *arguments],
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return parse_importtime(done.stderr)
