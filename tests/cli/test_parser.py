"""The parser as documentation: every subcommand and option has a help line, README's
command summary lists exactly the parser's flags, the exit statuses in ``--help`` are
the ones the code exits with, and ``--help`` loads neither aiohttp, rich, nor the client."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oec_async.cli import _exit
from oec_async.cli._parser import EXIT_HELP, build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/cli/test_parser.py compares this block with the parser -->"
_FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b")
_GROUP = re.compile(r"^(?P<name>[A-Z]+)\s{2,}(?P<rest>.*)$")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            yield action


def test_every_subcommand_and_option_has_a_help_line() -> None:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [c.dest for c in action._choices_actions if not c.help]
    for name, sub in subcommands().items():
        missing += [
            f"{name} {'/'.join(a.option_strings) or a.dest}"
            for a in options(sub)
            if not a.help or a.help == argparse.SUPPRESS
        ]
    missing += [a.dest for a in options(parser) if not a.help]
    assert missing == []


def readme_summary() -> tuple[dict[str, set[str]], set[str]]:
    """The flags README lists per subcommand (groups expanded), and the global ones."""
    block = README.read_text().split(MARKER, 1)[1].split("```", 2)[1]
    groups: dict[str, set[str]] = {}
    commands: dict[str, str] = {}
    current = None
    top: set[str] = set()
    for line in block.splitlines():
        if line.startswith("oec-backups ["):
            top = set(_FLAG.findall(line))
            continue
        if line.startswith("oec-backups "):
            current = line.split()[1]
            commands[current] = line
        elif (found := _GROUP.match(line)) is not None:
            current = found["name"]
            groups[current] = set(_FLAG.findall(found["rest"]))
        elif line.startswith(" ") and current is not None:
            if current in groups:
                groups[current] |= set(_FLAG.findall(line))
            else:
                commands[current] += line
    listed = {}
    for name, text in commands.items():
        flags = set(_FLAG.findall(text))
        for group, members in groups.items():
            if re.search(rf"\b{group}\b", text):
                flags |= members
        listed[name] = flags
    return listed, top


def test_readme_lists_every_flag_of_every_command_and_no_other() -> None:
    listed, top = readme_summary()
    verbosity = {"-v", "--verbose", "-q", "--quiet"}
    assert top >= {"--version", "-v", "-q"}
    assert set(listed) == set(subcommands())
    for name, sub in subcommands().items():
        documented = listed[name]
        for action in options(sub):
            flags = set(action.option_strings)
            if not flags or flags & verbosity:
                continue  # positionals; -v/-q are listed once, for every command
            assert flags & documented, f"README does not list {name} {action.option_strings}"
        known = {flag for a in options(sub) for flag in a.option_strings}
        assert documented - known == set(), f"README lists flags {name} has not"


def test_only_commands_that_have_shard_mention_it_in_their_help() -> None:
    for name, sub in subcommands().items():
        flags = {flag for action in options(sub) for flag in action.option_strings}
        helps = " ".join(action.help or "" for action in options(sub))
        assert ("--shard" in helps) == ("--shard" in flags), name


@pytest.mark.parametrize("command", [["pull", "--all"], ["prune", "."]])
def test_keep_zero_is_refused_not_a_silent_no_prune(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*command, "--keep-last", "0"])

    assert exited.value.code == 2
    assert "--keep-last: must be a count (1 or more)" in capsys.readouterr().err


def test_a_usage_error_is_two_short_lines_not_the_whole_usage_block(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["pull", "--all", "--dest", ".", "--concurrency", "x"])

    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "oec-backups pull: error: argument --concurrency: must be an integer, got 'x'",
        "(`oec-backups pull --help` lists the options)",
    ]


def test_an_unknown_option_is_reported_by_the_subcommand_whose_help_lists_its_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["pull", "--all", "--dest", ".", "--bogus"])

    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "oec-backups pull: error: unrecognized arguments: --bogus",
        "(`oec-backups pull --help` lists the options)",
    ]


def test_help_lists_the_exit_statuses_the_code_exits_with() -> None:
    shown = {int(n) for n in re.findall(r"^\s+(\d+)\s", EXIT_HELP, re.MULTILINE)}
    shown |= {int(n) for n in re.findall(r"; (\d+) terminated", EXIT_HELP)}
    statuses = {value for name, value in vars(_exit).items() if name.startswith("EXIT_")}
    assert shown == statuses
    readme = README.read_text()
    for status in statuses:
        assert re.search(rf"^\| [\d, ]*\b{status}\b[\d, ]* \|", readme, re.MULTILINE), status


@pytest.mark.parametrize("argv", [["--help"], ["pull", "--help"], ["backup", "--help"]])
def test_help_imports_neither_aiohttp_rich_nor_the_client(argv: list[str]) -> None:
    """In a fresh interpreter: what ``--help`` loaded (not how long it took; ``make
    bench`` times it)."""
    probe = (
        "import sys\n"
        "from oec_async.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('aiohttp', 'rich', 'yarl', 'multidict', 'cattrs', 'ssl', 'asyncio')\n"
        "ours = ('oec_async._client', 'oec_async.download', 'oec_async.archive',\n"
        "        'oec_async.testing', 'oec_async._http')\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(ours)]\n"
        "print('LOADED', sorted(loaded), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert "usage: oec-backups" in done.stdout
    assert done.stderr.strip() == "LOADED []"
