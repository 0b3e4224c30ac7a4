"""Which backups a retention policy keeps: restic ``forget`` semantics, as a pure function.

The rules, read from restic's own ``snapshot_policy.go`` (``ApplyPolicy``) and docs:

- Backups are taken newest first, by the backup's creation time.
- ``last=N`` keeps the N newest backups.
- ``hourly``/``daily``/``weekly``/``monthly``/``yearly=N`` each walk the list newest first
  and keep the first (that is, the newest) backup of every hour / day / ISO week / month /
  year they meet, until N such periods are kept. Periods with no backup are not counted:
  ``daily=7`` keeps the newest backup of each of the seven newest *days that have one*,
  which may span more than a week. ``-1`` means no limit (restic's ``unlimited``).
- Each rule counts on its own; a backup kept by several rules is kept once, with every
  reason. A backup no rule keeps is removed.
- When a rule still has room left as it reaches the oldest backup, it keeps that oldest
  backup too, even if a newer one already stands for its period ("oldest daily"): the
  history reaches as far back as the policy allows.
- ``within=D`` keeps every backup created within D before the newest backup (not before
  now: a paused schedule never ages its last backups out). The newest backup is the newest
  one not in the future.

Periods are read in ``tz`` (default: this machine's local time zone, as restic reads a
snapshot's time in the zone it was taken in): a 00:30 backup belongs to the day on the
wall clock, not to the UTC day before.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Generic, TypeVar

import attrs

from oec_async.archive._duration import format_duration
from oec_async.errors import ConfigurationError

__all__ = ["UNLIMITED", "RetentionDecision", "RetentionPolicy", "plan_retention"]

#: A count that keeps every period (restic's ``unlimited``).
UNLIMITED = -1

K = TypeVar("K", bound=Hashable)


def _count(name: str) -> Callable[[object, attrs.Attribute[int], int], None]:
    def check(_instance: object, _attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < UNLIMITED:
            raise ConfigurationError(
                f"keep_{name} must be a count of 0 or more, or -1 for no limit (got {value!r})"
            )

    return check


def _within(
    _instance: object, _attribute: attrs.Attribute[timedelta | None], value: object
) -> None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise ConfigurationError(f"keep_within must be a positive timedelta (got {value!r})")


@attrs.frozen
class RetentionPolicy:
    """How many backups to keep, per rule (0: the rule is off; -1: no limit).

    Example: ``RetentionPolicy(last=3, daily=7, weekly=4, monthly=6)`` keeps the three
    newest backups, the newest of each of the last 7 days, 4 ISO weeks and 6 months that
    have one.
    """

    last: int = attrs.field(default=0, validator=_count("last"))
    hourly: int = attrs.field(default=0, validator=_count("hourly"))
    daily: int = attrs.field(default=0, validator=_count("daily"))
    weekly: int = attrs.field(default=0, validator=_count("weekly"))
    monthly: int = attrs.field(default=0, validator=_count("monthly"))
    yearly: int = attrs.field(default=0, validator=_count("yearly"))
    within: timedelta | None = attrs.field(default=None, validator=_within)

    @property
    def empty(self) -> bool:
        """No rule is set: such a policy keeps everything (and ``prune`` refuses it)."""
        counts = (self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly)
        return not any(counts) and self.within is None

    def describe(self) -> str:
        """``"keep 3 last, 7 daily, all weekly, within 2d"``."""
        parts = [
            f"{'all' if count == UNLIMITED else count} {name}"
            for name, count in (
                ("last", self.last),
                ("hourly", self.hourly),
                ("daily", self.daily),
                ("weekly", self.weekly),
                ("monthly", self.monthly),
                ("yearly", self.yearly),
            )
            if count
        ]
        if self.within is not None:
            parts.append(f"within {format_duration(self.within)}")
        return "keep " + ", ".join(parts) if parts else "keep everything (no rule)"


@attrs.frozen
class RetentionDecision(Generic[K]):
    """What the policy decided for one backup, and why."""

    key: K
    created_at: datetime
    keep: bool
    #: The rules that keep it, e.g. ``("last", "daily 2026-05-04")``; empty when removed.
    reasons: tuple[str, ...]


def _hour(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %Hh")


def _day(t: datetime) -> str:
    return t.strftime("%Y-%m-%d")


def _week(t: datetime) -> str:
    year, week, _ = t.isocalendar()
    return f"{year}-W{week:02d}"


def _month(t: datetime) -> str:
    return t.strftime("%Y-%m")


def _year(t: datetime) -> str:
    return f"{t.year}"


_PERIODS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("hourly", _hour),
    ("daily", _day),
    ("weekly", _week),
    ("monthly", _month),
    ("yearly", _year),
)


_RULES: tuple[tuple[str, Callable[[datetime], str] | None], ...] = (("last", None), *_PERIODS)


def _sort_key(item: tuple[object, datetime]) -> tuple[float, str]:
    key, created = item
    # Newest first; equal times in a fixed order so a plan never depends on input order.
    return (-created.timestamp(), str(key))


def plan_retention(
    backups: Mapping[K, datetime],
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    tz: tzinfo | None = None,
) -> list[RetentionDecision[K]]:
    """Apply ``policy`` to backups given as ``key -> creation time``.

    Args:
        backups: each backup's key (any hashable: a folder, an id) and aware creation time.
        policy: the rules.
        now: the current time (only ``within`` uses it, to ignore backups dated in the
            future when finding the newest one); default: now.
        tz: the time zone periods are read in; default: the local one.

    Returns:
        One decision per backup, newest first.
    """
    items = sorted(backups.items(), key=_sort_key)
    if policy.empty:
        return [
            RetentionDecision(k, t, True, ("no rule: policy keeps everything",)) for k, t in items
        ]
    current = now or datetime.now(UTC)
    counts = {
        "last": policy.last,
        **{name: getattr(policy, name) for name, _ in _PERIODS},
    }
    seen: dict[str, str | None] = dict.fromkeys(counts)
    not_future = [t for _, t in items if t <= current]
    newest = max(not_future) if not_future else None

    decisions: list[RetentionDecision[K]] = []
    for index, (key, created) in enumerate(items):
        oldest = index == len(items) - 1
        local = created.astimezone(tz)
        reasons: list[str] = []
        if policy.within is not None and (newest is None or created > newest - policy.within):
            reasons.append(f"within {format_duration(policy.within)}")
        for name, period in _RULES:
            if counts[name] == 0:
                continue
            value = period(local) if period is not None else f"#{index}"  # "last": each its own
            if value != seen[name] or oldest:
                label = name if name == "last" else f"{name} {value}"
                reasons.append(f"oldest {label}" if value == seen[name] else label)
                seen[name] = value
                if counts[name] > 0:
                    counts[name] -= 1
        decisions.append(RetentionDecision(key, created, bool(reasons), tuple(reasons)))
    return decisions
