"""What an API error answer means: the code and message from any of the platform's
error-body shapes, and the :class:`~oec_async.errors.APIError` subclass for its status."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from oec_async._redact import redact_text
from oec_async.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)

__all__ = ["conflicting_backup", "error_for_status", "parse_error_body", "summarise_text"]

_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
_TITLE = re.compile(r"(?is)<title[^>]*>(.*?)</title>")
_TAGS = re.compile(r"(?s)<[^>]+>")


def _text_of(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _describe_validation_list(items: list[Any]) -> str:
    parts = []
    for item in items:
        if isinstance(item, dict):
            loc = item.get("loc")
            where = ".".join(str(p) for p in loc) if isinstance(loc, list) else None
            msg = _text_of(item.get("msg")) or _text_of(item)
            parts.append(f"{where}: {msg}" if where else str(msg))
        else:
            parts.append(str(item))
    return "; ".join(parts)


def parse_error_body(body: Any) -> tuple[str | None, str | None]:
    """``(code, message)`` from any of the platform's four error-body shapes.

    - ``{"detail": "text"}``
    - ``{"detail": {"error": code, "message": text, ...}}``
    - ``{"detail": [{"loc": [...], "msg": text, "type": code}, ...]}`` (validation)
    - ``{"error": code, "message": text, "details": ...}``
    """
    if isinstance(body, str):
        return None, body or None
    if not isinstance(body, dict):
        return None, None
    detail = body.get("detail")
    if isinstance(detail, str):
        return _text_of(body.get("error")), detail
    if isinstance(detail, dict):
        code = detail.get("error") or detail.get("code") or detail.get("type")
        message = detail.get("message") or detail.get("msg") or detail.get("detail")
        return _text_of(code), _text_of(message)
    if isinstance(detail, list):
        first = detail[0] if detail and isinstance(detail[0], dict) else {}
        code = first.get("type") if isinstance(first, dict) else None
        return _text_of(code) or "validation_error", _describe_validation_list(detail)
    error = body.get("error")
    if isinstance(error, dict):  # {"error": {"code": ..., "message": ...}}
        return _text_of(error.get("code") or error.get("type")), _text_of(error.get("message"))
    message = body.get("message") or body.get("msg")
    return _text_of(error), _text_of(message)


def summarise_text(text: str, content_type: str) -> str:
    """A short, readable account of a non-JSON body: an HTML page's title, or its start."""
    if "html" in content_type or text.lstrip().startswith("<"):
        title = _TITLE.search(text)
        shown = title.group(1) if title else _TAGS.sub(" ", text)
        shown = " ".join(shown.split())[:160]
        return f"unexpected HTML page ({shown})" if shown else "unexpected HTML page"
    return " ".join(text.split())[:200] or "empty body"


_BACKUP_ID_KEYS = ("running_backup_id", "existing_backup_id", "active_backup_id", "backup_id")


def conflicting_backup(body: Any) -> uuid.UUID | None:
    """The running backup a 409 names, wherever the body puts it (top level, ``detail``,
    ``details``; ``backup_id`` or a ``running_``/``existing_``/``active_`` variant, or a
    nested ``backup`` object's ``id``). None when it names none."""
    holders = [body]
    if isinstance(body, dict):
        holders += [body.get("detail"), body.get("details")]
    for holder in holders:
        if not isinstance(holder, dict):
            continue
        nested = holder.get("backup")
        candidates = [holder.get(key) for key in _BACKUP_ID_KEYS]
        if isinstance(nested, dict):
            candidates.append(nested.get("id"))
        for value in candidates:
            if isinstance(value, str):
                try:
                    return uuid.UUID(value)
                except ValueError:
                    continue
    return None


def error_for_status(
    status: int,
    body: Any,
    *,
    method: str,
    path: str,
    retry_after: float | None = None,
    fallback_message: str | None = None,
    keep_body: bool = True,
    note: str | None = None,
) -> APIError:
    """The error for an error status, with code and message read from the body.

    Args:
        status: the HTTP status.
        body: the decoded body (JSON, or the text when it was not JSON).
        method: the request's method, for the message.
        path: the request's path and query, for the message.
        retry_after: for a 429, the wait the server asked for (or implied).
        fallback_message: the message when the body has none (why it is not JSON).
        keep_body: False for a secret request: code and message are read, the body is
            not kept.
        note: a sentence appended to the message (what the caller should know).

    Returns:
        The :class:`APIError` subclass for the status; a 409 names the running backup.
    """
    code, message = parse_error_body(body)
    message = redact_text(message or fallback_message or f"HTTP {status}")
    code = redact_text(code) if code else None
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "body": body if keep_body else None,
        "method": method,
        "path": path,
    }
    if status == 409:
        running = conflicting_backup(body)
        if running is not None and str(running) not in message:
            message = f"{message} (running backup {running})"
        return ConflictError(_noted(message, note), backup_id=running, **kwargs)
    message = _noted(message, note)
    if status == 429:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    if status >= 500:
        return ServerError(message, **kwargs)
    return _STATUS_ERRORS.get(status, APIError)(message, **kwargs)


def _noted(message: str, note: str | None) -> str:
    return f"{message}; {note}" if note else message
