"""The error bodies the simulated API sends: the platform's four shapes, and its codes."""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["DEFAULT_CODES", "ERROR_SHAPES", "ErrorShape", "error_body", "natural_shape"]

#: The four error-body shapes the platform is known to send (API.md section 1).
ErrorShape = Literal["detail_str", "detail_object", "detail_list", "flat"]
ERROR_SHAPES: tuple[ErrorShape, ...] = ("detail_str", "detail_object", "detail_list", "flat")

# The shape the real platform tends to use for each status (a setting can force one).
_NATURAL_SHAPES: dict[int, ErrorShape] = {
    400: "detail_object",
    401: "detail_object",
    402: "detail_object",
    403: "detail_str",
    404: "detail_str",
    409: "flat",
    422: "detail_list",
    429: "flat",
}
DEFAULT_CODES = {
    400: "bad_request",
    401: "invalid_key",
    402: "subscription_blocked",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "validation_error",
    429: "rate_limit_exceeded",
}


def natural_shape(status: int) -> ErrorShape:
    """The shape the platform usually gives an error of this status."""
    return _NATURAL_SHAPES.get(status, "detail_str")


def error_body(
    status: int,
    code: str,
    message: str,
    shape: ErrorShape,
    *,
    loc: tuple[str, ...] = ("query", "value"),
) -> dict[str, Any]:
    """An error body in one of the four shapes the platform is known to send.

    Args:
        status: the HTTP status (echoed by the ``detail_object`` shape).
        code: the machine-readable code, e.g. ``"invalid_key"``.
        message: the human-readable text.
        shape: which of the four shapes to build.
        loc: where the ``detail_list`` shape says the problem is.

    Returns:
        The JSON body as a dict.
    """
    if shape == "detail_str":
        return {"detail": message}
    if shape == "detail_object":
        return {"detail": {"error": code, "message": message, "status_code": status}}
    if shape == "detail_list":
        return {"detail": [{"loc": list(loc), "msg": message, "type": code}]}
    return {"error": code, "message": message, "details": None}
