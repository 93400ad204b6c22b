"""Derive part and message statuses from stored receipts, one message at a time.

Every change to a message's parts or receipts first takes the message's write lock
(`lock_message`), then recomputes from what is stored. Two workers that touch one
message therefore end as if they had run one after the other, in either order.
"""

import logging

from sqlalchemy import select, update

from models import Receipt, Sms, SmsPart, Status, db, status_key, summarise, utcnow

log = logging.getLogger("smstrack.state")


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


def refresh_part(part: SmsPart) -> None:
    """Set the part's status, err-code and price from its send result and receipts."""
    receipts = db.session.scalars(
        select(Receipt).where(Receipt.part_id == part.id).order_by(Receipt.id)
    ).all()

    best_status = part.send_status
    best_key = status_key(best_status)
    deciding = None
    for receipt in receipts:
        status = receipt.known_status
        if status is None or part.send_status == Status.SEND_FAILED:
            continue
        key = status_key(status, receipt.message_time)
        if key > best_key:
            best_status, best_key, deciding = status, key, receipt

    part.status = best_status
    part.status_time = deciding.message_time if deciding else None
    part.err_code = deciding.err_code if deciding else None
    priced = [receipt.price for receipt in receipts if receipt.price is not None]
    if deciding is not None and deciding.price is not None:
        part.price = deciding.price
    elif priced:
        part.price = priced[-1]
    else:
        part.price = part.quoted_price
    part.updated_at = utcnow()


def refresh_message(sms: Sms) -> None:
    """Recompute every part of the message and the summary status; call under the lock."""
    parts = db.session.scalars(
        select(SmsPart)
        .where(SmsPart.sms_id == sms.id)
        .order_by(SmsPart.position, SmsPart.id)
        .execution_options(populate_existing=True)
    ).all()
    for part in parts:
        refresh_part(part)

    previous = sms.status
    sms.status = summarise(sms.send_outcome, [part.status for part in parts])
    sms.updated_at = utcnow()
    if sms.status != previous:
        log.info("Sms %s is now %s (was %s)", sms.id, sms.status, previous)
