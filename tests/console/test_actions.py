"""Every console action: strict validation, CSRF, at most once per idempotency key, one audit entry each."""

from __future__ import annotations

from typing import Any

import pytest

from shared import clients
from tests.console.forms import FORM, HEADERS, audit_entries, confirm_form, post
from tests.fixtures.console_world import USER, World, seed_dead_letter
from tests.helpers import drain_messages

pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning")


def _invoice(world: World, i: int = 0) -> dict[str, Any]:
    return clients.firestore().collection("invoices").document(world.invoices[i]).get().to_dict() or {}


def test_void_after_confirmation_is_audited_with_who_what_when_before_and_after(world: World) -> None:
    client = world.app().test_client()
    fields = confirm_form(client, "invoice.void", invoice_id=world.invoices[0])
    r = post(client, "invoice.void", {**fields, "reason": "issued in error", "confirm": "yes"})
    assert r.status_code == 200, r.data[:800]
    assert b"Done." in r.data
    assert _invoice(world)["status"] == "void"
    assert "issued in error" in _invoice(world)["void_reason"]
    (entry,) = audit_entries(clients.firestore())
    assert entry["by"] == USER
    assert entry["action"] == "invoice.void"
    assert entry["target"] == world.invoices[0]
    assert entry["what"]["reason"] == "issued in error"
    assert entry["outcome"] == "done"
    assert entry["before"]["status"] == "open"
    assert entry["after"]["status"] == "void"
    assert entry["at"] is not None


def test_the_same_form_posted_twice_acts_once(world: World) -> None:
    client = world.app().test_client()
    fields = {**confirm_form(client, "invoice.mark_paid", invoice_id=world.invoices[0]), "confirm": "yes"}
    fields["reason"] = "bank transfer 4711"
    first = post(client, "invoice.mark_paid", fields)
    again = post(client, "invoice.mark_paid", fields)
    assert first.status_code == again.status_code == 200
    assert b"submitted before" in again.data
    assert b"submitted before" not in first.data
    (entry,) = audit_entries(clients.firestore())
    assert entry["after"]["status"] == "paid"
    assert entry["after"]["paid_by"] == "operator"


def test_an_idempotency_key_cannot_carry_another_action(world: World) -> None:
    client = world.app().test_client()
    fields = {**confirm_form(client, "invoice.void", invoice_id=world.invoices[0]), "confirm": "yes"}
    assert post(client, "invoice.void", {**fields, "reason": "issued in error"}).status_code == 200
    other = post(client, "invoice.void", {**fields, "invoice_id": world.invoices[1], "reason": "issued in error"})
    assert other.status_code == 422
    assert b"idempotency_key_reused" in other.data
    assert _invoice(world, 1)["status"] == "open"


def test_a_transition_the_invoice_refuses_is_audited_as_refused(world: World) -> None:
    client = world.app().test_client()
    for kind in ("invoice.void", "invoice.uncollectible"):
        fields = {**confirm_form(client, kind, invoice_id=world.invoices[0]), "confirm": "yes", "reason": "why not"}
        assert post(client, kind, fields).status_code == 200
    entries = sorted(audit_entries(clients.firestore()), key=lambda e: e["at"])
    assert [e["outcome"] for e in entries] == ["done", "refused"]
    assert entries[1]["before"]["status"] == entries[1]["after"]["status"] == "void"
    assert entries[1]["result"]["refused"]


def test_uncollectible_then_paid(world: World) -> None:
    client = world.app().test_client()
    for kind, status in (("invoice.uncollectible", "uncollectible"), ("invoice.mark_paid", "paid")):
        fields = {**confirm_form(client, kind, invoice_id=world.invoices[2]), "confirm": "yes", "reason": "finance"}
        assert post(client, kind, fields).status_code == 200
        assert _invoice(world, 2)["status"] == status


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"csrf_token": None}, 403, b"csrf_refused"),
        ({"csrf_token": "1700000000." + "0" * 64}, 403, b"csrf_refused"),
        ({"confirm": None}, 422, b"invalid_request"),
        ({"confirm": "no"}, 422, b"invalid_request"),
        ({"reason": "x"}, 422, b"invalid_request"),
        ({"reason": "y" * 501}, 422, b"invalid_request"),
        ({"reason": None}, 422, b"invalid_request"),
        ({"invoice_id": "../etc"}, 422, b"invalid_request"),
        ({"idempotency_key": "short"}, 422, b"invalid_request"),
        ({"idempotency_key": None}, 422, b"invalid_request"),
        ({"amount": "100"}, 422, b"invalid_request"),
    ],
)
def test_invalid_action_forms_are_refused_and_change_nothing(
    world: World, change: dict[str, str | None], status: int, code: bytes
) -> None:
    client = world.app().test_client()
    fields = {**confirm_form(client, "invoice.void", invoice_id=world.invoices[0]), "confirm": "yes"}
    fields["reason"] = "issued in error"
    for k, v in change.items():
        if v is None:
            fields.pop(k, None)
        else:
            fields[k] = v
    r = post(client, "invoice.void", fields)
    assert r.status_code == status
    assert code in r.data
    assert _invoice(world)["status"] == "open"
    assert audit_entries(clients.firestore()) == []


def test_csrf_token_of_another_user_and_cross_site_posts_are_refused(world: World) -> None:
    client = world.app().test_client()
    fields = {**confirm_form(client, "invoice.void", invoice_id=world.invoices[0]), "confirm": "yes", "reason": "abc"}
    mallory = {"X-Goog-Authenticated-User-Email": "accounts.google.com:mallory@example.com"}
    assert post(client, "invoice.void", fields, headers=mallory).status_code == 403
    assert post(client, "invoice.void", fields, headers={**HEADERS, "Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert _invoice(world)["status"] == "open"


def test_transport_refusals(world: World) -> None:
    client = world.app().test_client()
    assert client.post("/actions/invoice.void", json={"a": 1}, headers=HEADERS).status_code == 415
    raw = "reason=a&reason=b"
    r = client.post("/actions/invoice.void", data=raw, headers=HEADERS, content_type=FORM)
    assert r.status_code == 422
    big = "reason=" + "x" * 20000
    r = client.post("/actions/invoice.void", data=big, headers=HEADERS, content_type=FORM)
    assert r.status_code == 413
    assert client.post("/actions/invoice.delete", data={"a": "b"}, headers=HEADERS).status_code == 404
    assert client.get("/actions/invoice.void", headers=HEADERS).status_code == 404
    assert client.put("/customers/cus_fr", headers=HEADERS).status_code == 405
    assert client.post("/customers/cus_fr", headers=HEADERS).status_code == 405


def test_no_signed_in_user_is_refused(world: World) -> None:
    client = world.app().test_client()
    assert client.get("/").status_code == 401
    assert (
        client.get("/customers/cus_fr", headers={"X-Goog-Authenticated-User-Email": "accounts.google.com:"}).status_code
        == 401
    )


def test_replay_one_dead_letter_after_confirmation(world: World) -> None:
    message_id, check = seed_dead_letter(world.project)
    client = world.app().test_client()
    ops = client.get("/operations", headers=HEADERS)
    assert message_id.encode() in ops.data
    fields = confirm_form(client, "deadletters.replay", subscription="probe-sink-probes", message_id=message_id)
    r = post(client, "deadletters.replay", {**fields, "confirm": "yes"})
    assert r.status_code == 200, r.data[:800]
    (entry,) = audit_entries(clients.firestore())
    assert entry["before"] == {"dead_letters": [message_id]}
    assert entry["after"] == {"dead_letters": []}
    assert entry["result"]["replayed"] == [message_id]
    (msg,) = drain_messages(check)
    assert msg.attributes["event_type"] == "probe.requested"
    assert not any(k.startswith("CloudPubSubDeadLetter") for k in msg.attributes)
    again = {**confirm_form(client, "deadletters.replay", subscription="probe-sink-probes", message_id=message_id)}
    r = post(client, "deadletters.replay", {**again, "confirm": "yes"})
    assert b"Refused" in r.data  # nothing left to replay: audited as refused, nothing published
    assert drain_messages(check, wait=False) == []


def test_replay_all_dead_letters(world: World) -> None:
    _, check = seed_dead_letter(world.project)
    client = world.app().test_client()
    fields = confirm_form(client, "deadletters.replay", subscription="probe-sink-probes")
    assert fields["message_id"] == ""
    r = post(client, "deadletters.replay", {**fields, "confirm": "yes"})
    assert r.status_code == 200
    assert len(drain_messages(check)) == 1
    (entry,) = audit_entries(clients.firestore())
    assert entry["target"] == "probe-sink-probes/*"


def test_replay_refuses_a_malformed_or_unknown_subscription(world: World) -> None:
    client = world.app().test_client()
    fields = confirm_form(client, "deadletters.replay", subscription="probe-sink-probes")
    r = post(client, "deadletters.replay", {**fields, "subscription": "Bad Name/../x", "confirm": "yes"})
    assert r.status_code == 422
    r = post(client, "deadletters.replay", {**fields, "confirm": "yes"})  # no such subscription in this project
    assert r.status_code == 200
    (entry,) = audit_entries(clients.firestore())
    assert entry["outcome"] == "refused"


@pytest.mark.parametrize(
    ("kind", "query", "extra"),
    [
        ("reconciliation.resolve", {"exception_id": "exc_missing"}, {"reason": "fee refunded by PSP"}),
        ("dispute.accept", {"key": "stripe~default~dp_missing"}, {}),
    ],
)
def test_reconciliation_and_dispute_actions_audit_a_refusal_for_an_unknown_target(
    world: World, kind: str, query: dict[str, str], extra: dict[str, str]
) -> None:
    client = world.app().test_client()
    fields = {**confirm_form(client, kind, **query), **extra, "confirm": "yes"}
    r = post(client, kind, fields)
    assert r.status_code == 200, r.data[:500]
    (entry,) = audit_entries(clients.firestore())
    assert entry["outcome"] == "refused"
    assert entry["action"] == kind
    assert entry["before"] is None


def test_the_audit_log_page_lists_entries(world: World) -> None:
    client = world.app().test_client()
    fields = {**confirm_form(client, "invoice.void", invoice_id=world.invoices[0]), "confirm": "yes", "reason": "dup"}
    post(client, "invoice.void", fields)
    page = client.get("/audit", headers=HEADERS).data.decode()
    assert "invoice.void" in page
    assert USER in page
