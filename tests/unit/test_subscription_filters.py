"""Pub/Sub subscription filters: the evaluator the local stack uses, the topology's filters against what the
functions handle (with the attributes the real publishing code sets), and the local push proxy."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import shared.events.billing
import shared.events.payments  # noqa: F401 (registers the contracts)
from infra.local.pushfilter import PushFilter
from infra.local.topology import FilterError, Subscription, compile_filter, load
from shared.events import build_message
from shared.events.envelope import registered

TOPO = load()


def _attrs(event_type: str, **extra: str) -> dict[str, str]:
    return {"event_type": event_type, "event_id": "e", "idempotency_key": "k", **extra}


def test_evaluator_follows_the_filter_language() -> None:
    f = compile_filter('attributes.a = "x" OR (attributes.b != "y" AND NOT attributes:c)')
    assert f({"a": "x"})
    assert f({"b": "z"})
    assert not f({"b": "y"})
    assert not f({"b": "z", "c": ""})
    assert compile_filter('hasPrefix(attributes.t, "pay")')({"t": "payment.x"})
    assert not compile_filter('hasPrefix(attributes.t, "pay")')({})
    assert compile_filter("")({})


@pytest.mark.parametrize(
    "bad",
    [
        'attributes.a = "x" OR attributes.b = "y" AND attributes.c = "z"',  # AND/OR mixed without parentheses
        "attributes.a = x",
        'attributes.a = "x" )',
        'data.a = "x"',
        'attributes.a = "' + "x" * 260 + '"',
    ],
)
def test_malformed_filters_are_refused(bad: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(bad)


def test_malformed_filter_in_the_topology_is_a_load_error(tmp_path: Any) -> None:
    from infra.local.topology import TOPOLOGY_FILE, TopologyError

    text = TOPOLOGY_FILE.read_text().replace('filter: NOT attributes.producer = "renewals"', "filter: NOT producer")
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(TopologyError, match="renewals-payment-events: filter"):
        load(tmp_path / "t.yaml")


@given(
    collection=st.sampled_from(["charge_automatically", "send_invoice"]),
    by_operator=st.booleans(),
)
def test_renewals_gets_invoice_paid_exactly_when_its_handler_would_act(collection: str, by_operator: bool) -> None:
    """The filter drops ``invoice.paid`` only where ``on_invoice_paid`` skips it (paid by our charge's fact)."""
    from shared.invoicing.payments import paid_event, paid_routing
    from tests.helpers import T0

    doc = {
        "invoice_id": "in_1",
        "number": "INV-1",
        "subscription_id": "sub_1",
        "buyer": {"id": "c"},
        "amount_paid": 100,
        "currency": "EUR",
        "paid_at": T0,
        "collection": collection,
        **(
            {"paid_by": "operator", "paid_reason": "cheque"}
            if by_operator
            else {"psp": "stripe", "psp_payment_id": "pi"}
        ),
    }
    ev = paid_event(doc)
    _, attrs = build_message(ev, idempotency_key="in_1:paid", occurred_at=T0, routing=paid_routing(doc))
    delivered = compile_filter(TOPO.subscriptions["renewals-invoice-events"].filter)(attrs)
    handler_skips = ev.collection == "charge_automatically" and ev.psp_payment_id is not None
    assert delivered is not handler_skips


def test_renewals_invoice_events_filter_takes_finalized_and_leaves_what_it_does_not_handle() -> None:
    f = compile_filter(TOPO.subscriptions["renewals-invoice-events"].filter)
    assert f(_attrs("invoice.finalized"))
    assert not any(f(_attrs(t)) for t in ("invoice.voided", "invoice.uncollectible", "credit_note.issued"))


def test_renewals_does_not_get_its_own_payment_facts_back() -> None:
    f = compile_filter(TOPO.subscriptions["renewals-payment-events"].filter)
    assert not f(_attrs("payment.succeeded", producer="renewals"))
    assert f(_attrs("payment.succeeded", producer="webhooks"))
    assert f(_attrs("payment.failed"))  # no producer attribute: delivered


def test_invoices_payment_events_filter_is_the_invoices_handlers() -> None:
    from functions.invoices.main import HANDLERS

    f = compile_filter(TOPO.subscriptions["invoices-payment-events"].filter)
    payment_types = {t for (t, _), cls in registered().items() if cls.TOPIC == "payment-events"}
    assert {t for t in payment_types if f(_attrs(t))} == set(HANDLERS) & payment_types
    assert set(HANDLERS) - {"renewal.due"} <= payment_types


# -- the local push proxy -----------------------------------------------------------------------------------
class _Function(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        _Function.received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def test_push_proxy_acknowledges_filtered_messages_and_forwards_the_rest() -> None:
    import urllib.request

    fn = ThreadingHTTPServer(("127.0.0.1", 0), _Function)
    threading.Thread(target=fn.serve_forever, daemon=True).start()
    proxy = PushFilter()
    try:
        sub = Subscription("s-one", "t", "f", 60, 5, 1, 60, filter='attributes.event_type = "keep"')
        endpoint = proxy.route(sub, f"http://127.0.0.1:{fn.server_address[1]}") + "/projects/p/topics/t"

        def push(event_type: str) -> int:
            body = json.dumps({"message": {"attributes": {"event_type": event_type}, "data": ""}}).encode()
            req = urllib.request.Request(
                endpoint, data=body, method="POST", headers={"content-type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                return int(resp.status)

        assert push("drop") == 204
        assert push("keep") == 200
        assert [m["message"]["attributes"]["event_type"] for m in _Function.received] == ["keep"]
        assert proxy.filtered == 1
    finally:
        proxy.close()
        fn.shutdown()
