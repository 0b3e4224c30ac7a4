"""``make bench``: oec_async against curl, wget, aria2c and the platform's shell recipe.

Storage is nginx on loopback (sendfile on); the simulator's API, in a thread of this
process, hands out URLs pointing at it. Every contender is a separate process, measured
with wait4 (wall time, user+sys CPU of it and its children, peak RSS). Contenders
alternate within each round; medians over the rounds are reported, with the ratio to the
scenario's reference. The results, the machine and the versions go to RESULTS.md.

    python -m benchmarks.run [--size-mib 1024] [--rounds 5] [--scenarios single,capped,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import attrs

from benchmarks._measure import Measurement, median, run_measured
from benchmarks._nginx import Nginx
from benchmarks._tools import ensure_tools, tool_versions
from benchmarks._world import SimulatorThread
from oec_async import __version__ as oec_version

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MiB = 1024 * 1024
GiB = 1024 * MiB

_RECIPE = r"""
set -eu
env_id="$1"; out="$2/$env_id"
id=$(curl -sf "$OEC_BASE_URL/environments/$env_id/backups?status=completed&page_size=1" \
      -H "Authorization: Bearer $OEC_API_KEY" | jq -r '.items[0].id')
urls=$(curl -sf "$OEC_BASE_URL/backups/$id/download?expires_in=3600" \
      -H "Authorization: Bearer $OEC_API_KEY")
mkdir -p "$out"
for key in database_url filestore_url manifest_url; do
  url=$(printf '%s' "$urls" | jq -r ".$key")
  [ "$url" = null ] || curl -sf -o "$out/${key%_url}" "$url"
done
"""


@attrs.frozen
class Contender:
    name: str
    command: Callable[[Path], list[str]]  # given a fresh output folder
    check: Callable[[Path], bool]  # did it produce the file(s)?
    verifies: bool


@attrs.define
class Row:
    contender: Contender
    runs: list[Measurement] = attrs.Factory(list)

    @property
    def wall(self) -> float:
        return median([m.wall for m in self.runs])

    @property
    def cpu(self) -> float:
        return median([m.cpu for m in self.runs])

    @property
    def rss_mib(self) -> float:
        return max(m.max_rss_kib for m in self.runs) / 1024


def settle_disk() -> None:
    """Write back every dirty page before a measured run (untimed): otherwise the bytes
    the previous contender left in the page cache are flushed during the next one, and
    slow it down (a contender that fsyncs, like oec_async, most of all)."""
    os.sync()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = HERE / ".work"
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.data = self.work / "data"
        self.size = args.size_mib * MiB
        self.sections: list[str] = []
        self.targets: list[tuple[str, str, bool]] = []
        self.python = sys.executable

    # -- running ---------------------------------------------------------------------

    def env(self, sim: SimulatorThread) -> dict[str, str]:
        return {
            **os.environ,
            "OEC_API_KEY": sim.sim.api_key,
            "OEC_BASE_URL": sim.sim.base_url,
            "PYTHONPATH": str(ROOT),
        }

    def compare(
        self, title: str, contenders: Sequence[Contender], env: dict[str, str]
    ) -> list[Row]:
        rows = [Row(c) for c in contenders]
        for round_number in range(self.args.rounds):
            order = rows[round_number % len(rows) :] + rows[: round_number % len(rows)]
            for row in order:
                out = self.work / "out"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                settle_disk()
                measurement = run_measured(row.contender.command(out), env=env, cwd=str(ROOT))
                if measurement.returncode != 0 or not row.contender.check(out):
                    raise SystemExit(
                        f"{title}: {row.contender.name} failed "
                        f"(exit {measurement.returncode}):\n{measurement.output}"
                    )
                row.runs.append(measurement)
                print(
                    f"  {title} round {round_number + 1}: {row.contender.name}: "
                    f"{measurement.wall:.2f} s, cpu {measurement.cpu:.2f} s, "
                    f"rss {measurement.max_rss_kib / 1024:.0f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
        shutil.rmtree(self.work / "out", ignore_errors=True)
        return rows

    def table(self, rows: list[Row], reference: str) -> str:
        ref = next(r for r in rows if r.contender.name == reference)
        lines = [
            "| contender | verifies | median wall | vs " + reference + " | median CPU (user+sys) "
            "| peak RSS |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in rows:
            lines.append(
                f"| {row.contender.name} | {'SHA-256' if row.contender.verifies else 'no'} "
                f"| {row.wall:.2f} s | {row.wall / ref.wall:.2f}x | {row.cpu:.2f} s "
                f"| {row.rss_mib:.0f} MiB |"
            )
        return "\n".join(lines)

    def target(self, name: str, measured: str, ok: bool) -> None:
        self.targets.append((name, measured, ok))

    # -- contenders ------------------------------------------------------------------

    def download_contenders(
        self, sim: SimulatorThread, env_id: object, *, aria_connections: int, segments: int | None
    ) -> dict[str, Contender]:
        from uuid import UUID

        assert isinstance(env_id, UUID)
        url = sim.signed_url(env_id)
        size = sim.object_path(env_id).stat().st_size
        sha256 = sim.sim.object(sim.latest[env_id], "database").sha256
        backup_id = str(sim.latest[env_id])

        def file_ok(out: Path) -> bool:
            return (out / "dump.sql").exists() and (out / "dump.sql").stat().st_size == size

        def oec_ok(out: Path) -> bool:
            found = list(out.glob("*/*/dump.sql"))
            return len(found) == 1 and found[0].stat().st_size == size

        seg = ["--segments", str(segments)] if segments is not None else []
        return {
            "curl": Contender(
                "curl -o",
                lambda o: ["curl", "-sSf", "-o", str(o / "dump.sql"), url],
                file_ok,
                False,
            ),
            "curl+sha": Contender(
                "curl -o + sha256sum",
                lambda o: [
                    "sh",
                    "-c",
                    f"curl -sSf -o '{o}/dump.sql' '{url}' && "
                    f"echo '{sha256}  {o}/dump.sql' | sha256sum -c --quiet",
                ],
                file_ok,
                True,
            ),
            "wget": Contender(
                "wget", lambda o: ["wget", "-q", "-O", str(o / "dump.sql"), url], file_ok, False
            ),
            "aria2c": Contender(
                f"aria2c -x{aria_connections} -s{aria_connections} --checksum",
                lambda o: [
                    "aria2c",
                    "-q",
                    f"-x{aria_connections}",
                    f"-s{aria_connections}",
                    f"--checksum=sha-256={sha256}",
                    "--allow-overwrite=true",
                    "-d",
                    str(o),
                    "-o",
                    "dump.sql",
                    url,
                ],
                file_ok,
                True,
            ),
            "aria2c-nocheck": Contender(
                f"aria2c -x{aria_connections} -s{aria_connections}",
                lambda o: [
                    "aria2c",
                    "-q",
                    f"-x{aria_connections}",
                    f"-s{aria_connections}",
                    "--allow-overwrite=true",
                    "-d",
                    str(o),
                    "-o",
                    "dump.sql",
                    url,
                ],
                file_ok,
                False,
            ),
            "oec": Contender(
                "oec_async download_backup",
                lambda o: [self.python, "-m", "benchmarks.oec_download", backup_id, str(o), *seg],
                oec_ok,
                True,
            ),
        }

    # -- scenarios -------------------------------------------------------------------

    def scenario_single(self, sim: SimulatorThread) -> None:
        env_id = sim.env_ids[0]
        with Nginx(self.data, self.work / "nginx") as nginx:
            sim.serve_storage_from(nginx.url)
            c = self.download_contenders(sim, env_id, aria_connections=4, segments=None)
            rows = self.compare(
                "single",
                [c["curl"], c["curl+sha"], c["wget"], c["aria2c"], c["oec"]],
                self.env(sim),
            )
        size_gib = self.size / GiB
        self.sections.append(
            f"## single: one {self.args.size_mib} MiB dump, nginx unthrottled\n\n"
            + self.table(rows, "curl -o")
        )
        oec = rows[-1]
        ratio = oec.wall / rows[0].wall
        self.target(
            "single: oec_async (SHA-256 verified) <= 1.0x `curl -o` (verifies nothing)",
            f"{ratio:.2f}x ({oec.wall:.2f} s vs {rows[0].wall:.2f} s)",
            ratio <= 1.0,
        )
        cpu_lines = ["| contender | CPU s per GiB |", "|---|---:|"]
        for row in rows:
            cpu_lines.append(f"| {row.contender.name} | {row.cpu / size_gib:.2f} |")
        self.sections.append(
            "## cpu: CPU seconds (user+sys) per GiB downloaded, from *single*\n\n"
            + "\n".join(cpu_lines)
        )

    def scenario_capped(self, sim: SimulatorThread) -> None:
        env_id = sim.env_ids[0]
        rate = self.args.cap_mib
        with Nginx(self.data, self.work / "nginx-capped", limit_rate=f"{rate}m") as nginx:
            sim.serve_storage_from(nginx.url)
            c = self.download_contenders(sim, env_id, aria_connections=8, segments=8)
            rows = self.compare("capped", [c["curl"], c["aria2c-nocheck"], c["oec"]], self.env(sim))
        self.sections.append(
            f"## capped: the same dump, nginx `limit_rate {rate}m` per connection\n\n"
            + self.table(rows, "curl -o")
        )
        curl, aria, oec = rows
        self.target(
            "capped: oec_async <= 1.0x `aria2c -x8 -s8`",
            f"{oec.wall / aria.wall:.2f}x ({oec.wall:.2f} s vs {aria.wall:.2f} s)",
            oec.wall <= aria.wall,
        )
        self.target(
            "capped: oec_async >= 4x faster than curl",
            f"{curl.wall / oec.wall:.1f}x",
            curl.wall / oec.wall >= 4,
        )

    def scenario_memory(self, sim: SimulatorThread) -> None:
        lines = ["| file | peak RSS of the downloading process | wall |", "|---|---:|---:|"]
        ok = True
        worst = 0.0
        with Nginx(self.data, self.work / "nginx-memory") as nginx:
            sim.serve_storage_from(nginx.url)
            for size_gib in self.args.memory_gib:
                env_id = sim.sim.add_environment(
                    statuses=["completed"], dump_size=size_gib * GiB, filestore_size=64 * 1024
                )
                backup_id = sim.sim.latest_completed(env_id).id
                sim.latest[env_id] = backup_id
                sim.sim.objects(backup_id)
                out = self.work / "out-memory"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                settle_disk()
                m = run_measured(
                    [self.python, "-m", "benchmarks.oec_download", str(backup_id), str(out)],
                    env=self.env(sim),
                    cwd=str(ROOT),
                )
                if m.returncode != 0:
                    raise SystemExit(f"memory {size_gib} GiB failed:\n{m.output}")
                shutil.rmtree(out, ignore_errors=True)
                sim.object_path(env_id).unlink()
                rss = m.max_rss_kib / 1024
                worst = max(worst, rss)
                ok = ok and rss < 80
                lines.append(f"| {size_gib} GiB | {rss:.0f} MiB | {m.wall:.2f} s |")
                print(f"  memory {size_gib} GiB: rss {rss:.0f} MiB", file=sys.stderr)
        self.sections.append(
            "## memory: peak RSS of `oec_async` (download_backup, defaults)\n\n" + "\n".join(lines)
        )
        self.target("memory: peak RSS < 80 MiB for every size", f"max {worst:.0f} MiB", ok)

    def scenario_bulk(self, bulk: SimulatorThread) -> None:
        envs_file = self.work / "envs.txt"
        envs_file.write_text("".join(f"{e}\n" for e in bulk.env_ids))
        recipe = self.work / "recipe.sh"
        recipe.write_text(_RECIPE)
        count = len(bulk.env_ids)
        parallel = self.args.bulk_parallel

        def recipe_ok(out: Path) -> bool:
            return len(list(out.glob("*/database"))) == count

        def oec_ok(out: Path) -> bool:
            return len(list(out.glob("*/*/dump.sql"))) == count

        with Nginx(self.data, self.work / "nginx-bulk") as nginx:
            bulk.serve_storage_from(nginx.url)
            contenders = [
                Contender(
                    f"shell recipe (curl + jq, xargs -P{parallel})",
                    lambda o: [
                        "sh",
                        "-c",
                        f"xargs -P{parallel} -I{{}} sh '{recipe}' {{}} '{o}' < '{envs_file}'",
                    ],
                    recipe_ok,
                    False,
                ),
                Contender(
                    f"oec-backups pull --concurrency {parallel}",
                    lambda o: [
                        self.python,
                        "-m",
                        "oec_async",
                        "pull",
                        "--from-file",
                        str(envs_file),
                        "--dest",
                        str(o),
                        "--concurrency",
                        str(parallel),
                        "--quiet",
                        "--requests-per-minute",
                        "0",
                        "--max-connections",
                        str(parallel * 2),
                        "--max-connections-per-host",
                        str(parallel * 2),
                    ],
                    oec_ok,
                    True,
                ),
            ]
            rows = self.compare("bulk", contenders, self.env(bulk))
        lines = [
            "| contender | verifies | median wall | environments/s | vs recipe |",
            "|---|---|---:|---:|---:|",
        ]
        recipe_rate = count / rows[0].wall
        for row in rows:
            rate = count / row.wall
            lines.append(
                f"| {row.contender.name} | {'SHA-256' if row.contender.verifies else 'no'} "
                f"| {row.wall:.2f} s | {rate:.1f} | {rate / recipe_rate:.2f}x |"
            )
        self.sections.append(
            f"## bulk: {count} environments ({self.args.bulk_dump_mib} MiB dump each), "
            "API rate limit off\n\n" + "\n".join(lines)
        )
        oec_rate = count / rows[1].wall
        self.target(
            "bulk: >= 2x the environments/s of the shell recipe, verifying every file",
            f"{oec_rate / recipe_rate:.2f}x ({oec_rate:.1f} vs {recipe_rate:.1f} env/s)",
            oec_rate >= 2 * recipe_rate,
        )

    # -- report ----------------------------------------------------------------------

    def write(self, started: float) -> None:
        versions = tool_versions()
        cpu = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        head = [
            "# Benchmark results",
            "",
            f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
            f"{(time.monotonic() - started) / 60:.1f} min. Every number below comes from "
            "that run. Medians of "
            f"{self.args.rounds} rounds; contenders alternate within each round.",
            "",
            f"- machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}",
            f"- Python {platform.python_version()}, aiohttp {aiohttp.__version__}, "
            f"oec-async {oec_version}",
            *(f"- {name}: {version}" for name, version in versions.items()),
            "- storage: nginx on loopback, `sendfile on`, 1 worker; API: the simulator",
            "",
            "## Targets",
            "",
            "| target | measured | met |",
            "|---|---|---|",
            *(f"| {n} | {m} | {'yes' if ok else '**no**'} |" for n, m, ok in self.targets),
            "",
        ]
        text = "\n".join(head) + "\n" + "\n\n".join(self.sections) + "\n"
        (HERE / "RESULTS.md").write_text(text)
        (HERE / ".work" / "targets.json").write_text(json.dumps(self.targets))
        print(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cap-mib", type=int, default=50, help="per-connection cap, MiB/s")
    parser.add_argument("--memory-gib", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--bulk-environments", type=int, default=200)
    parser.add_argument("--bulk-dump-mib", type=int, default=4)
    parser.add_argument("--bulk-parallel", type=int, default=16)
    parser.add_argument(
        "--scenarios", default="single,capped,memory,bulk", help="comma-separated subset"
    )
    args = parser.parse_args(argv)
    scenarios = set(args.scenarios.split(","))
    started = time.monotonic()
    ensure_tools()
    bench = Bench(args)
    print("generating data...", file=sys.stderr, flush=True)
    if scenarios & {"single", "capped", "memory"}:
        sim = SimulatorThread(
            bench.data, environments=1, dump_size=bench.size, filestore_size=64 * 1024
        )
        try:
            if "single" in scenarios:
                bench.scenario_single(sim)
            if "capped" in scenarios:
                bench.scenario_capped(sim)
            if "memory" in scenarios:
                bench.scenario_memory(sim)
        finally:
            sim.close()
    if "bulk" in scenarios:
        shutil.rmtree(bench.data, ignore_errors=True)
        bulk = SimulatorThread(
            bench.data,
            environments=args.bulk_environments,
            dump_size=args.bulk_dump_mib * MiB,
            filestore_size=256 * 1024,
        )
        try:
            bench.scenario_bulk(bulk)
        finally:
            bulk.close()
    bench.write(started)
    shutil.rmtree(bench.work / "data", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
