"""A Braintree gateway stub for the SDK: sale, search by order id, and the failure modes we must survive.

It keeps the transactions it created, so a test can lose an answer (created, then a 500), hide new ones
from search for a while (search lags), or reject a second sale of the same amount on the same method
(Braintree's duplicate transaction checking), and then count how many sales really happened.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

from braintree.util.generator import Generator
from braintree.util.xml_util import XmlUtil
from werkzeug import Request, Response

MERCHANT = "demo_merchant"
CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# payment method token -> how the processor answers a sale on it
BEHAVIOUR: dict[str, dict[str, str]] = {
    "tok_ok": {"status": "submitted_for_settlement", "processor-response-code": "1000",
               "processor-response-text": "Approved", "processor-response-type": "approved"},
    "tok_soft": {"status": "processor_declined", "processor-response-code": "2001",
                 "processor-response-text": "Insufficient Funds", "processor-response-type": "soft_declined"},
    "tok_hard": {"status": "processor_declined", "processor-response-code": "2015",
                 "processor-response-text": "Transaction Not Allowed", "processor-response-type": "hard_declined"},
    "tok_fraud": {"status": "gateway_rejected", "gateway-rejection-reason": "fraud"},
    "tok_ach": {"status": "settlement_pending", "payment-instrument-type": "us_bank_account"},
}  # fmt: skip

VALIDATION_ERROR = (
    '<api-error-response><errors><errors type="array"/><transaction><errors type="array"><error>'
    "<code>91565</code><attribute>payment_method_token</attribute>"
    "<message>Payment method token is invalid.</message></error></errors></transaction></errors>"
    "<message>Payment method token is invalid.</message></api-error-response>"
)


@dataclass
class BraintreeStub:
    lose_answers: int = 0  # the next N sales are created, then answered 500 (the answer is lost)
    fail_next: int = 0  # the next N requests of any kind answer 503 and change nothing
    hide_searches: int = 0  # the next N searches see nothing (search lags behind the sale)
    duplicate_check: bool = True
    sales: list[dict[str, Any]] = field(default_factory=list)  # every sale request, parsed
    searches: list[str] = field(default_factory=list)  # the order ids searched for
    txs: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self, request: Request) -> Response:
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                return Response("", status=503)
            body = XmlUtil.dict_from_xml(request.get_data(as_text=True)) if request.get_data() else {}
            path = request.path.removeprefix(f"/merchants/{MERCHANT}")
            if path == "/transactions":
                return self._sale(body["transaction"])
            if path == "/transactions/advanced_search_ids":
                return self._search_ids(body["search"])
            if path == "/transactions/advanced_search":
                ids = body["search"]["ids"]
                found = [self.txs[i] for i in ids if i in self.txs]
                return _collection(found)
            return Response("", status=404)

    def created(self) -> list[dict[str, Any]]:
        """Transactions that moved money (a duplicate's rejection did not)."""
        return [t for t in self.txs.values() if t["status"] != "gateway_rejected"]

    def add(self, order_id: str, token: str = "tok_ok", amount: str = "10.99", currency: str = "EUR") -> str:
        """A transaction an earlier delivery created."""
        tx = self._create({"order_id": order_id, "payment_method_token": token, "amount": amount}, currency)
        return str(tx["id"])

    def _create(self, sale: dict[str, Any], currency: str = "EUR") -> dict[str, Any]:
        token = sale["payment_method_token"]
        dup = self.duplicate_check and any(
            t["token"] == token and t["amount"] == sale["amount"] and t["status"] not in ("gateway_rejected",)
            for t in self.txs.values()
        )
        outcome = {"status": "gateway_rejected", "gateway-rejection-reason": "duplicate"} if dup else BEHAVIOUR[token]
        tx = {
            "id": f"bt{len(self.txs) + 1:06d}",
            "type": "sale",
            "amount": sale["amount"],
            "currency-iso-code": currency,
            "order-id": sale["order_id"],
            "merchant-account-id": sale.get("merchant_account_id") or "acme_eur",
            "created-at": CREATED,
            "payment-instrument-type": "credit_card",
            "custom-fields": {k.replace("_", "-"): v for k, v in (sale.get("custom_fields") or {}).items()},
            "token": token,
        } | outcome
        self.txs[tx["id"]] = tx
        return tx

    def _sale(self, sale: dict[str, Any]) -> Response:
        self.sales.append(sale)
        if sale["payment_method_token"] not in BEHAVIOUR:
            return Response(VALIDATION_ERROR, status=422, content_type="application/xml")
        currency = {"acme_eur": "EUR", "acme_jpy": "JPY", "acme_kwd": "KWD"}[sale["merchant_account_id"]]
        tx = self._create(sale, currency)
        if self.lose_answers:
            self.lose_answers -= 1
            return Response("", status=500)
        if tx["status"] in ("processor_declined", "gateway_rejected"):
            return _xml(
                {"api-error-response": {"message": "Declined", "errors": {"errors": []}, "transaction": tx}}, status=422
            )
        return _xml({"transaction": tx}, status=201)

    def _search_ids(self, criteria: dict[str, Any]) -> Response:
        order_id = criteria["order_id"]["is"]
        self.searches.append(order_id)
        ids = [t["id"] for t in self.txs.values() if t["order-id"] == order_id]
        if self.hide_searches:
            self.hide_searches -= 1
            ids = []
        return _xml({"search-results": {"page-size": 50, "ids": ids}})


def _xml(doc: dict[str, Any], status: int = 200) -> Response:
    return Response(Generator(_public(doc)).generate(), status=status, content_type="application/xml")


def _collection(txs: list[dict[str, Any]]) -> Response:
    """Search results: repeated <transaction> elements in a collection, as Braintree sends them."""
    items = "".join(Generator({"transaction": _public(t)}).generate() for t in txs)
    return Response(
        f'<credit-card-transactions type="collection">{items}</credit-card-transactions>',
        content_type="application/xml",
    )


def _public(value: Any) -> Any:
    """What Braintree would answer: our bookkeeping key ``token`` left out."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if k != "token"}
    return value
