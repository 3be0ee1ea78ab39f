"""Evidence submission through each PSP's SDK (or requests) against a local stub asserting the exact
requests; exactly once per dispute (a second operator, a retry after a crash); the CLI's confirmation."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import urllib.parse
from typing import Any

import pytest
from braintree.util.xml_util import XmlUtil
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from shared.disputes import evidence
from shared.disputes.service import SUBMISSIONS, DisputeDeps, DisputeService
from shared.disputes.submit import SubmitError
from shared.disputes.submit.base import summary
from shared.domain.disputes import Status
from shared.events.publisher import RecordingPublisher
from shared.ops import disputes as cli
from tests.conftest import Gcp
from tests.integration.disputes.support import NOW, PDF, disputed

PRODUCT = "Subscription sub_1 to plan pro billed every 1 month in advance since 2026-09-01"
SUMMARY_HEAD = "Ada Lovelace\nada@example.com\nStr 1, DE\nSubscription sub_1 to plan pro billed every 1 month"
CKO_SECRET = "sk_sbox_m73dzbpy7cf3gfd46xr4yj5xo4e"  # the SDK checks the shape; fake


def _facts(svc: DisputeService, key: str) -> dict[str, Any]:
    return evidence.unpack(evidence.read((svc.get(key) or {})["evidence"]["uri"]))[0]


def _submitted(svc: DisputeService, key: str) -> dict[str, Any]:
    doc = svc.get(key) or {}
    assert doc["status"] == "under_review"
    assert doc["submission"]["packet_sha256"] == doc["evidence"]["sha256"]
    pub = svc.deps.publisher
    assert isinstance(pub, RecordingPublisher)
    sent = pub.on("dispute-events")
    # Each repeat repairs what a crash may have skipped, under one event id (consumers see it once).
    assert {(s.attributes["event_type"], s.attributes["event_id"]) for s in sent} == {
        ("dispute.evidence_submitted", sent[0].attributes["event_id"])
    }
    return doc


# -- Stripe ---------------------------------------------------------------------------------------
@pytest.fixture
def stripe_env(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_dummy")
    monkeypatch.setenv("STRIPE_API_BASE", httpserver.url_for("").rstrip("/"))
    httpserver.expect_request("/v1/files", method="POST").respond_with_json(
        {"id": "file_1", "object": "file", "purpose": "dispute_evidence"}
    )
    httpserver.expect_request("/v1/disputes/dp_1", method="POST").respond_with_json(
        {"id": "dp_1", "object": "dispute", "status": "under_review"}
    )
    return httpserver


def test_stripe_exact_request_once_and_the_dispute_under_review(gcp: Gcp, stripe_env: HTTPServer) -> None:
    svc, key = disputed("stripe")
    out = svc.submit_evidence(key, operator="alice")
    again = svc.submit_evidence(key, operator="bob")
    assert again["submission"] == out["submission"], "the second operator finds it submitted"
    (upload, _), (sent, _) = stripe_env.log
    assert (upload.path, upload.form.to_dict()) == ("/v1/files", {"purpose": "dispute_evidence"})
    (f,) = upload.files.getlist("file")
    assert (f.filename, f.read()) == ("INV-2.pdf", PDF[2]), "the disputed payment's invoice is the receipt"
    assert sent.headers["Idempotency-Key"].startswith("dispute-evidence-")
    assert upload.headers["Idempotency-Key"] == sent.headers["Idempotency-Key"] + "-receipt"
    assert sent.headers["Authorization"] == "Bearer sk_test_dummy"
    body = dict(urllib.parse.parse_qsl(sent.get_data(as_text=True)))
    assert body == {
        "evidence[customer_name]": "Ada Lovelace",
        "evidence[customer_email_address]": "ada@example.com",
        "evidence[billing_address]": "Str 1, DE",
        "evidence[product_description]": PRODUCT,
        "evidence[service_date]": "2026-10-01",
        "evidence[cancellation_rebuttal]": "Subscription status: active, never canceled by the customer.",
        "evidence[uncategorized_text]": summary(_facts(svc, key)),
        "evidence[receipt]": "file_1",
        "submit": "true",
    }
    assert body["evidence[uncategorized_text]"].startswith(SUMMARY_HEAD)
    doc = _submitted(svc, key)
    assert doc["submission"]["operator"] == "alice"


def test_a_retry_after_a_crash_resends_the_same_request(gcp: Gcp, stripe_env: HTTPServer) -> None:
    svc, key = disputed("stripe")
    svc.build_evidence(key)
    doc = svc.get(key) or {}
    ref = svc.deps.db().collection(SUBMISSIONS).document(f"{key}~chargeback")
    # A submission that claimed, called Stripe and died before recording it: its lease is still held.
    ev = doc["evidence"]
    fields = {"dispute": key, "packet_uri": ev["uri"], "packet_sha256": ev["sha256"], "operator": "alice"}
    svc.submit_claims.claim(ref, NOW, fields=fields)
    with pytest.raises(SubmitError, match="being submitted right now"):
        svc.submit_evidence(key)
    assert stripe_env.log == []
    later = NOW + dt.timedelta(seconds=svc.deps.submit_lease_s + 1)
    retry = DisputeService(DisputeDeps(publisher=svc.deps.publisher, clock=lambda: later))
    retry.submit_evidence(key)
    retry.submit_evidence(key)
    (upload, _), (sent, _) = stripe_env.log
    assert sent.headers["Idempotency-Key"] == svc.submission(key).idempotency_key
    assert upload.headers["Idempotency-Key"] == svc.submission(key).idempotency_key + "-receipt"
    _submitted(svc, key)


def test_cli_prints_the_request_without_confirm_and_sends_it_with(gcp: Gcp, stripe_env: HTTPServer) -> None:
    svc, key = disputed("stripe")
    out = io.StringIO()
    assert cli.main(["submit", key], out, svc) == 2
    preview = json.loads(out.getvalue().rsplit("\n", 2)[0].rsplit("would submit", 1)[0])
    assert preview["request"]["evidence"]["customer_name"] == "Ada Lovelace"
    assert preview["request"]["submit"] is True
    assert preview["request"]["evidence"]["receipt"] == "<File of invoices/INV-2.pdf>"
    assert stripe_env.log == [], "nothing sent without --confirm"
    assert (svc.get(key) or {})["status"] == "needs_response"
    out = io.StringIO()
    assert cli.main(["submit", key, "--confirm", "--operator", "alice"], out, svc) == 0
    assert json.loads(out.getvalue())["status"] == "under_review"
    assert [r.path for r, _ in stripe_env.log] == ["/v1/files", "/v1/disputes/dp_1"]


def test_a_decided_dispute_is_not_submitted(gcp: Gcp, stripe_env: HTTPServer) -> None:
    svc, key = disputed("stripe")
    svc.record_operator(key, Status.ACCEPTED, "accept")
    out = io.StringIO()
    assert cli.main(["submit", key, "--confirm"], out, svc) == 1
    assert "accepted: no evidence can be submitted now" in out.getvalue()
    assert stripe_env.log == []


# -- Adyen ----------------------------------------------------------------------------------------
def test_adyen_supplies_the_invoices_then_defends(
    gcp: Gcp, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADYEN_API_KEY", "AQE_test_key")
    monkeypatch.setenv("ADYEN_MERCHANT_ACCOUNT", "DemoECOM")
    monkeypatch.setenv("ADYEN_DISPUTES_URL", httpserver.url_for("/ca/services/DisputeService/v30"))
    ok = {"disputeServiceResult": {"success": True}}
    base = "/ca/services/DisputeService/v30"
    httpserver.expect_ordered_request(f"{base}/supplyDefenseDocument", method="POST").respond_with_json(ok)
    httpserver.expect_ordered_request(f"{base}/defendDispute", method="POST").respond_with_json(ok)
    svc, key = disputed("adyen", "DZ4DPSHB4WD2WN82")
    svc.submit_evidence(key)
    (docs, _), (defend, _) = httpserver.log
    ids = {"disputePspReference": "DZ4DPSHB4WD2WN82", "merchantAccountCode": "DemoECOM"}
    assert json.loads(docs.get_data()) == {
        **ids,
        "defenseDocuments": [
            {"content": base64.b64encode(PDF[i]).decode(), "contentType": "application/pdf",
             "defenseDocumentTypeCode": "DefenseMaterial"}
            for i in (1, 2)
        ],
    }  # fmt: skip
    assert json.loads(defend.get_data()) == {**ids, "defenseReasonCode": "SupplyDefenseMaterial"}
    assert docs.headers["x-api-key"] == "AQE_test_key"
    assert docs.headers["Idempotency-Key"].endswith("-docs")
    assert defend.headers["Idempotency-Key"] == docs.headers["Idempotency-Key"].removesuffix("-docs") + "-defend"
    _submitted(svc, key)


def test_adyen_refusal_leaves_the_dispute_submittable(
    gcp: Gcp, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADYEN_API_KEY", "AQE_test_key")
    monkeypatch.setenv("ADYEN_MERCHANT_ACCOUNT", "DemoECOM")
    monkeypatch.setenv("ADYEN_DISPUTES_URL", httpserver.url_for("/ds"))
    refused = {"disputeServiceResult": {"success": False, "errorMessage": "defense period ended"}}
    httpserver.expect_request("/ds/supplyDefenseDocument").respond_with_json(refused)
    svc, key = disputed("adyen", "DZ1")
    with pytest.raises(SubmitError, match="defense period ended"):
        svc.submit_evidence(key)
    assert (svc.get(key) or {})["status"] == "needs_response"
    assert not svc.deps.db().collection(SUBMISSIONS).document(f"{key}~chargeback").get().exists, "claim released"


# -- PayPal ---------------------------------------------------------------------------------------
def test_paypal_provide_evidence_multipart(gcp: Gcp, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYPAL_CLIENT_ID", "client")
    monkeypatch.setenv("PAYPAL_CLIENT_SECRET", "secret")
    monkeypatch.setenv("PAYPAL_API_URL", httpserver.url_for("").rstrip("/"))
    httpserver.expect_ordered_request("/v1/oauth2/token", method="POST").respond_with_json(
        {"access_token": "A21-token", "token_type": "Bearer", "expires_in": 32400}
    )
    httpserver.expect_ordered_request(
        "/v1/customer/disputes/PP-D-27803/provide-evidence", method="POST"
    ).respond_with_json({"links": []})
    svc, key = disputed("paypal", "PP-D-27803")
    svc.submit_evidence(key)
    (token, _), (sent, _) = httpserver.log
    assert token.headers["Authorization"] == "Basic " + base64.b64encode(b"client:secret").decode()
    assert token.form.to_dict() == {"grant_type": "client_credentials"}
    assert sent.headers["Authorization"] == "Bearer A21-token"
    assert sent.headers["PayPal-Request-Id"].startswith("dispute-evidence-")
    assert json.loads(sent.form["input"]) == {
        "evidences": [
            {
                "evidence_type": "PROOF_OF_FULFILLMENT",
                "notes": summary(_facts(svc, key), 2000),
                "documents": [{"name": "INV-1.pdf"}, {"name": "INV-2.pdf"}],
            }
        ]
    }
    files = sent.files.getlist("evidence_file")
    assert [(f.filename, f.read(), f.mimetype) for f in files] == [
        ("INV-1.pdf", PDF[1], "application/pdf"),
        ("INV-2.pdf", PDF[2], "application/pdf"),
    ]
    _submitted(svc, key)


# -- Braintree ------------------------------------------------------------------------------------
BT = "/merchants/demo_merchant/disputes/bt_dp_1"


def _bt_env(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRAINTREE_MERCHANT_ID", "demo_merchant")
    monkeypatch.setenv("BRAINTREE_PUBLIC_KEY", "pub")
    monkeypatch.setenv("BRAINTREE_PRIVATE_KEY", "priv")
    monkeypatch.setenv("BRAINTREE_API_URL", httpserver.url_for("").rstrip("/"))


def _xml(body: str, status: int = 200) -> Response:
    return Response(body, status=status, content_type="application/xml")


def test_braintree_text_evidence_then_finalize(
    gcp: Gcp, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bt_env(httpserver, monkeypatch)
    httpserver.expect_ordered_request(f"{BT}/evidence", method="POST").respond_with_response(
        _xml("<evidence><id>ev_1</id><comment>x</comment></evidence>", 201)
    )
    httpserver.expect_ordered_request(f"{BT}/finalize", method="PUT").respond_with_response(_xml("", 200))
    svc, key = disputed("braintree", "bt_dp_1")
    svc.submit_evidence(key)
    (add, _), (fin, _) = httpserver.log
    assert XmlUtil.dict_from_xml(add.get_data(as_text=True)) == {
        "evidence": {"comments": summary(_facts(svc, key), 4000), "category": "", "sequence_number": ""}
    }
    assert fin.get_data() == b""
    assert add.headers["Authorization"] == "Basic " + base64.b64encode(b"pub:priv").decode()
    _submitted(svc, key)


def test_braintree_retry_after_a_crash_looks_first_and_does_not_finalize_twice(
    gcp: Gcp, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _bt_env(httpserver, monkeypatch)

    def found(_: Request) -> Response:
        return _xml(
            '<dispute><id>bt_dp_1</id><status>disputed</status><amount>42.00</amount><evidence type="array"/></dispute>'
        )

    httpserver.expect_request(BT, method="GET").respond_with_handler(found)
    svc, key = disputed("braintree", "bt_dp_1")
    svc.build_evidence(key)
    doc = svc.get(key) or {}
    ref = svc.deps.db().collection(SUBMISSIONS).document(f"{key}~chargeback")
    svc.submit_claims.claim(ref, NOW, fields={"dispute": key, "packet_uri": doc["evidence"]["uri"],
                                               "packet_sha256": doc["evidence"]["sha256"]})  # fmt: skip
    later = NOW + dt.timedelta(seconds=svc.deps.submit_lease_s + 1)
    DisputeService(DisputeDeps(publisher=svc.deps.publisher, clock=lambda: later)).submit_evidence(key)
    assert [(r.method, r.path) for r, _ in httpserver.log] == [("GET", BT)], "finalized before the crash: no repeat"
    assert (svc.get(key) or {})["submission"]["detail"] == {"status": "disputed", "resumed": True}


# -- Checkout.com ---------------------------------------------------------------------------------
def test_checkout_put_evidence_then_submit(gcp: Gcp, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_SECRET_KEY", CKO_SECRET)
    monkeypatch.setenv("CHECKOUT_PROCESSING_CHANNEL_ID", "pc_demochannel000000000000")
    monkeypatch.setenv("CHECKOUT_API_URL", httpserver.url_for("").rstrip("/"))
    httpserver.expect_ordered_request("/disputes/dsp_1/evidence", method="PUT").respond_with_data("", status=204)
    httpserver.expect_ordered_request("/disputes/dsp_1/evidence", method="POST").respond_with_data("", status=204)
    svc, key = disputed("checkout", "dsp_1")
    svc.submit_evidence(key)
    (put, _), (post, _) = httpserver.log
    facts = _facts(svc, key)
    assert json.loads(put.get_data()) == {
        "additional_evidence_text": summary(facts, 5000),
        "invoice_or_receipt_text": "Invoices: INV-1 42.00 EUR paid 2026-09-01; INV-2 42.00 EUR paid 2026-10-01",
        "proof_of_delivery_or_service_date_text": "2026-10-01",
        "proof_of_delivery_or_service_text": (
            "Service provided: INV-1 2026-09-01 to 2026-10-01; INV-2 2026-10-01 to 2026-10-31"
        ),
        "recurring_transaction_agreement_text": PRODUCT,
        "refund_or_cancellation_policy_text": "Subscription status: active, never canceled by the customer.",
    }
    assert post.get_data() in (b"", b"null", b"{}")
    assert put.headers["Authorization"] == f"Bearer {CKO_SECRET}"
    _submitted(svc, key)


def test_gocardless_has_no_submission_api(gcp: Gcp) -> None:
    svc, key = disputed("gocardless", "CB123")
    with pytest.raises(SubmitError, match="offers no API"):
        svc.submit_evidence(key)
    assert (svc.get(key) or {})["status"] == "needs_response"


def test_checkout_retry_after_a_crash_submits_only_while_evidence_is_required(
    gcp: Gcp, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHECKOUT_SECRET_KEY", CKO_SECRET)
    monkeypatch.setenv("CHECKOUT_PROCESSING_CHANNEL_ID", "pc_demochannel000000000000")
    monkeypatch.setenv("CHECKOUT_API_URL", httpserver.url_for("").rstrip("/"))
    httpserver.expect_request("/disputes/dsp_2", method="GET").respond_with_json(
        {"id": "dsp_2", "status": "evidence_under_review", "amount": 4200, "currency": "EUR"}
    )
    svc, key = disputed("checkout", "dsp_2")
    svc.build_evidence(key)
    ev = (svc.get(key) or {})["evidence"]
    ref = svc.deps.db().collection(SUBMISSIONS).document(f"{key}~chargeback")
    svc.submit_claims.claim(ref, NOW, fields={"dispute": key, "packet_uri": ev["uri"], "packet_sha256": ev["sha256"]})
    later = NOW + dt.timedelta(seconds=svc.deps.submit_lease_s + 1)
    DisputeService(DisputeDeps(publisher=svc.deps.publisher, clock=lambda: later)).submit_evidence(key)
    assert [(r.method, r.path) for r, _ in httpserver.log] == [("GET", "/disputes/dsp_2")], "submitted before the crash"
    _submitted(svc, key)
