"""``OECSimulator``: the platform's API and its presigned storage, on loopback sockets."""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import hmac
import random
import shutil
import ssl
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs
from aiohttp import web

from oec_async.testing._api import API_PREFIX, build_api_app
from oec_async.testing._data import ARTIFACTS, SimBackup, SimEnvironment, StoredObject, World
from oec_async.testing._faults import Faults
from oec_async.testing._storage import build_storage_app

__all__ = ["OECSimulator", "RequestRecord"]


@attrs.define
class RequestRecord:
    """One request as the simulator saw it (headers included, to check what was sent)."""

    server: str  # "api", "storage" or "storage-alt"
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    range: str | None = None
    backup_id: uuid.UUID | None = None
    artifact: str | None = None
    bytes_sent: int = 0
    at: float = attrs.Factory(time.monotonic)


def _make_key(rng: random.Random, scope: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return f"oec_live_{scope}_sim" + "".join(rng.choice(alphabet) for _ in range(32))


class OECSimulator:
    """A seeded, scriptable stand-in for api.oec.sh and its object storage.

    ::

        async with OECSimulator(seed=1) as sim:
            async with OECClient(sim.api_key, sim.base_url) as client:
                env = sim.environment_ids[0]
                page = await client.list_backups(env)

    The API and storage listen on different ports (different origins), so a test can
    prove that the key never reaches storage. ``faults`` holds the switches that make it
    misbehave; ``requests`` records what it was sent.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        environments: int = 3,
        backups_per_environment: int = 15,
        dump_size: int = 256 * 1024,
        filestore_size: int = 64 * 1024,
        host: str = "127.0.0.1",
        port: int = 0,
        storage_port: int = 0,
        data_dir: str | Path | None = None,
        rate_limit: tuple[int, float] | None = (120, 60.0),
        storage_public_url: str | None = None,
        bandwidth: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.seed = seed
        self.host = host
        self._ports = (port, storage_port)
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="oec-sim-"))
        )
        self.world = World(
            self.data_dir,
            seed=seed,
            environments=environments,
            backups_per_environment=backups_per_environment,
            dump_size=dump_size,
            filestore_size=filestore_size,
        )
        rng = random.Random(seed ^ 0x5EED)
        self.api_key = _make_key(rng, "rw")
        self.read_only_key = _make_key(rng, "ro")
        self.valid_keys = {self.api_key, self.read_only_key}
        self.expired_keys: set[str] = set()
        self.subscription_blocked = False
        self.pages_key_variant = False  # send "pages" instead of "total_pages"
        self.rate_limit = rate_limit
        self.rate_buckets: dict[tuple[str, int], int] = {}
        self.rate_limited = 0
        self.url_ttl: float | None = None  # overrides expires_in for every URL issued
        self.bandwidth = bandwidth  # bytes/s per storage response; None: as fast as possible
        self.ssl_context = ssl_context  # serve https (API and storage) with this context
        #: When set, the download endpoint hands out URLs made by this function
        #: ``(backup, artifact, ttl) -> url`` instead of the simulator's own storage.
        self.url_signer: Callable[[SimBackup, str, float], str] | None = None
        self.storage_public_url = storage_public_url
        self.faults = Faults()
        self.requests: list[RequestRecord] = []
        self.storage_in_flight = 0
        self.storage_peak_in_flight = 0
        self._in_flight: set[int] = set()
        self.expired_refusals = 0
        self.urls_issued = 0
        self._secret = rng.randbytes(32)
        self._revoked_before = 0
        self._serial = 0
        self._bytes_served: dict[tuple[uuid.UUID, str], int] = {}
        self._byte_waiters: list[tuple[tuple[uuid.UUID, str], int, asyncio.Future[None]]] = []
        self._runners: list[web.AppRunner] = []
        self.base_url = ""
        self.storage_url = ""
        self.alt_storage_url = ""

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> Self:
        api_port, storage_port = self._ports
        api = await self._serve(build_api_app(self), api_port)
        storage = await self._serve(build_storage_app(self), storage_port, storage=True)
        alt = await self._serve(build_storage_app(self, origin_name="storage-alt"), 0, storage=True)
        scheme = "https" if self.ssl_context is not None else "http"
        self.base_url = f"{scheme}://{self.host}:{api}{API_PREFIX}"
        self.storage_url = f"{scheme}://{self.host}:{storage}"
        self.alt_storage_url = f"{scheme}://{self.host}:{alt}"
        return self

    async def _serve(self, app: web.Application, port: int, *, storage: bool = False) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        if storage and runner.server is not None:
            self._watch_disconnects(runner.server)
        site = web.TCPSite(runner, self.host, port, ssl_context=self.ssl_context)
        await site.start()
        self._runners.append(runner)
        server = site._server  # the only way to learn an ephemeral port
        assert server is not None  # noqa: S101
        sockets: Any = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.faults.release_stalls()
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

    # -- the world -----------------------------------------------------------------------

    @property
    def environment_ids(self) -> list[uuid.UUID]:
        return list(self.world.environments)

    def environment(self, env_id: uuid.UUID) -> SimEnvironment:
        return self.world.environments[env_id]

    def backup(self, backup_id: uuid.UUID) -> SimBackup:
        return self.world.backups[backup_id]

    def add_environment(self, **kwargs: Any) -> uuid.UUID:
        """A new environment (see :meth:`World.add_environment` for the arguments)."""
        return self.world.add_environment(**kwargs).id

    def latest_completed(self, env_id: uuid.UUID) -> SimBackup:
        backup = self.world.latest_completed(env_id)
        if backup is None:
            raise LookupError(f"environment {env_id} has no completed backup")
        return backup

    def object(self, backup_id: uuid.UUID, artifact: str) -> StoredObject:
        """The stored file behind an artifact (generated on first use)."""
        return self.world.ensure_objects(self.backup(backup_id))[artifact]

    def change_object(self, backup_id: uuid.UUID) -> None:
        """Replace the backup's files with new bytes (new ETags, new manifest)."""
        self.world.change_objects(self.backup(backup_id))

    # -- presigned URLs ----------------------------------------------------------------

    def _signature(self, path: str, serial: int, issued: int, ttl: float) -> str:
        message = f"{path}|{serial}|{issued}|{ttl:g}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign_urls(self, backup: SimBackup, ttl: float, artifacts: Iterable[str]) -> dict[str, str]:
        if self.url_signer is not None:  # another storage signs (a real S3 server, say)
            self.urls_issued += 1
            return {a: self.url_signer(backup, a, ttl) for a in artifacts}
        base = self.storage_public_url or self.storage_url
        issued = int(time.time())
        urls = {}
        for artifact in artifacts:
            self._serial += 1
            path = "/" + self.world.object_key(backup, artifact)
            signature = self._signature(path, self._serial, issued, ttl)
            urls[artifact] = (
                f"{base}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                f"&X-Amz-Credential=SIMULATOR%2F{self._serial}%2Fauto%2Fs3%2Faws4_request"
                f"&X-Amz-Date={time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(issued))}"
                f"&X-Amz-Expires={ttl:g}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
            )
        self.urls_issued += 1
        return urls

    def check_signature(self, path: str, query: Mapping[str, str]) -> str | None:
        """None if the URL is valid; else ``"expired"`` or ``"invalid"``."""
        try:
            serial = int(query["X-Amz-Credential"].split("/")[1])
            issued = calendar.timegm(time.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
            ttl = float(query["X-Amz-Expires"])
            signature = query["X-Amz-Signature"]
        except (KeyError, IndexError, ValueError):
            return "invalid"
        expected = self._signature(path, serial, issued, ttl)
        if not hmac.compare_digest(expected, signature):
            return "invalid"
        if serial <= self._revoked_before or time.time() > issued + ttl:
            return "expired"
        return None

    def expire_urls(self) -> None:
        """Every URL issued so far expires now (as if its TTL had passed)."""
        self._revoked_before = self._serial

    def resolve_object_path(self, path: str) -> tuple[SimBackup, str] | None:
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "bucket":
            return None
        try:
            backup = self.world.backups.get(uuid.UUID(parts[2]))
        except ValueError:
            return None
        if backup is None or str(backup.environment_id) != parts[1]:
            return None
        for artifact in ARTIFACTS:
            if backup.file_names.get(artifact) == parts[3]:
                return backup, artifact
        return None

    # -- what was seen -------------------------------------------------------------------

    def _watch_disconnects(self, server: Any) -> None:
        """A request stops counting as in flight the moment its client hangs up, not when
        the handler notices (it may be asleep in a bandwidth cap or a stall)."""
        original = server.connection_lost

        def connection_lost(handler: Any, exc: BaseException | None) -> None:
            self.end_in_flight(handler)
            original(handler, exc)

        server.connection_lost = connection_lost

    def begin_in_flight(self, connection: Any) -> None:
        self._in_flight.add(id(connection))
        self.storage_in_flight = len(self._in_flight)
        self.storage_peak_in_flight = max(self.storage_peak_in_flight, self.storage_in_flight)

    def end_in_flight(self, connection: Any) -> None:
        self._in_flight.discard(id(connection))
        self.storage_in_flight = len(self._in_flight)

    def record(self, server: str, request: web.Request) -> RequestRecord:
        entry = RequestRecord(
            server=server,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
        )
        self.requests.append(entry)
        return entry

    def api_requests(self, path_contains: str = "") -> list[RequestRecord]:
        return [r for r in self.requests if r.server == "api" and path_contains in r.path]

    def storage_requests(
        self, artifact: str | None = None, backup_id: uuid.UUID | None = None
    ) -> list[RequestRecord]:
        return [
            r
            for r in self.requests
            if r.server.startswith("storage")
            and (artifact is None or r.artifact == artifact)
            and (backup_id is None or r.backup_id == backup_id)
        ]

    def count_bytes(self, record: RequestRecord, amount: int) -> None:
        assert record.backup_id is not None  # noqa: S101
        assert record.artifact is not None  # noqa: S101
        key = (record.backup_id, record.artifact)
        served = self._bytes_served[key] = self._bytes_served.get(key, 0) + amount
        for waiter in [w for w in self._byte_waiters if w[0] == key and served >= w[1]]:
            self._byte_waiters.remove(waiter)
            if not waiter[2].done():
                waiter[2].set_result(None)

    def bytes_served(self, backup_id: uuid.UUID, artifact: str) -> int:
        return self._bytes_served.get((backup_id, artifact), 0)

    async def wait_for_bytes(self, backup_id: uuid.UUID, artifact: str, amount: int) -> None:
        """Return once storage has sent at least ``amount`` bytes of that artifact."""
        if self.bytes_served(backup_id, artifact) >= amount:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._byte_waiters.append(((backup_id, artifact), amount, future))
        await future

    def reset_records(self) -> None:
        self.requests.clear()
        self.storage_peak_in_flight = self.storage_in_flight
        self.expired_refusals = 0
        self.rate_limited = 0
        self._bytes_served.clear()
