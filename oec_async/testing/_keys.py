"""The API keys the simulator accepts, and what each may see."""

from __future__ import annotations

import random
import uuid
from typing import Literal

import attrs

from oec_async.errors import ConfigurationError

__all__ = ["KeyRing", "KeyScope", "SimKey"]

KeyScope = Literal["rw", "ro"]
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@attrs.frozen
class SimKey:
    """An API key the simulator knows (``name`` is what the request log shows, never the
    key itself)."""

    name: str
    scope: KeyScope
    project_id: uuid.UUID | None = None  # a project-scoped key sees only that project
    expired: bool = False


class KeyRing:
    """Every key, by its secret value."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._keys: dict[str, SimKey] = {}

    def add(
        self,
        scope: KeyScope = "rw",
        *,
        project_id: uuid.UUID | None = None,
        name: str | None = None,
    ) -> str:
        """A new valid key; returns its secret value.

        Raises:
            ConfigurationError: a bad scope, or a name already taken.
        """
        if scope not in ("rw", "ro"):
            raise ConfigurationError(f"key scope must be 'rw' or 'ro', got {scope!r}")
        name = name or f"key-{len(self._keys) + 1}"
        if any(k.name == name for k in self._keys.values()):
            raise ConfigurationError(f"a key named {name!r} exists already")
        secret = f"oec_live_{scope}_sim" + "".join(self._rng.choice(_ALPHABET) for _ in range(32))
        self._keys[secret] = SimKey(name=name, scope=scope, project_id=project_id)
        return secret

    def get(self, secret: str) -> SimKey | None:
        """The key with this secret value, or None."""
        return self._keys.get(secret)

    def expire(self, secret: str) -> None:
        """From now on the key is refused with ``key_expired``.

        Raises:
            KeyError: not a key of this simulator.
        """
        self._keys[secret] = attrs.evolve(self._keys[secret], expired=True)
