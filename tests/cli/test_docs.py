"""The fleet documents are copy-pasteable: every YAML block of docs/kubernetes.md and
docs/github-actions.md parses, the Jobs have the shape the exit statuses need, and every
``oec-backups`` command in them parses with the real parser."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from oec_async.cli._argtypes import Shard
from oec_async.cli._exit import PERMANENT_EXIT_STATUSES
from oec_async.cli._parser import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"
_YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def yaml_documents(page: str) -> list[Any]:
    text = (DOCS / page).read_text()
    return [doc for block in _YAML_BLOCK.findall(text) for doc in yaml.safe_load_all(block)]


def oec_command(shell: str, **variables: str) -> list[str]:
    """The ``oec-backups`` command of a shell line, variables expanded, as argv."""
    for name, value in variables.items():
        shell = shell.replace(f"${{{{ {name} }}}}", value).replace(f"${name}", value)
    words = shlex.split(shell.replace("\\\n", " "))
    start = words.index("oec-backups")
    end = next((i for i, w in enumerate(words[start:], start) if w in ("||", "&&", ";")), None)
    return words[start + 1 : end]


def cron_jobs() -> list[dict[str, Any]]:
    return [d for d in yaml_documents("kubernetes.md") if d and d.get("kind") == "CronJob"]


def test_the_kubernetes_page_has_two_indexed_cron_jobs() -> None:
    assert len(cron_jobs()) == 2


@pytest.mark.parametrize("job", cron_jobs(), ids=lambda job: job["metadata"]["name"])
def test_each_kubernetes_job_retries_only_what_a_retry_may_fix(job: dict[str, Any]) -> None:
    spec = job["spec"]["jobTemplate"]["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"]
    assert spec["backoffLimitPerIndex"] >= 1
    rules = spec["podFailurePolicy"]["rules"]
    (fail,) = [r for r in rules if r["action"] == "FailIndex"]
    assert fail["onExitCodes"]["operator"] == "In"
    assert tuple(fail["onExitCodes"]["values"]) == PERMANENT_EXIT_STATUSES
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy requires it
    (container,) = pod["containers"]
    assert fail["onExitCodes"]["containerName"] == container["name"]
    assert container["command"] == ["sh", "-c"]
    (script,) = container["args"]
    argv = oec_command(script, JOB_COMPLETION_INDEX="2")

    args = build_parser().parse_args(argv)

    assert args.command == "pull"
    assert args.everything
    assert args.shard == Shard(2, spec["completions"])
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(args.dest) in mounts
    key_file = args.api_key_file or Path(
        next(e["value"] for e in container.get("env", []) if e["name"] == "OEC_API_KEY_FILE")
    )
    assert any(key_file.is_relative_to(m) for m in mounts)  # the key from a mounted Secret


def test_the_github_matrix_runs_one_shard_per_entry() -> None:
    workflow, extra_step = yaml_documents("github-actions.md")
    job = workflow["jobs"]["pull"]
    shards = job["strategy"]["matrix"]["shard"]
    assert job["strategy"]["fail-fast"] is False
    assert shards == list(range(len(shards)))
    scripts = [s["run"] for s in job["steps"] if "oec-backups pull" in s.get("run", "")]
    scripts += [extra_step[0]["run"]]
    for script in scripts:
        argv = oec_command(script, **{"matrix.shard": "3"})
        args = build_parser().parse_args(argv)
        assert args.shard == Shard(3, len(shards))
        assert args.everything
