"""Every send fault through the real SDK to the sandbox: the stored state, the page
text, and how many requests reached the provider (one, unless throttled)."""

import socket
import threading
import time

import pytest
import requests
from vonage import Auth, HttpClientOptions, Vonage
from vonage_sms import SmsMessage

from conftest import form_tokens, signed_in_server
from models import Sms, Status, db
from sending import THROTTLE_ATTEMPTS, classify_failure
from test_end_to_end import ROW, send, wait_for_status

SEND_STATUS_TEXT = {
    "02": "Missing parameters",
    "03": "Invalid parameters",
    "04": "check VONAGE_API_KEY and VONAGE_API_SECRET",
    "05": "Internal error at Vonage",
    "06": "Invalid message",
    "07": "Number barred",
    "08": "Partner account barred",
    "09": "top up the Vonage account",
    "10": "Too many existing binds",
    "11": "Account not enabled for HTTP",
    "12": "Message too long",
    "14": "Invalid signature",
    "15": "use another sender id",
    "22": "Invalid network code",
    "23": "Invalid callback URL",
    "29": "trial account",
    "32": "Signature and API secret both sent",
    "33": "Number de-activated",
}


@pytest.fixture
def served(make_app):
    """An app on a real loopback port, with a signed-in client and its sandbox."""
    app = make_app(SANDBOX_HANG_SECONDS=2)
    with signed_in_server(app) as (base_url, session):
        yield app, base_url, session


def sandbox_requests(app):
    gateway, _owner = app.extensions["smstrack_sandbox"]
    return gateway.requests_received


def stored(app, sms_id):
    with app.app_context():
        sms = db.session.get(Sms, sms_id)
        return sms.status, sms.error_code, sms.error_text


@pytest.mark.parametrize(("suffix", "shown"), sorted(SEND_STATUS_TEXT.items()))
def test_send_status_refused(served, suffix, shown):
    app, base_url, session = served
    code = str(int(suffix))
    number = f"+141555501{suffix}" if len(code) == 2 else f"+1415555015{code}"

    sms_id, page = send(session, base_url, number)

    assert f'data-sms-id="{sms_id}" data-status="send-failed"' in page
    assert shown in page
    assert f"(status {code})" in page
    assert stored(app, sms_id)[:2] == (Status.SEND_FAILED, code)
    assert len(sandbox_requests(app)) == 1
    detail = session.get(f"{base_url}/messages/{sms_id}", timeout=10).text
    assert "Vonage did not send this message" in detail


@pytest.mark.parametrize(
    ("number", "final", "code", "shown"),
    [
        ("+14155550162", "send-failed", "HTTP 401", "rejected the API key or secret"),
        ("+14155550163", "send-failed", "HTTP 403", "denied access"),
        ("+14155550160", "outcome-unknown", "HTTP 500", "may have been sent"),
        ("+14155550164", "outcome-unknown", "HTTP 502", "may have been sent"),
        ("+14155550170", "outcome-unknown", "timeout", "did not reply in time"),
        ("+14155550171", "outcome-unknown", "connection lost", "connection to Vonage dropped"),
    ],
)
def test_http_and_network_faults(served, number, final, code, shown):
    app, base_url, session = served

    sms_id, page = send(session, base_url, number)

    assert f'data-sms-id="{sms_id}" data-status="{final}"' in page
    assert shown in page
    assert stored(app, sms_id)[:2] == (Status(final), code)
    assert len(sandbox_requests(app)) == 1
    if final == "outcome-unknown":
        assert "will not be sent again" in page


@pytest.mark.parametrize("number", ["+14155550151", "+14155550161"])
def test_throttled_retried_then_failed(served, number):
    app, base_url, session = served

    started = time.monotonic()
    sms_id, page = send(session, base_url, number)
    elapsed = time.monotonic() - started

    assert f'data-sms-id="{sms_id}" data-status="send-failed"' in page
    assert "wait a minute" in page or "rate limiting" in page
    assert len(sandbox_requests(app)) == THROTTLE_ATTEMPTS
    assert 1.0 < elapsed < 10


@pytest.mark.parametrize("number", ["+14155550165", "+14155550166"])
def test_throttled_once_then_sent(served, number):
    app, base_url, session = served

    sms_id, page = send(session, base_url, number)

    assert f'data-sms-id="{sms_id}" data-status="submitted"' in page
    wait_for_status(session, base_url, sms_id, "delivered")
    requests_made = sandbox_requests(app)
    assert len(requests_made) == 2
    assert requests_made[0]["client-ref"] == requests_made[1]["client-ref"]


def test_timeout_resolved_by_late_receipt(served):
    """The sandbox accepts the hung request after the client gave up, like Vonage may:
    the receipt's client-ref then settles the message, with no second send."""
    app, base_url, session = served

    sms_id, page = send(session, base_url, "+14155550170")
    assert f'data-sms-id="{sms_id}" data-status="outcome-unknown"' in page

    detail = wait_for_status(session, base_url, sms_id, "delivered", timeout=15)
    assert "receipts later showed that Vonage had the message" in detail
    assert len(sandbox_requests(app)) == 1


def test_concurrent_double_submit_sends_once(served):
    app, base_url, session = served
    tokens = form_tokens(session.get(f"{base_url}/messages/new", timeout=10).text)
    fields = {**tokens, "to": "+14155550100", "text": "Exactly once"}
    cookies = session.cookies.get_dict()
    barrier = threading.Barrier(2)
    codes = []

    def submit():
        barrier.wait()
        response = requests.post(
            f"{base_url}/messages", data=fields, cookies=cookies, timeout=30
        )
        codes.append(response.status_code)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert codes == [200, 200]
    assert len(sandbox_requests(app)) == 1
    with app.app_context():
        assert db.session.query(Sms).count() == 1


def test_submitted_message_flagged_overdue(make_app):
    app = make_app(RECEIPT_OVERDUE_AFTER=1)
    with signed_in_server(app) as (base_url, session):
        sms_id, _page = send(session, base_url, "+14155550199")
        time.sleep(1.2)
        listing = session.get(f"{base_url}/", timeout=10).text
        detail = session.get(f"{base_url}/messages/{sms_id}", timeout=10).text

    assert ROW.search(listing)
    assert f'data-sms-id="{sms_id}" data-status="submitted" data-overdue="true"' in listing
    assert 'data-overdue="true"' in detail
    assert "No final receipt has arrived yet" in detail


# Faults before the request leaves: real SDK exceptions, classified ---------------------


def sdk_client(rest_host):
    client = Vonage(
        Auth(api_key="sandbox", api_secret="sandbox"),
        HttpClientOptions(rest_host=rest_host, timeout=1, max_retries=0, pool_maxsize=1),
    )
    client.http_client._session.trust_env = False
    return client


def send_error(client):
    message = SmsMessage(to="14155550100", from_="smstrack", text="Hi")
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the type is what is checked
        client.sms.send(message)
    return caught.value


def test_connection_refused_is_send_failed():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    failure = classify_failure(send_error(sdk_client(f"127.0.0.1:{closed_port}")))

    assert failure.status == Status.SEND_FAILED
    assert "Could not reach Vonage" in failure.text


def test_connect_timeout_is_send_failed():
    """A listener whose backlog is full never completes the handshake: a connect timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        host = f"127.0.0.1:{listener.getsockname()[1]}"

        error = send_error(sdk_client(host))
    finally:
        for filler in fillers:
            filler.close()
        listener.close()

    assert isinstance(error, requests.exceptions.ConnectTimeout)
    assert classify_failure(error).status == Status.SEND_FAILED


def test_untrusted_certificate_is_send_failed(served):
    """A TLS failure happens before any request byte is sent."""
    app, base_url, session = served
    send(session, base_url, "+14155550199")
    gateway, _owner = app.extensions["smstrack_sandbox"]
    client = sdk_client(gateway.rest_host)  # system CAs only: the sandbox CA is not trusted

    failure = classify_failure(send_error(client))

    assert failure.status == Status.SEND_FAILED
