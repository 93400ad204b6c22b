"""Tests for SMS encoding choice, segment counting and splitting in sms_encoding."""

import pytest

from sms_encoding import (
    GSM7_BASIC_CHARACTERS,
    GSM7_EXTENSION_CHARACTERS,
    MULTI_PART_UNITS,
    SINGLE_PART_UNITS,
    Encoding,
    TextStats,
    analyse,
    detect_encoding,
    split,
)
from text_cases import EMOJI, TEXT_CASE_PARAMS

# Code points of the GSM 03.38 default alphabet positions that differ from ASCII. Position
# 0x09 is capital Ç, and position 0x1B is the escape to the extension table.
# fmt: off
GSM7_NON_ASCII_POSITIONS = {
    0x00: 0x0040, 0x01: 0x00A3, 0x02: 0x0024, 0x03: 0x00A5, 0x04: 0x00E8, 0x05: 0x00E9,
    0x06: 0x00F9, 0x07: 0x00EC, 0x08: 0x00F2, 0x09: 0x00C7, 0x0B: 0x00D8, 0x0C: 0x00F8,
    0x0E: 0x00C5, 0x0F: 0x00E5, 0x10: 0x0394, 0x11: 0x005F, 0x12: 0x03A6, 0x13: 0x0393,
    0x14: 0x039B, 0x15: 0x03A9, 0x16: 0x03A0, 0x17: 0x03A8, 0x18: 0x03A3, 0x19: 0x0398,
    0x1A: 0x039E, 0x1C: 0x00C6, 0x1D: 0x00E6, 0x1E: 0x00DF, 0x1F: 0x00C9, 0x24: 0x00A4,
    0x40: 0x00A1, 0x5B: 0x00C4, 0x5C: 0x00D6, 0x5D: 0x00D1, 0x5E: 0x00DC, 0x5F: 0x00A7,
    0x60: 0x00BF, 0x7B: 0x00E4, 0x7C: 0x00F6, 0x7D: 0x00F1, 0x7E: 0x00FC, 0x7F: 0x00E0,
}
GSM7_ESCAPE_POSITION = 0x1B
GSM7_EXTENSION_CODE_POINTS = [0x000C, 0x005E, 0x007B, 0x007D, 0x005C, 0x005B, 0x007E, 0x005D,
                              0x007C, 0x20AC]
# fmt: on


def unit_cost(character, encoding):
    """Return the units one character takes, computed without the code under test."""
    if encoding is Encoding.GSM7:
        return 2 if character in GSM7_EXTENSION_CHARACTERS else 1
    return len(character.encode("utf-16-le")) // 2


def test_encoding_values_are_vonage_types():
    assert Encoding.GSM7 == "text"
    assert Encoding.UCS2 == "unicode"
    assert Encoding("unicode") is Encoding.UCS2


def test_basic_table_matches_gsm0338():
    expected = {
        chr(GSM7_NON_ASCII_POSITIONS.get(position, position))
        for position in range(128)
        if position != GSM7_ESCAPE_POSITION
    }

    assert len(expected) == 127
    assert GSM7_BASIC_CHARACTERS == expected


def test_extension_table_matches_gsm0338():
    expected = {chr(code_point) for code_point in GSM7_EXTENSION_CODE_POINTS}

    assert GSM7_EXTENSION_CHARACTERS == expected
    assert not GSM7_EXTENSION_CHARACTERS & GSM7_BASIC_CHARACTERS


@pytest.mark.parametrize("case", TEXT_CASE_PARAMS)
def test_analyse_cases(case):
    stats = analyse(case.text, case.forced_encoding)

    assert isinstance(stats, TextStats)
    assert stats.encoding is case.encoding
    assert stats.characters == len(case.text)
    assert stats.units == case.units
    assert stats.segments == case.segments
    assert stats.units_left == case.units_left


@pytest.mark.parametrize("case", TEXT_CASE_PARAMS)
def test_split_cases(case):
    parts = split(case.text, case.forced_encoding)

    assert "".join(parts) == case.text
    assert len(parts) == case.segments
    assert all(parts), "split returned an empty part"

    part_units = [sum(unit_cost(ch, case.encoding) for ch in part) for part in parts]
    if len(parts) == 1:
        assert part_units[0] <= SINGLE_PART_UNITS[case.encoding]
    elif len(parts) > 1:
        assert max(part_units) <= MULTI_PART_UNITS[case.encoding]


def test_split_moves_escape_sequence():
    text = "a" * 152 + "€" + "a" * 10

    parts = split(text)

    assert parts == ["a" * 152, "€" + "a" * 10]


def test_split_keeps_escape_at_boundary():
    text = "a" * 151 + "€" + "a" * 10

    parts = split(text)

    assert parts == ["a" * 151 + "€", "a" * 10]


def test_split_moves_surrogate_pair():
    text = "a" * 66 + EMOJI + "a" * 10

    parts = split(text)

    assert parts == ["a" * 66, EMOJI + "a" * 10]


def test_split_keeps_greedy_parts_full():
    parts = split("ж" * 200)

    assert [len(part) for part in parts] == [67, 67, 66]


def test_split_empty_text_has_no_parts():
    assert split("") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Encoding.GSM7),
        ("Hello {world} [1] ~ | ^ \\ €", Encoding.GSM7),
        ("Hello world ", Encoding.GSM7),
        ("naïve", Encoding.UCS2),
        ("smart quote ’", Encoding.UCS2),
        ("ohm sign \u2126", Encoding.UCS2),
    ],
    ids=["empty", "extension", "ascii", "i diaeresis", "right single quote", "ohm sign"],
)
def test_detect_encoding(text, expected):
    assert detect_encoding(text) is expected


def test_analyse_accepts_type_string():
    stats = analyse("abc", "unicode")

    assert stats.encoding is Encoding.UCS2
    assert stats.units_left == 67


def test_analyse_rejects_unknown_encoding():
    with pytest.raises(ValueError, match="binary"):
        analyse("abc", "binary")


def test_analyse_characters_are_code_points():
    stats = analyse(EMOJI * 3)

    assert stats.characters == 3
    assert stats.units == 6
