"""Send a stored message through the Vonage SDK and record every part of the outcome.

The message row is committed before this module calls Vonage, so no outcome can be
lost: each path below ends in a stored status (see `classify_failure`).
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import requests
import urllib3.exceptions
from flask import current_app, url_for
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from vonage import Auth, HttpClientOptions, Vonage
from vonage_http_client.errors import (
    AuthenticationError,
    ForbiddenError,
    HttpRequestError,
    RateLimitedError,
)
from vonage_sms import PartialFailureError, SmsError, SmsMessage

import state
from models import Sms, SmsPart, Status, db, utcnow
from sandbox import SandboxGateway, mask_number
from vonage_codes import send_status_meaning

log = logging.getLogger("smstrack.sending")

SANDBOX_CREDENTIAL = "sandbox"
# The sandbox keeps only the path and query of a callback and posts to loopback.
SANDBOX_CALLBACK_BASE = "http://127.0.0.1"
RECORD_ATTEMPTS = 3
# Throttling (send status 1 or HTTP 429) means nothing was sent, so the send is tried
# again: 3 attempts with 0.5 s and 1 s between them, 1.5 s in all.
THROTTLE_ATTEMPTS = 3
THROTTLE_BACKOFF_SECONDS = 0.5
# Seconds beyond VONAGE_TIMEOUT before a `pending` message counts as interrupted.
INTERRUPTED_AFTER_SLACK = 60
# Numeric(14, 8) stores at most six digits before the decimal point.
MAX_PRICE = Decimal("1000000")


@dataclass(frozen=True)
class Failure:
    """The outcome of a failed send: its status, a code and a text for people."""

    status: Status
    code: str
    text: str


_sandbox_lock = threading.Lock()


def sandbox_gateway(app) -> SandboxGateway:
    """Return this process's sandbox gateway, starting it on first use.

    Under a forking server every worker is its own process and gets its own gateway.
    """
    with _sandbox_lock:
        gateway, owner = app.extensions.get("smstrack_sandbox", (None, None))
        if gateway is None or owner != os.getpid():
            config = app.config
            gateway = SandboxGateway(
                receipt_delay=config["SANDBOX_RECEIPT_DELAY"],
                hang_seconds=config["SANDBOX_HANG_SECONDS"] or config["VONAGE_TIMEOUT"] + 5,
                signature_secret=app.config.get("VONAGE_SIGNATURE_SECRET"),
                signature_method=app.config["VONAGE_SIGNATURE_METHOD"],
            )
            gateway.start()
            app.extensions["smstrack_sandbox"] = (gateway, os.getpid())
        return gateway


def build_client(webhook_port: int | None) -> Vonage:
    """Return a Vonage client for one send: a timeout and no transport retries.

    A fresh client per send keeps `last_response` unambiguous and shares no
    `requests` session between threads.
    """
    config = current_app.config
    options = {
        "timeout": config["VONAGE_TIMEOUT"],
        # A retried POST can deliver one SMS twice. vonage-http-client 1.5.2 re-posts
        # on a dropped connection up to pool_maxsize times, so both must be 1 and 0.
        "max_retries": 0,
        "pool_maxsize": 1,
    }
    verify = True
    if config["SANDBOX"]:
        gateway = sandbox_gateway(current_app._get_current_object())
        gateway.webhook_port = webhook_port
        options["rest_host"] = gateway.rest_host
        verify = gateway.ca_path
        auth = Auth(api_key=SANDBOX_CREDENTIAL, api_secret=SANDBOX_CREDENTIAL)
    else:
        auth = Auth(api_key=config["VONAGE_API_KEY"], api_secret=config["VONAGE_API_SECRET"])

    client = Vonage(auth, HttpClientOptions(**options))
    # NOTE: `_session` is private in vonage-http-client 1.5.2 (pinned). Without
    # trust_env=False, REQUESTS_CA_BUNDLE would replace `verify` with the system CAs.
    session = client.http_client._session
    session.trust_env = False
    session.verify = verify
    return client


def send_sms(sms: Sms, webhook_port: int | None = None) -> None:
    """Send a committed message through Vonage and store the outcome of every part."""
    sms_id = sms.id
    log.info("Sending sms %s to %s (%s segment(s))", sms_id, mask_number(sms.recipient),
             sms.segments)
    try:
        message = SmsMessage(
            to=sms.recipient,
            from_=sms.sender,
            text=sms.text,
            type=sms.encoding.value,
            client_ref=sms.client_ref,
            callback=callback_url(),
        )
    except ValidationError as error:
        # The SDK checks the request before sending it, so nothing went out.
        failure = Failure(Status.SEND_FAILED, "invalid request", f"The request is invalid: {error}")
        log.error("Send of sms %s not attempted: %s", sms_id, error)
        with_retries(record_failure, sms_id, failure)
        return
    client = build_client(webhook_port)
    # Return the database connection to the pool while waiting for Vonage's reply,
    # which can take up to VONAGE_TIMEOUT seconds.
    db.session.rollback()

    for attempt in range(1, THROTTLE_ATTEMPTS + 1):
        result = attempt_send(client, message)
        if not result.throttled or attempt == THROTTLE_ATTEMPTS:
            break
        delay = THROTTLE_BACKOFF_SECONDS * 2 ** (attempt - 1)
        log.warning(
            "Vonage throttled sms %s (attempt %s of %s); nothing was sent, retrying in %.1f s",
            sms_id, attempt, THROTTLE_ATTEMPTS, delay,
        )
        time.sleep(delay)

    if result.messages is not None:
        with_retries(record_reply, sms_id, result.messages)
        return
    failure = result.failure
    if result.throttled:
        failure = Failure(
            failure.status,
            failure.code,
            f"{failure.text} (still after {THROTTLE_ATTEMPTS} attempts)",
        )
    log.warning("Send of sms %s ended %s: %s", sms_id, failure.status, failure.text)
    with_retries(record_failure, sms_id, failure)


@dataclass(frozen=True)
class SendResult:
    """One request to Vonage: its reply's parts, or a failure; `throttled` if nothing
    was sent because Vonage throttled the account."""

    messages: list[dict] | None = None
    failure: Failure | None = None
    throttled: bool = False


def attempt_send(client: Vonage, message: SmsMessage) -> SendResult:
    """Make one send request and classify what came back."""
    try:
        response = client.sms.send(message)
    except PartialFailureError as error:
        # `.response` is the parsed JSON reply, with Vonage's hyphenated keys.
        messages = [snake_case_keys(item) for item in error.response["messages"]]
    except (SmsError, KeyError):
        # One part refused; the SDK puts the code only into its text (or raises
        # KeyError when the reply lacks `error-text`), so read the reply itself.
        messages = reply_messages(client)
    except Exception as error:  # noqa: BLE001 - every failure must end in a stored status
        failure = classify_failure(error)
        log.info("Send request failed: %s (%s)", failure.text, type(error).__name__)
        return SendResult(failure=failure, throttled=isinstance(error, RateLimitedError))
    else:
        messages = [part.model_dump(by_alias=False) for part in response.messages]

    # Status 1 on every part means that Vonage sent nothing; a retry cannot double it.
    throttled = bool(messages) and all(str(item.get("status")) == "1" for item in messages)
    return SendResult(messages=messages, throttled=throttled)


def with_retries(record, sms_id: int, outcome) -> None:
    """Store a send outcome, retrying while the database is locked or unreachable.

    If every attempt fails the message stays `pending`; `settle_interrupted_sends`
    later marks it `outcome-unknown`, because the request may have gone out.
    """
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            record(sms_id, outcome)
            return
        except OperationalError as error:
            db.session.rollback()
            log.error(
                "Storing the send outcome of sms %s failed (attempt %s of %s): %s",
                sms_id, attempt, RECORD_ATTEMPTS, error.orig,
            )
            if attempt == RECORD_ATTEMPTS:
                raise
            time.sleep(0.5 * attempt)


def settle_interrupted_sends() -> int:
    """Mark messages left `pending` by a crash or a lost database as `outcome-unknown`.

    A message is still `pending` only between its commit and the storing of the
    send's outcome, which takes at most VONAGE_TIMEOUT plus the retries above.
    """
    config = current_app.config
    cutoff = utcnow() - timedelta(seconds=config["VONAGE_TIMEOUT"] + INTERRUPTED_AFTER_SLACK)
    stale = db.session.scalars(
        select(Sms.id).where(
            Sms.status == Status.PENDING,
            Sms.send_outcome == Status.PENDING,
            Sms.created_at < cutoff,
        )
    ).all()
    db.session.rollback()
    failure = Failure(
        Status.OUTCOME_UNKNOWN,
        "interrupted",
        "The app stopped before Vonage's reply was stored; the message may have been sent",
    )
    for sms_id in stale:
        state.lock_message(sms_id)
        sms = db.session.get(Sms, sms_id, populate_existing=True)
        if sms.send_outcome == Status.PENDING:
            sms.send_outcome = failure.status
            sms.error_code = failure.code
            sms.error_text = failure.text
            state.refresh_message(sms)
            log.warning("Sms %s was left pending by an interrupted send: outcome unknown", sms_id)
        db.session.commit()
    return len(stale)


def callback_url() -> str | None:
    """Return the `callback` for a send: from PUBLIC_URL, or a loopback one in the sandbox.

    The sandbox posts to its own loopback address and keeps only the path and query of
    the callback, which carry the webhook token when one is set.
    """
    config = current_app.config
    if config["RECEIPT_CALLBACK_URL"] or not config["SANDBOX"]:
        return config["RECEIPT_CALLBACK_URL"]
    token = config.get("WEBHOOK_TOKEN")
    path = url_for("webhooks.delivery_receipt", **({"t": token} if token else {}))
    return f"{SANDBOX_CALLBACK_BASE}{path}"


def reply_messages(client: Vonage) -> list[dict]:
    """Return the `messages` of the last reply as dicts with snake_case keys."""
    reply = client.http_client.last_response.json()
    return [snake_case_keys(item) for item in reply.get("messages", [])]


def snake_case_keys(item: dict) -> dict:
    return {key.replace("-", "_"): value for key, value in item.items()}


def classify_failure(error: Exception) -> Failure:
    """Map an exception from the SDK to a stored outcome.

    `send-failed` means nothing was sent; `outcome-unknown` means the request may
    have reached Vonage, so the message must not be sent again automatically.
    """
    if isinstance(error, AuthenticationError):
        return Failure(Status.SEND_FAILED, "HTTP 401", "Vonage rejected the API key or secret")
    if isinstance(error, ForbiddenError):
        return Failure(Status.SEND_FAILED, "HTTP 403", "Vonage denied access for this account")
    if isinstance(error, RateLimitedError):
        return Failure(Status.SEND_FAILED, "HTTP 429", "Vonage is rate limiting: try again later")
    if isinstance(error, HttpRequestError):
        code = error.response.status_code
        if code >= 500:
            return Failure(
                Status.OUTCOME_UNKNOWN,
                f"HTTP {code}",
                "Vonage answered with a server error; the message may have been sent",
            )
        return Failure(Status.SEND_FAILED, f"HTTP {code}", "Vonage rejected the request")
    if isinstance(error, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
        return Failure(Status.SEND_FAILED, "network", f"Could not reach Vonage: {error}")
    if isinstance(error, requests.exceptions.ReadTimeout):
        return Failure(
            Status.OUTCOME_UNKNOWN,
            "timeout",
            "Vonage did not reply in time; the message may have been sent",
        )
    if isinstance(error, requests.exceptions.ConnectionError):
        if connection_never_opened(error):
            return Failure(Status.SEND_FAILED, "network", f"Could not reach Vonage: {error}")
        return Failure(
            Status.OUTCOME_UNKNOWN,
            "connection lost",
            "The connection to Vonage dropped after the request was sent; "
            "the message may have been sent",
        )
    return Failure(Status.OUTCOME_UNKNOWN, "error", f"Unexpected error while sending: {error}")


def connection_never_opened(error: requests.exceptions.ConnectionError) -> bool:
    """Tell whether the request failed before any byte went out (refused, DNS)."""
    reason = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def record_failure(sms_id: int, failure: Failure) -> None:
    """Store a send that produced no reply."""
    state.lock_message(sms_id)
    sms = db.session.get(Sms, sms_id, populate_existing=True)
    sms.send_outcome = failure.status
    sms.error_code = failure.code
    sms.error_text = failure.text[:500]
    state.refresh_message(sms)
    db.session.commit()


def record_reply(sms_id: int, messages: list[dict]) -> None:
    """Store each part of a send reply, and apply receipts that arrived before it."""
    state.lock_message(sms_id)
    sms = db.session.get(Sms, sms_id, populate_existing=True)
    sms.submitted_at = utcnow()
    refused = None

    for position, item in enumerate(messages):
        status_code = str(item.get("status", ""))
        accepted = status_code == "0"
        message_id = item.get("message_id") if accepted else None
        part = None
        if message_id:
            # A receipt that named this message by client-ref may have created it.
            part = db.session.scalar(select(SmsPart).where(SmsPart.message_id == message_id))
        if part is None:
            part = SmsPart(sms_id=sms_id, message_id=message_id, status=Status.PENDING)
            db.session.add(part)
        part.position = position
        part.network = item.get("network")
        part.quoted_price = parse_price(item.get("message_price"))
        if accepted:
            part.send_status = Status.SUBMITTED
        else:
            part.send_status = Status.SEND_FAILED
            part.error_code = status_code
            part.error_text = (item.get("error_text") or send_status_meaning(status_code))[:500]
            refused = refused or part
        db.session.flush()
        if message_id:
            state.attach_waiting_receipts(part)

    sms.send_outcome = Status.SEND_FAILED if refused else Status.SUBMITTED
    if refused:
        sms.error_code = refused.error_code
        sms.error_text = refused.error_text
        log.warning(
            "Vonage rejected sms %s: status %s (%s)", sms_id, sms.error_code, sms.error_text
        )
    else:
        part_ids = ", ".join(str(item.get("message_id")) for item in messages)
        log.info("Vonage accepted sms %s in %s part(s): %s", sms_id, len(messages), part_ids)
    state.refresh_message(sms)
    db.session.commit()


def parse_price(value) -> Decimal | None:
    """Return a price as a Decimal, or None when it is missing or not a finite amount."""
    if value is None or value == "":
        return None
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not price.is_finite() or price < 0 or price >= MAX_PRICE:
        return None
    return price.quantize(Decimal("0.00000001"))
