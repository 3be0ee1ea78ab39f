"""Card data sent by every PSP reaches no Firestore document, no published message and no log line."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from shared.log import CloudLoggingFormatter
from shared.psp import signing
from tests.card_data import ENV, PSPS, leaks, luhn_sequences, signed, text_shapes
from tests.conftest import Gcp
from tests.integration.webhooks.support import PKI, harness

SHAPES = text_shapes("4111111111111111")
TEXT = " | ".join(SHAPES[k] for k in ("space", "%20", "pan expiry cvc", "json string", "xml", "iban"))


def test_card_data_from_every_psp_is_in_no_document_message_or_log_line(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness(gcp, monkeypatch)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    caplog.set_level(logging.DEBUG)
    sent = []
    for psp in PSPS:
        s = signed(psp, TEXT, uuid.uuid4().hex[:10], raw=None, pki=PKI)
        sent.append(s.body)
        r = h.post(f"/{psp}", s.body, s.headers, s.content_type)
        assert r.status_code == 200, (psp, r.get_data(as_text=True))
    # Rejections log their reason: a forged delivery and an authentic one with card data where an
    # amount belongs must not put the card number into the log either.
    forged = sent[0].replace(b"stolen_card", b"stolen_kard")
    assert h.post("/stripe", forged, {"Stripe-Signature": "t=1,v1=00"}).status_code == 401
    odd = json.loads(sent[0])
    odd["data"]["object"]["amount"] = "4111 1111 1111 1111 cvc 739"
    odd["data"]["object"]["currency"] = "4111111111111111"
    body = json.dumps(odd).encode()
    stripe_secret = ENV["STRIPE_WEBHOOK_SECRETS"]
    assert h.post("/stripe", body, {"Stripe-Signature": signing.stripe_header(body, stripe_secret)}).status_code == 400

    assert any(leaks(b.decode()) for b in sent), "the deliveries must carry card data"
    records = h.records()
    assert len(records) == len(PSPS)
    for rec in records:
        text = json.dumps(rec, default=str)
        assert leaks(text) == [], text
        assert luhn_sequences(text) == [], text
    messages = h.drain()
    assert len(messages) == len(PSPS)
    for m in messages:
        text = m.event.model_dump_json()
        assert leaks(text) == [], text
        assert luhn_sequences(text) == [], text
    formatter = CloudLoggingFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    assert any("invalid_signature" in line for line in lines)  # the rejections were logged
    for line in lines:
        assert leaks(line) == [], line
        assert luhn_sequences(line) == [], line
