"""The send form: parses the recipient, checks the text's size and the sender id."""

import re
import uuid

import phonenumbers
from flask import current_app
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, ValidationError

from sms_encoding import (
    GSM7_BASIC_CHARACTERS,
    GSM7_EXTENSION_CHARACTERS,
    MULTI_PART_UNITS,
    Encoding,
    analyse,
)

ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
NUMERIC_SENDER = re.compile(r"\+?[0-9]{4,15}")
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")
# Control characters other than tab and line breaks, which a phone cannot show.
INVISIBLE_CHARACTERS = frozenset("\u200b\u200c\u200d\u2060\ufeff")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Number types that cannot receive SMS or cost the sender extra.
REFUSED_NUMBER_TYPES = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.TOLL_FREE: "a toll-free number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
    phonenumbers.PhoneNumberType.UAN: "a universal access number",
    phonenumbers.PhoneNumberType.VOICEMAIL: "a voicemail access number",
    phonenumbers.PhoneNumberType.PAGER: "a pager number",
}


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
    if number.extension:
        raise ValidationError("An SMS cannot reach an extension: remove the extension.")
    refused = REFUSED_NUMBER_TYPES.get(phonenumbers.number_type(number))
    if refused:
        raise ValidationError(f"'{value}' is {refused}, which cannot receive SMS from here.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def too_long_message(text: str, stats, limit: int) -> str:
    """Say how far to shorten a text, and why fewer Unicode characters fit a segment."""
    capacity = limit * MULTI_PART_UNITS[stats.encoding]
    message = f"This text needs {stats.segments} segments and the limit is {limit}: "
    if stats.encoding is Encoding.GSM7:
        return message + f"shorten it to at most {capacity} characters."
    special = next(
        character
        for character in text
        if character not in GSM7_BASIC_CHARACTERS and character not in GSM7_EXTENSION_CHARACTERS
    )
    return message + (
        f"shorten it to about {capacity} characters. It contains '{special}', which needs "
        "Unicode, so each segment holds fewer characters; without such characters it "
        f"could have {limit * MULTI_PART_UNITS[Encoding.GSM7]}."
    )


class SendForm(FlaskForm):
    to = StringField("To", validators=[DataRequired("Enter the recipient's phone number.")])
    text = TextAreaField("Message", validators=[DataRequired("Enter the message text.")])
    sender = StringField("From", filters=[lambda value: value.strip() if value else value])
    # Set by the view when it renders an empty form, never defaulted on POST: a
    # missing key must fail, or a resubmitted form would send again.
    idempotency_key = HiddenField(
        validators=[DataRequired("The form is missing its submission key: reload the page.")]
    )

    # Set by validation: the values that are stored and sent.
    recipient: str = ""
    message_text: str = ""
    encoding: Encoding = Encoding.GSM7
    segments: int = 0

    def validate_to(self, field):
        self.recipient = parse_recipient(field.data.strip(), current_app.config["DEFAULT_REGION"])

    def validate_idempotency_key(self, field):
        if not IDEMPOTENCY_KEY.fullmatch(field.data):
            raise ValidationError("The form's submission key is invalid: reload the page.")

    def validate_text(self, field):
        self.message_text = normalise_text(field.data)
        if CONTROL_CHARACTERS.search(self.message_text):
            raise ValidationError(
                "The text contains control characters that a phone cannot show: remove them."
            )
        if not self.message_text.strip() or not any(
            character.isprintable() and not character.isspace()
            for character in self.message_text
            if character not in INVISIBLE_CHARACTERS
        ):
            raise ValidationError("The text has nothing visible in it: write the message.")
        stats = analyse(self.message_text)
        limit = current_app.config["MAX_SEGMENTS"]
        if stats.segments > limit:
            raise ValidationError(too_long_message(self.message_text, stats, limit))
        self.encoding = stats.encoding
        self.segments = stats.segments

    def validate_sender(self, field):
        value = field.data or ""
        if value and not (
            ALPHANUMERIC_SENDER.fullmatch(value) or NUMERIC_SENDER.fullmatch(value)
        ):
            raise ValidationError(
                "Use up to 11 letters, digits and spaces (with at least one letter), "
                "or a phone number of up to 15 digits."
            )
