"""The send form: parses the recipient, checks the text's size and the sender id."""

import re
import uuid

import phonenumbers
from flask import current_app
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp, ValidationError

from sms_encoding import Encoding, analyse

ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
NUMERIC_SENDER = re.compile(r"^\+?[0-9]{4,15}$")


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def normalise_text(text: str) -> str:
    """Return the text with browser line endings (CRLF) as the single LF a phone shows."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_recipient(value: str, region: str) -> str:
    """Return the number as Vonage expects it (E.164 digits without `+`), or raise."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationError(
            f"'{value}' is not a valid phone number. Use the international format, "
            f"for example +1 415 555 0100, or a {region} number."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


class SendForm(FlaskForm):
    to = StringField("To", validators=[DataRequired("Enter the recipient's phone number.")])
    text = TextAreaField("Message", validators=[DataRequired("Enter the message text.")])
    sender = StringField(
        "From",
        validators=[Length(max=16, message="The sender is at most 11 letters or 15 digits.")],
    )
    # Set by the view when it renders an empty form, never defaulted on POST: a
    # missing key must fail, or a resubmitted form would send again.
    idempotency_key = HiddenField(
        validators=[
            DataRequired("The form is missing its submission key: reload the page."),
            Regexp(r"^[A-Za-z0-9_-]{8,64}$", message="The form's submission key is invalid."),
        ]
    )

    # Set by validation: the values that are stored and sent.
    recipient: str = ""
    message_text: str = ""
    encoding: Encoding = Encoding.GSM7
    segments: int = 0

    def validate_to(self, field):
        self.recipient = parse_recipient(field.data.strip(), current_app.config["DEFAULT_REGION"])

    def validate_text(self, field):
        self.message_text = normalise_text(field.data)
        stats = analyse(self.message_text)
        limit = current_app.config["MAX_SEGMENTS"]
        if stats.segments > limit:
            raise ValidationError(
                f"This text needs {stats.segments} segments and the limit is {limit}: "
                f"shorten it to at most {limit * 153} GSM-7 characters "
                f"or {limit * 67} Unicode characters."
            )
        self.encoding = stats.encoding
        self.segments = stats.segments

    def validate_sender(self, field):
        value = (field.data or "").strip()
        if value and not (ALPHANUMERIC_SENDER.match(value) or NUMERIC_SENDER.match(value)):
            raise ValidationError(
                "Use up to 11 letters, digits and spaces (with at least one letter), "
                "or a phone number of up to 15 digits."
            )
