"""The simulator's world: an organisation of projects, their environments, and each
environment's backups.

Everything is derived from one seed, so a test (or a bug report) can name the exact
world it ran against. Environment and backup ids come from one random stream and
projects and descriptive fields from another, so adding projects did not change the ids
of any earlier seeded world.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from oec_async.testing._entities import (
    BASE_TIME,
    SimBackup,
    SimEnvironment,
    SimProject,
    check_changes,
)

__all__ = ["World", "seeded_uuid"]

_STATUS_CYCLE = (
    "running",
    "completed",
    "completed",
    "failed",
    "completed",
    "pending",
    "completed",
    "cancelled",
    "completed",
    "in_progress",
    "completed",
    "uploading",
    "completed",
    "expired",
    "completed",
)
_TYPE_CYCLE = ("scheduled", "manual", "pre_deploy", "pre_restore", "pre_upgrade", "pre_destroy")
# The seeded environments all exist and have backups; most run, some are stopped, paused
# or broken (a test adds pending/cloning/deploying or unknown ones as it needs).
_ENV_STATUS_CYCLE = ("running", "running", "stopped", "running", "paused", "running", "error")
_PROJECT_NAMES = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
_PROVIDERS = ("github", "gitlab", "bitbucket")


def seeded_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from ``rng`` (so a seed names the whole world)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class World:
    """All projects, environments and backups (the files behind them live in
    ``ObjectStore``)."""

    def __init__(
        self,
        *,
        seed: int,
        environments: int,
        backups_per_environment: int,
        dump_size: int,
        filestore_size: int,
        projects: int | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)  # environment and backup ids, backup seeds
        self.meta = random.Random(seed ^ 0x0E5C)  # projects and descriptive fields
        self.dump_size = dump_size
        self.filestore_size = filestore_size
        self.projects: dict[uuid.UUID, SimProject] = {}
        self.environments: dict[uuid.UUID, SimEnvironment] = {}
        self.backups: dict[uuid.UUID, SimBackup] = {}
        self._order: dict[uuid.UUID, list[uuid.UUID]] = {}  # env -> backup ids, newest first
        count = projects if projects is not None else max(1, (environments + 3) // 4)
        for _ in range(count):
            self.add_project()
        project_ids = list(self.projects)
        for index in range(environments):
            self.add_environment(
                backups=backups_per_environment,
                name=f"env-{index:03d}",
                project_id=project_ids[index * len(project_ids) // max(environments, 1)],
                status=_ENV_STATUS_CYCLE[index % len(_ENV_STATUS_CYCLE)],
            )

    # -- projects ----------------------------------------------------------------------

    def add_project(self, *, name: str | None = None) -> SimProject:
        """A new project, its optional fields filled (or null, or missing) by the seed."""
        index = len(self.projects)
        rng = self.meta
        slug = name or f"{_PROJECT_NAMES[index % len(_PROJECT_NAMES)]}-{index:02d}"
        has_repo = index % 3 != 1
        project = SimProject(
            id=seeded_uuid(rng),
            name=slug,
            created_at=BASE_TIME - timedelta(days=400 - index),
            odoo_version=("16.0", "17.0", "18.0")[index % 3],
            git_repo_url=f"https://github.com/sim/{slug}.git" if has_repo else None,
            default_branch="main" if has_repo else None,
            git_provider=_PROVIDERS[index % 3] if has_repo else None,
            server_id=seeded_uuid(rng),
            omitted=frozenset({"server_id"} if index % 4 == 2 else ()),
        )
        self.projects[project.id] = project
        return project

    # -- environments ------------------------------------------------------------------

    def add_environment(
        self,
        *,
        backups: int = 15,
        name: str | None = None,
        statuses: Iterable[str] | None = None,
        dump_size: int | None = None,
        filestore_size: int | None = None,
        project_id: uuid.UUID | None = None,
        status: str = "running",
    ) -> SimEnvironment:
        """An environment with ``backups`` backups, newest first, covering every status
        and type (or exactly the given ``statuses``, newest first).

        Raises:
            KeyError: ``project_id`` is not a project of this world.
        """
        project = self.projects[project_id] if project_id else next(iter(self.projects.values()))
        env = self._describe(
            seeded_uuid(self.rng), name or f"env-{len(self.environments)}", project, status
        )
        self.environments[env.id] = env
        self._order[env.id] = []
        chosen = (
            list(statuses)
            if statuses is not None
            else [_STATUS_CYCLE[i % len(_STATUS_CYCLE)] for i in range(backups)]
        )
        start = BASE_TIME - timedelta(hours=len(self.environments))
        for i, backup_status in enumerate(chosen):
            backup = SimBackup(
                id=seeded_uuid(self.rng),
                environment_id=env.id,
                status=backup_status,
                backup_type=_TYPE_CYCLE[i % len(_TYPE_CYCLE)],
                created_at=start - timedelta(days=i),
                dump_size=self.dump_size if dump_size is None else dump_size,
                filestore_size=self.filestore_size if filestore_size is None else filestore_size,
                seed=self.rng.getrandbits(32),
                error_message="pg_dump exited with code 1" if backup_status == "failed" else None,
            )
            self._order[env.id].append(backup.id)
            self.backups[backup.id] = backup
        return env

    def _describe(
        self, env_id: uuid.UUID, name: str, project: SimProject, status: str
    ) -> SimEnvironment:
        index = len(self.environments)
        rng = self.meta
        created = project.created_at + timedelta(days=1 + index)
        custom = index % 5 == 3
        return SimEnvironment(
            id=env_id,
            name=name,
            project_id=project.id,
            status=status,
            created_at=created,
            updated_at=created + timedelta(days=rng.randint(0, 200)) if index % 6 else None,
            url=f"https://{name}.{project.name}.oec.sh",
            odoo_version=project.odoo_version,
            branch=("main", "staging", "dev")[index % 3],
            last_commit=f"{rng.getrandbits(160):040x}",
            cpu_cores=(1, 2, 4)[index % 3],
            ram_mb=(2048, 4096, 8192)[index % 3],
            disk_gb=(20, 40, 80)[index % 3],
            server_id=project.server_id,
            custom_domain=f"{name}.example.com" if custom else None,
            custom_domain_verified=(index % 2 == 0) if custom else None,
            omitted=frozenset({"last_commit", "disk_gb"} if index % 4 == 1 else ()),
        )

    def update_environment(self, env_id: uuid.UUID, changes: Mapping[str, Any]) -> SimEnvironment:
        """Apply ``changes`` to an environment.

        Raises:
            KeyError: no such environment.
            ConfigurationError: an unknown field or a bad value.
        """
        check_changes("environment", changes)
        updated = attrs.evolve(self.environments[env_id], **changes)
        self.environments[env_id] = updated
        return updated

    def delete_environment(self, env_id: uuid.UUID) -> None:
        """The environment answers 404 and leaves every list; its backups stay readable."""
        self.environments[env_id] = attrs.evolve(self.environments[env_id], deleted=True)

    def environments_of(self, project_id: uuid.UUID) -> list[SimEnvironment]:
        """The project's environments that still exist, oldest first."""
        return [
            e for e in self.environments.values() if e.project_id == project_id and not e.deleted
        ]

    def project_of_backup(self, backup: SimBackup) -> uuid.UUID:
        """The project a backup belongs to (through its environment)."""
        return self.environments[backup.environment_id].project_id

    # -- backups -------------------------------------------------------------------------

    def add_backup(
        self,
        env_id: uuid.UUID,
        *,
        status: str = "completed",
        backup_type: str = "manual",
        created_at: datetime | None = None,
        **fields: Any,
    ) -> SimBackup:
        """A new backup at the top of the environment's list (the newest).

        Raises:
            KeyError: no such environment.
        """
        order = self._order[env_id]
        newest = self.backups[order[0]].created_at if order else BASE_TIME
        backup = SimBackup(
            id=seeded_uuid(self.rng),
            environment_id=env_id,
            status=status,
            backup_type=backup_type,
            created_at=created_at or newest + timedelta(hours=1),
            dump_size=self.dump_size,
            filestore_size=self.filestore_size,
            seed=self.rng.getrandbits(32),
            **fields,
        )
        order.insert(0, backup.id)
        self.backups[backup.id] = backup
        return backup

    def backups_of(self, env_id: uuid.UUID) -> list[SimBackup]:
        """The environment's backups, newest first (empty for an unknown environment)."""
        return [self.backups[b] for b in self._order.get(env_id, [])]

    def latest_completed(self, env_id: uuid.UUID) -> SimBackup | None:
        """The environment's newest completed backup, or None."""
        return next((b for b in self.backups_of(env_id) if b.status == "completed"), None)

    def replace_backup(self, backup: SimBackup) -> None:
        """Store a new version of an existing backup (same id)."""
        if backup.id not in self.backups:
            raise KeyError(backup.id)
        self.backups[backup.id] = backup

    def update_backup(self, backup_id: uuid.UUID, changes: Mapping[str, Any]) -> SimBackup:
        """Apply ``changes`` (names from ``EDITABLE_BACKUP_FIELDS``) to a backup.

        Raises:
            KeyError: no such backup.
            ConfigurationError: an unknown field, or a bad value.
        """
        check_changes("backup", changes)
        current = self.backups[backup_id]
        values = dict(changes)
        if "file_names" in values:  # a partial mapping renames only what it names
            values["file_names"] = {**current.file_names, **values["file_names"]}
        updated = attrs.evolve(current, **values)
        self.backups[backup_id] = updated
        return updated
