/*
 * SMS segment counter for textareas, with the same rules as sms_encoding.py.
 *
 * GSM-7 (Vonage type=text): 160 septets in one message, 153 per part when split. The
 * extension characters ^ { } \ [ ~ ] |, the euro sign and form feed take two septets.
 * UCS-2 (type=unicode): 70 UTF-16 code units in one message, 67 per part when split.
 * A character outside the Basic Multilingual Plane takes two units. Parts are filled
 * greedily, and an escape sequence or a surrogate pair is never cut across two parts.
 *
 * Markup: <textarea data-sms-counter="OUTPUT_ID" data-max-segments="N"> and an element
 * with id OUTPUT_ID. On every input event the output gets a summary line, the
 * data-segments and data-encoding attributes, and the class over-limit when the segment
 * count exceeds data-max-segments (optional). The script uses no inline code or eval, so
 * it runs under a strict Content-Security-Policy.
 */
(function () {
  "use strict";

  // Non-ASCII characters are written as escapes so that the script works whatever
  // charset the page declares for it.
  // GSM 03.38 default alphabet in table order (0x00 to 0x7F), without the escape at 0x1B:
  // @£$¥èéùìòÇ LF Øø CR Åå Δ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ space !"#¤%&'()*+,-./ 0-9 :;<=>?
  // ¡ A-Z ÄÖÑÜ§ ¿ a-z äöñüà
  var GSM7_BASIC_CHARACTERS = new Set(
    "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5" +
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df\u00c9" +
    " !\"#\u00a4%&'()*+,-./" +
    "0123456789:;<=>?" +
    "\u00a1ABCDEFGHIJKLMNO" +
    "PQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7" +
    "\u00bfabcdefghijklmno" +
    "pqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0"
  );

  // GSM 03.38 extension table: form feed ^ { } \ [ ~ ] | and the euro sign.
  var GSM7_EXTENSION_CHARACTERS = new Set("\f^{}\\[~]|\u20ac");

  var SINGLE_PART_UNITS = { text: 160, unicode: 70 };
  var MULTI_PART_UNITS = { text: 153, unicode: 67 };
  var ENCODING_NAMES = { text: "GSM-7", unicode: "Unicode" };

  function detectEncoding(text) {
    for (const character of text) {
      if (!GSM7_BASIC_CHARACTERS.has(character) && !GSM7_EXTENSION_CHARACTERS.has(character)) {
        return "unicode";
      }
    }
    return "text";
  }

  function unitCost(character, encoding) {
    if (encoding === "text") {
      // A character outside GSM 03.38 still takes one septet, because a gateway that
      // receives type=text sends a substitute character in its place.
      return GSM7_EXTENSION_CHARACTERS.has(character) ? 2 : 1;
    }
    return character.codePointAt(0) > 0xffff ? 2 : 1;
  }

  /**
   * Counts the characters, units and segments of an SMS text.
   * encoding is "text" (GSM-7), "unicode" (UCS-2) or undefined to choose from the text.
   * Returns {encoding, characters, units, segments, unitsLeft}, where characters counts
   * Unicode code points, units counts septets or UTF-16 code units and unitsLeft is the
   * number of units still free in the last segment.
   */
  function analyse(text, encoding) {
    if (encoding === undefined || encoding === null) {
      encoding = detectEncoding(text);
    } else if (encoding !== "text" && encoding !== "unicode") {
      throw new RangeError(
        'invalid SMS encoding "' + encoding + '": expected "text" or "unicode"'
      );
    }

    var costs = [];
    var totalUnits = 0;
    for (const character of text) {
      var cost = unitCost(character, encoding);
      costs.push(cost);
      totalUnits += cost;
    }

    if (totalUnits <= SINGLE_PART_UNITS[encoding]) {
      return {
        encoding: encoding,
        characters: costs.length,
        units: totalUnits,
        segments: costs.length > 0 ? 1 : 0,
        unitsLeft: SINGLE_PART_UNITS[encoding] - totalUnits
      };
    }

    var capacity = MULTI_PART_UNITS[encoding];
    var segments = 1;
    var used = 0;
    for (var index = 0; index < costs.length; index += 1) {
      // Start a new part rather than cut an escape sequence or a surrogate pair.
      if (used + costs[index] > capacity) {
        segments += 1;
        used = 0;
      }
      used += costs[index];
    }
    return {
      encoding: encoding,
      characters: costs.length,
      units: totalUnits,
      segments: segments,
      unitsLeft: capacity - used
    };
  }

  function plural(count, noun) {
    return count + " " + noun + (count === 1 ? "" : "s");
  }

  /** Formats stats as e.g. "161 characters · GSM-7 · 2 segments (145 left)". */
  function describe(stats) {
    var line = plural(stats.characters, "character") + " \u00b7 " +
      ENCODING_NAMES[stats.encoding] + " \u00b7 " + plural(stats.segments, "segment");
    if (stats.segments > 0) {
      line += " (" + stats.unitsLeft + " left)";
    }
    return line;
  }

  function updateOutput(textarea, output) {
    // NOTE: textarea.value ends lines with LF, but a submitted form sends CR LF, which
    // takes one more unit per line break unless the server converts it back to LF.
    var stats = analyse(textarea.value);
    var maxSegments = parseInt(textarea.getAttribute("data-max-segments"), 10);
    var over = !isNaN(maxSegments) && stats.segments > maxSegments;
    // Over the limit, "N left" would mislead, so the line shows the limit instead.
    output.textContent = over
      ? describe(stats).replace(/ \(\d+ left\)$/, "") + ", over the limit of " + maxSegments
      : describe(stats);
    output.setAttribute("data-segments", String(stats.segments));
    output.setAttribute("data-encoding", stats.encoding);
    output.classList.toggle("over-limit", over);
  }

  function attach(textarea) {
    // Attaching twice would add a second input listener.
    if (textarea.hasAttribute("data-sms-counter-attached")) {
      return;
    }
    var outputId = textarea.getAttribute("data-sms-counter");
    var output = document.getElementById(outputId);
    if (output === null) {
      console.warn(
        'smsCounter: no element with id "' + outputId +
        '" for the data-sms-counter attribute of a textarea; counter not attached'
      );
      return;
    }
    textarea.setAttribute("data-sms-counter-attached", "");
    textarea.addEventListener("input", function () {
      updateOutput(textarea, output);
    });
    // Show the count of any text the server rendered into the textarea.
    updateOutput(textarea, output);
  }

  function attachAll() {
    var textareas = document.querySelectorAll("textarea[data-sms-counter]");
    for (var index = 0; index < textareas.length; index += 1) {
      attach(textareas[index]);
    }
  }

  window.smsCounter = { analyse: analyse, describe: describe, attachAll: attachAll };

  // A script loaded with defer or injected late runs after DOMContentLoaded has fired.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", attachAll);
  } else {
    attachAll();
  }
})();
