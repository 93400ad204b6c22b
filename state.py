"""Derive part and message statuses from stored receipts, one message at a time.

Every change to a message's parts or receipts first takes the message's write lock
(`lock_message`), then recomputes from what is stored. Two workers that touch one
message therefore end as if they had run one after the other, in either order.
"""

import logging
from datetime import UTC, datetime

from sqlalchemy import select, update

from models import Receipt, Sms, SmsPart, Status, db, status_key, summarise, utcnow

log = logging.getLogger("smstrack.state")

EARLIEST = datetime.min.replace(tzinfo=UTC)


def lock_message(sms_id: int) -> None:
    """Take the message's write lock until the transaction ends.

    On PostgreSQL the UPDATE locks the row; on SQLite it takes the database write
    lock. Run it before any read in the transaction, so that what follows reads the
    latest committed state.
    """
    db.session.execute(update(Sms).where(Sms.id == sms_id).values(updated_at=utcnow()))


def attach_waiting_receipts(part: SmsPart) -> int:
    """Attach the receipts that arrived for this part's `message-id` before the part."""
    result = db.session.execute(
        update(Receipt)
        .where(Receipt.message_id == part.message_id, Receipt.part_id.is_(None))
        .values(part_id=part.id)
    )
    if result.rowcount:
        log.info("Attached %s waiting receipts to part %s", result.rowcount, part.message_id)
    return result.rowcount


def receipt_rank(receipt: Receipt) -> tuple:
    """Return a total order of a part's documented receipts; the greatest one decides.

    Receipts of equal status rank (two different `failed` receipts, say) are ordered by
    their time, err-code and identity, so the choice never depends on arrival order.
    """
    return (
        status_key(receipt.known_status, receipt.message_time),
        receipt.message_time or EARLIEST,
        receipt.err_code or "",
        receipt.identity,
    )


def refresh_part(part: SmsPart) -> None:
    """Set the part's status, err-code and price from its send result and receipts.

    Receipts with a status Vonage does not document are kept but change nothing.
    """
    documented = [
        receipt
        for receipt in db.session.scalars(select(Receipt).where(Receipt.part_id == part.id))
        if receipt.known_status is not None
    ]
    if part.send_status == Status.SEND_FAILED:
        documented = []

    deciding = max(documented, key=receipt_rank, default=None)
    if deciding is not None and status_key(deciding.known_status) <= status_key(part.send_status):
        deciding = None

    part.status = deciding.known_status if deciding else part.send_status
    part.status_time = deciding.message_time if deciding else None
    part.err_code = deciding.err_code if deciding else None

    priced = [receipt for receipt in documented if receipt.price is not None]
    best_priced = max(priced, key=receipt_rank, default=None)
    part.price = best_priced.price if best_priced else part.quoted_price
    part.updated_at = utcnow()


def refresh_message(sms: Sms, changed: SmsPart | None = None) -> None:
    """Recompute the changed part, or every part, and the summary; call under the lock."""
    parts = db.session.scalars(
        select(SmsPart)
        .where(SmsPart.sms_id == sms.id)
        .order_by(SmsPart.position, SmsPart.id)
        .execution_options(populate_existing=True)
    ).all()
    for part in parts:
        if changed is None or part.id == changed.id:
            refresh_part(part)

    previous = sms.status
    sms.status = summarise(sms.send_outcome, [part.status for part in parts], sms.segments)
    sms.updated_at = utcnow()
    if sms.status != previous:
        log.info("Sms %s is now %s (was %s)", sms.id, sms.status, previous)
