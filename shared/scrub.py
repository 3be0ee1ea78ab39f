"""Remove card data (PAN, CVC) and IBANs from text before it is archived, published or stored.

Used by the webhook archive (raw PSP payloads) and by the canonical payment events (free text the
PSPs send: decline messages, dispute reasons, metadata). Text in, text out, so a payload keeps its
format: JSON stays valid JSON, XML and form bodies stay parseable, and everything not masked is kept
byte for byte where possible.

What is masked, and how:

* **PAN** -> ``[PAN]``: 13-19 digits that pass the Luhn check, written plain or in groups joined by up
  to three separators among space, non-breaking space, ``-``, ``.``, ``/``, ``+`` and their encodings
  (``%20``, ``%2D``, ``%2E``, ``%2F``, ``\\u0020``, ``\\u00a0``, ``&nbsp;``, ``&#160;``); digits may be
  written as JSON escapes (``\\u0034``) or XML character references (``&#52;``). Groups inside a number
  (all but the last) have at least 3 digits, so dates (``2024-08-05``) never join into one. Up to three
  short groups (1-4 digits) right after a PAN in the same run are masked with it (expiry, CVC), and a
  20-23 digit number that is a PAN glued to a 3-4 digit CVC is masked. A number glued to letters or
  ``_`` (hex digests, ``sub_...`` ids) is not a candidate. Luhn-invalid numbers of 13-19 digits are
  never touched; a Luhn-valid 13-19 digit id or timestamp (1 in 10 of them) is masked: it cannot be
  told from a card number.
* **CVC** -> ``[CVC]``: the non-empty scalar value of any field whose name, lower-cased without ``_``,
  ``-``, ``.``, is a security-code name (``cvc``, ``cvv``, ``cvn``, ``cvd``, ``csc``, ``cid``, optional
  ``2``, optional ``card``/``cc``/``payment`` prefix, optional ``code``/``number``/``value`` suffix,
  ``securitycode``, ``cardsecuritycode``, ``cardverificationvalue``, ...), as JSON (any nesting),
  Python-repr or ``&quot;``-escaped JSON, XML elements and attributes, form fields (``cvc=``,
  ``card[cvc]=``), and in prose (``CVV: 123``). ``cvc_check``, ``cvcResult`` and the like are results,
  not codes, and are kept.
* **IBAN** -> ``[IBAN ending 1234]``: a country code with that country's IBAN length that passes the
  mod-97 check, compact or in groups of four.

JSON is scrubbed on the text first; then the parsed document is checked value by value (strings are
decoded, so escapes and JSON or forms nested inside strings are seen too, and bare numbers are
checked). If that finds anything more, or the text pass broke the JSON, the document is scrubbed
structurally and re-serialised. Form bodies get the same second look per decoded field (base64
fields, as Braintree's ``bt_payload``, are decoded, scrubbed and re-encoded).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import urllib.parse
from typing import Any

PAN_MASK = "[PAN]"
CVC_MASK = "[CVC]"

# -- PAN -----------------------------------------------------------------------------------------

_DIGIT = r"(?:[0-9]|\\u003[0-9]|&#(?:4[89]|5[0-7]);|&#x3[0-9];)"
_SEP_UNIT = r"(?:[ \u00a0./+-]|%20|%2[DdEeFf]|%C2%A0|\\u0020|\\u00[Aa]0|\\u002[DdEeFf]|&nbsp;|&#160;|&#xA0;)"
# The first digit is not glued to a word or a hex id (``sub_4111...``, digests) unless an escape ends
# right before it (``\n``, ``%0A``). Written as branches starting with the digit so the regex engine can
# skip ahead to candidate characters (a leading lookbehind would make it try every position).
_FIRST = (
    r"(?:[0-9](?:(?<![0-9A-Za-z_].)|(?<=\\[nrtbf/].)|(?<=%[0-9A-Fa-f]{2}.))"
    r"|\\u003[0-9](?<![0-9A-Za-z_].{6})|&#(?:4[89]|5[0-7]);|&#x3[0-9];)"
)
_SEP = r"(?:" + _SEP_UNIT + r"){1,3}"
# One group of 13+ digits, or groups of 3+ digits joined by separators, then up to three short groups
# (expiry, CVC). Rarely matching short numbers keeps the per-match Python work small.
_RUN = re.compile(
    _FIRST
    + r"(?:"
    + _DIGIT
    + r"{12,}(?:"
    + _SEP
    + _DIGIT
    + r"{1,4}){0,3}|"
    + _DIGIT
    + r"{2,}(?:"
    + _SEP
    + _DIGIT
    + r"{3,})+(?:"
    + _SEP
    + _DIGIT
    + r"{1,4}){0,3})(?![0-9A-Za-z_])"
)
_TOKEN = re.compile(r"(" + _SEP_UNIT + r")|" + _DIGIT)
_PLAIN_DIGITS = re.compile(r"[0-9]+")


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


def is_pan(digits: str) -> bool:
    """13-19 digits passing the Luhn check."""
    return 13 <= len(digits) <= 19 and digits.isdigit() and luhn_ok(digits)


def _digit_of(token: str) -> str:
    if token.startswith("\\u"):
        return token[-1]
    if token.startswith("&#x"):
        return token[-2]
    if token.startswith("&#"):
        return chr(int(token[2:-1]))
    return token


def _groups(run: str) -> list[tuple[int, int, str]]:
    """(start, end, digits) of each group of adjacent digit tokens in a run."""
    if "\\" not in run and "&" not in run and "%" not in run:
        return [(m.start(), m.end(), m.group()) for m in _PLAIN_DIGITS.finditer(run)]
    groups: list[tuple[int, int, str]] = []
    for m in _TOKEN.finditer(run):
        if m.group(1) is not None:
            continue
        d = _digit_of(m.group(0))
        if groups and groups[-1][1] == m.start():
            s, _, ds = groups[-1]
            groups[-1] = (s, m.end(), ds + d)
        else:
            groups.append((m.start(), m.end(), d))
    return groups


def _pan_spans(groups: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(groups):
        found = _pan_at(groups, i)
        if found is None:
            i += 1
            continue
        j = found
        for _ in range(3):  # expiry / CVC written right after the number
            if j + 1 < len(groups) and len(groups[j + 1][2]) <= 4:
                j += 1
        spans.append((groups[i][0], groups[j][1]))
        i = j + 1
    return spans


def _pan_at(groups: list[tuple[int, int, str]], i: int) -> int | None:
    """Index of the last group of the longest PAN starting at group ``i``, if any."""
    best: int | None = None
    digits = ""
    for j in range(i, len(groups)):
        g = groups[j][2]
        if j > i and len(groups[j - 1][2]) < 3:
            break  # a short group can only end a number
        digits += g
        if len(digits) > 23:
            break
        if is_pan(digits) or (j == i and 20 <= len(digits) <= 23 and any(is_pan(digits[:-k]) for k in (3, 4))):
            best = j
    return best


def _mask_pans(text: str) -> str:
    if sum(map(text.count, "0123456789")) < 13:
        return text

    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        groups = _groups(run)
        if sum(len(g[2]) for g in groups) < 13:
            return run
        spans = _pan_spans(groups)
        if not spans:
            return run
        out, last = [], 0
        for s, e in spans:
            out += [run[last:s], PAN_MASK]
            last = e
        out.append(run[last:])
        return "".join(out)

    return _RUN.sub(repl, text)


# -- IBAN ----------------------------------------------------------------------------------------

IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN = re.compile(r"(?<![0-9A-Za-z])[A-Z]{2}[0-9]{2}(?:[ -]?[0-9A-Z]){11,30}")


def iban_ok(iban: str) -> bool:
    """Country length and the ISO 13616 mod-97 check."""
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    return int("".join(str(int(c, 36)) for c in iban[4:] + iban[:4])) % 97 == 1


def _mask_ibans(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        s = m.group(0)
        length = IBAN_LENGTHS.get(s[:2])
        if length is None:
            return s
        chars = [(i, c) for i, c in enumerate(s) if c.isalnum()]
        if len(chars) < length:
            return s
        end = chars[length - 1][0] + 1
        if end < len(s) and s[end].isalnum():
            return s  # glued to more characters: not a whole IBAN
        if not iban_ok("".join(c for _, c in chars[:length])):
            return s
        return f"[IBAN ending {''.join(c for _, c in chars[length - 4 : length])}]" + _mask_ibans(s[end:])

    return _IBAN.sub(repl, text)


# -- CVC -----------------------------------------------------------------------------------------

_CVC_NAME = re.compile(
    r"(?:card|cc|payment|pm)?(?:cvc|cvv|cvn|cvd|csc|cid)2?(?:code|number|num|no|value|val)?"
    r"|(?:card|cc)?security(?:code|number|num|no|value)"
    r"|cardverification(?:code|value|number)?"
)
_CVC_PROSE = re.compile(
    r"(?i)((?:cvc2?|cvv2?|cvn|cvd|csc|security[ _-]?code|verification[ _-]?(?:code|value))"
    r"(?:[ _-]?(?:code|number|no|value))?[\s:=#]{0,3})([0-9]{3,4})(?![0-9])"
)
_QUOTED_KEYS = tuple(
    re.compile(q + r"((?:(?!" + q + r")[^\\\n]){1,64})" + q + r"(\s*:\s*)(" + q + r"(?:(?!" + q + r")[^\\]|\\.)*?" + q
               + r"|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)")
    for q in ('"', "'", "&quot;", r'\\"')
)  # fmt: skip
_CVC_STEMS = ("cvc", "cvv", "cvn", "cvd", "cv2", "csc", "cid", "secur", "verif")


def _cvc_hint(text: str) -> bool:
    low = text.lower()
    return any(stem in low for stem in _CVC_STEMS)


_XML_ELEMENT = re.compile(r"<((?:[\w.-]+:)?([\w.-]+))(\s[^<>]*)?>([^<]+)</\1\s*>")
_XML_ESCAPED_ELEMENT = re.compile(r"&lt;((?:[\w.-]+:)?([\w.-]+))((?:\s(?:(?!&gt;)[^<>])*)?)&gt;([^&<]+)&lt;/\1\s*&gt;")
_XML_ATTR = re.compile(r"""(\s)([\w.:-]+)(\s*=\s*)(["'])([^"'<>]*)\4""")
_FORM_FIELD = re.compile(r"""(^|[&?;\s>])([^=&\s"'<>]{1,120})=([^&\s"'<>\\]*)""")
_NAME_SPLIT = re.compile(r"\[|\]|%5[BbDd]|\.|:")


@functools.lru_cache(maxsize=4096)
def is_cvc_name(name: str) -> bool:
    """True for a field name that holds a card security code (``cvc``, ``card[cvv2]``, ``securityCode``...)."""
    parts = [p for p in _NAME_SPLIT.split(name) if p]
    last = parts[-1] if parts else name
    return _CVC_NAME.fullmatch(re.sub(r"[^a-z0-9]", "", last.lower())) is not None


def _mask_cvcs(text: str) -> str:
    def quoted(m: re.Match[str]) -> str:
        key, colon, value = m.groups()
        q = m.group(0)[: m.start(1) - m.start(0)]
        if not is_cvc_name(_unescape(key)) or value in (q + q, f"{q}{CVC_MASK}{q}"):
            return m.group(0)
        return f"{q}{key}{q}{colon}{q}{CVC_MASK}{q}"

    def element(m: re.Match[str]) -> str:
        if not is_cvc_name(m.group(2)) or not m.group(4).strip():
            return m.group(0)
        return f"<{m.group(1)}{m.group(3) or ''}>{CVC_MASK}</{m.group(1)}>"

    def escaped_element(m: re.Match[str]) -> str:
        if not is_cvc_name(m.group(2)):
            return m.group(0)
        return f"&lt;{m.group(1)}{m.group(3)}&gt;{CVC_MASK}&lt;/{m.group(1)}&gt;"

    def attribute(m: re.Match[str]) -> str:
        space, name, eq, q, value = m.groups()
        if not is_cvc_name(name) or not value:
            return m.group(0)
        return f"{space}{name}{eq}{q}{CVC_MASK}{q}"

    def prose(m: re.Match[str]) -> str:
        if m.start() and m.string[m.start() - 1].isalpha():
            return m.group(0)
        return m.group(1) + CVC_MASK

    def form(m: re.Match[str]) -> str:
        key = urllib.parse.unquote_plus(m.group(2))
        if not is_cvc_name(key) or not m.group(3) or m.group(3) == CVC_MASK:
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}={CVC_MASK}"

    if not _cvc_hint(text):
        return text
    for rx in _QUOTED_KEYS:
        text = rx.sub(quoted, text)
    text = _XML_ELEMENT.sub(element, text)
    text = _XML_ESCAPED_ELEMENT.sub(escaped_element, text)
    text = _XML_ATTR.sub(attribute, text)
    text = _FORM_FIELD.sub(form, text)
    return _CVC_PROSE.sub(prose, text)


def _unescape(key: str) -> str:
    if "\\" not in key:
        return key
    try:
        return str(json.loads(f'"{key}"'))
    except ValueError:
        return key


# -- structure -----------------------------------------------------------------------------------


_IBAN_HINT = re.compile(r"[A-Z]{2}[0-9]{2}")


def _may_hold_card_data(text: str) -> bool:
    """Cheap pre-check: a PAN needs 13 digits, an IBAN 15 characters, a CVC a field name.

    Thirteen digits scattered over ids and timestamps (a typical PSP payload: hex and base-62 ids glued
    to letters) are no PAN unless they form a candidate run of the PAN rule with 13 digits or more, which
    a C-speed search tells; only then (or when escapes, entities, forms or base64 could hide digits) do the
    full rules run, with their JSON parse and value walk. The outcome is the same as running them: nothing
    to mask.
    """
    if _cvc_hint(text) or "\\u" in text or "&#" in text or "%" in text:
        return True  # escapes may hide digits or names: let the full rules look
    if len(text) < 13:
        return False
    if _IBAN_HINT.search(text) is not None:
        return True
    if sum(map(text.count, "0123456789")) < 13:
        return False
    # Backslash escapes, entities and form fields (base64 values) may hide a run from the search.
    if "\\" in text or "&" in text or "=" in text:
        return True
    # Past that, digits are plain and separators are characters: a PAN run starts at a digit not glued to a
    # word (as in ``_FIRST``) and lies inside a stretch of digits and separators holding 13 digits or more.
    # Shorter stretches (our invoice numbers ``INV-2026-000123``, dates) hold no run the PAN rule would look
    # at (``_mask_pans`` skips runs under 13 digits), nor do digits glued to an id (``evt_0953856375754a``).
    for m in _DIGIT_STRETCH.finditer(text):
        stretch = m.group()
        if m.start() and _GLUE.match(text, m.start() - 1):  # its first digits are glued: no run starts there
            stretch = stretch.lstrip("0123456789")
        if sum(map(stretch.count, "0123456789")) >= 13:
            return True
    return False


_DIGIT_STRETCH = re.compile(r"[0-9][0-9 \u00a0./+-]{12,}")  # at least 13 characters; a leading set scans fast
_GLUE = re.compile(r"[0-9A-Za-z_]")


def scrub_text(text: str) -> str:
    """Every rule on the text as it is (no parsing): CVC fields, IBANs, PANs."""
    if len(text) < 3 or not _may_hold_card_data(text):
        return text
    return _mask_pans(_mask_ibans(_mask_cvcs(text)))


def _scrub_value(value: Any) -> Any:
    """A parsed JSON value with card data removed (CVC fields by name, PANs in strings and numbers)."""
    if isinstance(value, dict):
        return {scrub(k): (CVC_MASK if is_cvc_name(k) and _filled(v) else _scrub_value(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v) for v in value]
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, int) and not isinstance(value, bool) and is_pan(str(abs(value))):
        return PAN_MASK
    return value


def scrub_value(value: Any) -> Any:
    """Any JSON-able value (an error detail, a log field) with card data removed."""
    return _scrub_value(value)


def _filled(v: Any) -> bool:
    return isinstance(v, str | int | float) and not isinstance(v, bool) and v not in ("", CVC_MASK)


_JOIN = "\n\x00\n"  # between strings: no rule matches across it


def _nested(s: str) -> bool:
    return s.lstrip()[:1] in ("{", "[", '"') or ("=" in s and _FORM_BODY.fullmatch(s) is not None)


def _is_clean(doc: Any) -> bool:
    """Fast check of a parsed document: CVC keys and numbers per value, all plain strings in one text pass."""
    strings: list[str] = []
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for k, item in v.items():
                if is_cvc_name(k) and _filled(item):
                    return False
                strings.append(k)
                stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str):
            if _nested(v):
                if scrub(v) != v:
                    return False
            else:
                strings.append(v)
        elif isinstance(v, int) and not isinstance(v, bool) and is_pan(str(abs(v))):
            return False
    blob = _JOIN.join(strings)
    return scrub_text(blob) == blob


def _scrub_json(text: str) -> str | None:
    """Scrubbed JSON text, or None when ``text`` is not a JSON object, array or (JSON-holding) string.

    The parsed document is checked value by value first (strings decoded, so escapes and nested
    JSON or forms are seen); a clean document is returned byte for byte. Otherwise the text pass is
    used when its result is valid and clean, else the structurally scrubbed document, re-serialised.
    """
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if isinstance(doc, str):  # JSON encoded twice: a JSON string holding JSON
        inner = scrub(doc)
        return text if inner == doc else json.dumps(inner, ensure_ascii=False)
    if not isinstance(doc, dict | list):
        return None
    if _is_clean(doc):
        return text
    clean = _scrub_value(doc)
    if clean == doc:
        return text
    out = scrub_text(text)
    try:
        reparsed = json.loads(out)
    except ValueError:
        reparsed = None
    if reparsed is not None and _is_clean(reparsed):
        return out
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"))


_FORM_BODY = re.compile(r"[^\s=&]+=[^\s&]*(?:&[^\s=&]+=[^\s&]*)*")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _scrub_form(scrubbed: str) -> str:
    pairs = urllib.parse.parse_qsl(scrubbed, keep_blank_values=True)
    out = [(k, CVC_MASK if is_cvc_name(k) and v else _scrub_field(v)) for k, v in pairs]
    return scrubbed if out == pairs else urllib.parse.urlencode(out)


def _scrub_field(value: str) -> str:
    compact = value.replace("\n", "")
    if len(compact) % 4 == 0 and _BASE64.fullmatch(compact):
        try:
            decoded = base64.b64decode(compact, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = None
        if decoded is not None:
            clean = scrub(decoded)
            if clean != decoded:
                encoded = base64.encodebytes(clean.encode()).decode() if "\n" in value else None
                return encoded or base64.b64encode(clean.encode()).decode()
            return value
    return scrub(value)


def scrub(text: str) -> str:
    """The text with PANs, card security codes and IBANs masked, in the same format as it came."""
    if len(text) < 3 or not _may_hold_card_data(text):
        return text
    if text.lstrip()[:1] in ("{", "[", '"'):
        js = _scrub_json(text)
        if js is not None:
            return js
    out = scrub_text(text)
    if "=" in out and _FORM_BODY.fullmatch(out):
        return _scrub_form(out)
    return out


def scrub_bytes(raw: bytes) -> str:
    """Scrub a raw body; bytes that are not UTF-8 are replaced (signatures were checked before)."""
    return scrub(raw.decode("utf-8", errors="replace"))
