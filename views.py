"""Pages: the message list, the send form and one message with its receipts."""

import logging
from datetime import timedelta
from decimal import Decimal

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import vonage_codes
from auth import limiter
from forms import SendForm, new_idempotency_key
from models import Sms, Status, db, utcnow
from sending import send_sms, settle_interrupted_sends

log = logging.getLogger("smstrack.views")

bp = Blueprint("messages", __name__)

# Ids are 64-bit integers on every database; a larger number in a URL is simply not found.
MAX_ID = 2**63 - 1
MAX_PAGE = 10**9

OUTCOME_FLASHES = {
    Status.SUBMITTED: ("success", "Sent to {provider}. The status follows as receipts arrive."),
    Status.SEND_FAILED: ("error", "{provider} did not send this message: {reason}"),
    Status.OUTCOME_UNKNOWN: (
        "warning",
        "It is unknown whether {provider} sent this message: {reason} "
        "It will not be sent again; a delivery receipt will settle it.",
    ),
}
# Advice for each send-time status code: the next step for the person sending.
SEND_STATUS_ADVICE = {
    "1": "wait a minute and send again",
    "2": "check the number and the text",
    "3": "check the number and the text",
    "4": "check VONAGE_API_KEY and VONAGE_API_SECRET",
    "5": "send again later",
    "6": "check the number",
    "7": "the recipient's number is barred; use another number",
    "8": "contact Vonage support about the account",
    "9": "top up the Vonage account",
    "12": "shorten the text",
    "15": "use another sender id (SMS_SENDER or the From field)",
    "29": "add the number to the trial account's test numbers, or upgrade the account",
    "33": "the number is no longer in service",
}
STATUS_HELP = {
    Status.PENDING: "Stored; waiting for Vonage's reply to the send request.",
    Status.SUBMITTED: "Vonage accepted the message; waiting for the carrier's receipt.",
    Status.OUTCOME_UNKNOWN: (
        "Vonage may or may not have sent this message. It will not be sent again on its "
        "own; a delivery receipt will settle its status."
    ),
    Status.ACCEPTED: "The carrier accepted the message; delivery is still pending.",
    Status.BUFFERED: (
        "The carrier holds the message, usually because the phone is off or out of "
        "coverage, and keeps trying."
    ),
    Status.UNKNOWN: "The carrier reported no useful information about the delivery.",
    Status.EXPIRED: (
        "The carrier gave up before it reached the phone (often a phone that stayed off): "
        "the message was not delivered."
    ),
    Status.REJECTED: "The carrier or Vonage refused the message before delivery.",
    Status.FAILED: "The carrier could not deliver the message.",
    Status.SEND_FAILED: "Vonage did not send this message, so it reached no phone.",
}


@bp.get("/")
def index():
    """List messages, newest first."""
    raw_page = request.args.get("page", "1")
    if not raw_page.isdecimal() or not 1 <= int(raw_page) <= MAX_PAGE:
        abort(404, f"There is no page {raw_page!r} of messages.")
    number = int(raw_page)
    settle_interrupted_sends()
    page = db.paginate(
        select(Sms).order_by(Sms.created_at.desc(), Sms.id.desc()),
        page=number,
        per_page=current_app.config["MESSAGES_PER_PAGE"],
    )
    return render_template("messages/index.html", page=page, overdue_before=overdue_before())


@bp.get("/messages/new")
def new():
    """Show the send form."""
    form = SendForm()
    form.idempotency_key.data = new_idempotency_key()
    return render_template("messages/new.html", form=form)


def send_rate_limit():
    return current_app.config["SEND_RATE_LIMIT"]


def sender_key():
    """Count sends per signed-in account, so one team member cannot use up the account."""
    return f"user:{current_user.get_id() or request.remote_addr}"


@bp.post("/messages")
@limiter.limit(send_rate_limit, key_func=sender_key)
def create():
    """Store the message, send it, and show the outcome on the list."""
    form = SendForm()
    if not form.validate_on_submit():
        return render_template("messages/new.html", form=form), 422

    existing = find_by_idempotency_key(form.idempotency_key.data)
    if existing is not None:
        return show_repeated_submission(existing)

    sms = Sms(
        user_id=current_user.id,
        recipient=form.recipient,
        sender=(form.sender.data or "").strip().lstrip("+") or current_app.config["SMS_SENDER"],
        text=form.message_text,
        encoding=form.encoding,
        segments=form.segments,
        idempotency_key=form.idempotency_key.data,
    )
    db.session.add(sms)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return show_repeated_submission(find_by_idempotency_key(form.idempotency_key.data))

    settle_interrupted_sends()
    send_sms(sms, webhook_port=local_port())
    flash_outcome(sms)
    return redirect(url_for("messages.index"))


@bp.get("/messages/<int:sms_id>")
def detail(sms_id):
    """Show one message, its parts and every receipt received for them."""
    if sms_id > MAX_ID:
        abort(404, f"No message has id {sms_id}.")
    sms = db.get_or_404(Sms, sms_id, description=f"No message has id {sms_id}.")
    overdue = is_overdue(sms, overdue_before())
    return render_template("messages/detail.html", sms=sms, overdue=overdue)


def find_by_idempotency_key(key):
    return db.session.scalar(select(Sms).where(Sms.idempotency_key == key))


def show_repeated_submission(existing):
    log.info("Repeated submission of sms %s: not sent again", existing.id)
    flash("This form was already sent once, so it was not sent again: here is that message.",
          "warning")
    return redirect(url_for("messages.detail", sms_id=existing.id))


def flash_outcome(sms):
    db.session.refresh(sms)
    category, template = OUTCOME_FLASHES.get(sms.send_outcome, OUTCOME_FLASHES[Status.SUBMITTED])
    provider = "the sandbox" if current_app.config["SANDBOX"] else "Vonage"
    message = template.format(provider=provider, reason=failure_summary(sms))
    flash(message[0].upper() + message[1:], category)


@bp.app_template_global()
def failure_summary(sms):
    """Say in plain words why a send failed and what to do, from its stored code."""
    code = sms.error_code or ""
    if code.isdigit():
        advice = SEND_STATUS_ADVICE.get(code)
        summary = f"{vonage_codes.send_status_meaning(code)} (status {code})"
        return f"{summary}: {advice}." if advice else f"{summary}."
    text = (sms.error_text or "").rstrip(".")
    return f"{text} ({code})." if code else f"{text}."


@bp.app_template_global()
def status_help(status):
    return STATUS_HELP.get(status)


def local_port():
    """Return the port this request arrived on, before any proxy rewrote it."""
    original = request.environ.get("werkzeug.proxy_fix.orig", {})
    port = original.get("SERVER_PORT") or request.environ.get("SERVER_PORT")
    return int(port) if port and str(port).isdigit() else None


def overdue_before():
    return utcnow() - timedelta(seconds=current_app.config["RECEIPT_OVERDUE_AFTER"])


@bp.app_template_filter("phone")
def format_phone(number):
    """Show a stored number (E.164 digits) with its `+`; a sender id stays as it is."""
    return f"+{number}" if number and number.isdigit() and len(number) > 6 else number


@bp.app_template_filter("utc")
def format_utc(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


@bp.app_template_filter("money")
def format_money(amount):
    """Show a price in the account currency with up to 5 decimals (Vonage uses 8)."""
    if amount is None:
        return "—"
    return f"{amount.quantize(Decimal('0.00001')).normalize():f}"


@bp.app_template_global()
def is_overdue(sms, before):
    """Tell whether a message still waits for a final receipt after the overdue limit."""
    waiting = sms.status.rank < 4
    return waiting and (sms.submitted_at or sms.created_at) < before


@bp.app_template_global()
def err_code_meaning(code):
    return vonage_codes.err_code_meaning(code)


@bp.app_template_global()
def send_status_meaning(code):
    return vonage_codes.send_status_meaning(code)
