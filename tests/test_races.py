"""Deterministic races on PostgreSQL: two requests for one part meet at the same step.

The test holds a lock itself and lets two receipts run until both wait on it, when
each has done its reads. Then it releases the lock. Both must then write, in some
order, and the result must be the one that the documented order gives.
"""

import threading
import time

import psycopg
import pytest
from sqlalchemy import func, select

from app import create_app
from conftest import TEST_SETTINGS
from models import Receipt, Sms, SmsPart, Status, db

URL = "/webhooks/delivery-receipt"
_numbers = iter(range(10**6))


@pytest.fixture
def pg_app(postgres_server):
    url = postgres_server.create_database(f"race_{next(_numbers)}")
    app = create_app({**TEST_SETTINGS, "DATABASE_URL": url})
    with app.app_context():
        db.create_all()
    yield app, postgres_server.dsn(url.rsplit("/", 1)[1])
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def add_part(app, message_id):
    with app.app_context():
        sms = Sms(
            recipient="14155550100",
            sender="smstrack",
            text="Race",
            encoding="text",
            segments=1,
            send_outcome=Status.SUBMITTED,
            status=Status.SUBMITTED,
        )
        db.session.add(sms)
        db.session.flush()
        db.session.add(
            SmsPart(
                sms_id=sms.id,
                position=0,
                message_id=message_id,
                send_status=Status.SUBMITTED,
                status=Status.SUBMITTED,
            )
        )
        db.session.commit()
        return sms.id


def receipt(message_id, status, minute=0):
    return {
        "messageId": message_id,
        "status": status,
        "err-code": "0",
        "message-timestamp": f"2026-12-04 12:0{minute}:00",
        "msisdn": "14155550100",
    }


def post_in_threads(app, bodies):
    """Post each body from its own thread; return the threads and their status codes."""
    codes = [None] * len(bodies)

    def post(index):
        codes[index] = app.test_client().post(URL, data=bodies[index]).status_code

    threads = [threading.Thread(target=post, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    return threads, codes


def wait_for_lock_waiters(dsn, count, timeout=10.0):
    """Wait until `count` other sessions wait on a lock; fail if they never do."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).fetchone()[0]
            if waiting >= count:
                return
            time.sleep(0.02)
    pytest.fail(f"fewer than {count} requests reached the lock within {timeout} s")


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("delivered", "accepted"), Status.DELIVERED),
        (("accepted", "delivered"), Status.DELIVERED),
        (("failed", "delivered"), Status.FAILED),
        (("buffered", "accepted"), Status.BUFFERED),
    ],
)
def test_two_receipts_one_part(pg_app, statuses, expected):
    app, dsn = pg_app
    sms_id = add_part(app, "0C00000000000001")
    bodies = [receipt("0C00000000000001", status) for status in statuses]

    with psycopg.connect(dsn) as holder:
        holder.execute("SELECT id FROM sms WHERE id = %s FOR UPDATE", (sms_id,))
        threads, codes = post_in_threads(app, bodies)
        wait_for_lock_waiters(dsn, 2)
        holder.commit()
    for thread in threads:
        thread.join(timeout=30)

    assert codes == [204, 204]
    with app.app_context():
        sms = db.session.get(Sms, sms_id)
        assert sms.parts[0].status == expected
        assert sms.status == expected
        assert db.session.scalar(select(func.count()).select_from(Receipt)) == 2


@pytest.mark.parametrize("known_part", [True, False])
def test_two_copies_race_for_unique_key(pg_app, known_part, caplog):
    caplog.set_level("INFO", logger="smstrack")
    app, dsn = pg_app
    if known_part:
        add_part(app, "0C00000000000002")
    body = receipt("0C00000000000002", "delivered")

    with psycopg.connect(dsn) as holder:
        # Both copies read "not stored yet" and then wait to insert: an unknown part's
        # receipt takes no message lock, so hold the table instead.
        holder.execute("LOCK TABLE receipt IN SHARE ROW EXCLUSIVE MODE")
        threads, codes = post_in_threads(app, [body, dict(body)])
        wait_for_lock_waiters(dsn, 1 if known_part else 2)
        holder.commit()
    for thread in threads:
        thread.join(timeout=30)

    assert codes == [204, 204]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Receipt)) == 1
        if known_part:
            assert db.session.scalar(select(SmsPart.status)) == Status.DELIVERED
    if not known_part:
        # The loser hit the unique constraint and retried, rather than never racing.
        assert any("raced another copy" in record.getMessage() for record in caplog.records)
