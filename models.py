"""Database models and the status rules that derive a part's and a message's status.

A message (`Sms`) is what a person sent from the form. Vonage may split it into
several parts (`SmsPart`), each with its own `message-id` and its own delivery
receipts (`Receipt`). Receipts are stored as facts; part and message statuses are
derived from them, so the result does not depend on the order receipts arrive in.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from sms_encoding import Encoding


class Base(DeclarativeBase):
    # Named constraints, so that migrations can refer to them on every database. Two
    # status columns in one table need the column in their CHECK constraint's name.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(column_0_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every database, SQLite included (it stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Status(enum.StrEnum):
    """Statuses of a part or a message, spelled as the HTML hooks and Vonage spell them."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    OUTCOME_UNKNOWN = "outcome-unknown"
    ACCEPTED = "accepted"
    BUFFERED = "buffered"
    UNKNOWN = "unknown"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
    SEND_FAILED = "send-failed"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @property
    def is_final(self) -> bool:
        return self.rank >= 4

    @property
    def is_failure(self) -> bool:
        return self in (Status.EXPIRED, Status.REJECTED, Status.FAILED, Status.SEND_FAILED)


# Rank 2 statuses are ordered by time, rank 4 by severity. SEND_FAILED is the final
# outcome of the send itself. It ranks above the receipt finals, because a part that
# Vonage refused has no receipts that could outrank it.
_RANKS = {
    Status.PENDING: 0,
    Status.SUBMITTED: 1,
    Status.OUTCOME_UNKNOWN: 1,
    Status.ACCEPTED: 2,
    Status.BUFFERED: 2,
    Status.UNKNOWN: 3,
    Status.DELIVERED: 4,
    Status.EXPIRED: 4,
    Status.REJECTED: 4,
    Status.FAILED: 4,
    Status.SEND_FAILED: 5,
}
_FINAL_SEVERITY = {
    Status.DELIVERED: 0,
    Status.EXPIRED: 1,
    Status.REJECTED: 2,
    Status.FAILED: 3,
}
RECEIPT_STATUSES = frozenset(
    {
        Status.ACCEPTED,
        Status.BUFFERED,
        Status.UNKNOWN,
        Status.DELIVERED,
        Status.EXPIRED,
        Status.REJECTED,
        Status.FAILED,
    }
)


def status_key(status: Status, message_time: datetime | None = None) -> tuple:
    """Return a sort key under which the greater key is the status that wins.

    Between `accepted` and `buffered` the later `message-timestamp` wins, and on equal
    times `buffered` wins. Final statuses compare by severity and ignore time.
    """
    if status.rank == 2:
        timestamp = message_time.timestamp() if message_time else float("-inf")
        return (2, timestamp, status == Status.BUFFERED)
    if status.rank == 4:
        return (4, _FINAL_SEVERITY[status], 0)
    return (status.rank, 0, 0)


def summarise(send_outcome: Status, part_statuses: list[Status], segments: int = 0) -> Status:
    """Return a message's status from its send outcome and its parts' statuses.

    Until Vonage's reply lists the parts, receipts may name only some of them: the
    `segments` parts not known yet count with the send outcome, so a message is not
    `delivered` on the word of one part of three.
    """
    if send_outcome in (Status.PENDING, Status.OUTCOME_UNKNOWN):
        missing = max(segments - len(part_statuses), 0)
        part_statuses = [*part_statuses, *[send_outcome] * missing]
    if not part_statuses:
        return send_outcome
    if Status.SEND_FAILED in part_statuses:
        return Status.SEND_FAILED
    if all(status == Status.DELIVERED for status in part_statuses):
        return Status.DELIVERED

    failing = [status for status in part_statuses if status.is_failure]
    if failing:
        return max(failing, key=lambda status: _FINAL_SEVERITY[status])

    # The least advanced part; on equal rank `accepted` counts as less advanced.
    return min(part_statuses, key=lambda status: (status.rank, status == Status.BUFFERED))


def enum_type(enum_class: type[enum.Enum], name: str, length: int) -> Enum:
    """Store an enum by its values in a VARCHAR that a CHECK constraint limits to them."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def _status_column(**kwargs) -> Mapped[Status]:
    return mapped_column(enum_type(Status, "status", 20), **kwargs)


def new_client_ref() -> str:
    """Return a `client-ref` that names one message across every copy of the app."""
    return f"smstrack-{uuid.uuid4().hex}"


class User(UserMixin, db.Model):
    """A team member who may sign in and send."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class Sms(db.Model):
    """A message as the sender typed it, with the outcome of the send request."""

    __tablename__ = "sms"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The account that sent it; the form always sets it.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(15))
    sender: Mapped[str] = mapped_column(String(15))
    text: Mapped[str] = mapped_column(Text)
    encoding: Mapped[Encoding] = mapped_column(enum_type(Encoding, "encoding", 10))
    segments: Mapped[int] = mapped_column(Integer)
    client_ref: Mapped[str] = mapped_column(String(100), unique=True, default=new_client_ref)
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    send_outcome: Mapped[Status] = _status_column(default=Status.PENDING)
    status: Mapped[Status] = _status_column(default=Status.PENDING, index=True)
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_text: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parts: Mapped[list[SmsPart]] = relationship(
        back_populates="sms", order_by="SmsPart.position", lazy="selectin"
    )
    user: Mapped[User | None] = relationship(lazy="selectin")

    @property
    def total_price(self) -> Decimal | None:
        """Sum of the known part prices, or None while no part has a price."""
        prices = [part.price for part in self.parts if part.price is not None]
        return sum(prices, Decimal(0)) if prices else None

    def __repr__(self) -> str:
        return f"<Sms {self.id} {self.status}>"


class SmsPart(db.Model):
    """One part of a message as Vonage counts it, identified by its `message-id`."""

    __tablename__ = "sms_part"

    id: Mapped[int] = mapped_column(primary_key=True)
    sms_id: Mapped[int] = mapped_column(ForeignKey("sms.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    # NULL for a part that Vonage refused at send time: it never got an id.
    message_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    send_status: Mapped[Status] = _status_column()
    status: Mapped[Status] = _status_column()
    status_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_code: Mapped[str | None] = mapped_column(String(20))
    error_text: Mapped[str | None] = mapped_column(String(500))
    # err-code of the receipt that decided `status`.
    err_code: Mapped[str | None] = mapped_column(String(20))
    # `message-price` from the send reply: Vonage's estimate until a receipt has a price.
    quoted_price: Mapped[Decimal | None] = mapped_column(Numeric(14, 8))
    price: Mapped[Decimal | None] = mapped_column(Numeric(14, 8))
    network: Mapped[str | None] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    sms: Mapped[Sms] = relationship(back_populates="parts")
    receipts: Mapped[list[Receipt]] = relationship(
        back_populates="part", order_by="Receipt.id", lazy="selectin"
    )

    @property
    def final_conflict(self) -> bool:
        """True when receipts gave this part two different final statuses."""
        finals = {receipt.known_status for receipt in self.receipts}
        return len({status for status in finals if status and status.is_final}) > 1

    def __repr__(self) -> str:
        return f"<SmsPart {self.message_id} {self.status}>"


class Receipt(db.Model):
    """One delivery receipt as received, stored once per identity with its raw payload."""

    __tablename__ = "receipt"
    __table_args__ = (Index("ix_receipt_unattached", "message_id", "part_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256 of (messageId, status, err-code, scts, message-timestamp): a retried
    # delivery may be signed afresh, so `sig`, `timestamp` and `nonce` stay out.
    identity: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str] = mapped_column(String(40), index=True)
    part_id: Mapped[int | None] = mapped_column(ForeignKey("sms_part.id"), index=True)
    status: Mapped[str] = mapped_column(String(40))
    err_code: Mapped[str | None] = mapped_column(String(20))
    message_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    carrier_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    price: Mapped[Decimal | None] = mapped_column(Numeric(14, 8))
    client_ref: Mapped[str | None] = mapped_column(String(100), index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    part: Mapped[SmsPart | None] = relationship(back_populates="receipts")

    @property
    def known_status(self) -> Status | None:
        """The status as a `Status` when Vonage documents it for receipts, else None."""
        try:
            status = Status(self.status)
        except ValueError:
            return None
        return status if status in RECEIPT_STATUSES else None

    def __repr__(self) -> str:
        return f"<Receipt {self.message_id} {self.status}>"
