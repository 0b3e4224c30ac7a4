"""The one place where secrets are taken out of text.

Two kinds of secret pass through this SDK: the API key, and presigned URLs (their query
string carries the signature, which is a bearer credential until it expires). Everything
that may reach a log line, a repr or an exception message goes through these helpers.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["KEY_PATTERN", "mask_key", "redact_text", "redact_url"]

#: Keys look like ``oec_live_ro_<token>`` or ``oec_live_rw_<token>``.
KEY_PATTERN = re.compile(r"^oec_live_(?:ro|rw)_[A-Za-z0-9_-]{20,200}$")

_KEY_ANYWHERE = re.compile(r"oec_[A-Za-z]+_[A-Za-z]+_[A-Za-z0-9_-]{8,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s,;\"']+")
# A URL's query string (and fragment) in free text; the path is kept for debugging.
_URL_QUERY = re.compile(r"(?i)\b(https?://[^\s?#\"'<>]*)[?#][^\s\"'<>]*")
_USERINFO = re.compile(r"(?i)\b(https?://)[^/\s@\"'<>]+@")
_SIGNATURE_PARAM = re.compile(
    r"(?i)\b((?:x-amz-|x-goog-|x-oec-)?(?:signature|credential|security-token|token|sig))"
    r"=[^&\s\"'<>]+"
)

REDACTED = "<redacted>"


def redact_url(url: str) -> str:
    """``scheme://host[:port]/path`` with any query, fragment and user info removed."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    tail = f"?{REDACTED}" if parts.query or parts.fragment else ""
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


def mask_key(key: str | None) -> str:
    """A key shown as its public prefix only: ``oec_live_ro_****``."""
    if not key:
        return "None"
    match = re.match(r"^(oec_[a-z]+_[a-z]+_)", key)
    return f"{match.group(1)}****" if match else "****"


def redact_text(text: str) -> str:
    """Free text with keys, bearer tokens, URL user info and URL queries removed."""
    text = _USERINFO.sub(r"\1", text)
    text = _URL_QUERY.sub(rf"\1?{REDACTED}", text)
    text = _SIGNATURE_PARAM.sub(rf"\1={REDACTED}", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    return _KEY_ANYWHERE.sub(REDACTED, text)
