"""Backup routes: the list, one backup, its download URLs (API.md section 1), and taking
a backup on demand with its task (section 10)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from aiohttp import web

from oec_async.testing._api_base import (
    API_PREFIX,
    APIProblem,
    caller,
    find_backup,
    find_environment,
    int_param,
    sees_project,
)
from oec_async.testing._entities import ARTIFACTS, BACKUP_TYPES
from oec_async.testing._jobs import BackupOrder, history_task_json
from oec_async.testing._state import SimulatorState

__all__ = ["add_backup_routes", "read_backup_order"]

_MAX_NOTES = 1000
_MAX_RETENTION = 64


def _invalid(field: str, message: str, kind: str) -> APIProblem:
    return APIProblem(422, f"{field}: {message}", kind, loc=("body", field))


def read_backup_order(raw: bytes) -> BackupOrder:
    """The JSON body of ``POST /environments/{id}/backups``, checked field by field (an
    empty body asks for the defaults; unknown keys are ignored).

    Raises:
        APIProblem: 422 naming the first bad field.
    """
    if not raw.strip():
        return BackupOrder()
    try:
        body: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _invalid("body", "body is not valid JSON", "value_error.jsondecode") from None
    if not isinstance(body, dict):
        raise _invalid("body", "body must be a JSON object", "type_error.dict")
    backup_type = body.get("backup_type", "manual")
    if backup_type not in BACKUP_TYPES:
        raise _invalid("backup_type", f"must be one of {', '.join(BACKUP_TYPES)}", "enum")
    include = body.get("include_filestore", True)
    if not isinstance(include, bool):
        raise _invalid("include_filestore", "value is not a valid boolean", "type_error.bool")
    for field, longest in (("retention_type", _MAX_RETENTION), ("notes", _MAX_NOTES)):
        value = body.get(field)
        if value is not None and not isinstance(value, str):
            raise _invalid(field, "value is not a valid string", "type_error.str")
        if value is not None and len(value) > longest:
            raise _invalid(field, f"at most {longest} characters", "value_error.max_length")
    return BackupOrder(backup_type, include, body.get("retention_type"), body.get("notes"))


def add_backup_routes(app: web.Application, state: SimulatorState) -> None:
    """Register the backup and task routes on ``app``."""

    def poll() -> None:
        """A poll of a backup or task moves the simulated clock on, when asked to."""
        if state.settings.poll_advance:
            state.clock.advance(state.settings.poll_advance)
            state.sync()

    async def list_backups(request: web.Request) -> web.Response:
        env = find_environment(state, request, deleted_too=True)  # its backups stay readable
        page = int_param(request, "page", 1, 1, 1_000_000)
        page_size = int_param(request, "page_size", 20, 1, 100)
        items = state.world.backups_of(env.id)
        if status := request.query.get("status"):
            items = [b for b in items if b.status == status]
        if backup_type := request.query.get("backup_type"):
            items = [b for b in items if b.backup_type == backup_type]
        total = len(items)
        chosen = items[(page - 1) * page_size : page * page_size]
        return web.json_response(
            {
                "items": [b.to_json() for b in chosen],
                "total": total,
                "page": page,
                "page_size": page_size,
                state.settings.pages_key: max(1, math.ceil(total / page_size)),
            }
        )

    async def get_backup(request: web.Request) -> web.Response:
        backup = find_backup(state, request)
        poll()
        return web.json_response(state.world.backups[backup.id].to_json(detail=True))

    async def download(request: web.Request) -> web.Response:
        backup = find_backup(state, request)
        expires_in = int_param(request, "expires_in", 3600, 300, 86400)
        if backup.status != "completed":
            raise APIProblem(
                400,
                f"Backup is not in completed status (status: {backup.status})",
                "backup_not_completed",
            )
        state.objects(backup)
        ttl = state.settings.url_ttl if state.settings.url_ttl is not None else expires_in
        present = {
            "database": backup.has_database,
            "filestore": backup.has_filestore,
            "manifest": backup.has_manifest,
        }
        issued = state.presign(backup, ttl, [a for a in ARTIFACTS if present[a]])
        return web.json_response(
            {
                "backup_id": str(backup.id),
                "database_url": issued.get("database"),
                "filestore_url": issued.get("filestore"),
                "manifest_url": issued.get("manifest"),
                "expires_in": int(ttl) if ttl >= 1 else ttl,
                "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ttl)),
                "use_streaming": False,
            }
        )

    async def create_backup(request: web.Request) -> web.Response:
        if caller().scope == "ro":
            raise APIProblem(
                403,
                "This API key is read-only: it cannot take backups",
                "read_only_key",
                shape="detail_object",
            )
        env = find_environment(state, request)
        order = read_backup_order(await request.read())
        now = state.clock.now()
        running = state.jobs.running_in(env.id, now)
        if running is not None:
            raise APIProblem(
                409,
                f"A backup of this environment is already running (backup {running.backup_id})",
                "backup_in_progress",
                extra={
                    "details": {
                        "backup_id": str(running.backup_id),
                        "task_id": running.task_id,
                    }
                },
            )
        rule = state.rules.backup_rule(env.id)
        settings = state.settings
        if rule is not None:
            rule.fire()
        backup = state.jobs.start(
            state.world,
            env.id,
            order,
            now=now,
            queue_seconds=settings.backup_queue_seconds,
            run_seconds=settings.backup_run_seconds,
            fate="completed" if rule is None else rule.status,
            end_fraction=1.0 if rule is None else rule.at_percent / 100,
            error_message=None if rule is None else rule.error_message,
        )
        return web.json_response(backup.to_json(), status=201)

    async def get_deployment(request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        job = state.jobs.get(task_id)
        key = caller()
        if job is not None:
            project = state.world.environments[job.environment_id].project_id
            if sees_project(key, project):
                poll()
                return web.json_response(state.jobs.task_json(job, state.clock.now()))
        else:
            for backup in state.world.backups.values():  # the seeded world's tasks
                if backup.shown_task_id == task_id and sees_project(
                    key, state.world.project_of_backup(backup)
                ):
                    return web.json_response(history_task_json(backup))
        raise APIProblem(404, "Deployment not found")

    app.router.add_get(API_PREFIX + "/environments/{env_id}/backups", list_backups)
    app.router.add_post(API_PREFIX + "/environments/{env_id}/backups", create_backup)
    app.router.add_get(API_PREFIX + "/backups/{backup_id}", get_backup)
    app.router.add_get(API_PREFIX + "/backups/{backup_id}/download", download)
    app.router.add_get(API_PREFIX + "/deployments/{task_id}", get_deployment)
