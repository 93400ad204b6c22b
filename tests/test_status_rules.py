"""The status order and the message summary, as pure functions."""

from datetime import UTC, datetime

import pytest

from models import Status, status_key, summarise

EARLY = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
LATE = datetime(2026, 12, 4, 12, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ((Status.PENDING, None), (Status.SUBMITTED, None)),
        ((Status.SUBMITTED, None), (Status.ACCEPTED, EARLY)),
        ((Status.OUTCOME_UNKNOWN, None), (Status.BUFFERED, None)),
        ((Status.ACCEPTED, LATE), (Status.UNKNOWN, None)),
        ((Status.UNKNOWN, None), (Status.DELIVERED, None)),
        ((Status.ACCEPTED, EARLY), (Status.BUFFERED, LATE)),
        ((Status.BUFFERED, EARLY), (Status.ACCEPTED, LATE)),
        ((Status.ACCEPTED, EARLY), (Status.BUFFERED, EARLY)),
        ((Status.ACCEPTED, None), (Status.ACCEPTED, EARLY)),
        ((Status.DELIVERED, LATE), (Status.EXPIRED, EARLY)),
        ((Status.EXPIRED, None), (Status.REJECTED, None)),
        ((Status.REJECTED, LATE), (Status.FAILED, EARLY)),
        ((Status.DELIVERED, None), (Status.FAILED, None)),
    ],
)
def test_status_order(lower, higher):
    assert status_key(*lower) < status_key(*higher)


def test_final_ignores_timestamps():
    assert status_key(Status.DELIVERED, EARLY) == status_key(Status.DELIVERED, LATE)


@pytest.mark.parametrize(
    ("send_outcome", "parts", "expected"),
    [
        (Status.PENDING, [], Status.PENDING),
        (Status.OUTCOME_UNKNOWN, [], Status.OUTCOME_UNKNOWN),
        (Status.SEND_FAILED, [], Status.SEND_FAILED),
        (Status.SUBMITTED, [Status.DELIVERED, Status.DELIVERED], Status.DELIVERED),
        (Status.SUBMITTED, [Status.DELIVERED, Status.SUBMITTED], Status.SUBMITTED),
        (Status.SUBMITTED, [Status.DELIVERED, Status.FAILED], Status.FAILED),
        (Status.SUBMITTED, [Status.EXPIRED, Status.REJECTED], Status.REJECTED),
        (Status.SUBMITTED, [Status.FAILED, Status.ACCEPTED], Status.FAILED),
        (Status.SUBMITTED, [Status.BUFFERED, Status.ACCEPTED], Status.ACCEPTED),
        (Status.SUBMITTED, [Status.UNKNOWN, Status.DELIVERED], Status.UNKNOWN),
        (Status.SEND_FAILED, [Status.DELIVERED, Status.SEND_FAILED], Status.SEND_FAILED),
    ],
)
def test_message_summary(send_outcome, parts, expected):
    assert summarise(send_outcome, parts) == expected
