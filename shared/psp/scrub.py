"""Remove card data from raw PSP payloads before they are archived.

Why on the text, not on parsed JSON: archives keep the payload as the PSP sent it (JSON, XML, form
bodies), so the scrubber works on text and keeps everything else byte for byte. Two rules:

* any run of 13-19 digits (optionally split by single spaces or dashes) that passes the Luhn check is
  a PAN and is replaced by ``[PAN]`` (last four digits are never needed for reconciliation here);
* the value of any field named like a card security code (cvc, cvv, cvc2, cvv2, cid, securityCode,
  card_verification...) is replaced by ``[CVC]``, in JSON (``"cvc": "123"``), XML (``<cvv>123</cvv>``)
  and form encoding (``cvv=123``).

Over-scrubbing a Luhn-valid reference number is accepted: the archive is for audit, not for replay of
identifiers (the canonical event and the dedupe record keep the PSP ids).
"""

from __future__ import annotations

import re

_PAN = re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")
_CVC_NAMES = r"(?:cvc2?|cvv2?|cid|csc|security[_-]?code|card[_-]?verification(?:[_-]?(?:code|value))?)"
_JSON_CVC = re.compile(r'("' + _CVC_NAMES + r'"\s*:\s*)("(?:[^"\\]|\\.)*"|[0-9]+)', re.IGNORECASE)
_XML_CVC = re.compile(r"(<(" + _CVC_NAMES + r")(?:\s[^>]*)?>)([^<]*)(</\2>)", re.IGNORECASE)
_FORM_CVC = re.compile(r"((?:^|[&?])" + _CVC_NAMES + r"=)([^&]*)", re.IGNORECASE)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _pan(m: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", m.group(0))
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return "[PAN]"
    return m.group(0)


def scrub(text: str) -> str:
    """The text with PANs and card security codes replaced."""
    text = _JSON_CVC.sub(lambda m: m.group(1) + '"[CVC]"', text)
    text = _XML_CVC.sub(lambda m: m.group(1) + "[CVC]" + m.group(4), text)
    text = _FORM_CVC.sub(lambda m: m.group(1) + "[CVC]", text)
    return _PAN.sub(_pan, text)


def scrub_bytes(raw: bytes) -> str:
    """Scrub a raw body; bytes that are not UTF-8 are replaced (signatures were checked before)."""
    return scrub(raw.decode("utf-8", errors="replace"))
