"""SMS texts with their expected encoding and size, shared by the Python and browser tests."""

from dataclasses import dataclass

import pytest

from sms_encoding import Encoding

EMOJI = "\U0001f600"  # grinning face, a surrogate pair in UTF-16 because it is outside the BMP
GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION_TABLE = "\f^{}\\[~]|€"


@dataclass(frozen=True)
class TextCase:
    """An SMS text, an optional forced encoding and the expected analysis."""

    id: str
    text: str
    encoding: Encoding
    units: int
    segments: int
    units_left: int
    forced_encoding: Encoding | None = None


TEXT_CASES = [
    TextCase("empty", "", Encoding.GSM7, 0, 0, 160),
    TextCase("gsm 160 chars", "a" * 160, Encoding.GSM7, 160, 1, 0),
    TextCase("gsm 161 chars", "a" * 161, Encoding.GSM7, 161, 2, 145),
    TextCase("gsm 306 chars", "a" * 306, Encoding.GSM7, 306, 2, 0),
    TextCase("gsm 307 chars", "a" * 307, Encoding.GSM7, 307, 3, 152),
    TextCase("ucs2 70 chars", "ж" * 70, Encoding.UCS2, 70, 1, 0),
    TextCase("ucs2 71 chars", "ж" * 71, Encoding.UCS2, 71, 2, 63),
    TextCase("ucs2 134 chars", "ж" * 134, Encoding.UCS2, 134, 2, 0),
    TextCase("ucs2 135 chars", "ж" * 135, Encoding.UCS2, 135, 3, 66),
    TextCase("euro fills 160 septets", "a" * 158 + "€", Encoding.GSM7, 160, 1, 0),
    TextCase("euro makes 161 septets", "a" * 159 + "€", Encoding.GSM7, 161, 2, 145),
    TextCase("brace inside ucs2", "α{β}", Encoding.UCS2, 4, 1, 66),
    TextCase("one emoji", "Hi " + EMOJI, Encoding.UCS2, 5, 1, 65),
    TextCase("68 chars and emoji", "a" * 68 + EMOJI, Encoding.UCS2, 70, 1, 0),
    TextCase("69 chars and emoji", "a" * 69 + EMOJI, Encoding.UCS2, 71, 2, 63),
    # The escape sequence would take septets 153 and 154, so it starts the second part.
    TextCase("escape at septet 153", "a" * 152 + "€" + "a" * 10, Encoding.GSM7, 164, 2, 141),
    # 306 septets would fit two parts, but moving the escape sequence needs a third.
    TextCase("escape forces third part", "a" * 152 + "€" + "a" * 152, Encoding.GSM7, 306, 3, 152),
    # The surrogate pair would take units 67 and 68, so it starts the second part.
    TextCase("emoji at unit 67", "a" * 66 + EMOJI + "a" * 10, Encoding.UCS2, 78, 2, 55),
    # 134 units would fit two parts, but moving the surrogate pair needs a third.
    TextCase("emoji forces third part", "a" * 66 + EMOJI + "a" * 66, Encoding.UCS2, 134, 3, 66),
    TextCase("cr lf", "Line one\r\nLine two\n", Encoding.GSM7, 19, 1, 141),
    TextCase("greek capitals in gsm", "ΔΦΓΛΩΠΨΣΘΞ", Encoding.GSM7, 10, 1, 150),
    TextCase("greek lowercase alpha", "Price α", Encoding.UCS2, 7, 1, 63),
    TextCase("greek capital alpha", "Α", Encoding.UCS2, 1, 1, 69),
    TextCase("lowercase c cedilla", "ç", Encoding.UCS2, 1, 1, 69),
    TextCase("grave accent", "`", Encoding.UCS2, 1, 1, 69),
    TextCase("form feed", "a\fb", Encoding.GSM7, 4, 1, 156),
    TextCase("whole basic table", GSM7_BASIC_TABLE, Encoding.GSM7, 127, 1, 33),
    TextCase("whole extension table", GSM7_EXTENSION_TABLE, Encoding.GSM7, 20, 1, 140),
    TextCase("forced gsm7 on greek", "αβγ", Encoding.GSM7, 3, 1, 157, Encoding.GSM7),
    TextCase("forced gsm7 on emoji", EMOJI * 2, Encoding.GSM7, 2, 1, 158, Encoding.GSM7),
    TextCase("forced ucs2 on ascii", "abc", Encoding.UCS2, 3, 1, 67, Encoding.UCS2),
    TextCase("forced ucs2 on euro", "€" * 71, Encoding.UCS2, 71, 2, 63, Encoding.UCS2),
]

TEXT_CASE_PARAMS = [pytest.param(case, id=case.id) for case in TEXT_CASES]
