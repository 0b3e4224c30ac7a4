"""Local checks of everything a caller hands us, done before any request is sent."""

from __future__ import annotations

import ipaddress
import math
import os
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from oec_async._redact import KEY_PATTERN, redact_text
from oec_async.errors import ConfigurationError

if TYPE_CHECKING:  # ssl loads with the client, not with `import oec_async` (--help)
    import ssl as ssl_module

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_EXPIRES_IN",
    "MIN_EXPIRES_IN",
    "check_count",
    "check_expires_in",
    "check_seconds",
    "check_ssl",
    "check_text",
    "coerce_uuid",
    "is_loopback_host",
    "resolve_api_key",
    "resolve_base_url",
]

DEFAULT_BASE_URL = "https://api.oec.sh/api/public/v1"
MIN_EXPIRES_IN = 300
MAX_EXPIRES_IN = 86400


def _shown(value: object) -> str:
    """A bad value as a message shows it: short strings and numbers by value (a secret is
    never passed where a number belongs), anything else by type."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 32):
        return f"{redact_text(repr(value))} ({type(value).__name__})"
    return type(value).__name__


def check_seconds(value: object, name: str, *, allow_zero: bool = False) -> float:
    """A duration in seconds: a finite real number > 0 (or >= 0), never a bool or a str.

    Raises:
        ConfigurationError: naming ``name`` and the value it got.
    """
    bound = ">= 0" if allow_zero else "> 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        raise ConfigurationError(f"{name} must be a number of seconds {bound}, got {_shown(value)}")
    return float(value)


def check_count(value: object, name: str, *, minimum: int = 0, allow_none: bool = False) -> Any:
    """An integer >= ``minimum`` (or None when ``allow_none``), never a bool, float or str.

    Raises:
        ConfigurationError: naming ``name`` and the value it got.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        alternative = ", or None" if allow_none else ""
        raise ConfigurationError(
            f"{name} must be an integer >= {minimum}{alternative}, got {_shown(value)}"
        )
    return value


def check_text(value: object, name: str, *, allow_none: bool = True) -> str | None:
    """A non-empty single-line string (it goes into an HTTP header), or None.

    Raises:
        ConfigurationError: naming ``name``.
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n\0"):
        raise ConfigurationError(
            f"{name} must be a non-empty single-line string, got {_shown(value)}"
        )
    return value


def check_ssl(value: object, name: str = "ssl") -> ssl_module.SSLContext | bool:
    """``True`` (verify with the system's CAs), ``False`` (no verification) or an
    ``ssl.SSLContext``; anything else (``"yes"``, ``1``, ``None``) is refused.

    Raises:
        ConfigurationError: naming ``name``.
    """
    import ssl as ssl_module  # noqa: PLC0415 - see the import at the top

    if isinstance(value, bool | ssl_module.SSLContext):
        return value
    raise ConfigurationError(
        f"{name} must be True, False or an ssl.SSLContext, got {_shown(value)}"
    )


def resolve_api_key(api_key: str | None) -> str:
    """The key from the argument, else ``OEC_API_KEY``; its format checked locally.

    Raises:
        ConfigurationError: no key, a key that is not a string, or a malformed key (the
            message describes the expected shape and never echoes the key).
    """
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigurationError(f"api_key must be a string, got {type(api_key).__name__}")
    key = api_key if api_key is not None else os.environ.get("OEC_API_KEY")
    if not key:
        raise ConfigurationError("no API key: pass api_key= or set OEC_API_KEY")
    key = key.strip()
    if not KEY_PATTERN.match(key):
        # Never echo the key: say what is wrong with its shape only.
        raise ConfigurationError(
            "malformed API key: expected oec_live_ro_<token> or oec_live_rw_<token> "
            "with a token of 20-200 characters [A-Za-z0-9_-]"
        )
    return key


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":  # not *.localhost: nothing guarantees how it resolves
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_base_url(base_url: str | None) -> str:
    """The base URL from the argument, else ``OEC_BASE_URL``, else the platform's.

    ``https`` only, except for loopback hosts (the simulator, a local proxy): the key
    must never cross a network in clear text.

    Raises:
        ConfigurationError: not a string, not an http(s) URL, credentials or a query in
            it, or plain ``http://`` to a host that is not loopback.
    """
    if base_url is not None and not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be a string, got {type(base_url).__name__}")
    url = base_url or os.environ.get("OEC_BASE_URL") or DEFAULT_BASE_URL
    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigurationError(f"invalid base URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError("invalid base URL: expected https://host/path")
    if parts.username or parts.password:
        raise ConfigurationError("invalid base URL: credentials in the URL are not allowed")
    if parts.query or parts.fragment:
        raise ConfigurationError("invalid base URL: no query string or fragment allowed")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigurationError(
            f"refusing plain http:// to {host}: the API key would travel unencrypted "
            "(http is allowed for loopback hosts only)"
        )
    return url


def coerce_uuid(value: object, name: str) -> uuid.UUID:
    """An id as ``uuid.UUID``; anything else is refused (ids go into URL and file paths)."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            pass
    # A short string is echoed to help the caller, unless it is a secret passed by mistake
    # (a key where an id belongs): messages end up in cron mails and CI logs.
    if isinstance(value, str) and len(value) <= 64:
        shown = repr(redact_text(value))
    else:
        shown = type(value).__name__
    raise ConfigurationError(f"{name} must be a UUID, got {shown}")


def check_expires_in(expires_in: int) -> int:
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise ConfigurationError("expires_in must be an integer number of seconds")
    if not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN:
        raise ConfigurationError(
            f"expires_in must be between {MIN_EXPIRES_IN} and {MAX_EXPIRES_IN} seconds, "
            f"got {expires_in}"
        )
    return expires_in
