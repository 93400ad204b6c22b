"""The delivery receipt (DLR) webhook: accept, store once, apply.

Vonage delivers receipts at least once, in any order, as a GET query string, a POST
form or a POST JSON body. A 2xx reply promises that the receipt is committed, so the
route replies 204 only after the commit, and 400 only when `messageId` or `status`
is missing. Any other odd field is stored as received.
"""

import hashlib
import hmac
import json
import logging
import re
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

import state
from models import Receipt, Sms, SmsPart, Status, db
from sandbox import mask_number, sign_params
from sending import parse_price

log = logging.getLogger("smstrack.receipts")

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# A receipt's client-ref may add a part only to a message whose send reply is missing.
AWAITING_REPLY = (Status.PENDING, Status.OUTCOME_UNKNOWN)

REQUIRED_FIELDS = ("messageId", "status")
UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
# Two workers may insert the same new receipt at once; the loser retries and then
# finds the winner's row.
MAX_ATTEMPTS = 3


@bp.route("/delivery-receipt", methods=["GET", "POST"])
def delivery_receipt():
    """Store one delivery receipt and update the message it belongs to."""
    fields = read_fields()
    problem = authenticity_problem(fields)
    if problem:
        log.warning(
            "Rejected receipt for %r from %s: %s",
            fields.get("messageId", "")[:40],
            request.remote_addr,
            problem,
        )
        return jsonify(error="unauthenticated receipt", detail=problem), 401

    missing = [name for name in REQUIRED_FIELDS if not fields.get(name, "").strip()]
    if missing:
        log.warning("Rejected receipt without %s from %s", ", ".join(missing), request.remote_addr)
        return jsonify(error="invalid receipt", missing=missing), 400

    try:
        store_receipt(fields)
    except OperationalError as error:
        # Only a database that stays locked or unreachable gets here: the receipt is
        # not stored, so a 503 makes Vonage deliver it again later.
        db.session.rollback()
        log.error("Receipt for %s not stored: %s", fields["messageId"][:40], error.orig)
        return jsonify(error="receipt not stored, retry later"), 503, {"Retry-After": "30"}
    return "", 204


def read_fields() -> dict[str, str]:
    """Return the receipt's fields from the query string and the form or JSON body.

    Bytes that are not UTF-8 become U+FFFD instead of losing the whole body, and NUL
    or lone surrogates (which no database column takes) become U+FFFD too.
    """
    fields = dict(request.args.items())
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:
            body = None
        if isinstance(body, dict):
            fields.update({name: as_text(value) for name, value in body.items()})
    elif request.mimetype == "application/x-www-form-urlencoded":
        raw = request.get_data(cache=True).decode("utf-8", "replace")
        fields.update(parse_qsl(raw, keep_blank_values=True))
    else:
        fields.update(request.form.items())
    return {clean_text(name): clean_text(value) for name, value in fields.items()}


def clean_text(value: str) -> str:
    return UNSTORABLE_CHARACTERS.sub("\ufffd", value)


def authenticity_problem(fields: dict[str, str]) -> str | None:
    """Return why the receipt cannot be trusted, or None when every configured check passes."""
    config = current_app.config
    token = config.get("WEBHOOK_TOKEN")
    if token and not hmac.compare_digest(fields.get("t", "").encode(), token.encode()):
        return "missing or wrong webhook token (t)"

    secret = config.get("VONAGE_SIGNATURE_SECRET")
    if secret:
        problem = signature_problem(fields, secret, config["VONAGE_SIGNATURE_METHOD"])
        if problem:
            return problem

    api_key = config.get("VONAGE_API_KEY")
    sent_key = fields.get("api-key")
    if api_key and sent_key and not hmac.compare_digest(sent_key.encode(), api_key.encode()):
        return "api-key names another Vonage account"
    return None


def signature_problem(fields: dict[str, str], secret: str, method: str) -> str | None:
    """Check `sig` over every other field and the age of `timestamp`."""
    signature = fields.get("sig", "").strip().lower()
    if not signature:
        return "missing signature (sig)"
    # Vonage's scheme joins name=value pairs with & and escapes values only, so a
    # name that contains either character could pass two fields off as one.
    if any("&" in name or "=" in name for name in fields):
        return "a field name contains & or ="

    signed = {name: value for name, value in fields.items() if name != "sig"}
    candidates = [signed]
    if "t" in signed:
        # NOTE: it is not documented whether Vonage signs a query parameter that is
        # part of the callback URL itself, so the webhook token may be in or out.
        candidates.append({name: value for name, value in signed.items() if name != "t"})
    matches = [
        hmac.compare_digest(sign_params(candidate, secret, method).encode(), signature.encode())
        for candidate in candidates
    ]
    if not any(matches):
        return f"invalid signature for method {method}"

    try:
        signed_at = int(fields.get("timestamp", ""))
    except ValueError:
        return "missing or invalid timestamp"
    age = abs(time.time() - signed_at)
    if age > current_app.config["VONAGE_SIGNATURE_MAX_AGE"]:
        return f"timestamp is {int(age)} s away from now"
    return None


def as_text(value) -> str:
    """Return a JSON value as the string Vonage would have sent."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value)


def receipt_identity(fields: dict[str, str]) -> str:
    """Return the key under which a receipt is stored once.

    `sig`, `timestamp`, `nonce` and any token stay out of it, because Vonage may sign
    a retried delivery afresh.
    """
    names = ("messageId", "status", "err-code", "scts", "message-timestamp")
    identity = json.dumps([fields.get(name, "").strip() for name in names])
    return hashlib.sha256(identity.encode()).hexdigest()


def build_receipt(fields: dict[str, str]) -> Receipt:
    return Receipt(
        identity=receipt_identity(fields),
        message_id=fields["messageId"].strip()[:40],
        status=fields["status"].strip()[:40],
        err_code=fields.get("err-code", "").strip()[:20] or None,
        message_time=parse_time(fields.get("message-timestamp"), "%Y-%m-%d %H:%M:%S"),
        carrier_time=parse_time(fields.get("scts"), "%y%m%d%H%M"),
        price=parse_price(fields.get("price")),
        client_ref=fields.get("client-ref", "").strip()[:100] or None,
        payload=fields,
    )


def parse_time(value: str | None, pattern: str) -> datetime | None:
    """Parse a Vonage time field, which carries no zone and is UTC; None if malformed."""
    if not value:
        return None
    try:
        return datetime.strptime(value.strip(), pattern).replace(tzinfo=UTC)
    except ValueError:
        return None


def store_receipt(fields: dict[str, str]) -> None:
    """Commit the receipt once and apply it to its part, if that part is known."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            store_receipt_once(fields)
            return
        except IntegrityError:
            db.session.rollback()
            if attempt == MAX_ATTEMPTS:
                raise
            log.info("Receipt for %s raced another copy; retrying", fields["messageId"])


def store_receipt_once(fields: dict[str, str]) -> None:
    receipt = build_receipt(fields)
    log_received(receipt)

    sms_id = find_message(receipt)
    # End the read-only transaction, so that the lock below is its transaction's
    # first statement.
    db.session.rollback()

    if sms_id is None:
        store_waiting(receipt)
        # The send may have stored the part meanwhile; it attaches waiting receipts
        # after its own commit, and this check covers the other interleaving.
        sms_id = find_message(receipt)
        db.session.rollback()
        if sms_id is None:
            return

    state.lock_message(sms_id)
    sms = db.session.get(Sms, sms_id, populate_existing=True)
    part = find_or_create_part(sms, receipt)
    if part is None:
        db.session.rollback()
        store_waiting(receipt)
        return

    duplicate = is_stored(receipt.identity)
    if not duplicate:
        receipt.part_id = part.id
        db.session.add(receipt)
    db.session.flush()
    state.attach_waiting_receipts(part)
    state.refresh_message(sms, changed=part)
    db.session.commit()
    log.info(
        "Receipt %s for part %s of sms %s %s: part %s, sms %s",
        receipt.status,
        receipt.message_id,
        sms_id,
        "was a duplicate" if duplicate else "applied",
        part.status,
        sms.status,
    )


def store_waiting(receipt: Receipt) -> None:
    """Commit a receipt that no part claims yet; a part that appears later takes it."""
    if is_stored(receipt.identity):
        db.session.rollback()
        return
    db.session.add(receipt)
    db.session.commit()
    log.info("Receipt for unknown part %s stored until it appears", receipt.message_id)


def log_received(receipt: Receipt) -> None:
    if receipt.known_status is None:
        log.warning(
            "Receipt for %s has undocumented status %r: stored, status unchanged",
            receipt.message_id,
            receipt.status,
        )
    msisdn = receipt.payload.get("msisdn", "")
    log.debug(
        "Receipt %s for %s to %s (err-code %s)",
        receipt.status,
        receipt.message_id,
        mask_number(msisdn),
        receipt.err_code,
    )


def find_message(receipt: Receipt) -> int | None:
    """Return the id of the message the receipt belongs to, by part or by client-ref."""
    sms_id = db.session.scalar(
        select(SmsPart.sms_id).where(SmsPart.message_id == receipt.message_id)
    )
    if sms_id is None and receipt.client_ref and receipt.known_status is not None:
        sms_id = db.session.scalar(
            select(Sms.id).where(
                Sms.client_ref == receipt.client_ref, Sms.send_outcome.in_(AWAITING_REPLY)
            )
        )
    return sms_id


def find_or_create_part(sms: Sms, receipt: Receipt) -> SmsPart | None:
    """Return the part the receipt names, creating it when only its client-ref matches.

    Creating is allowed only while the message has no send reply (the receipt came
    first, or the outcome is unknown) and for a documented status: once Vonage's reply
    has listed the parts, a receipt cannot add one.
    """
    part = db.session.scalar(select(SmsPart).where(SmsPart.message_id == receipt.message_id))
    if part is not None:
        return part
    if sms.send_outcome not in AWAITING_REPLY or receipt.known_status is None:
        return None

    position = len(db.session.scalars(select(SmsPart.id).where(SmsPart.sms_id == sms.id)).all())
    part = SmsPart(
        sms_id=sms.id,
        position=position,
        message_id=receipt.message_id,
        send_status=Status.SUBMITTED,
        status=Status.SUBMITTED,
    )
    db.session.add(part)
    db.session.flush()
    log.info("Receipt for sms %s named new part %s by client-ref", sms.id, receipt.message_id)
    return part


def is_stored(identity: str) -> bool:
    return db.session.scalar(select(Receipt.id).where(Receipt.identity == identity)) is not None
