"""Property: any order of a message's receipts, with any repeats, gives the same statuses.

The expected result comes from an oracle written here from the documented order,
independent of the app's own `status_key` and `summarise`.
"""

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models import Receipt, Sms, db

URL = "/webhooks/delivery-receipt"
DOCUMENTED = ["accepted", "buffered", "unknown", "delivered", "expired", "rejected", "failed"]
FINAL_SEVERITY = {"delivered": 0, "expired": 1, "rejected": 2, "failed": 3}
START = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
_message_numbers = itertools.count(1)


def oracle_part(receipts):
    """Return the documented winner among a part's receipts (status, minute)."""
    best = ("submitted", None)
    for status, minute in receipts:
        if status in FINAL_SEVERITY:
            current = best[0]
            if current not in FINAL_SEVERITY or FINAL_SEVERITY[status] > FINAL_SEVERITY[current]:
                best = (status, minute)
        elif status == "unknown":
            if best[0] in ("submitted", "accepted", "buffered"):
                best = (status, minute)
        elif status in ("accepted", "buffered"):
            if best[0] == "submitted":
                best = (status, minute)
            elif best[0] in ("accepted", "buffered"):
                later = minute > best[1]
                tie_to_buffered = minute == best[1] and status == "buffered"
                if later or tie_to_buffered:
                    best = (status, minute)
    return best[0]


def oracle_message(parts):
    if all(status == "delivered" for status in parts):
        return "delivered"
    failing = [status for status in parts if status in ("expired", "rejected", "failed")]
    if failing:
        return max(failing, key=FINAL_SEVERITY.get)
    order = ["submitted", "accepted", "buffered", "unknown", "delivered"]
    return min(parts, key=order.index)


receipt_strategy = st.tuples(
    st.integers(min_value=0, max_value=2),  # part index (taken modulo the part count)
    st.sampled_from(DOCUMENTED + ["mystery"]),
    st.integers(min_value=0, max_value=2),  # message-timestamp minute: ties are common
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    part_count=st.integers(min_value=1, max_value=3),
    receipts=st.lists(receipt_strategy, min_size=1, max_size=8),
    repeats=st.lists(st.integers(min_value=0, max_value=7), max_size=6),
    order=st.randoms(use_true_random=False),
)
def test_any_order_same_statuses(app, client, add_message, part_count, receipts, repeats, order):
    number = next(_message_numbers)
    message_ids = [f"0B{number:08X}{part:06X}" for part in range(part_count)]
    sms_id = add_message(*message_ids)

    distinct = {(index % part_count, status, minute) for index, status, minute in receipts}
    sent = [(index % part_count, status, minute) for index, status, minute in receipts]
    sent += [sent[position % len(sent)] for position in repeats]
    order.shuffle(sent)

    for index, status, minute in sent:
        moment = START + timedelta(minutes=minute)
        fields = {
            "messageId": message_ids[index],
            "status": status,
            "err-code": "0" if status in ("delivered", "accepted", "buffered") else "1",
            "message-timestamp": moment.strftime("%Y-%m-%d %H:%M:%S"),
            "msisdn": "14155550100",
        }
        assert client.post(URL, data=fields).status_code == 204

    expected_parts = [
        oracle_part([(status, minute) for index, status, minute in distinct if index == part])
        for part in range(part_count)
    ]
    with app.app_context():
        sms = db.session.get(Sms, sms_id)
        assert [part.status.value for part in sms.parts] == expected_parts
        assert sms.status.value == oracle_message(expected_parts)
        stored = db.session.scalar(
            select(func.count()).select_from(Receipt).where(Receipt.message_id.in_(message_ids))
        )
        assert stored == len(distinct)
