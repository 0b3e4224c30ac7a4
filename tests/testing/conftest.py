"""Plain HTTP against the simulator: these tests pin the simulator's own behaviour, so
they speak to it with aiohttp, not through the SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import pytest

from oec_async.testing import OECSimulator


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or the text when it is not JSON

    def error_code(self) -> str | None:
        """The code from whichever error shape the body has."""
        body = self.body
        if isinstance(body, dict):
            if isinstance(body.get("detail"), dict):
                return str(body["detail"].get("error"))
            if isinstance(body.get("detail"), list):
                return str(body["detail"][0].get("type"))
            if "error" in body:
                return str(body["error"])
        return None


class API:
    """``await api.get("/projects", key=...)`` -> :class:`Answer`."""

    def __init__(self, sim: OECSimulator, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.session = session

    async def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = "",
        params: dict[str, str] | None = None,
        body: Any = None,
        data: bytes | None = None,
    ) -> Answer:
        headers = {}
        key = self.sim.api_key if key == "" else key
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        async with self.session.request(
            method,
            self.sim.base_url + path,
            headers=headers,
            params=params,
            data=data,
            allow_redirects=False,
        ) as response:
            text = await response.text()
            try:
                parsed: Any = json.loads(text)
            except json.JSONDecodeError:
                parsed = text
            return Answer(response.status, dict(response.headers), parsed)

    async def get(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("POST", path, **kwargs)


@pytest.fixture
async def api(sim: OECSimulator) -> AsyncIterator[API]:
    async with aiohttp.ClientSession() as session:
        yield API(sim, session)
