"""The check of an answer against its question, without a server."""

from __future__ import annotations

import uuid

import attrs
import pytest

from oec_async._answers import contradictions, describe, entries_of
from oec_async.models import BackupStatus

ASKED = uuid.UUID(int=1)
OTHER = uuid.UUID(int=2)


@attrs.frozen
class Thing:
    id: uuid.UUID
    owner: uuid.UUID | None = None
    status: BackupStatus | str | None = None


def test_an_answer_that_fits_has_no_contradiction() -> None:
    assert contradictions(Thing(ASKED, ASKED), whole={"id": ASKED, "owner": ASKED}) == []


def test_each_differing_field_is_named_with_both_values() -> None:
    found = contradictions(Thing(OTHER, OTHER), whole={"id": ASKED, "owner": ASKED})

    assert found == [f"id is {OTHER}, asked {ASKED}", f"owner is {OTHER}, asked {ASKED}"]


def test_a_field_left_out_is_no_contradiction() -> None:
    assert contradictions(Thing(ASKED, None), whole={"owner": OTHER}) == []


def test_enum_and_plain_string_compare_by_value() -> None:
    entries = [Thing(ASKED, status=BackupStatus.COMPLETED), Thing(ASKED, status="completed")]

    assert contradictions(entries, each={"status": "completed"}) == []
    assert contradictions(entries, each={"status": BackupStatus.FAILED}) == [
        "entry 0: status is completed, asked failed",
        "entry 1: status is completed, asked failed",
    ]


def test_listing_entries_come_from_items_data_or_the_list() -> None:
    @attrs.frozen
    class Page:
        items: list[int]

    @attrs.frozen
    class Envelope:
        data: list[int]

    assert entries_of(Page([1])) == [1]
    assert entries_of(Envelope([2])) == [2]
    assert entries_of([3]) == [3]
    with pytest.raises(TypeError):
        entries_of(Thing(ASKED))


def test_description_names_the_first_few_and_counts_the_rest() -> None:
    text = describe([f"entry {n}: x" for n in range(5)])

    assert text.endswith("entry 0: x; entry 1: x; entry 2: x (and 2 more)")
