"""Card data in every shape PSPs and merchants write it, signed deliveries per PSP carrying it, and a
detector that looks through escapes and encodings. Shared by the unit matrix, the pipeline test and the
end-to-end sweep."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.psp import signing
from shared.psp.base import Delivery, PspConfig
from shared.scrub import is_pan
from tests.fixtures.psp import load

CVC = "739"
IBAN = "DE89 3704 0044 0532 0130 00"
PANS = ("4111111111111111", "378282246310005", "5555555555554444", "4222222222222", "6011000990139424")
CVC_NAMES = (
    "cvc", "cvv", "cvn", "cvc2", "cvv2", "card_cvc", "cvcNumber", "security_code", "card_security_code",
    "cardSecurityCode", "cvv_code", "securityCode", "CVV", "Card-Cvc", "CARD_SECURITY_CODE", "cid", "csc",
)  # fmt: skip


def grouped(pan: str, sep: str) -> str:
    return sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))


def json_escaped(pan: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in pan)


def text_shapes(pan: str) -> dict[str, str]:
    """Free text a PSP may echo (descriptions, decline messages, metadata)."""
    shapes = {
        "plain": pan,
        "space": grouped(pan, " "),
        "dash": grouped(pan, "-"),
        "dot": grouped(pan, "."),
        "slash": grouped(pan, "/"),
        "double space": grouped(pan, "  "),
        "nbsp": grouped(pan, "\u00a0"),
        "%20": grouped(pan, "%20"),
        "plus": grouped(pan, "+"),
        "pan then cvc": f"{grouped(pan, ' ')} {CVC}",
        "pan expiry cvc": f"{pan} 12/29 {CVC}",
        "prose": f"card {pan} CVV: {CVC} declined",
        "json string": json.dumps({"number": pan, "cvc": CVC}),
        "json twice": json.dumps(json.dumps({"card": {"number": pan, "cvv2": CVC}})),
        "form": f"card[number]={pan}&card[cvc]={CVC}",
        "form encoded": urllib.parse.urlencode({"card[number]": grouped(pan, " "), "card[cvc]": CVC}),
        "xml": f"<card><number>{pan}</number><security-code>{CVC}</security-code></card>",
        "python repr": str({"number": pan, "securityCode": CVC}),
        "iban": f"refund to {IBAN}",
    }
    for name in CVC_NAMES:
        shapes[f"json key {name}"] = json.dumps({name: CVC})
        shapes[f"form key {name}"] = f"{name}={CVC}&x=1"
    return shapes


# Raw shapes: placeholders replaced in the serialised JSON (they cannot be written through json.dumps).
RAW_PLACEHOLDER = "@@RAW@@"


def raw_shapes(pan: str) -> dict[str, str]:
    return {
        "json \\u escapes": f'"{json_escaped(pan)}"',
        "json \\u escapes grouped": '"' + "\\u0020".join(json_escaped(pan[i : i + 4]) for i in range(0, 16, 4)) + '"',
        "bare json number": pan,
        "nested cvc keys": json.dumps(dict.fromkeys(CVC_NAMES, CVC)),
        "escaped cvc key": '{"\\u0063vc": "' + CVC + '"}',
    }


# -- detection -------------------------------------------------------------------------------------


def reveal(text: str) -> str:
    """The text plus its decodings (JSON escapes, percent/plus, XML entities, base64 blobs), twice over."""
    layers = [text]
    for _ in range(2):
        t = layers[-1]
        t = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), t)
        t = t.replace('\\"', '"').replace("\\\\", "\\")
        t = urllib.parse.unquote_plus(t)
        t = html.unescape(t)
        for blob in re.findall(r"[A-Za-z0-9+/\n]{40,}={0,2}", t):
            try:
                t += "\n" + base64.b64decode(blob.replace("\n", "")).decode("utf-8", "replace")
            except ValueError:
                pass
        layers.append(t)
    return "\n".join(layers)


def leaks(text: str, pans: Iterable[str] = PANS) -> list[str]:
    """What of the known card data is still visible in ``text`` under any encoding."""
    shown = reveal(text)
    digits = re.sub(r"[^0-9]", "", shown)
    found = [f"PAN {p[-4:]}" for p in pans if p in digits]
    # A standalone token: the same three digits inside a random hex id (evt_dd739bd3) are not the CVC.
    if re.search(rf"(?<![0-9A-Za-z]){CVC}(?![0-9A-Za-z])", shown):
        found.append("CVC")
    if IBAN.replace(" ", "") in re.sub(r"[^A-Z0-9]", "", shown):
        found.append("IBAN")
    return found


_RUN_SEP = r"(?:[ \u00a0\t./+,-]|%20){1,3}"
_DIGIT_RUN = re.compile(r"[0-9]+(?:" + _RUN_SEP + r"[0-9]+)*")


def luhn_sequences(text: str) -> list[str]:
    """Every Luhn-valid 13-19 digit sequence, written with any separator a card number is written with.

    Looks through every encoding :func:`reveal` knows, and is stricter than the scrubber: any group
    size, any start and end group within a run (digit groups joined by up to three of space, tab,
    non-breaking space, ``.``, ``/``, ``+``, ``,``, ``-``, ``%20``). Runs glued to letters (hex digests,
    ``sub_...`` ids) are not numbers; ``:`` is not a separator (times).
    """
    found = []
    shown = reveal(text)
    for m in _DIGIT_RUN.finditer(shown):
        start, end = m.start(), m.end()
        if (start and (shown[start - 1].isalpha() or shown[start - 1] == "_")) or (
            end < len(shown) and (shown[end].isalpha() or shown[end] == "_")
        ):
            continue
        groups = re.findall(r"[0-9]+", m.group(0))
        for i in range(len(groups)):
            digits = ""
            for g in groups[i:]:
                digits += g
                if len(digits) > 19:
                    break
                if is_pan(digits):
                    found.append(digits)
    return found


# -- signed deliveries per PSP ---------------------------------------------------------------------

NOW = dt.datetime.now(dt.UTC)
ISO = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")

STRIPE_SECRET = "whsec_card_matrix_not_a_secret"
ADYEN_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
ADYEN_AUTH = "adyen-user:not-a-password"
PAYPAL_WEBHOOK_ID = "WH-CARD-MATRIX"
GOCARDLESS_SECRET = "gc_card_matrix_not_a_secret"
BT_PUB, BT_PRIV = "bt_pub_card_matrix", "bt_priv_card_matrix_not_a_secret"
CKO_SECRET, CKO_AUTH = "cko_card_matrix_not_a_secret", "cko_auth_card_matrix"

ENV = {
    "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
    "ADYEN_HMAC_KEYS": ADYEN_KEY,
    "ADYEN_BASIC_AUTH": ADYEN_AUTH,
    "PAYPAL_WEBHOOK_ID": PAYPAL_WEBHOOK_ID,
    "GOCARDLESS_WEBHOOK_SECRETS": GOCARDLESS_SECRET,
    "BRAINTREE_MERCHANT_ID": "merchant_card_matrix",
    "BRAINTREE_PUBLIC_KEY": BT_PUB,
    "BRAINTREE_PRIVATE_KEY": BT_PRIV,
    "CHECKOUT_WEBHOOK_SECRETS": CKO_SECRET,
    "CHECKOUT_AUTHORIZATION": CKO_AUTH,
}
PSPS = ("stripe", "adyen", "paypal", "gocardless", "braintree", "checkout")


def config(psp: str) -> PspConfig:
    from shared.psp.registry import ADAPTERS

    names = (*ADAPTERS[psp].required_env, *ADAPTERS[psp].optional_env)
    return PspConfig(psp=psp, account="default", livemode=False, values={n: ENV[n] for n in names if n in ENV})


@dataclass(frozen=True)
class Signed:
    psp: str
    body: bytes
    headers: dict[str, str]
    content_type: str

    def delivery(self) -> Delivery:
        return Delivery(self.body, self.headers, self.content_type, dt.datetime.now(dt.UTC))


def _json_body(data: dict[str, Any], raw: str | None) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if raw is not None:
        text = text.replace(json.dumps(RAW_PLACEHOLDER), raw)
    return text.encode()


def signed(
    psp: str, text: str, uid: str, *, raw: str | None = None, pki: Any = None, env: Mapping[str, str] = ENV
) -> Signed:
    """A signed delivery of ``psp`` whose free-text fields (those that reach the canonical event too) hold
    ``text``; ``raw`` is spliced into the JSON text as is (escapes, bare numbers) in a ``card`` field.
    Secrets come from ``env`` (the last of a comma-separated list)."""

    def secret(name: str) -> str:
        return env[name].split(",")[-1]

    slot: Any = RAW_PLACEHOLDER if raw is not None else {"number": "n/a"}
    if psp == "stripe":
        ev = load("stripe_payment_intent_payment_failed.json")
        ev["id"], ev["created"] = f"evt_{uid}", int(NOW.timestamp())
        obj = ev["data"]["object"]
        obj["last_payment_error"]["message"] = text
        obj["description"] = text
        obj["metadata"]["attempt_id"] = text
        obj["card"] = slot
        body = _json_body(ev, raw)
        return Signed(
            psp,
            body,
            {"Stripe-Signature": signing.stripe_header(body, secret("STRIPE_WEBHOOK_SECRETS"))},
            "application/json",
        )
    if psp == "adyen":
        ev = load("adyen_authorisation.json")
        item = ev["notificationItems"][0]["NotificationRequestItem"]
        item.update(pspReference=f"PSP{uid.upper()}", success="false", reason=text, eventDate=ISO)
        item["additionalData"]["metadata.attempt_id"] = text
        item["additionalData"]["card"] = slot
        signed_ev = signing.adyen_sign(ev, secret("ADYEN_HMAC_KEYS"))
        body = _json_body(signed_ev, raw)
        return Signed(psp, body, {"Authorization": signing.basic_auth(env["ADYEN_BASIC_AUTH"])}, "application/json")
    if psp == "paypal":
        ev = load("paypal_capture_completed.json")
        ev["id"], ev["create_time"] = f"WH-{uid}", ISO
        ev["resource"]["custom_id"] = text
        ev["resource"]["note_to_payer"] = text
        ev["resource"]["card"] = slot
        body = _json_body(ev, raw)
        return Signed(psp, body, pki.headers(body, env["PAYPAL_WEBHOOK_ID"]), "application/json")
    if psp == "gocardless":
        ev = {
            "id": f"EV{uid.upper()}",
            "created_at": ISO,
            "resource_type": "payments",
            "action": "failed",
            "links": {"payment": f"PM{uid.upper()}"},
            "details": {"origin": "bank", "cause": "refer_to_payer", "description": text, "card": slot},
            "resource_metadata": {"attempt_id": text},
        }
        body = _json_body({"events": [ev], "meta": {"webhook_id": f"WB{uid}"}}, raw)
        return Signed(
            psp,
            body,
            {"Webhook-Signature": signing.hex_hmac(body, secret("GOCARDLESS_WEBHOOK_SECRETS"))},
            "application/json",
        )
    if psp == "checkout":
        ev = load("checkout_payment_declined.json")
        ev["id"], ev["created_on"] = f"evt_{uid}", ISO
        ev["data"]["response_summary"] = text
        ev["data"]["metadata"]["attempt_id"] = text
        ev["data"]["source"] = slot
        body = _json_body(ev, raw)
        headers = {
            "Cko-Signature": signing.hex_hmac(body, secret("CHECKOUT_WEBHOOK_SECRETS")),
            "Authorization": env["CHECKOUT_AUTHORIZATION"],
        }
        return Signed(psp, body, headers, "application/json")
    if psp == "braintree":
        t = html.escape(text, quote=False)
        card = raw or ""
        xml = (
            f'<notification><timestamp type="datetime">{ISO}</timestamp><kind>transaction_settlement_declined</kind>'
            f"<subject><transaction><id>bt{uid}</id><amount>10.00</amount><currency-iso-code>USD</currency-iso-code>"
            f"<order-id>{t}</order-id><processor-settlement-response-code>4001</processor-settlement-response-code>"
            f"<processor-settlement-response-text>{t}</processor-settlement-response-text>"
            f"<custom-fields><attempt-id>{t}</attempt-id></custom-fields>{card}</transaction></subject></notification>"
        )
        return Signed(
            psp,
            signing.braintree_form(xml, env["BRAINTREE_PUBLIC_KEY"], env["BRAINTREE_PRIVATE_KEY"]),
            {},
            "application/x-www-form-urlencoded",
        )
    raise ValueError(psp)


def xml_raw_shapes(pan: str) -> dict[str, str]:
    """Braintree's counterpart of :func:`raw_shapes`: markup spliced into the transaction."""
    refs = "".join(f"&#{ord(c)};" for c in pan)
    elements = "".join(f"<{n}>{CVC}</{n}>" for n in CVC_NAMES if re.fullmatch(r"[A-Za-z_][\w.-]*", n))
    return {
        "xml char refs": f"<description>{refs}</description>",
        "xml card": f'<credit-card cvv="{CVC}"><number>{grouped(pan, " ")}</number>{elements}</credit-card>',
    }


def matrix() -> list[tuple[str, str, str, str | None]]:
    """(psp, shape name, free text, raw splice) for every PSP x every shape, PANs of every length in turn."""
    rows: list[tuple[str, str, str, str | None]] = []
    for psp in PSPS:
        for i, name in enumerate(text_shapes(PANS[0])):
            rows.append((psp, name, text_shapes(PANS[i % len(PANS)])[name], None))
        raws = xml_raw_shapes(PANS[0]) if psp == "braintree" else raw_shapes(PANS[0])
        for name, raw in raws.items():
            rows.append((psp, name, "no card here", raw))
    return rows
