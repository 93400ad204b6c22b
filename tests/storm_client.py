"""Receipt builders and webhook clients for test_storm.py.

The clients run in "spawn" child processes. This module imports only `requests` and
the standard library, so that a child starts without loading the app.
"""

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import requests

RECEIPT_PATH = "/webhooks/delivery-receipt"
RECEIPT_STATUSES = ("accepted", "buffered", "unknown", "delivered", "expired", "rejected", "failed")
# Generated receipts with these statuses carry err-code 0, and the others a non-zero code.
SUCCESS_STATUSES = ("accepted", "buffered", "delivered")
ERROR_CODES = ("1", "6", "9")
# How a receipt reaches the webhook: POST JSON body, POST form or GET query string.
STYLES = ("json", "form", "query")
# message-timestamp values fall within one hour after this instant.
WINDOW_START = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
WINDOW_SECONDS = 3600
REQUEST_TIMEOUT = 30  # seconds
ROUND_TIMEOUT = 2 * REQUEST_TIMEOUT  # seconds a client waits for the others in a round

# Barrier that send_receipts waits at before each synchronized job, set by join_rounds.
_round_barrier = None


def join_rounds(barrier) -> None:
    """Set the barrier that send_receipts waits at in this process (a Pool initializer)."""
    global _round_barrier
    _round_barrier = barrier


def make_receipt(message_id: str, status: str, err_code: str, message_time: datetime) -> dict:
    """Return the fields of a receipt as Vonage sends them, every value a string."""
    carrier_time = message_time - timedelta(seconds=5)
    return {
        "msisdn": "14155550100",
        "to": "smstrack",
        "network-code": "310090",
        "messageId": message_id,
        "price": "0.00570000",
        "status": status,
        "scts": carrier_time.strftime("%y%m%d%H%M"),
        "err-code": err_code,
        "message-timestamp": message_time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def random_receipt(
    rng: random.Random,
    message_id: str,
    message_time: datetime | None = None,
    statuses: tuple[str, ...] = RECEIPT_STATUSES,
) -> dict:
    """Return a receipt with a random status, err-code and (unless given) message-timestamp."""
    status = rng.choice(statuses)
    err_code = "0" if status in SUCCESS_STATUSES else rng.choice(ERROR_CODES)
    if message_time is None:
        message_time = WINDOW_START + timedelta(seconds=rng.randrange(WINDOW_SECONDS))
    return make_receipt(message_id, status, err_code, message_time)


def new_session() -> requests.Session:
    session = requests.Session()
    # Ignore proxy settings in the environment: every request must go to loopback.
    session.trust_env = False
    return session


def post_receipt(session: requests.Session, base_url: str, style: str, fields: dict):
    """Send one receipt in the given style and return the response."""
    url = base_url + RECEIPT_PATH
    if style == "json":
        return session.post(url, json=fields, timeout=REQUEST_TIMEOUT)
    if style == "form":
        return session.post(url, data=fields, timeout=REQUEST_TIMEOUT)
    if style == "query":
        return session.get(url, params=fields, timeout=REQUEST_TIMEOUT)
    raise ValueError(f"invalid receipt style {style!r}: use one of {', '.join(STYLES)}")


def send_receipts(
    base_url: str, jobs: list[tuple[str, dict]], synchronized_rounds: int = 0
) -> list[int | str]:
    """Send each (style, fields) job once, in order, and return one outcome per job.

    After join_rounds, each of the first `synchronized_rounds` jobs waits until every
    client has reached the same job. An outcome is the reply's HTTP status code, or
    the error's text when no reply came.
    """
    outcomes: list[int | str] = []
    with new_session() as session:
        for index, (style, fields) in enumerate(jobs):
            if _round_barrier is not None and index < synchronized_rounds:
                try:
                    _round_barrier.wait(timeout=ROUND_TIMEOUT)
                except threading.BrokenBarrierError:
                    outcomes.append("not sent: another client stopped or timed out in a round")
                    continue
            try:
                response = post_receipt(session, base_url, style, fields)
            except requests.RequestException as error:
                outcomes.append(f"{type(error).__name__}: {error}")
                continue
            outcomes.append(response.status_code)
    return outcomes


def send_until_connection_fails(
    base_url: str, message_ids: list[str], seed: int, time_limit: float
):
    """Send random receipts until a request gets no reply, or for time_limit seconds.

    Returns (acknowledged, other_replies, stop_reason): the fields of every receipt
    that got a 2xx reply, the (status code, fields) of every other reply, and why
    sending stopped.
    """
    rng = random.Random(seed)
    acknowledged: list[dict] = []
    other_replies: list[tuple[int, dict]] = []
    deadline = time.monotonic() + time_limit
    with new_session() as session:
        while time.monotonic() < deadline:
            fields = random_receipt(rng, rng.choice(message_ids))
            try:
                response = post_receipt(session, base_url, rng.choice(STYLES), fields)
            except requests.RequestException as error:
                return acknowledged, other_replies, f"{type(error).__name__}: {error}"
            if 200 <= response.status_code < 300:
                acknowledged.append(fields)
            else:
                other_replies.append((response.status_code, fields))
    return acknowledged, other_replies, f"time limit of {time_limit} s reached"
