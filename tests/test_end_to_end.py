"""End to end: the form, the real Vonage SDK over HTTPS to the sandbox, and back.

The app runs on a real loopback port, because the sandbox posts its receipts to the
port the send request arrived on.
"""

import re
import time

import pytest
from sqlalchemy import select

from conftest import form_tokens, signed_in_server
from models import Receipt, Sms, db

ROW = re.compile(r'<tr data-sms-id="(\d+)" data-status="([^"]+)"')
PART = re.compile(r'data-message-id="([^"]*)" data-status="([^"]+)"')


@pytest.fixture
def served(app):
    with signed_in_server(app) as (base_url, session):
        yield base_url, session


@pytest.fixture
def live_server(served):
    return served[0]


@pytest.fixture
def browser_session(served):
    return served[1]


def send(session, base_url, to, text="Hello from the test suite", **extra):
    """Submit the send form and return the id of the stored message."""
    tokens = form_tokens(session.get(f"{base_url}/messages/new", timeout=10).text)
    response = session.post(
        f"{base_url}/messages", data={**tokens, "to": to, "text": text, **extra}, timeout=30
    )
    assert response.status_code == 200, response.text
    rows = ROW.findall(response.text)
    assert rows, "the list shows no message after sending"
    return int(rows[0][0]), response.text


def wait_for_status(session, base_url, sms_id, expected, timeout=10.0):
    """Reload the list until the message's row shows `expected`; return the detail page."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        rows = dict(ROW.findall(session.get(f"{base_url}/", timeout=10).text))
        status = rows.get(str(sms_id))
        if status == expected:
            return session.get(f"{base_url}/messages/{sms_id}", timeout=10).text
        time.sleep(0.05)
    pytest.fail(f"message {sms_id} shows {status!r} after {timeout} s, expected {expected!r}")


def sandbox(app):
    gateway, _owner = app.extensions["smstrack_sandbox"]
    return gateway


@pytest.mark.parametrize(
    ("number", "final", "shown"),
    [
        ("+14155550100", "delivered", None),
        ("+14155550101", "delivered", None),
        ("+14155550102", "expired", "err-code 1: Unknown"),
        ("+14155550103", "failed", "err-code 6: Anti-spam rejection"),
        ("+14155550104", "rejected", "err-code 9: Illegal number (opted out)"),
        ("+14155550105", "delivered", None),
        ("+14155550106", "delivered", None),
        ("+14155550107", "delivered", None),
    ],
)
def test_receipt_outcomes(app, live_server, browser_session, number, final, shown):
    sms_id, _page = send(browser_session, live_server, number)

    detail = wait_for_status(browser_session, live_server, sms_id, final)

    assert f'data-status="{final}"' in detail
    assert PART.findall(detail)[0][1] == final
    if shown:
        assert shown in detail
        assert shown.split(": ")[1] in browser_session.get(f"{live_server}/", timeout=10).text
    assert len(sandbox(app).requests_received) == 1


def test_late_accepted_stays_delivered(app, live_server, browser_session):
    sms_id, _page = send(browser_session, live_server, "+14155550105")
    wait_for_status(browser_session, live_server, sms_id, "delivered")

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        detail = browser_session.get(f"{live_server}/messages/{sms_id}", timeout=10).text
        if detail.count('class="receipt"') == 2:
            break
        time.sleep(0.05)

    assert detail.count('class="receipt"') == 2
    assert 'data-status="accepted"' in detail
    assert f'data-sms-id="{sms_id}" data-status="delivered"' in detail


def test_triple_receipt_stored_once(app, live_server, browser_session):
    sms_id, _page = send(browser_session, live_server, "+14155550106")
    wait_for_status(browser_session, live_server, sms_id, "delivered")
    time.sleep(0.5)  # let the other two copies arrive

    with app.app_context():
        assert len(db.session.scalars(select(Receipt)).all()) == 1


def test_two_part_message(app, live_server, browser_session):
    sms_id, _page = send(browser_session, live_server, "+14155550100", text="x" * 161)

    detail = wait_for_status(browser_session, live_server, sms_id, "delivered")

    parts = PART.findall(detail)
    assert len(parts) == 2
    assert all(status == "delivered" for _message_id, status in parts)
    assert parts[0][0] != parts[1][0]
    with app.app_context():
        sms = db.session.get(Sms, sms_id)
        assert sms.segments == 2
        assert str(sms.total_price) == "0.01140000"


def test_formatted_number_matches_msisdn(app, live_server, browser_session):
    sms_id, _page = send(browser_session, live_server, "+1 (415) 555-0100")
    detail = wait_for_status(browser_session, live_server, sms_id, "delivered")

    with app.app_context():
        sms = db.session.get(Sms, sms_id)
        receipt = db.session.scalars(select(Receipt)).one()
        assert sms.recipient == "14155550100"
        assert receipt.payload["msisdn"] == sms.recipient
    assert "+14155550100" in detail


def test_number_without_plus_uses_region(app, live_server, browser_session):
    sms_id, _page = send(browser_session, live_server, "(415) 555-0100")

    with app.app_context():
        assert db.session.get(Sms, sms_id).recipient == "14155550100"


def test_emoji_sent_as_unicode(app, live_server, browser_session):
    sms_id, _page = send(browser_session, live_server, "+14155550100", text="Done \U0001f44d")

    with app.app_context():
        assert db.session.get(Sms, sms_id).encoding.value == "unicode"
    assert sandbox(app).requests_received[0]["type"] == "unicode"
    assert sandbox(app).requests_received[0]["text"] == "Done \U0001f44d"


def test_repeated_submission_sends_once(app, live_server, browser_session):
    tokens = form_tokens(browser_session.get(f"{live_server}/messages/new", timeout=10).text)
    fields = {**tokens, "to": "+14155550100", "text": "Only once"}

    first = browser_session.post(f"{live_server}/messages", data=fields, timeout=30)
    second = browser_session.post(f"{live_server}/messages", data=fields, timeout=30)

    assert first.status_code == 200
    assert second.status_code == 200
    assert len(sandbox(app).requests_received) == 1
    with app.app_context():
        assert len(db.session.scalars(select(Sms)).all()) == 1


def test_sender_override_sent(app, live_server, browser_session):
    send(browser_session, live_server, "+14155550100", sender="AcmeInc")

    assert sandbox(app).requests_received[0]["from"] == "AcmeInc"


def test_public_url_sets_callback(make_app):
    """With PUBLIC_URL the SDK sends it as `callback`; sandbox receipts still use loopback."""
    app = make_app(PUBLIC_URL="http://team.example.test", WEBHOOK_TOKEN="tok3n")

    with signed_in_server(app) as (base_url, session):
        sms_id, _page = send(session, base_url, "+14155550100")
        wait_for_status(session, base_url, sms_id, "delivered")

    callback = sandbox(app).requests_received[0]["callback"]
    assert callback == "http://team.example.test/webhooks/delivery-receipt?t=tok3n"


def test_logs_mask_phone_numbers(app, live_server, browser_session, caplog):
    with caplog.at_level("INFO"):
        sms_id, _page = send(browser_session, live_server, "+14155550103")
        wait_for_status(browser_session, live_server, sms_id, "failed")

    info = [record.getMessage() for record in caplog.records if record.levelno >= 20]
    assert any("*******0103" in line for line in info)
    assert not any("14155550103" in line for line in info)


@pytest.mark.parametrize("method", ["md5hash", "sha256"])
def test_signed_receipts_end_to_end(make_app, method):
    """The sandbox signs its receipts with the app's secret; the app verifies them."""
    app = make_app(
        VONAGE_SIGNATURE_SECRET="sandbox-signature-secret",
        VONAGE_SIGNATURE_METHOD=method,
        WEBHOOK_TOKEN="tok3n",
    )

    with signed_in_server(app) as (base_url, session):
        sms_id, _page = send(session, base_url, "+14155550101")
        wait_for_status(session, base_url, sms_id, "delivered")

    with app.app_context():
        stored = db.session.scalars(select(Receipt)).all()
        assert len(stored) == 2
        assert all(receipt.payload.get("sig") for receipt in stored)


def test_token_with_url_characters_delivered(make_app):
    """A base64 token (+, /, =) survives the trip through the callback URL."""
    app = make_app(PUBLIC_URL="http://team.example.test", WEBHOOK_TOKEN="Zm9v+YmFy/YmF6=")

    with signed_in_server(app) as (base_url, session):
        sms_id, _page = send(session, base_url, "+14155550100")
        wait_for_status(session, base_url, sms_id, "delivered")
