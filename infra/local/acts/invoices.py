"""Act 20: invoices with legal numbers, tax and PDFs; a payment marks one paid, a refund credits it.

Publishes renewal-due requests on the real topic (each twice: a duplicate delivery must not make a
second invoice): EUR to a French consumer (FR VAT 20 %), EUR to a German business with a VAT id
(reverse charge, 0 %), and one-offs in JPY (exponent 0, Japanese entity) and KWD (exponent 3, export).
Then a ``payment.succeeded`` for the first and a partial ``payment.refunded`` (a credit note). The PDFs
are copied to ``demo-output/invoices/``.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from infra.local.acts import DemoContext

ORDER = 20
TITLE = "Invoices: gapless numbers, tax, PDFs, payment and credit note"

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def requests(tag: str) -> list[Any]:
    """The demo's renewal-due requests (``tag`` keeps request ids unique per run)."""
    from shared.domain.money import Money
    from shared.events.billing import LineIn, Party, RenewalDue

    def req(rid: str, seller: str, cur: str, buyer: Party, lines: list[tuple[str, int, int]], **kw: Any) -> Any:
        return RenewalDue(
            request_id=f"{tag}:{rid}",
            seller_entity=seller,
            customer=buyer,
            currency=cur,
            collection="send_invoice",  # the demo pays by bank transfer: nothing for the collector to charge
            lines=tuple(
                LineIn(description=d, quantity=q, unit_amount=Money(a, cur), kind=kw.get("kind", "plan"))
                for d, q, a in lines
            ),
            **{k: v for k, v in kw.items() if k != "kind"},
        )

    month = {"period_start": T0, "period_end": T0 + dt.timedelta(days=31)}
    return [
        req(
            "b2c-fr",
            "acme-fr",
            "EUR",
            Party(id="cus_camille", name="Camille Martin", country="FR", address_lines=("3 rue Oberkampf", "Paris")),
            [("Pro plan, March 2026", 1, 2500), ("Extra seats (proration)", 2, 333)],
            subscription_id=f"{tag}-sub-fr",
            **month,
        ),
        req(
            "b2b-de",
            "acme-fr",
            "EUR",
            Party(id="cus_muster", name="Muster GmbH", country="DE", vat_id="DE123456789"),
            [("Team plan, March 2026", 10, 1900)],
            subscription_id=f"{tag}-sub-de",
            **month,
        ),
        req(
            "oneoff-jp",
            "acme-jp",
            "JPY",
            Party(id="cus_tanaka", name="Tanaka KK", country="JP"),
            [("Onboarding workshop", 1, 120000)],
            kind="one_off",
        ),
        req(
            "oneoff-kw",
            "acme-fr",
            "KWD",
            Party(id="cus_gulf", name="Gulf Trading Co", country="KW"),
            [("Annual support", 1, 123456)],
            kind="one_off",
        ),
    ]


def publish_requests(reqs: list[Any], copies: int = 2) -> None:
    from shared.events import publish

    for _ in range(copies):
        for r in reqs:
            publish(r, idempotency_key=r.request_id, occurred_at=T0)


def wait_invoices(reqs: list[Any], timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The invoices of ``reqs`` once each is finalized with its PDF stored."""
    from shared import clients
    from shared.invoicing.repository import INVOICES, invoice_id_for

    db = clients.firestore()
    refs = [db.collection(INVOICES).document(invoice_id_for(r.request_id)) for r in reqs]
    deadline = time.monotonic() + timeout_s
    while True:
        docs = [s.to_dict() or {} for s in db.get_all(refs)]
        if len(docs) == len(refs) and all(d.get("pdf_sha256") for d in docs):
            by_id = {d["invoice_id"]: d for d in docs}
            return [by_id[r.id] for r in refs]
        if time.monotonic() > deadline:
            raise TimeoutError(f"invoices not finalized within {timeout_s}s")
        time.sleep(0.2)


def wait_doc(coll: str, doc_id: str, ok: Any, timeout_s: float = 30.0) -> dict[str, Any]:
    from shared import clients

    deadline = time.monotonic() + timeout_s
    while True:
        snap = clients.firestore().collection(coll).document(doc_id).get()
        d = snap.to_dict() if snap.exists else None
        if d is not None and ok(d):
            return d
        if time.monotonic() > deadline:
            raise TimeoutError(f"{coll}/{doc_id} not as expected within {timeout_s}s: {d}")
        time.sleep(0.2)


def _line(d: dict[str, Any]) -> str:
    from shared.domain.money import Money

    def m(key: str) -> str:
        return str(Money(int(d[key]), d["currency"]))

    extra = f"  ({d['treatment'].replace('_', ' ')})" if d["treatment"] != "domestic" else ""
    return (
        f"  {d['number']:<18} {d['status']:<6} {d['buyer']['name']:<16} net {m('subtotal'):>14}  "
        f"tax {m('tax'):>12}  total {m('total'):>14}{extra}"
    )


def play(ctx: DemoContext) -> None:
    from shared.domain.money import Money
    from shared.events import publish
    from shared.events.payments import OurRefs, PaymentRefunded, PaymentSucceeded
    from shared.invoicing import storage
    from shared.invoicing.repository import CREDIT_NOTES, INVOICES

    tag = f"demo{int(time.time())}"
    reqs = requests(tag)
    publish_requests(reqs)
    ctx.say(f"  published {len(reqs)} renewal-due requests, each twice (duplicate delivery)")
    invoices = wait_invoices(reqs)
    for d in invoices:
        ctx.say(_line(d))

    first = invoices[0]
    total = Money(int(first["total"]), first["currency"])
    refs = OurRefs(invoice_id=first["invoice_id"], customer_id=first["buyer"]["id"])
    pay = PaymentSucceeded(
        psp="stripe", psp_payment_id=f"pi_{tag}", livemode=False, amount=total, refs=refs, psp_created_at=T0
    )
    refund = PaymentRefunded(
        psp="stripe",
        psp_payment_id=f"pi_{tag}",
        livemode=False,
        refs=refs,
        psp_created_at=T0 + dt.timedelta(days=2),
        refund_id=f"re_{tag}",
        refunded=Money(1000, first["currency"]),
        full=False,
    )
    for ev in (pay, pay, refund):
        publish(ev, idempotency_key=ev.fact_key(), occurred_at=ev.psp_created_at)
    paid = wait_doc(INVOICES, first["invoice_id"], lambda d: d.get("status") == "paid" and d.get("credit_note_ids"))
    cn = wait_doc(CREDIT_NOTES, paid["credit_note_ids"][0], lambda d: bool(d.get("pdf_sha256")))
    ctx.say(f"  payment.succeeded x2 -> {paid['number']} paid once ({Money(int(paid['amount_paid']), 'EUR')})")
    ctx.say(f"  payment.refunded 10.00 EUR -> credit note {cn['number']} for {paid['number']}:")
    ctx.say(_line(cn))

    out = Path(ctx.output_dir) / "invoices"
    out.mkdir(parents=True, exist_ok=True)
    for d in [*invoices, cn]:
        (out / f"{d['number']}.pdf").write_bytes(storage.get(d["pdf_uri"]))
    ctx.say(f"  {len(invoices) + 1} PDFs (sha256 recorded on each document) copied to {out}")
    from shared import clients
    from shared.ops.invoices import audit_series

    for series_id in sorted({d["series_id"] for d in [*invoices, cn]}):
        report = audit_series(clients.firestore(), series_id)
        verdict = "gapless, no duplicate" if report.ok else "NOT OK"
        ctx.say(f"  audit {series_id}: {report.count} document(s), last {report.last}: {verdict}")
