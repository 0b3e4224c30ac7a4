"""Retention decisions (restic ``forget`` semantics) over a month of simulated nightly
backups plus a few manual ones, as tables: which backup is kept, and by which rule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from oec_async import ConfigurationError
from oec_async.archive import UNLIMITED, RetentionPolicy, plan_retention

NOW = datetime(2026, 5, 31, 20, 0, tzinfo=UTC)


def at(day: int, hour: int = 2, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# May 2026, one scheduled backup every night at 02:00, and four manual ones.
NIGHTLY = [at(day) for day in range(1, 32)]
MANUAL = [at(31, 14), at(31, 9), at(20, 16, 30), at(3, 12)]
MONTH = {moment.strftime("%m-%d %H:%M"): moment for moment in NIGHTLY + MANUAL}


def table(policy: RetentionPolicy, backups: dict[str, datetime] = MONTH) -> dict[str, list[str]]:
    """label -> reasons, for the kept backups only."""
    decisions = plan_retention(backups, policy, now=NOW, tz=UTC)
    return {d.key: list(d.reasons) for d in decisions if d.keep}


def test_the_readme_policy_on_a_month_of_nightly_backups() -> None:
    kept = table(RetentionPolicy(last=3, daily=7, weekly=4, monthly=6))

    assert kept == {
        "05-31 14:00": ["last", "daily 2026-05-31", "weekly 2026-W22", "monthly 2026-05"],
        "05-31 09:00": ["last"],
        "05-31 02:00": ["last"],
        "05-30 02:00": ["daily 2026-05-30"],
        "05-29 02:00": ["daily 2026-05-29"],
        "05-28 02:00": ["daily 2026-05-28"],
        "05-27 02:00": ["daily 2026-05-27"],
        "05-26 02:00": ["daily 2026-05-26"],
        "05-25 02:00": ["daily 2026-05-25"],
        "05-24 02:00": ["weekly 2026-W21"],
        "05-17 02:00": ["weekly 2026-W20"],
        "05-10 02:00": ["weekly 2026-W19"],
        # The monthly rule still has room when it reaches the oldest backup: kept too.
        "05-01 02:00": ["oldest monthly 2026-05"],
    }


def test_every_decision_is_returned_newest_first_with_removed_ones_unexplained() -> None:
    decisions = plan_retention(MONTH, RetentionPolicy(last=3, daily=7), now=NOW, tz=UTC)

    assert [d.created_at for d in decisions] == sorted(MONTH.values(), reverse=True)
    assert len(decisions) == 35
    removed = [d for d in decisions if not d.keep]
    # The last 3 (all of May 31) and six more days; daily has no room left for the oldest.
    assert len(removed) == 35 - 3 - 6
    assert all(d.reasons == () for d in removed)


def test_keep_daily_keeps_the_newest_backup_of_each_of_the_newest_days() -> None:
    kept = table(RetentionPolicy(daily=3))

    assert kept == {
        "05-31 14:00": ["daily 2026-05-31"],  # the newest of three that day
        "05-30 02:00": ["daily 2026-05-30"],
        "05-29 02:00": ["daily 2026-05-29"],
    }


def test_keep_daily_counts_days_that_have_a_backup_not_calendar_days() -> None:
    sparse = {"01": at(1), "09": at(9), "20": at(20), "21": at(21)}

    assert table(RetentionPolicy(daily=3), sparse) == {
        "21": ["daily 2026-05-21"],
        "20": ["daily 2026-05-20"],
        "09": ["daily 2026-05-09"],  # eleven days back: still one of the 3 newest days
    }


def test_a_rule_with_room_left_keeps_the_oldest_backup_even_within_a_kept_period() -> None:
    one_day = {"evening": at(1, 20), "morning": at(1, 8)}

    assert table(RetentionPolicy(daily=5), one_day) == {
        "evening": ["daily 2026-05-01"],
        "morning": ["oldest daily 2026-05-01"],
    }


def test_unlimited_daily_keeps_one_backup_per_day_and_drops_the_extra_manual_ones() -> None:
    kept = table(RetentionPolicy(daily=UNLIMITED))

    assert len(kept) == 31
    for manual_extra in ("05-31 09:00", "05-31 02:00", "05-20 02:00", "05-03 02:00"):
        assert manual_extra not in kept  # a newer backup of the same day stands for it
    assert kept["05-20 16:30"] == ["daily 2026-05-20"]
    assert kept["05-03 12:00"] == ["daily 2026-05-03"]


def test_weeks_are_iso_weeks_monday_to_sunday() -> None:
    kept = table(RetentionPolicy(weekly=3))

    # Sunday 05-31 closes W22, Sunday 05-24 closes W21, Sunday 05-17 closes W20.
    assert kept == {
        "05-31 14:00": ["weekly 2026-W22"],
        "05-24 02:00": ["weekly 2026-W21"],
        "05-17 02:00": ["weekly 2026-W20"],
    }


def test_hourly_and_yearly_buckets() -> None:
    backups = {
        "11:10": at(31, 11, 10),
        "10:40": at(31, 10, 40),
        "10:05": at(31, 10, 5),
        "last year": datetime(2025, 12, 31, 23, 0, tzinfo=UTC),
        "two years ago": datetime(2024, 6, 1, tzinfo=UTC),
    }

    assert table(RetentionPolicy(hourly=2), backups) == {
        "11:10": ["hourly 2026-05-31 11h"],
        "10:40": ["hourly 2026-05-31 10h"],
    }
    assert table(RetentionPolicy(yearly=2), backups) == {
        "11:10": ["yearly 2026"],
        "last year": ["yearly 2025"],
    }


def test_days_are_read_in_the_given_time_zone() -> None:
    backups = {
        "00:30Z": datetime(2026, 5, 2, 0, 30, tzinfo=UTC),
        "23:30Z": datetime(2026, 5, 1, 23, 30, tzinfo=UTC),
        "older": datetime(2026, 4, 29, 12, 0, tzinfo=UTC),
    }
    policy = RetentionPolicy(daily=2)
    east = timezone(timedelta(hours=2))

    in_utc = plan_retention(backups, policy, now=NOW, tz=UTC)
    in_east = plan_retention(backups, policy, now=NOW, tz=east)

    assert [d.key for d in in_utc if d.keep] == ["00:30Z", "23:30Z"]
    # At UTC+2 both late backups fall on May 2: the newer one stands for that day.
    assert [(d.key, d.reasons) for d in in_east if d.keep] == [
        ("00:30Z", ("daily 2026-05-02",)),
        ("older", ("daily 2026-04-29",)),
    ]


def test_keep_within_counts_back_from_the_newest_backup_not_from_now() -> None:
    policy = RetentionPolicy(within=timedelta(days=2))

    # Ten days after the last backup (a paused schedule), the last two days are kept.
    kept = plan_retention(MONTH, policy, now=NOW + timedelta(days=10), tz=UTC)

    assert [d.key for d in kept if d.keep] == [
        "05-31 14:00",
        "05-31 09:00",
        "05-31 02:00",
        "05-30 02:00",
    ]
    assert kept[0].reasons == ("within 2d",)


def test_a_backup_dated_in_the_future_does_not_move_the_within_window() -> None:
    backups = {**MONTH, "future": at(10, month=6)}

    kept = table(RetentionPolicy(within=timedelta(days=1)), backups)

    assert set(kept) == {"future", "05-31 14:00", "05-31 09:00", "05-31 02:00"}


def test_the_plan_does_not_depend_on_the_order_backups_are_given_in() -> None:
    items = list(MONTH.items())
    random.Random(5).shuffle(items)
    policy = RetentionPolicy(last=2, daily=4, weekly=2, monthly=1)

    assert plan_retention(dict(items), policy, now=NOW, tz=UTC) == plan_retention(
        MONTH, policy, now=NOW, tz=UTC
    )


def test_an_empty_policy_keeps_everything() -> None:
    decisions = plan_retention(MONTH, RetentionPolicy(), now=NOW, tz=UTC)

    assert RetentionPolicy().empty
    assert all(d.keep for d in decisions)


@pytest.mark.parametrize(
    "kwargs",
    [{"last": -2}, {"daily": True}, {"weekly": 1.5}, {"within": timedelta(0)}, {"within": 3}],
)
def test_bad_counts_are_refused_with_the_rule_named(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="keep_"):
        RetentionPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_policy_describes_itself() -> None:
    policy = RetentionPolicy(last=3, daily=UNLIMITED, within=timedelta(hours=36))

    assert policy.describe() == "keep 3 last, all daily, within 1d12h"
