"""The simulator's API half: one middleware that does what the platform's edge does for
every request, then the routes (``_routes_backups``, ``_routes_fleet``).

For each request, in order:

1. log it (the key's name, never the key; the address; the rate window);
2. an address blocked for refused keys gets 429 ``ip_blocked``;
3. a known key's request counts against its read or write budget, whatever follows;
4. a fault rule, if one matches, answers (or redirects, or hangs up) instead;
5. a missing, unknown or expired key gets 401 (and counts towards blocking the
   address); a blocked subscription 402;
6. a request over its budget gets 429;
7. the route answers, with ``X-RateLimit-*`` for the budget it spent.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate

from aiohttp import web

from oec_async.testing._api_base import API_PREFIX, APIProblem, set_caller
from oec_async.testing._errors import DEFAULT_CODES, ErrorShape, error_body, natural_shape
from oec_async.testing._faults import APIFault
from oec_async.testing._keys import SimKey
from oec_async.testing._limits import Refusal, Usage, budget_for
from oec_async.testing._records import RequestRecord
from oec_async.testing._routes_backups import add_backup_routes
from oec_async.testing._routes_fleet import add_fleet_routes
from oec_async.testing._state import SimulatorState

__all__ = ["API_PREFIX", "build_api_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_api_app(state: SimulatorState) -> web.Application:
    """The API as an aiohttp application bound to one simulator's state."""

    def shape_for(status: int, own: ErrorShape | None = None) -> ErrorShape:
        return state.settings.error_shape or own or natural_shape(status)

    def error_response(err: APIProblem) -> web.Response:
        body = error_body(
            err.status, err.code, err.message, shape_for(err.status, err.shape), loc=err.loc
        )
        body.update(err.extra)
        return web.json_response(body, status=err.status, headers=err.headers)

    def fault_response(rule: APIFault, request: web.Request) -> web.Response:
        if rule.redirect_to is not None:
            location = rule.redirect_to or str(request.url)
            return web.Response(status=rule.status, headers={"Location": location})
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

    def identify(request: web.Request) -> SimKey | None:
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        return state.keys.get(secret) if scheme.lower() == "bearer" else None

    def authenticate(request: web.Request, key: SimKey | None, now: float) -> SimKey:
        header = request.headers.get("Authorization")
        problem: APIProblem | None = None
        if not header:
            problem = APIProblem(401, "Missing Authorization header", "missing_auth")
        elif key is None:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret:
                problem = APIProblem(401, "Malformed Authorization header", "missing_auth")
            else:
                problem = APIProblem(401, "Invalid API key", "invalid_key")
        elif key.expired:
            problem = APIProblem(401, "API key has expired", "key_expired")
        if problem is not None:
            state.limiter.refuse_key(request.remote or "?", state.settings, now)
            raise problem
        assert key is not None  # noqa: S101 - from now on, a valid key
        if state.settings.subscription_blocked:
            raise APIProblem(402, "Subscription is blocked", "subscription_blocked")
        return key

    def hang_up(request: web.Request, record: RequestRecord) -> web.Response:
        if request.transport is not None:
            request.transport.abort()  # no answer at all
        record.status = 0
        return web.Response(status=500)  # never delivered: the connection is gone

    def refused(refusal: Refusal) -> APIProblem:
        extra = {} if refusal.retry_after is None else {"retry_after": refusal.retry_after}
        return APIProblem(429, refusal.message, refusal.code, headers=refusal.headers, extra=extra)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        now = time.time()
        settings = state.settings
        record = state.log.record("api", request, window_seconds=settings.rate_window)
        key = identify(request)
        record.key_id = key.name if key is not None else None
        usage: Usage | None = None
        try:
            blocked = state.limiter.blocked(request.remote or "?", settings, now)
            if blocked is not None:
                raise refused(blocked)
            if key is not None:  # every request on the wire counts, whatever its answer
                usage = state.limiter.count(
                    key.name, budget_for(request.method, key.scope, settings), settings, now
                )
                record.budget = usage.budget
            rule = state.rules.api_rule(request.method, request.path)
            if rule is not None:
                rule.fire()
                if rule.disconnect == "before":
                    return hang_up(request, record)
                if rule.disconnect is None:
                    response: web.StreamResponse = fault_response(rule, request)
                    record.status = response.status
                    state.log.count_answer(response.status)
                    return response
            set_caller(authenticate(request, key, now))
            over = state.limiter.refusal(usage, settings, now) if usage is not None else None
            if over is not None:
                raise refused(over)
            state.sync()
            response = await handler(request)
            if rule is not None and rule.disconnect == "after":
                return hang_up(request, record)
            if usage is not None and settings.rate_headers_on_success:
                response.headers.update(usage.headers())
        except APIProblem as err:
            response = error_response(err)
        except web.HTTPNotFound:
            response = error_response(APIProblem(404, "Not Found"))
        except web.HTTPMethodNotAllowed as err:
            response = error_response(APIProblem(405, f"Method {err.method} not allowed"))
        record.status = response.status
        state.log.count_answer(response.status)
        return response

    app = web.Application(middlewares=[middleware])
    add_fleet_routes(app, state)
    add_backup_routes(app, state)
    return app
