"""What every API route shares: the error it raises, its parameters, and what the
calling key may see (a project-scoped key sees only its project; anything else answers
404, as the platform does for other organisations' resources)."""

from __future__ import annotations

import contextvars
import uuid
from typing import Any

from aiohttp import web

from oec_async.testing._entities import SimBackup, SimEnvironment, SimProject
from oec_async.testing._errors import DEFAULT_CODES, ErrorShape
from oec_async.testing._keys import SimKey
from oec_async.testing._state import SimulatorState

__all__ = [
    "API_PREFIX",
    "APIProblem",
    "caller",
    "find_backup",
    "find_environment",
    "find_project",
    "int_param",
    "sees_project",
    "set_caller",
    "uuid_param",
]

API_PREFIX = "/api/public/v1"
# The middleware and the route run in one task: the key it authenticated travels in a
# context variable (request storage would need aiohttp's RequestKey, new in 3.14).
_CALLER: contextvars.ContextVar[SimKey] = contextvars.ContextVar("oec_sim_caller")


class APIProblem(Exception):
    """An error answer: status, code and message, in the status's natural body shape
    unless ``shape`` says otherwise."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        shape: ErrorShape | None = None,
        loc: tuple[str, ...] = ("query", "value"),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or DEFAULT_CODES.get(status, "server_error")
        self.headers = headers or {}
        self.extra = extra or {}
        self.shape = shape
        self.loc = loc


def uuid_param(request: web.Request, name: str, what: str) -> uuid.UUID:
    """A UUID path parameter (anything else: 404 ``what`` not found)."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise APIProblem(404, f"{what} not found") from None


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in ``low..high`` (422 otherwise)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise APIProblem(422, f"{name}: value is not a valid integer") from None
    if not low <= value <= high:
        raise APIProblem(422, f"{name}: ensure this value is between {low} and {high}")
    return value


def set_caller(key: SimKey) -> None:
    """Remember the authenticated key for the route about to run."""
    _CALLER.set(key)


def caller() -> SimKey:
    """The key that made this (authenticated) request."""
    return _CALLER.get()


def sees_project(key: SimKey, project_id: uuid.UUID) -> bool:
    """Whether ``key`` may see that project (and what is in it)."""
    return key.project_id is None or key.project_id == project_id


def find_project(state: SimulatorState, request: web.Request) -> SimProject:
    """The project named in the path, if the caller may see it (404 otherwise)."""
    project_id = uuid_param(request, "project_id", "Project")
    project = state.world.projects.get(project_id)
    if project is None or not sees_project(caller(), project.id):
        raise APIProblem(404, "Project not found")
    return project


def find_environment(
    state: SimulatorState, request: web.Request, *, deleted_too: bool = False
) -> SimEnvironment:
    """The environment named in the path, if the caller may see it (404 otherwise; a
    deleted one too, unless ``deleted_too``)."""
    env_id = uuid_param(request, "env_id", "Environment")
    env = state.world.environments.get(env_id)
    if (
        env is None
        or (env.deleted and not deleted_too)
        or not sees_project(caller(), env.project_id)
    ):
        raise APIProblem(404, "Environment not found")
    return env


def find_backup(state: SimulatorState, request: web.Request) -> SimBackup:
    """The backup named in the path, if the caller may see it (404 otherwise)."""
    backup_id = uuid_param(request, "backup_id", "Backup")
    backup = state.world.backups.get(backup_id)
    if backup is None or not sees_project(caller(), state.world.project_of_backup(backup)):
        raise APIProblem(404, "Backup not found")
    return backup
