"""Presigned URLs as S3 makes them (SigV4-looking query strings), and their checks."""

from __future__ import annotations

import calendar
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Literal

__all__ = ["URLSigning"]

Problem = Literal["expired", "invalid"]


class URLSigning:
    """Signs object paths with a secret; tells a valid URL from an expired or forged one."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._serial = 0
        self._revoked_before = 0
        self.urls_issued = 0  # download-URL sets handed out

    def _signature(self, path: str, serial: int, issued: int, ttl: float) -> str:
        message = f"{path}|{serial}|{issued}|{ttl:g}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, base: str, path: str, ttl: float) -> str:
        """A presigned URL for ``path`` (starting with ``/``) on origin ``base``."""
        self._serial += 1
        issued = int(time.time())
        signature = self._signature(path, self._serial, issued, ttl)
        return (
            f"{base}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential=SIMULATOR%2F{self._serial}%2Fauto%2Fs3%2Faws4_request"
            f"&X-Amz-Date={time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(issued))}"
            f"&X-Amz-Expires={ttl:g}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
        )

    def check(self, path: str, query: Mapping[str, str]) -> Problem | None:
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

    def expire_all(self) -> None:
        """Every URL signed so far expires now."""
        self._revoked_before = self._serial
