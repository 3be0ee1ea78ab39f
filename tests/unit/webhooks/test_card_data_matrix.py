"""Every PSP x every shape of card data: nothing survives into the archive or the canonical event.

Each row is a signed delivery in the PSP's own format whose free-text fields (the ones that reach the
canonical event: decline messages, metadata, references) hold card data in one shape. It goes through
the adapter's verify and normalise and through the archive path of the webhook service (scrub of the
item's own text, else of the body, then the Firestore archive fields); the archive must stay valid
JSON (Braintree: XML) and neither it nor the event may show the PAN, CVC or IBAN under any encoding.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import pytest
from cryptography import x509

from shared.psp.base import Adapter
from shared.psp.paypal import CertificateCache, PayPalAdapter
from shared.psp.registry import ADAPTERS
from shared.psp.signing import paypal_test_pki
from shared.scrub import scrub, scrub_bytes
from shared.webhooks import store
from tests.card_data import config, leaks, luhn_sequences, matrix, signed

PKI = paypal_test_pki()
ROWS = matrix()


def _adapter(psp: str) -> Adapter:
    if psp == "paypal":
        root = x509.load_pem_x509_certificate(PKI.root_pem)
        return PayPalAdapter(CertificateCache(fetcher=lambda url: PKI.chain_pem, roots=lambda: [root]))
    return ADAPTERS[psp]


@pytest.mark.parametrize(("psp", "shape", "text", "raw"), ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_no_card_data_reaches_archive_or_event(psp: str, shape: str, text: str, raw: str | None) -> None:
    s = signed(psp, text, uuid.uuid4().hex[:10], raw=raw, pki=PKI)
    adapter, cfg = _adapter(psp), config(psp)
    notes = adapter.verify(s.delivery(), cfg)
    events = [adapter.normalise(n, cfg) for n in notes]
    for note, event in zip(notes, events, strict=True):
        original = note.raw or s.body.decode()
        assert leaks(original), "the payload must carry card data, or this row proves nothing"
        archived = store.archived_raw(scrub(note.raw) if note.raw else scrub_bytes(s.body))
        text_out = archived["raw"]
        assert leaks(text_out) == [], text_out
        assert luhn_sequences(text_out) == [], text_out
        if psp == "braintree":
            ET.fromstring(text_out)
        else:
            json.loads(text_out)
        assert event is not None
        dumped = event.model_dump_json()
        assert leaks(dumped) == [], dumped
        assert luhn_sequences(dumped) == [], dumped


def test_braintree_form_body_itself_is_scrubbed_and_stays_a_valid_form() -> None:
    """The raw form (base64 XML inside) is what the service archives when an adapter keeps no item text."""
    s = signed("braintree", "card 4111 1111 1111 1111 cvv 739", "formbody", raw="<cvv>739</cvv>")
    assert leaks(s.body.decode())
    out = scrub_bytes(s.body)
    form = urllib.parse.parse_qs(out, strict_parsing=True)
    xml = base64.b64decode(form["bt_payload"][0]).decode()
    ET.fromstring(xml)
    assert leaks(xml) == []
    assert leaks(out) == []


def test_the_detector_sees_through_every_encoding() -> None:
    """The checks above can fail: the detector finds each shape before scrubbing."""
    for psp, shape, text, raw in ROWS:
        if raw is None:
            assert leaks(text), (psp, shape)
