"""``OECSimulator``: the platform's API and its presigned storage, on loopback sockets.

The class keeps the servers' lifecycle (start, stop, ports, TLS) and the public surface
a test uses; the state both servers share lives in ``SimulatorState``.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs
from aiohttp import web

from oec_async.errors import ConfigurationError
from oec_async.testing._api import API_PREFIX, build_api_app
from oec_async.testing._entities import (
    ENVIRONMENT_STATUSES,
    FILE_FIELDS,
    SimBackup,
    SimEnvironment,
    SimProject,
)
from oec_async.testing._faults import Faults
from oec_async.testing._files import StoredObject
from oec_async.testing._keys import KeyScope
from oec_async.testing._records import RequestRecord
from oec_async.testing._settings import SimulatorSettings
from oec_async.testing._state import SimulatorState
from oec_async.testing._storage import build_storage_app

__all__ = ["OECSimulator"]


class OECSimulator:
    """A seeded, scriptable stand-in for api.oec.sh and its object storage.

    ::

        async with OECSimulator(seed=1) as sim:
            async with OECClient(sim.api_key, sim.base_url) as client:
                env = sim.environment_ids[0]
                page = await client.list_backups(env)

    The API and storage listen on different ports (different origins), so a test can
    prove that the key never reaches storage. ``settings`` (changed with
    :meth:`configure`) says how the platform behaves; ``faults`` makes it misbehave on
    purpose, once or every time; ``requests`` records what it was sent.

    Args:
        seed: names the whole world (ids, file bytes, keys).
        environments: how many environments the organisation has (all with backups;
            most ``running``, some ``stopped``, ``paused`` or ``error``).
        projects: how many projects hold them (default: one per four environments);
            environments are spread over them in order.
        backups_per_environment: backups each one has, newest first, in every status.
        dump_size: bytes of each backup's database dump.
        filestore_size: about how many bytes of attachments each filestore holds.
        host: the address both servers listen on (loopback by default).
        port: the API's port (0: any free port).
        storage_port: the storage's port (0: any free port).
        data_dir: where the generated files go (default: a temporary folder, removed by
            :meth:`stop`).
        ssl_context: serve https (API and storage) with this server context.
        settings: how the platform behaves (see :class:`SimulatorSettings`).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        environments: int = 3,
        backups_per_environment: int = 15,
        dump_size: int = 256 * 1024,
        filestore_size: int = 64 * 1024,
        projects: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_port: int = 0,
        data_dir: str | Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        settings: SimulatorSettings | None = None,
    ) -> None:
        self.seed = seed
        self.host = host
        self._ports = (port, storage_port)
        self._ssl = ssl_context
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="oec-sim-"))
        )
        self._state = SimulatorState(
            data_dir=self.data_dir,
            seed=seed,
            environments=environments,
            backups_per_environment=backups_per_environment,
            dump_size=dump_size,
            filestore_size=filestore_size,
            projects=projects,
            settings=settings if settings is not None else SimulatorSettings(),
        )
        self._faults = Faults(self._state.rules)
        self._runners: list[web.AppRunner] = []

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> Self:
        """Start the API and both storage origins; returns the simulator.

        Raises:
            OSError: a port is taken (or cannot be bound); whatever was started is
                stopped and the temporary folder removed.
        """
        api_port, storage_port = self._ports
        try:
            api = await self._serve(build_api_app(self._state), api_port)
            storage = await self._serve(build_storage_app(self._state), storage_port, storage=True)
            alt = await self._serve(
                build_storage_app(self._state, origin_name="storage-alt"), 0, storage=True
            )
        except BaseException:
            await self.stop()
            raise
        scheme = "https" if self._ssl is not None else "http"
        origins = self._state.origins
        origins.api = f"{scheme}://{self.host}:{api}"
        origins.storage = f"{scheme}://{self.host}:{storage}"
        origins.alt_storage = f"{scheme}://{self.host}:{alt}"
        return self

    async def _serve(self, app: web.Application, port: int, *, storage: bool = False) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        if storage and runner.server is not None:
            self._watch_disconnects(runner.server)
        site = web.TCPSite(runner, self.host, port, ssl_context=self._ssl)
        await site.start()
        self._runners.append(runner)
        server = site._server  # the only way to learn an ephemeral port
        assert server is not None  # noqa: S101
        sockets: Any = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1])

    def _watch_disconnects(self, server: Any) -> None:
        """A request stops counting as in flight the moment its client hangs up, not when
        the handler notices (it may be asleep in a bandwidth cap or a stall)."""
        original = server.connection_lost
        log = self._state.log

        def connection_lost(handler: Any, exc: BaseException | None) -> None:
            log.end_in_flight(handler)
            original(handler, exc)

        server.connection_lost = connection_lost

    async def stop(self) -> None:
        """Stop the servers (releasing stalled responses) and remove the temporary
        folder of generated files, if the simulator made it."""
        self._state.rules.release_stalls()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- where it listens, and the keys ------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API's base URL (``http://127.0.0.1:<port>/api/public/v1``); empty before
        :meth:`start`."""
        api = self._state.origins.api
        return f"{api}{API_PREFIX}" if api else ""

    @property
    def storage_url(self) -> str:
        """The storage origin presigned URLs point at."""
        return self._state.origins.storage

    @property
    def alt_storage_url(self) -> str:
        """A second storage origin (the target of :meth:`Faults.redirect_storage`)."""
        return self._state.origins.alt_storage

    @property
    def api_key(self) -> str:
        """A valid read-write key (``oec_live_rw_...``)."""
        return self._state.api_key

    @property
    def read_only_key(self) -> str:
        """A valid read-only key (``oec_live_ro_...``)."""
        return self._state.read_only_key

    def add_key(
        self,
        scope: KeyScope = "rw",
        *,
        project_id: uuid.UUID | None = None,
        name: str | None = None,
    ) -> str:
        """A new valid key (its own rate-limit budget); returns the key.

        Args:
            scope: ``"rw"`` or ``"ro"`` (read-only: ``POST`` gets 403 ``read_only_key``).
            project_id: restrict the key to one project (it sees that project, its
                environments and their backups; anything else answers 404).
            name: what the request log shows for it (default ``key-N``).

        Raises:
            ConfigurationError: a bad scope, a taken name or an unknown project.
        """
        if project_id is not None and project_id not in self._state.world.projects:
            raise ConfigurationError(f"add_key: no project {project_id}")
        return self._state.keys.add(scope, project_id=project_id, name=name)

    def expire_key(self, key: str) -> None:
        """From now on ``key`` is refused with 401 ``key_expired``."""
        self._state.keys.expire(key)

    def key_id(self, key: str) -> str:
        """The name the request log records for ``key`` (``RequestRecord.key_id``).

        Raises:
            KeyError: not a key of this simulator.
        """
        found = self._state.keys.get(key)
        if found is None:
            raise KeyError("not a key of this simulator")
        return found.name

    def unblock_addresses(self) -> None:
        """Lift every ``ip_blocked`` block (and forget the refused keys counted)."""
        self._state.limiter.unblock()

    # -- settings and faults -----------------------------------------------------------

    @property
    def settings(self) -> SimulatorSettings:
        """How the platform behaves now (frozen; change it with :meth:`configure`)."""
        return self._state.settings

    def configure(self, **changes: Any) -> SimulatorSettings:
        """Change settings on the running simulator, e.g. ``sim.configure(url_ttl=2)``.

        Returns:
            The new settings.

        Raises:
            ConfigurationError: an unknown setting or a bad value (nothing is changed).
        """
        self._state.configure(self._state.settings.replace(**changes))
        return self._state.settings

    @property
    def faults(self) -> Faults:
        """The fault switchboard (see :class:`Faults`)."""
        return self._faults

    # -- the world -----------------------------------------------------------------------

    @property
    def project_ids(self) -> list[uuid.UUID]:
        """Every project's id, in the order ``GET /projects`` lists them."""
        return list(self._state.world.projects)

    def project(self, project_id: uuid.UUID) -> SimProject:
        """One project (``KeyError`` if unknown)."""
        return self._state.world.projects[project_id]

    def add_project(self, *, name: str | None = None) -> uuid.UUID:
        """A new, empty project (listed last); returns its id."""
        return self._state.world.add_project(name=name).id

    @property
    def environment_ids(self) -> list[uuid.UUID]:
        """Every environment's id but deleted ones, in the order they were made."""
        return [e.id for e in self._state.world.environments.values() if not e.deleted]

    def environments(self, project_id: uuid.UUID) -> list[SimEnvironment]:
        """A project's environments but deleted ones (what its environment list holds
        unless ``active_environments_only`` leaves some out)."""
        return self._state.world.environments_of(project_id)

    def environment(self, env_id: uuid.UUID) -> SimEnvironment:
        """One environment, deleted or not (``KeyError`` if unknown)."""
        return self._state.world.environments[env_id]

    def backups(self, env_id: uuid.UUID) -> list[SimBackup]:
        """An environment's backups, newest first."""
        self._state.sync()
        return self._state.world.backups_of(env_id)

    def backup(self, backup_id: uuid.UUID) -> SimBackup:
        """One backup as it is now (``KeyError`` if unknown)."""
        self._state.sync()
        return self._state.world.backups[backup_id]

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
    ) -> uuid.UUID:
        """A new environment; returns its id.

        Args:
            backups: how many backups, newest first, cycling through every status and type.
            name: its name (default ``env-N``).
            statuses: exactly these backup statuses instead, newest first.
            dump_size: its backups' dump size (default: the simulator's).
            filestore_size: its backups' filestore size (default: the simulator's).
            project_id: the project it belongs to (default: the first one).
            status: the environment's status; any string (``ENVIRONMENT_STATUSES`` are
                the documented ones).

        Raises:
            KeyError: ``project_id`` is not a project of this simulator.
        """
        env = self._state.world.add_environment(
            backups=backups,
            name=name,
            statuses=statuses,
            dump_size=dump_size,
            filestore_size=filestore_size,
            project_id=project_id,
            status=status,
        )
        return env.id

    def add_environments_in_every_status(
        self, project_id: uuid.UUID | None = None, *, unknown: str = "hibernating"
    ) -> dict[str, uuid.UUID]:
        """One new environment per documented status, plus one of an ``unknown``
        status; those still being set up (pending, cloning, deploying) have no backup
        yet, the others one completed backup. Returns status -> environment id."""
        made = {}
        for status in (*ENVIRONMENT_STATUSES, unknown):
            setting_up = status in ("pending", "cloning", "deploying")
            made[status] = self.add_environment(
                name=f"env-{status}",
                statuses=[] if setting_up else ["completed"],
                project_id=project_id,
                status=status,
            )
        return made

    def update_environment(self, env_id: uuid.UUID, **changes: Any) -> SimEnvironment:
        """Change an environment, e.g. ``sim.update_environment(e, status="stopped")``.

        Editable: ``name``, ``status``, ``url``, ``odoo_version``, ``branch``,
        ``last_commit``, ``custom_domain``, ``custom_domain_verified``, and ``omitted``
        (a frozenset of JSON field names to leave out of its answers).

        Raises:
            KeyError: no such environment.
            ConfigurationError: an unknown field or a bad value (nothing is changed).
        """
        return self._state.world.update_environment(env_id, changes)

    def delete_environment(self, env_id: uuid.UUID) -> None:
        """Delete an environment: ``GET /environments/{id}`` answers 404 and it leaves
        every list, while its backups stay readable (list, get, download)."""
        self._state.world.delete_environment(env_id)

    def add_backup(
        self,
        env_id: uuid.UUID,
        *,
        status: str = "completed",
        backup_type: str = "manual",
        created_at: datetime | None = None,
    ) -> SimBackup:
        """A new backup at the top of the environment's list (the newest), an hour newer
        than the one before unless ``created_at`` says when it was taken (e.g. an hour
        ago, for a dead-man check that should pass).

        Raises:
            KeyError: no such environment.
        """
        return self._state.world.add_backup(
            env_id, status=status, backup_type=backup_type, created_at=created_at
        )

    def latest_completed(self, env_id: uuid.UUID) -> SimBackup:
        """The environment's newest completed backup.

        Raises:
            LookupError: it has none.
        """
        self._state.sync()
        backup = self._state.world.latest_completed(env_id)
        if backup is None:
            raise LookupError(f"environment {env_id} has no completed backup")
        return backup

    def update_backup(self, backup_id: uuid.UUID, **changes: Any) -> SimBackup:
        """Change a backup, e.g. ``sim.update_backup(b, manifest_variant="md5")``.

        A change that affects the stored files (``has_filestore``, ``manifest_variant``,
        ``file_names``, ``dump_size``, ``filestore_size``) regenerates them, whether or
        not they were already made. ``file_names`` may name only the artifacts to rename.
        Other fields: ``status``, ``backup_type``, ``error_message``, ``has_database``,
        ``has_manifest`` (whether the download endpoint hands out that URL).

        Returns:
            The backup as it is now.

        Raises:
            KeyError: no such backup.
            ConfigurationError: an unknown field or a bad value (nothing is changed).
        """
        before = self._state.world.backups[backup_id]
        after = self._state.world.update_backup(backup_id, changes)
        if FILE_FIELDS & set(changes):
            self._state.files.discard(before)
        return after

    def objects(self, backup_id: uuid.UUID) -> dict[str, StoredObject]:
        """Every stored file of the backup, by artifact (generated on first use)."""
        return dict(self._state.objects(self.backup(backup_id)))

    def object(self, backup_id: uuid.UUID, artifact: str) -> StoredObject:
        """The stored file behind an artifact (generated on first use)."""
        return self._state.objects(self.backup(backup_id))[artifact]

    def object_key(self, backup_id: uuid.UUID, artifact: str) -> str:
        """The artifact's key in the bucket (its URL path), e.g. to upload it to a real
        S3 server the test presigns against."""
        return self._state.files.object_key(self.backup(backup_id), artifact)

    def change_object(self, backup_id: uuid.UUID) -> None:
        """Replace the backup's files with new bytes (new ETags, new manifest)."""
        backup = self.backup(backup_id)
        self._state.files.discard(backup)
        self._state.world.replace_backup(attrs.evolve(backup, version=backup.version + 1))
        self.object(backup_id, "database")

    # -- simulated time (backups taken on demand) -------------------------------------

    @property
    def now(self) -> datetime:
        """The simulated time that backups taken on demand run by."""
        return self._state.clock.now_datetime()

    def advance(self, seconds: float) -> None:
        """Move the simulated clock on by ``seconds``: backups taken on demand move
        through ``pending`` -> ``in_progress`` -> ``completed`` (or fail) accordingly.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        self._state.clock.advance(seconds)
        self._state.sync()

    # -- presigned URLs ------------------------------------------------------------------

    def presign(self, backup_id: uuid.UUID, artifact: str, ttl: float = 3600) -> str:
        """A presigned URL for one artifact, as the download endpoint would hand out."""
        backup = self.backup(backup_id)
        self._state.objects(backup)
        return self._state.presign(backup, ttl, [artifact])[artifact]

    def expire_urls(self) -> None:
        """Every URL issued so far expires now (as if its TTL had passed)."""
        self._state.signing.expire_all()

    @property
    def urls_issued(self) -> int:
        """How many sets of download URLs the API has handed out."""
        return self._state.signing.urls_issued

    # -- what was seen -------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request both servers received, in order."""
        return self._state.log.records

    def api_requests(
        self,
        path_contains: str = "",
        *,
        method: str | None = None,
        key_id: str | None = None,
    ) -> list[RequestRecord]:
        """The API requests whose path contains ``path_contains`` (and, when given, of
        that method and sent with the key of that name, see :meth:`key_id`)."""
        return [
            r
            for r in self.requests
            if r.server == "api"
            and path_contains in r.path
            and (method is None or r.method == method)
            and (key_id is None or r.key_id == key_id)
        ]

    def requests_per_window(
        self, key_id: str | None = None, *, budget: str | None = None
    ) -> dict[int, int]:
        """How many API requests arrived in each rate-limit window (by window index,
        ``floor(unix_time / rate_window)``), for one key's name and one budget
        (``"read"``/``"write"``) when given. Every request on the wire counts."""
        counts: dict[int, int] = {}
        for r in self.api_requests(key_id=key_id):
            if budget is None or r.budget == budget:
                counts[r.window] = counts.get(r.window, 0) + 1
        return counts

    def storage_requests(
        self, artifact: str | None = None, backup_id: uuid.UUID | None = None
    ) -> list[RequestRecord]:
        """The storage requests (both origins), for one artifact or backup if given."""
        return [
            r
            for r in self.requests
            if r.server.startswith("storage")
            and (artifact is None or r.artifact == artifact)
            and (backup_id is None or r.backup_id == backup_id)
        ]

    def bytes_served(self, backup_id: uuid.UUID, artifact: str) -> int:
        """Body bytes of that artifact storage has sent (every request together)."""
        return self._state.log.bytes_served(backup_id, artifact)

    async def wait_for_bytes(self, backup_id: uuid.UUID, artifact: str, amount: int) -> None:
        """Return once storage has sent at least ``amount`` bytes of that artifact."""
        await self._state.log.wait_for_bytes(backup_id, artifact, amount)

    @property
    def storage_in_flight(self) -> int:
        """Storage responses being sent right now."""
        return self._state.log.storage_in_flight

    @property
    def storage_peak_in_flight(self) -> int:
        """The most storage responses sent at once (since :meth:`reset_records`)."""
        return self._state.log.storage_peak_in_flight

    @property
    def expired_refusals(self) -> int:
        """Storage requests refused because their URL had expired."""
        return self._state.log.expired_refusals

    @property
    def rate_limited(self) -> int:
        """API requests answered 429."""
        return self._state.log.rate_limited

    def reset_records(self) -> None:
        """Forget the requests, byte counts and counters seen so far."""
        self._state.log.reset()
