"""The simulator's API half: the backup endpoints, auth, paging, errors, 429s."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any

from aiohttp import web

from oec_async.testing._errors import DEFAULT_CODES, ErrorShape, error_body, natural_shape
from oec_async.testing._faults import APIFault
from oec_async.testing._state import SimulatorState
from oec_async.testing._world import ARTIFACTS, SimBackup

__all__ = ["API_PREFIX", "build_api_app"]

API_PREFIX = "/api/public/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or DEFAULT_CODES.get(status, "server_error")
        self.headers = headers or {}
        self.extra = extra or {}


def _uuid_param(request: web.Request, name: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise _APIError(404, f"{what} not found") from None


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _APIError(422, f"{name}: value is not a valid integer") from None
    if not low <= value <= high:
        raise _APIError(422, f"{name}: ensure this value is between {low} and {high}")
    return value


def build_api_app(state: SimulatorState) -> web.Application:
    """The API as an aiohttp application bound to one simulator's state."""

    def shape_for(status: int) -> ErrorShape:
        return state.settings.error_shape or natural_shape(status)

    def error_response(err: _APIError) -> web.Response:
        body = error_body(err.status, err.code, err.message, shape_for(err.status))
        body.update(err.extra)
        return web.json_response(body, status=err.status, headers=err.headers)

    def fault_response(rule: APIFault) -> web.Response:
        if rule.raw_body is not None:
            return web.Response(
                body=rule.raw_body,
                status=rule.status,
                headers={"Content-Type": rule.content_type or "application/json"},
            )
        code = rule.code or DEFAULT_CODES.get(rule.status, "server_error")
        message = rule.message or f"Simulated {rule.status}"
        body = error_body(rule.status, code, message, rule.shape or shape_for(rule.status))
        headers: dict[str, str] = {}
        if rule.retry_after is not None:
            if rule.retry_after_in_body:
                body["retry_after"] = rule.retry_after
            elif rule.retry_after_http_date:
                headers["Retry-After"] = formatdate(time.time() + rule.retry_after, usegmt=True)
            else:
                headers["Retry-After"] = f"{rule.retry_after:g}"
        return web.json_response(body, status=rule.status, headers=headers)

    def check_auth(request: web.Request) -> str:
        header = request.headers.get("Authorization")
        if not header:
            raise _APIError(401, "Missing Authorization header", "missing_auth")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise _APIError(401, "Malformed Authorization header", "missing_auth")
        key = state.keys.get(secret)
        if key is None:
            raise _APIError(401, "Invalid API key", "invalid_key")
        if key.expired:
            raise _APIError(401, "API key has expired", "key_expired")
        if state.settings.subscription_blocked:
            raise _APIError(402, "Subscription is blocked", "subscription_blocked")
        return key.name

    def check_rate(identity: str) -> None:
        refusal = state.limiter.admit(identity, state.settings, time.time())
        if refusal is not None:
            state.log.rate_limited += 1
            raise _APIError(
                429,
                refusal.message,
                refusal.code,
                headers=refusal.headers,
                extra={} if refusal.retry_after is None else {"retry_after": refusal.retry_after},
            )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        record = state.log.record("api", request)
        try:
            rule = state.rules.api_rule(request.method, request.path)
            if rule is not None:
                rule.fire()
                if rule.status == 429:
                    state.log.rate_limited += 1
                response: web.StreamResponse = fault_response(rule)
            else:
                check_rate(check_auth(request))
                response = await handler(request)
        except _APIError as err:
            response = error_response(err)
        except web.HTTPNotFound:
            response = error_response(_APIError(404, "Not Found"))
        record.status = response.status
        return response

    async def list_backups(request: web.Request) -> web.Response:
        env_id = _uuid_param(request, "env_id", "Environment")
        if env_id not in state.world.environments:
            raise _APIError(404, "Environment not found")
        page = _int_param(request, "page", 1, 1, 1_000_000)
        page_size = _int_param(request, "page_size", 20, 1, 100)
        items = state.world.backups_of(env_id)
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

    def find_backup(request: web.Request) -> SimBackup:
        backup_id = _uuid_param(request, "backup_id", "Backup")
        backup = state.world.backups.get(backup_id)
        if backup is None:
            raise _APIError(404, "Backup not found")
        return backup

    async def get_backup(request: web.Request) -> web.Response:
        return web.json_response(find_backup(request).to_json(detail=True))

    async def download(request: web.Request) -> web.Response:
        backup = find_backup(request)
        expires_in = _int_param(request, "expires_in", 3600, 300, 86400)
        if backup.status != "completed":
            raise _APIError(
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

    app = web.Application(middlewares=[middleware])
    app.router.add_get(API_PREFIX + "/environments/{env_id}/backups", list_backups)
    app.router.add_get(API_PREFIX + "/backups/{backup_id}", get_backup)
    app.router.add_get(API_PREFIX + "/backups/{backup_id}/download", download)
    return app
