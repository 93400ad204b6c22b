"""Tests for the SMS sandbox, driven through the real vonage SDK over HTTPS on 127.0.0.1."""

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import RateLimitedError, ServerError
from vonage_sms import SmsError, SmsMessage

from sandbox import SandboxGateway, sign_params

# The sandbox never contacts this host because it keeps only the path and query of a callback.
CALLBACK = "http://dlr.example.invalid:8443/hooks/dlr?token=abc123"
CALLBACK_PATH = "/hooks/dlr?token=abc123"
RECEIPT_FIELDS = {
    "msisdn", "to", "network-code", "messageId", "price", "status", "scts", "err-code",
    "api-key", "message-timestamp", "client-ref",
}
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

VECTOR_SECRET = "test-signature-secret-0123456789"
VECTOR_PARAMS = {
    "msisdn": "14155550100", "to": "AcmeInc", "network-code": "310090",
    "messageId": "0A0000001234567B", "price": "0.00570000", "status": "delivered",
    "scts": "2612041200", "err-code": "0", "api-key": "abcd1234",
    "message-timestamp": "2026-12-04 12:00:05", "client-ref": "sms-42&x=1",
    "timestamp": "1796392805", "nonce": "6f1c2a9e-0d1b-4c5e-9a77-1d2e3f4a5b6c",
}
VECTOR_SIGNATURES = {
    "md5": "a099dc74a76f603fb92c8b20849941b1",
    "sha1": "53dab06f1a58a0748494350271c82c01467873c5",
    "sha256": "7e731a8fa70e89befad839ebd4ec570851fdd33e5e824f5a422631a192d719e0",
    "md5hash": "ce52b352ecb81a8b3916dbbca90b3940",
}


class ReceiptReceiver:
    """Webhook on 127.0.0.1 that records each POSTed JSON body with its path and query."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.reply_status = 204
        self.delay_seconds = 0.0
        self.condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                with receiver.condition:
                    receiver.posts.append((self.path, body))
                    receiver.condition.notify_all()
                time.sleep(receiver.delay_seconds)
                self.send_response(receiver.reply_status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 3.0) -> list[dict]:
        """Wait until ``count`` receipts arrived and return all bodies received so far."""
        with self.condition:
            self.condition.wait_for(lambda: len(self.posts) >= count, timeout)
            return [body for _, body in self.posts]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    webhook = ReceiptReceiver()
    yield webhook
    webhook.stop()


def start_gateway(receiver: ReceiptReceiver, work_dir, **options) -> SandboxGateway:
    gateway = SandboxGateway(receipt_delay=0.05, hang_seconds=3, work_dir=str(work_dir),
                             **options)
    gateway.start()
    gateway.webhook_port = receiver.port
    return gateway


@pytest.fixture
def gateway(receiver, tmp_path):
    sandbox = start_gateway(receiver, tmp_path)
    yield sandbox
    sandbox.stop()


def make_client(gateway: SandboxGateway) -> Vonage:
    client = Vonage(
        Auth(api_key="sandbox", api_secret="sandbox"),
        HttpClientOptions(rest_host=gateway.rest_host, timeout=1, max_retries=0, pool_maxsize=1),
    )
    # REQUESTS_CA_BUNDLE in the environment would override verify unless trust_env is off.
    session = client.http_client._session
    session.trust_env = False
    session.verify = gateway.ca_path
    return client


@pytest.fixture
def client(gateway):
    vonage_client = make_client(gateway)
    yield vonage_client
    vonage_client.http_client._session.close()


def send(client: Vonage, to: str, text: str = "hi", **options):
    message = SmsMessage(to=to, from_="smstrack", text=text, client_ref="ref-42",
                         callback=CALLBACK, **options)
    return client.sms.send(message)


def parse_timestamp(receipt: dict) -> datetime:
    return datetime.strptime(receipt["message-timestamp"], TIMESTAMP_FORMAT)


def test_delivered_reply_parsed_by_sdk(client, gateway):
    response = send(client, "14155550100")

    assert response.message_count == "1"
    message = response.messages[0]
    assert message.status == "0"
    assert message.to == "14155550100"
    assert re.fullmatch(r"[0-9A-F]{16}", message.message_id)
    assert message.client_ref == "ref-42"
    assert message.message_price == "0.00570000"
    assert message.network == "310090"
    assert re.fullmatch(r"\d+\.\d{8}", message.remaining_balance)
    assert len(gateway.requests_received) == 1
    assert gateway.requests_received[0]["to"] == "14155550100"


def test_delivered_receipt_fields(client, receiver):
    message_id = send(client, "14155550100").messages[0].message_id

    receipts = receiver.wait_for(1)
    assert len(receipts) == 1
    receipt = receipts[0]
    assert set(receipt) == RECEIPT_FIELDS
    assert all(isinstance(value, str) for value in receipt.values())
    assert receipt["msisdn"] == "14155550100"
    assert receipt["to"] == "smstrack"
    assert receipt["messageId"] == message_id
    assert receipt["status"] == "delivered"
    assert receipt["err-code"] == "0"
    assert receipt["client-ref"] == "ref-42"
    assert receipt["api-key"] == "sandbox"
    assert receipt["network-code"] == "310090"
    assert receipt["price"] == "0.00570000"
    assert re.fullmatch(r"\d{10}", receipt["scts"])
    assert parse_timestamp(receipt).strftime("%y%m%d%H%M") == receipt["scts"]


def test_receipt_path_and_query_from_callback(client, receiver):
    send(client, "14155550100")

    receiver.wait_for(1)
    assert receiver.posts[0][0] == CALLBACK_PATH


def test_receipt_default_path_without_callback(client, receiver):
    client.sms.send(SmsMessage(to="14155550100", from_="smstrack", text="hi"))

    receipts = receiver.wait_for(1)
    assert receiver.posts[0][0] == "/webhooks/delivery-receipt"
    assert "client-ref" not in receipts[0]


def test_long_gsm_text_two_parts(client, receiver):
    response = send(client, "14155550100", text="a" * 161)

    assert response.message_count == "2"
    message_ids = [message.message_id for message in response.messages]
    assert len(set(message_ids)) == 2
    receipts = receiver.wait_for(2)
    assert sorted(receipt["messageId"] for receipt in receipts) == sorted(message_ids)
    assert all(receipt["status"] == "delivered" for receipt in receipts)


def test_unicode_text_splits_at_70(client, receiver):
    assert send(client, "14155550100", text="é" * 70, type="unicode").message_count == "1"
    assert send(client, "14155550100", text="ж" * 71, type="unicode").message_count == "2"


def test_failure_applies_to_every_part(client, receiver):
    response = send(client, "14155550103", text="b" * 200)

    assert response.message_count == "2"
    receipts = receiver.wait_for(2)
    assert len(receipts) == 2
    assert {receipt["messageId"] for receipt in receipts} == {
        message.message_id for message in response.messages
    }
    assert [receipt["status"] for receipt in receipts] == ["failed", "failed"]
    assert [receipt["err-code"] for receipt in receipts] == ["6", "6"]


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("14155550101", [("accepted", "0"), ("delivered", "0")]),
        ("14155550102", [("buffered", "0"), ("expired", "1")]),
        ("14155550103", [("failed", "6")]),
        ("14155550104", [("rejected", "9")]),
    ],
)
def test_receipt_sequence(client, receiver, to, expected):
    send(client, to)

    receipts = receiver.wait_for(len(expected))
    assert [(receipt["status"], receipt["err-code"]) for receipt in receipts] == expected
    stamps = [parse_timestamp(receipt) for receipt in receipts]
    for earlier, later in zip(stamps, stamps[1:], strict=False):
        assert (later - earlier).total_seconds() == 1


def test_late_accepted_has_earlier_timestamp(client, receiver):
    send(client, "14155550105")

    receipts = receiver.wait_for(2)
    assert [receipt["status"] for receipt in receipts] == ["delivered", "accepted"]
    delivered, accepted = (parse_timestamp(receipt) for receipt in receipts)
    assert accepted < delivered


def test_duplicate_receipt_posted_three_times(client, receiver):
    send(client, "14155550106")

    receipts = receiver.wait_for(3)
    assert len(receipts) == 3
    assert receipts[0]["status"] == "delivered"
    assert receipts[1] == receipts[0]
    assert receipts[2] == receipts[0]


def test_early_receipt_arrives_before_reply(client, receiver):
    response = send(client, "14155550107")

    # No waiting: the receipt must already be there when send() returns.
    assert len(receiver.posts) == 1
    assert receiver.posts[0][1]["messageId"] == response.messages[0].message_id
    assert receiver.posts[0][1]["status"] == "delivered"


def test_early_receipt_reply_waits_at_most_two_seconds(gateway, receiver):
    # A webhook that responds late is like a single-worker app that is busy with this send.
    receiver.delay_seconds = 3
    started = time.monotonic()

    with requests.Session() as session:
        session.trust_env = False
        response = session.post(f"https://{gateway.rest_host}/sms/json",
                                 data={"to": "14155550107", "from": "smstrack", "text": "hi"},
                                 auth=("key", "secret"), verify=gateway.ca_path, timeout=5)

    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert 1.9 < elapsed < 2.8


@pytest.mark.parametrize("to, code", [
    ("14155550151", "1"), ("14155550153", "3"), ("14155550154", "4"), ("14155550159", "9"),
])
def test_send_status_raises_sms_error(client, gateway, receiver, to, code):
    with pytest.raises(SmsError, match=f"error code {code}: "):
        send(client, to)

    assert len(gateway.requests_received) == 1


def test_throttled_error_text(client):
    with pytest.raises(SmsError, match=r"Throughput Rate Exceeded - please wait \[ 30 \]"):
        send(client, "14155550151")


def test_http_500_raises_server_error(client):
    with pytest.raises(ServerError):
        send(client, "14155550160")


def test_http_429_raises_rate_limited_error(client):
    with pytest.raises(RateLimitedError):
        send(client, "14155550161")


def test_hang_raises_read_timeout(client, gateway):
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        send(client, "14155550170")
    assert time.monotonic() - started < 2

    stop_started = time.monotonic()
    gateway.stop()
    assert time.monotonic() - stop_started < 1


def test_dropped_connection_raises_connection_error(client, gateway):
    with pytest.raises(requests.exceptions.ConnectionError):
        send(client, "14155550171")

    assert len(gateway.requests_received) == 1


def test_no_receipt_for_0199(client, receiver):
    assert send(client, "14155550199").messages[0].status == "0"

    time.sleep(0.5)
    assert receiver.posts == []


def test_no_receipt_without_webhook_port(client, gateway, receiver, caplog):
    gateway.webhook_port = None

    with caplog.at_level(logging.WARNING, logger="sandbox"):
        assert send(client, "14155550100").messages[0].status == "0"
    time.sleep(0.2)

    assert receiver.posts == []
    assert "no webhook_port" in caplog.text


def test_failed_receipt_post_is_retried(client, receiver, caplog):
    receiver.reply_status = 500

    with caplog.at_level(logging.WARNING, logger="sandbox"):
        send(client, "14155550100")
        receipts = receiver.wait_for(3)
        time.sleep(0.3)

    assert len(receipts) == 3
    assert receipts[1] == receipts[0]
    assert "returned HTTP 500 (attempt 3 of 3)" in caplog.text
    assert "abc123" not in caplog.text


def test_info_logs_mask_phone_number(client, receiver, caplog):
    with caplog.at_level(logging.INFO, logger="sandbox"):
        send(client, "14155550100")
        receiver.wait_for(1)

    assert "*******0100" in caplog.text
    assert "14155550100" not in caplog.text


def test_missing_authorization_returns_401(gateway):
    with requests.Session() as session:
        session.trust_env = False
        response = session.post(f"https://{gateway.rest_host}/sms/json",
                                 data={"to": "14155550100", "from": "smstrack", "text": "hi"},
                                 verify=gateway.ca_path, timeout=5)

    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"
    assert len(gateway.requests_received) == 1


@pytest.mark.parametrize("form, status, error_text", [
    ({"to": "14155550100", "text": "hi"}, "2", "Missing from param"),
    ({"from": "smstrack", "to": "14155550100"}, "2", "Missing text param"),
    ({"from": "smstrack", "to": "call-me", "text": "hi"}, "3", "Invalid to param"),
    ({"from": "smstrack", "to": "14155550100", "text": "hi", "type": "wap"}, "3",
     "Invalid Message type"),
    ({"from": "smstrack", "to": "07700900123", "text": "hi"}, "6", "Invalid Message"),
    ({"from": "SenderTooLong", "to": "14155550100", "text": "hi"}, "15",
     "Illegal Sender Address - rejected"),
])
def test_invalid_parameters_rejected(gateway, form, status, error_text):
    with requests.Session() as session:
        session.trust_env = False
        response = session.post(f"https://{gateway.rest_host}/sms/json", data=form,
                                 auth=("key", "secret"), verify=gateway.ca_path, timeout=5)

    assert response.status_code == 200
    assert response.json() == {
        "message-count": "1", "messages": [{"status": status, "error-text": error_text}],
    }


def test_untrusted_client_fails_tls(gateway):
    with requests.Session() as session:
        session.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            session.post(f"https://{gateway.rest_host}/sms/json", data={"to": "14155550100"},
                         auth=("key", "secret"), timeout=5)


def test_start_is_idempotent(gateway):
    rest_host = gateway.rest_host

    gateway.start()

    assert gateway.rest_host == rest_host


def test_concurrent_start_runs_one_server(tmp_path):
    sandbox = SandboxGateway(work_dir=str(tmp_path))
    starters = [threading.Thread(target=sandbox.start) for _ in range(5)]
    try:
        for starter in starters:
            starter.start()
        for starter in starters:
            starter.join()
        rest_host = sandbox.rest_host
        sandbox.start()
        assert sandbox.rest_host == rest_host
    finally:
        sandbox.stop()

    assert len(list(tmp_path.glob("*.pem"))) == 1
    with pytest.raises(RuntimeError, match="call start"):
        _ = sandbox.rest_host


@pytest.mark.parametrize("method", sorted(VECTOR_SIGNATURES))
def test_sign_params_matches_vector(method):
    assert sign_params(VECTOR_PARAMS, VECTOR_SECRET, method) == VECTOR_SIGNATURES[method]


def test_sign_params_sha512_and_sig_ignored():
    payload = "".join(
        f"&{name}={value.replace('&', '_').replace('=', '_')}"
        for name, value in sorted(VECTOR_PARAMS.items())
    )
    expected = hmac.new(VECTOR_SECRET.encode(), payload.encode(), hashlib.sha512).hexdigest()

    assert sign_params(VECTOR_PARAMS, VECTOR_SECRET, "sha512") == expected
    with_sig = dict(VECTOR_PARAMS, sig="anything")
    assert sign_params(with_sig, VECTOR_SECRET, "sha512") == expected


def test_sign_params_rejects_unknown_method():
    with pytest.raises(ValueError, match="invalid signature method"):
        sign_params(VECTOR_PARAMS, VECTOR_SECRET, "crc32")


@pytest.mark.parametrize("method", ["md5hash", "sha256"])
def test_signed_receipt_verifies(receiver, tmp_path, method):
    secret = "receipt-secret-for-tests"
    sandbox = start_gateway(receiver, tmp_path, signature_secret=secret, signature_method=method)
    client = make_client(sandbox)
    try:
        send(client, "14155550100")
        receipts = receiver.wait_for(1)
    finally:
        client.http_client._session.close()
        sandbox.stop()

    receipt = receipts[0]
    assert set(receipt) == RECEIPT_FIELDS | {"timestamp", "nonce", "sig"}
    assert abs(int(receipt["timestamp"]) - time.time()) < 60
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
                        receipt["nonce"])
    assert sign_params(receipt, secret, method) == receipt["sig"]
    assert sign_params(receipt, "wrong-secret", method) != receipt["sig"]
