"""Tests that static/js/counter.js in Chromium counts SMS texts exactly as sms_encoding does."""

import random
from pathlib import Path

import pytest

from sms_encoding import analyse
from text_cases import EMOJI, GSM7_BASIC_TABLE, GSM7_EXTENSION_TABLE, TEXT_CASE_PARAMS

COUNTER_JS = Path(__file__).resolve().parent.parent / "static" / "js" / "counter.js"

# Requests to this origin are fulfilled by page.route, so nothing is sent to the network.
ORIGIN = "http://127.0.0.1:9"
STRICT_CSP = "default-src 'none'; script-src 'self'"

COUNTER_HTML = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>counter</title>{script}</head>
<body>
<textarea id="body" data-sms-counter="count" data-max-segments="1"></textarea>
<output id="count"></output>
</body>
</html>
"""

# Characters for random texts: GSM basic, GSM extension, BMP non-GSM and astral.
RANDOM_ALPHABET = GSM7_BASIC_TABLE + GSM7_EXTENSION_TABLE + "жαç`’\u2126" + EMOJI + "\U0001f44d"


def python_result(text, encoding=None):
    """Return the Python analysis in the shape of the JavaScript result."""
    stats = analyse(text, encoding)
    return {
        "encoding": str(stats.encoding),
        "characters": stats.characters,
        "units": stats.units,
        "segments": stats.segments,
        "unitsLeft": stats.units_left,
    }


@pytest.fixture
def counter_page(page):
    """Return a page with the counter markup and counter.js added after the page loaded."""
    page.set_content(COUNTER_HTML.format(script=""))
    page.add_script_tag(path=str(COUNTER_JS))
    return page


@pytest.mark.parametrize("case", TEXT_CASE_PARAMS)
def test_javascript_matches_python(counter_page, case):
    forced = None if case.forced_encoding is None else str(case.forced_encoding)

    result = counter_page.evaluate(
        "([text, encoding]) => window.smsCounter.analyse(text, encoding)", [case.text, forced]
    )

    expected = python_result(case.text, case.forced_encoding)
    assert result["encoding"] == expected["encoding"] == str(case.encoding)
    assert result["characters"] == expected["characters"]
    assert result["units"] == expected["units"]
    assert result["segments"] == expected["segments"] == case.segments
    assert result["unitsLeft"] == expected["unitsLeft"]


def test_javascript_matches_python_random_texts(counter_page):
    generator = random.Random(20240603)
    texts = []
    for _ in range(400):
        length = generator.randrange(0, 420)
        texts.append("".join(generator.choice(RANDOM_ALPHABET) for _ in range(length)))

    results = counter_page.evaluate(
        "(texts) => texts.map((text) => window.smsCounter.analyse(text))", texts
    )

    for text, result in zip(texts, results, strict=True):
        assert result == python_result(text), f"texts differ for {text!r}"


def test_javascript_tables_match_python(counter_page):
    # Every BMP code point except surrogates, as a one-character text in each encoding.
    code_points = [cp for cp in range(0x10000) if not 0xD800 <= cp <= 0xDFFF]
    code_points += [0x10000, 0x1F600, 0x10FFFF]

    results = counter_page.evaluate(
        """(codePoints) => codePoints.map((codePoint) => {
            const text = String.fromCodePoint(codePoint);
            const detected = window.smsCounter.analyse(text);
            const forcedGsm7 = window.smsCounter.analyse(text, "text");
            return [detected.encoding, detected.units, forcedGsm7.units];
        })""",
        code_points,
    )

    for code_point, result in zip(code_points, results, strict=True):
        detected = analyse(chr(code_point))
        forced_gsm7 = analyse(chr(code_point), "text")
        expected = [str(detected.encoding), detected.units, forced_gsm7.units]
        assert result == expected, f"U+{code_point:04X} differs"


def test_javascript_rejects_unknown_encoding(counter_page):
    message = counter_page.evaluate(
        """() => {
            try {
                window.smsCounter.analyse("abc", "binary");
            } catch (error) {
                return error.name + ": " + error.message;
            }
            return "no error";
        }"""
    )

    assert message.startswith("RangeError: ")
    assert '"binary"' in message


def test_output_for_empty_textarea(counter_page):
    output = counter_page.locator("#count")

    assert output.text_content() == "0 characters · GSM-7 · 0 segments"
    assert output.get_attribute("data-segments") == "0"
    assert output.get_attribute("data-encoding") == "text"
    assert "over-limit" not in (output.get_attribute("class") or "")


def test_output_follows_typed_text(counter_page):
    textarea = counter_page.locator("#body")
    output = counter_page.locator("#count")

    textarea.fill("a" * 161)
    assert output.text_content() == "161 characters · GSM-7 · 2 segments, over the limit of 1"
    assert output.get_attribute("data-segments") == "2"
    assert output.get_attribute("data-encoding") == "text"
    assert "over-limit" in output.get_attribute("class")

    textarea.fill("Hi " + EMOJI)
    assert output.text_content() == "4 characters · Unicode · 1 segment (65 left)"
    assert output.get_attribute("data-segments") == "1"
    assert output.get_attribute("data-encoding") == "unicode"
    assert "over-limit" not in output.get_attribute("class")

    textarea.fill("a")
    assert output.text_content() == "1 character · GSM-7 · 1 segment (159 left)"


def test_output_counts_textarea_line_breaks_as_lf(counter_page):
    # The textarea value normalises CR LF to LF, so the count is one unit per line break.
    counter_page.locator("#body").fill("one\r\ntwo")

    assert counter_page.locator("#count").text_content() == (
        "7 characters · GSM-7 · 1 segment (153 left)"
    )


def test_counter_attaches_under_strict_csp(page):
    console_messages = []
    page.on("console", lambda message: console_messages.append(f"{message.type}: {message.text}"))
    html = COUNTER_HTML.format(script='<script src="/static/js/counter.js"></script>')
    page.route(
        f"{ORIGIN}/",
        lambda route: route.fulfill(
            body=html,
            content_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": STRICT_CSP},
        ),
    )
    page.route(
        f"{ORIGIN}/static/js/counter.js",
        lambda route: route.fulfill(path=str(COUNTER_JS), content_type="text/javascript"),
    )

    page.goto(f"{ORIGIN}/")
    page.locator("#body").fill("€" * 81)

    output = page.locator("#count")
    assert output.text_content() == "81 characters · GSM-7 · 2 segments, over the limit of 1"
    assert output.get_attribute("data-segments") == "2"
    assert console_messages == []


def test_counter_warns_about_missing_output(page):
    console_messages = []
    page.on("console", lambda message: console_messages.append(f"{message.type}: {message.text}"))
    page.set_content('<textarea data-sms-counter="missing"></textarea>')

    page.add_script_tag(path=str(COUNTER_JS))

    assert len(console_messages) == 1
    assert console_messages[0].startswith('warning: smsCounter: no element with id "missing"')
