"""Chaos soak: many downloads and bulk pulls against a simulator that misbehaves at random.

    python -m tests.soak [--downloads 300] [--seed N]      (make soak)

Every round draws its faults from a seeded RNG (the seed is printed, and a run is
reproducible from it): connections dropped at random offsets, stalls, corrupt bytes (once,
or every time), lying Content-Length, truncated and over-long bodies, wrong
Content-Range, Range ignored, 5xx and 429 bursts from storage and from the API, URLs
expiring mid-transfer,
objects changed between two runs, and downloads in a child process killed with SIGKILL
at a random moment, then restarted.

After every round the destination is inspected, whatever the outcome:
- a file under a final name whose bytes are not a version the simulator served is a
  *corrupt final file*;
- a final data file without a final manifest beside it whose checksum it matches is an
  *unverified final file*;
- a backup folder under its final name (``<backup_id>/``) without a complete completion
  record, or missing a file its record lists, is an *incomplete complete folder*;
and every log record, exception message, repr and child output of the whole run is
searched for the API keys and for presigned signatures (*secrets in logs*).

It ends with one summary line; any invariant above zero, or a round that ended otherwise
than expected (a success, or the clear error its faults call for), fails the soak.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import hashlib
import json
import logging
import os
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import attrs

from oec_async import APIError, IntegrityError, OECClient, OECError
from oec_async.download import BackupDownload
from oec_async.download._record import read_record
from oec_async.testing import OECSimulator, SimBackup, SimulatorFactory
from tests._kill_loop import kill_loop

KiB = 1024
MiB = 1024 * KiB
CHILD = Path(__file__).parent.parent / "_child_download.py"
KILL_LOOP_MODES: dict[str, dict[str, Any]] = {
    "one_stream": {"segments": 1, "buffer_size": 16 * 1024},
    "segmented": {
        "segments": 4,
        "segment_threshold": 512 * 1024,
        "min_segment_size": 128 * 1024,
        "segment_probe": 0.0,
        "buffer_size": 16 * 1024,
    },
}
REPO_ROOT = Path(__file__).resolve().parent.parent
_SIGNATURE = re.compile(r"(?i)x-amz-signature=(?!<redacted>)[0-9a-f]{16,}")
DATA = ("database", "filestore")
CLIENT_RETRIES = 3  # OECClient's default max_retries, which the soak's client keeps
_SPOILS_ONE_FETCH = {"corrupt_once", "short_body_once", "long_body_once", "lie_length"}


@attrs.define
class SoakStats:
    seed: int
    downloads: int = 0
    kills: int = 0
    faults: collections.Counter[str] = attrs.Factory(collections.Counter)
    recoveries: int = 0  # rounds that met at least one fault and still verified everything
    expected_failures: int = 0  # rounds whose faults cannot be got past, ended as expected
    unexpected: list[str] = attrs.Factory(list)
    corrupt_final: int = 0
    unverified_final: int = 0
    incomplete_folders: int = 0
    secrets_in_logs: int = 0
    loop_errors: int = 0  # errors the event loop had to report (never retrieved, ...)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.corrupt_final == 0
            and self.unverified_final == 0
            and self.incomplete_folders == 0
            and self.secrets_in_logs == 0
            and self.loop_errors == 0
            and not self.unexpected
        )

    def summary(self) -> str:
        faults = ",".join(f"{k}:{v}" for k, v in sorted(self.faults.items())) or "none"
        return (
            f"SOAK seed={self.seed} downloads={self.downloads} kills={self.kills} "
            f"faults={faults} recoveries={self.recoveries} "
            f"expected_failures={self.expected_failures} unexpected={len(self.unexpected)} | "
            f"corrupt_final={self.corrupt_final} unverified_final={self.unverified_final} "
            f"incomplete_folders={self.incomplete_folders} "
            f"secrets_in_logs={self.secrets_in_logs} loop_errors={self.loop_errors} | "
            f"{self.elapsed:.0f}s "
            f"{'OK' if self.ok else 'FAILED'}"
        )


class _Capture(logging.Handler):
    """Every record of the oec_async loggers, formatted, for the secrets audit."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@attrs.frozen
class Plan:
    """The faults of one round and what the round must end with."""

    faults: tuple[str, ...]
    must_fail: frozenset[uuid.UUID] = frozenset()  # faults no retry gets past
    # Two faults that each spoil one fetch of the same file spoil the one refetch too:
    # IntegrityError is then the documented outcome, and a success is fine as well.
    may_fail: frozenset[uuid.UUID] = frozenset()
    # More API failures in a row than the client's retries: a clear APIError is right.
    api_may_fail: bool = False

    @property
    def fatal(self) -> bool:
        return bool(self.must_fail)

    def allows(self, backup_id: uuid.UUID | None, outcome: object) -> bool:
        """Whether a backup's outcome is one these faults allow."""
        if isinstance(outcome, IntegrityError):
            return backup_id in self.must_fail or backup_id in self.may_fail
        if isinstance(outcome, APIError):
            return self.api_may_fail
        if isinstance(outcome, BackupDownload):
            return outcome.verified and backup_id not in self.must_fail
        return False


class Soak:
    def __init__(self, sim: OECSimulator, work: Path, seed: int) -> None:
        self.sim = sim
        self.work = work
        self.rng = random.Random(seed)
        self.stats = SoakStats(seed=seed)
        self.texts: list[str] = []  # exception messages, reprs, child output
        self.versions: dict[tuple[uuid.UUID, str], set[str]] = collections.defaultdict(set)
        # The rounds with random faults draw from these (with checksummed manifests); the
        # kill loops add environments of their own, with sizes-only manifests.
        self.environments = list(sim.environment_ids)

    # -- faults ------------------------------------------------------------------------

    def _remember_versions(self, backup: SimBackup) -> None:
        for artifact, obj in self.sim.objects(backup.id).items():
            self.versions[(backup.id, artifact)].add(obj.sha256)

    def plan(self, backups: list[SimBackup]) -> Plan:
        """Install 1-3 random faults aimed at these backups."""
        kinds = [
            "drop", "drop", "stall", "corrupt_once", "lie_length", "short_body_once",
            "storage_5xx", "storage_429", "api_5xx", "api_429", "expire", "ignore_range",
            "wrong_range", "long_body_once", "corrupt_always", "short_body_always",
            "long_body_always",
        ]  # fmt: skip
        chosen = self.rng.sample(kinds, self.rng.randint(1, 3))
        doomed: set[uuid.UUID] = set()
        api_failures = 0
        spoilers: collections.Counter[uuid.UUID] = collections.Counter()
        faults = self.sim.faults
        for kind in chosen:
            backup = self.rng.choice(backups)
            if kind in _SPOILS_ONE_FETCH:
                spoilers[backup.id] += 1
            size = backup.dump_size
            offset = self.rng.randrange(1, max(2, size - 1))
            self.stats.faults[kind] += 1
            if kind == "drop":
                faults.drop_after(offset, backup_id=backup.id)
            elif kind == "stall":
                faults.stall_after(offset, backup_id=backup.id)
            elif kind == "corrupt_once":
                faults.corrupt(offset, backup_id=backup.id)
            elif kind == "corrupt_always":
                faults.corrupt(offset, backup_id=backup.id, times=None)
                doomed.add(backup.id)
            elif kind == "lie_length":
                faults.lie_content_length(self.rng.randint(1, 64 * KiB), backup_id=backup.id)
            elif kind == "short_body_once":
                faults.short_body(self.rng.randint(1, 4 * KiB), backup_id=backup.id)
            elif kind == "short_body_always":
                faults.short_body(self.rng.randint(1, 4 * KiB), backup_id=backup.id, times=None)
                doomed.add(backup.id)
            elif kind == "long_body_once":
                faults.long_body(self.rng.randint(1, 4 * KiB), backup_id=backup.id)
            elif kind == "long_body_always":
                faults.long_body(self.rng.randint(1, 4 * KiB), backup_id=backup.id, times=None)
                doomed.add(backup.id)
            elif kind == "storage_5xx":
                faults.storage_errors(
                    self.rng.choice([500, 502, 503]), times=self.rng.randint(1, 3)
                )
            elif kind == "storage_429":
                faults.storage_errors(429, times=self.rng.randint(1, 2), retry_after=0.05)
            elif kind == "api_5xx":
                count = self.rng.randint(1, 2)
                api_failures += count
                faults.api_errors(self.rng.choice([500, 502, 503, 504]), times=count)
            elif kind == "api_429":
                count = self.rng.randint(1, 2)
                api_failures += count
                faults.rate_limit(times=count, retry_after=0.05)
            elif kind == "expire":
                faults.expire_after(offset, backup_id=backup.id)
            elif kind == "ignore_range":
                faults.ignore_range(artifact="database")
                faults.drop_after(offset, backup_id=backup.id)  # so a Range is asked for
            elif kind == "wrong_range":
                faults.drop_after(offset, backup_id=backup.id)
                faults.wrong_content_range()
        return Plan(
            tuple(chosen),
            must_fail=frozenset(doomed),
            may_fail=frozenset(b for b, n in spoilers.items() if n > 1),
            api_may_fail=api_failures > CLIENT_RETRIES,
        )

    def calm(self) -> None:
        self.sim.faults.clear()

    # -- checking the disk -------------------------------------------------------------

    def inspect(self, dest: Path) -> None:
        """Count corrupt and unverified files under final names anywhere in ``dest`` (in
        complete folders and work folders alike), and complete folders that are not."""
        for folder in dest.glob("*/*"):
            if folder.is_dir():
                self._inspect_folder(folder)

    def _inspect_folder(self, folder: Path) -> None:
        try:
            backup = self.sim.backup(uuid.UUID(folder.name.removesuffix(".part")))
        except (ValueError, KeyError):
            return
        if not folder.name.endswith(".part"):
            record = read_record(folder)
            listed = [] if record is None else [f for f in record.files.values() if f]
            if record is None or not all((folder / f.name).is_file() for f in listed):
                self.stats.incomplete_folders += 1
                self.texts.append(f"INCOMPLETE {folder}")
        manifest: dict[str, Any] = {}
        manifest_path = folder / "manifest.json"
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
        for artifact in DATA:
            final = folder / backup.file_names[artifact]
            if not final.exists():
                continue
            digest = hashlib.sha256(final.read_bytes()).hexdigest()
            if digest not in self.versions[(backup.id, artifact)]:
                self.stats.corrupt_final += 1
                self.texts.append(f"CORRUPT {final}")
            entry = manifest.get("files", {}).get(artifact, {})
            if entry.get("sha256") != digest:
                self.stats.unverified_final += 1
                self.texts.append(f"UNVERIFIED {final}")

    # -- rounds ------------------------------------------------------------------------

    def record(
        self,
        plan: Plan,
        outcome: BackupDownload | BaseException,
        label: str,
        backup_id: uuid.UUID | None = None,
    ) -> None:
        self.stats.downloads += 1
        self.texts.append(repr(outcome) if isinstance(outcome, BackupDownload) else str(outcome))
        if not plan.allows(backup_id, outcome):
            shown = "verified" if isinstance(outcome, BackupDownload) else repr(outcome)
            self.stats.unexpected.append(f"{label}: {shown} under {plan.faults}")
        elif isinstance(outcome, IntegrityError):
            self.stats.expected_failures += 1
        else:
            self.stats.recoveries += 1

    async def one_download(self, client: OECClient, round_no: int) -> None:
        env = self.rng.choice(self.environments)
        backup = self.sim.latest_completed(env)
        self._remember_versions(backup)
        plan = self.plan([backup])
        dest = self.work / f"round-{round_no}"
        try:
            outcome: BackupDownload | BaseException = await asyncio.wait_for(
                client.download_backup(backup.id, dest, buffer_size=64 * KiB), 60
            )
        except OECError as exc:
            outcome = exc
        finally:
            self.calm()
        self.record(plan, outcome, f"round {round_no} download", backup.id)
        self.inspect(dest)

    async def one_pull(self, client: OECClient, round_no: int) -> None:
        envs = self.rng.sample(self.environments, self.rng.randint(2, 4))
        backups = [self.sim.latest_completed(env) for env in envs]
        for backup in backups:
            self._remember_versions(backup)
        plan = self.plan(backups)
        dest = self.work / f"round-{round_no}"
        try:
            results = await asyncio.wait_for(
                client.pull_latest(envs, dest, concurrency=3, buffer_size=64 * KiB), 90
            )
        finally:
            self.calm()
        for result in results:
            outcome: BackupDownload | BaseException = (
                result.error or result.download or RuntimeError("a PullResult with neither")
            )
            self.record(plan, outcome, f"round {round_no} pull", result.backup_id)
        self.inspect(dest)

    async def changed_between_runs(self, client: OECClient, round_no: int) -> None:
        env = self.rng.choice(self.environments)
        backup = self.sim.latest_completed(env)
        self._remember_versions(backup)
        dest = self.work / f"round-{round_no}"
        self.sim.faults.stall_after(self.rng.randrange(64 * KiB, backup.dump_size - 1))
        self.stats.faults["changed_object"] += 1
        task = asyncio.create_task(client.download_backup(backup.id, dest, buffer_size=32 * KiB))
        try:
            await asyncio.wait_for(self.sim.wait_for_bytes(backup.id, "database", 1), 10)
            await asyncio.sleep(self.rng.uniform(0, 0.05))
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, OECError) as exc:
                self.texts.append(str(exc))
        finally:
            self.calm()
        self.inspect(dest)
        self.sim.change_object(backup.id)
        self._remember_versions(backup)
        try:
            outcome: BackupDownload | BaseException = await client.download_backup(backup.id, dest)
        except OECError as exc:
            outcome = exc
        self.record(Plan(("changed_object",)), outcome, f"round {round_no} changed")
        self.inspect(dest)

    async def killed_and_restarted(self, client: OECClient, round_no: int) -> None:
        env = self.rng.choice(self.environments)
        backup = self.sim.latest_completed(env)
        self._remember_versions(backup)
        dest = self.work / f"round-{round_no}"
        # The child writes 256 KiB buffers: the stall must leave it at least one to report.
        stall_at = self.rng.randrange(max(512 * KiB, backup.dump_size // 4), backup.dump_size - 1)
        self.sim.faults.stall_after(stall_at, backup_id=backup.id)
        self.stats.faults["sigkill"] += 1
        env_vars = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), self.sim.base_url, self.sim.api_key, str(backup.id),
            str(dest), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=env_vars,
        )  # fmt: skip
        # The child reports bytes on disk; up to one buffer before the stall may still be
        # in its memory when the stall begins.
        target = self.rng.randrange(1, stall_at - 256 * KiB)
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(30):
                while True:
                    line = await proc.stdout.readline()
                    if not line or int(line) >= target:
                        break
        finally:
            if proc.returncode is None:
                proc.kill()
            out, err = await proc.communicate()
            self.texts.append(out.decode(errors="replace") + err.decode(errors="replace"))
            self.calm()
        self.stats.kills += 1
        self.inspect(dest)
        try:
            outcome: BackupDownload | BaseException = await client.download_backup(backup.id, dest)
        except OECError as exc:
            outcome = exc
        self.record(Plan(("sigkill",)), outcome, f"round {round_no} after kill")
        self.inspect(dest)

    async def kill_loop_round(self, round_no: int) -> None:
        """A backup with a sizes-only manifest, killed again and again (one stream or
        segmented), every final file checked after every kill."""
        mode = self.rng.choice(sorted(KILL_LOOP_MODES))
        env = self.sim.add_environment(
            statuses=["completed"], dump_size=self.rng.choice((1, 2, 3)) * MiB
        )
        backup = self.sim.latest_completed(env)
        backup = self.sim.update_backup(backup.id, manifest_variant="no_checksums")
        self._remember_versions(backup)
        previous = self.sim.settings.bandwidth
        self.sim.configure(bandwidth=6 * MiB)
        try:
            report = await kill_loop(
                self.sim,
                backup.id,
                self.work / f"round-{round_no}",
                options=KILL_LOOP_MODES[mode],
                kills=self.rng.randrange(3, 7),
                rng=self.rng,
            )
        finally:
            self.sim.configure(bandwidth=previous)
        self.stats.faults[f"kill_loop_{mode}"] += 1
        self.stats.kills += report.kills
        self.stats.downloads += 1
        self.stats.corrupt_final += len(report.problems)
        self.texts += report.problems
        if not report.completed:
            self.stats.unexpected.append(f"round {round_no} kill loop did not complete")

    # -- the audit -----------------------------------------------------------------------

    def audit(self, logs: list[str]) -> None:
        secrets = [self.sim.api_key, self.sim.read_only_key]
        for text in [*logs, *self.texts]:
            hits = sum(text.count(secret) for secret in secrets)
            hits += len(_SIGNATURE.findall(text))
            self.stats.secrets_in_logs += hits


async def _watchdog(step: Any, round_no: int, soak: Soak) -> bool:
    """Run one round; a round that hangs is a failure (with every task's stack printed),
    never a soak that waits forever."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait([task], timeout=180)
    if task in done:
        task.result()
        return True
    for other in asyncio.all_tasks():
        if other is not asyncio.current_task():
            other.print_stack(file=sys.stderr)
    soak.stats.unexpected.append(f"round {round_no} hung for 180 s")
    return False


async def run_soak(downloads: int, seed: int, *, kill_every: int = 20) -> SoakStats:
    started = time.monotonic()
    capture = _Capture()
    capture.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("oec_async")
    previous = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    work = Path(tempfile.mkdtemp(prefix="oec-soak-"))
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    simulators = SimulatorFactory()
    try:
        sim = await simulators(
            seed=seed,
            environments=10,
            backups_per_environment=3,
            dump_size=768 * KiB,
            read_limit=None,
        )
        for index in range(3):  # and some bigger ones
            sim.add_environment(statuses=["completed"], dump_size=(2 + index) * MiB)
        soak = Soak(sim, work, seed)
        async with OECClient(
            sim.api_key, sim.base_url, timeout=0.5, requests_per_minute=None
        ) as client:
            round_no = 0
            while soak.stats.downloads < downloads:
                round_no += 1
                dice = soak.rng.random()
                if kill_every and round_no % kill_every == 0:
                    step = soak.killed_and_restarted(client, round_no)
                elif kill_every and round_no % kill_every == kill_every // 2:
                    step = soak.kill_loop_round(round_no)
                elif dice < 0.15:
                    step = soak.one_pull(client, round_no)
                elif dice < 0.22:
                    step = soak.changed_between_runs(client, round_no)
                else:
                    step = soak.one_download(client, round_no)
                if not await _watchdog(step, round_no, soak):
                    break
                if round_no % 10 == 0:  # keep the disk use flat
                    for folder in work.glob("round-*"):
                        shutil.rmtree(folder, ignore_errors=True)
        soak.audit(capture.lines)
        gc.collect()  # an unretrieved task error is reported when it is collected
        await asyncio.sleep(0)
        soak.stats.loop_errors = len(reported)
        for context in reported[:5]:
            print(f"  loop error: {context.get('message')}: {context.get('exception')!r}")
        soak.stats.elapsed = time.monotonic() - started
        return soak.stats
    finally:
        await simulators.close()
        loop.set_exception_handler(previous_handler)
        logger.removeHandler(capture)
        logger.setLevel(previous)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="oec_async chaos soak")
    parser.add_argument("--downloads", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    print(f"soak: seed {seed}, {args.downloads} downloads", flush=True)
    stats = asyncio.run(run_soak(args.downloads, seed))
    for problem in stats.unexpected:
        print(f"  unexpected: {problem}")
    print(stats.summary(), flush=True)
    return 0 if stats.ok else 1


if __name__ == "__main__":
    sys.exit(main())
