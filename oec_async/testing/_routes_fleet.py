"""Discovery routes (API.md section 8): projects in cursor pages, a project's
environments as a plain JSON array, one project, one environment."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid

from aiohttp import web

from oec_async.testing._api_base import (
    API_PREFIX,
    APIProblem,
    caller,
    find_environment,
    find_project,
    int_param,
    sees_project,
)
from oec_async.testing._entities import ACTIVE_ENVIRONMENT_STATUSES, SimEnvironment
from oec_async.testing._state import SimulatorState

__all__ = ["add_fleet_routes", "decode_cursor", "encode_cursor"]


def encode_cursor(secret: bytes, after: uuid.UUID) -> str:
    """An opaque cursor: the last project id of a page, signed."""
    mac = hmac.new(secret, after.bytes, hashlib.sha256).digest()[:8]
    return base64.urlsafe_b64encode(after.bytes + mac).rstrip(b"=").decode()


def decode_cursor(secret: bytes, token: str) -> uuid.UUID:
    """The project id a cursor continues after.

    Raises:
        APIProblem: 400 ``invalid_cursor`` for anything this simulator did not make.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == 24:
        after, mac = raw[:16], raw[16:]
        if hmac.compare_digest(mac, hmac.new(secret, after, hashlib.sha256).digest()[:8]):
            return uuid.UUID(bytes=after)
    raise APIProblem(400, "Invalid pagination cursor", "invalid_cursor")


def add_fleet_routes(app: web.Application, state: SimulatorState) -> None:
    """Register the discovery routes on ``app``."""

    def listed(envs: list[SimEnvironment]) -> list[SimEnvironment]:
        if state.settings.active_environments_only:
            return [e for e in envs if e.status in ACTIVE_ENVIRONMENT_STATUSES]
        return envs

    async def list_projects(request: web.Request) -> web.Response:
        limit = int_param(request, "limit", 20, 1, 100)
        key = caller()
        everything = list(state.world.projects.values())
        start = 0
        if cursor := request.query.get("cursor"):
            after = decode_cursor(state.cursor_secret, cursor)
            ids = [p.id for p in everything]
            start = ids.index(after) + 1 if after in ids else len(ids)
        visible = [p for p in everything if sees_project(key, p.id)]
        remaining = [p for p in everything[start:] if sees_project(key, p.id)]
        page = remaining[:limit]
        more = len(remaining) > limit
        return web.json_response(
            {
                "data": [p.to_json(len(listed(state.world.environments_of(p.id)))) for p in page],
                "pagination": {
                    "has_more": more,
                    "next_cursor": encode_cursor(state.cursor_secret, page[-1].id)
                    if more
                    else None,
                    "total": len(visible),
                },
            }
        )

    async def get_project(request: web.Request) -> web.Response:
        project = find_project(state, request)
        count = len(listed(state.world.environments_of(project.id)))
        return web.json_response(project.to_json(count))

    async def list_environments(request: web.Request) -> web.Response:
        project = find_project(state, request)
        envs = listed(state.world.environments_of(project.id))
        if status := request.query.get("status"):
            envs = [e for e in envs if e.status == status]
        return web.json_response([e.to_json() for e in envs])

    async def get_environment(request: web.Request) -> web.Response:
        return web.json_response(find_environment(state, request).to_json())

    app.router.add_get(API_PREFIX + "/projects", list_projects)
    app.router.add_get(API_PREFIX + "/projects/{project_id}", get_project)
    app.router.add_get(API_PREFIX + "/projects/{project_id}/environments", list_environments)
    app.router.add_get(API_PREFIX + "/environments/{env_id}", get_environment)
