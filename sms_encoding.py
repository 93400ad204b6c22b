"""SMS encoding choice and segment counting, following the Vonage SMS API rules.

A text that uses only the GSM 03.38 default alphabet is sent as ``type=text`` (GSM-7):
160 septets fit in one message, and 153 septets fit in each part of a concatenated
message because the user data header takes the rest. The extension characters
``^ { } \\ [ ~ ] |``, ``€`` and form feed are sent as an escape septet plus one more, so
each takes two septets. Any other character needs ``type=unicode`` (UCS-2): 70 UTF-16
code units fit in one message and 67 in each part of a concatenated message. A
character outside the Basic Multilingual Plane, such as most emoji, is a surrogate pair
and takes two units.

A splitter fills each part greedily and never cuts an escape sequence or a surrogate
pair across two parts, so the part count can exceed ``ceil(units / 153)`` or
``ceil(units / 67)``. ``static/js/counter.js`` implements the same rules for the browser,
and ``tests/test_counter_browser.py`` checks that both give equal results.
"""

import enum
from dataclasses import dataclass

# GSM 03.38 default alphabet in table order (0x00 to 0x7F). Position 0x1B is the escape
# to the extension table, not a character, so it is left out.
# NOTE: position 0x09 is capital Ç as in the standard. Some mapping tables and gateways
# also accept small ç there, so a text with ç may count as UCS-2 here but go out as GSM-7.
GSM7_BASIC_CHARACTERS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# GSM 03.38 extension table characters, each sent as the escape septet plus one more.
GSM7_EXTENSION_CHARACTERS = frozenset("\f^{}\\[~]|€")


class Encoding(enum.StrEnum):
    """SMS data coding. The values are the Vonage SMS API ``type`` field values."""

    GSM7 = "text"
    UCS2 = "unicode"


# Units that fit in a message sent as one part, and in each part of a concatenated message.
SINGLE_PART_UNITS = {Encoding.GSM7: 160, Encoding.UCS2: 70}
MULTI_PART_UNITS = {Encoding.GSM7: 153, Encoding.UCS2: 67}


@dataclass(frozen=True)
class TextStats:
    """Encoding, size and segment count of one SMS text."""

    encoding: Encoding
    characters: int  # Unicode code points
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int  # 0 for empty text
    units_left: int  # units still free in the last segment


def detect_encoding(text: str) -> Encoding:
    """Choose GSM7 when every character is in the GSM 03.38 tables, else UCS2."""
    for character in text:
        if character not in GSM7_BASIC_CHARACTERS and character not in GSM7_EXTENSION_CHARACTERS:
            return Encoding.UCS2
    return Encoding.GSM7


def _unit_cost(character: str, encoding: Encoding) -> int:
    """Return the septets (GSM-7) or UTF-16 code units (UCS-2) that one character takes."""
    if encoding is Encoding.GSM7:
        # A character outside GSM 03.38 still takes one septet, because a gateway that
        # receives type=text sends a substitute character in its place.
        return 2 if character in GSM7_EXTENSION_CHARACTERS else 1
    return 2 if ord(character) > 0xFFFF else 1


def _fill_parts(text: str, encoding: Encoding) -> tuple[list[int], int, int]:
    """Split text greedily into parts.

    Returns the character index where each part ends, the total units of the text and
    the units used in the last part. Empty text has no parts.
    """
    costs = [_unit_cost(character, encoding) for character in text]
    total_units = sum(costs)
    if total_units <= SINGLE_PART_UNITS[encoding]:
        part_ends = [len(text)] if text else []
        return part_ends, total_units, total_units

    capacity = MULTI_PART_UNITS[encoding]
    part_ends = []
    used = 0
    for index, cost in enumerate(costs):
        # Start a new part rather than cut an escape sequence or a surrogate pair.
        if used + cost > capacity:
            part_ends.append(index)
            used = 0
        used += cost
    part_ends.append(len(text))
    return part_ends, total_units, used


def _resolve_encoding(text: str, encoding: Encoding | str | None) -> Encoding:
    """Return the given encoding as an Encoding, or the one detected from the text."""
    if encoding is None:
        return detect_encoding(text)
    # Raises ValueError for a value other than "text" or "unicode".
    return Encoding(encoding)


def analyse(text: str, encoding: Encoding | None = None) -> TextStats:
    """Count the characters, units and segments of an SMS text."""
    encoding = _resolve_encoding(text, encoding)
    part_ends, total_units, last_part_units = _fill_parts(text, encoding)
    capacity = MULTI_PART_UNITS[encoding] if len(part_ends) > 1 else SINGLE_PART_UNITS[encoding]
    return TextStats(
        encoding=encoding,
        characters=len(text),
        units=total_units,
        segments=len(part_ends),
        units_left=capacity - last_part_units,
    )


def split(text: str, encoding: Encoding | None = None) -> list[str]:
    """Split an SMS text into the parts a gateway would send, or none for empty text."""
    encoding = _resolve_encoding(text, encoding)
    part_ends, _, _ = _fill_parts(text, encoding)
    parts = []
    start = 0
    for end in part_ends:
        parts.append(text[start:end])
        start = end
    return parts
