"""Records a disputed subscription leaves on the emulators: the subscription, two paid invoices with their
PDFs in the invoice archive and their payment facts, and the dispute document from a canonical event."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared import clients
from shared.disputes.service import DisputeDeps, DisputeService, dispute_key
from shared.domain.money import Money
from shared.events.payments import DisputeNeedsResponse, OurRefs
from shared.events.publisher import RecordingPublisher
from shared.invoicing import storage

T0 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
PDF = {i: f"%PDF-1.7\n% invoice {i}\n".encode() for i in (1, 2)}


def seed_records(psp: str = "stripe") -> None:
    db = clients.firestore()
    buyer = {
        "id": "c-1",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "country": "DE",
        "address_lines": ["Str 1"],
    }
    db.collection("subscriptions").document("sub_1").set(
        {
            "id": "sub_1",
            "customer_id": "c-1",
            "customer": buyer,
            "status": "active",
            "created_at": T0,
            "plan": {"id": "pro", "currency": "EUR", "interval": "month", "interval_count": 1, "lines": []},
        }
    )
    for i in (1, 2):
        start = T0 + dt.timedelta(days=30 * (i - 1))
        stored = storage.put_once(f"invoices/s/INV-{i}.pdf", PDF[i])
        ref = db.collection("invoices").document(f"inv_{i}")
        ref.set(
            {
                "subscription_id": "sub_1",
                "number": f"INV-{i}",
                "status": "paid",
                "buyer": buyer,
                "currency": "EUR",
                "total": 4200,
                "period_start": start,
                "period_end": start + dt.timedelta(days=30),
                "paid_at": start,
                "psp": psp,
                "psp_payment_id": f"pay_{i}",
                "pdf_uri": stored.uri,
            }
        )
        ref.collection("facts").document(f"e{i}").set(
            {
                "event_type": "payment.succeeded",
                "event": {
                    "psp": psp,
                    "psp_payment_id": f"pay_{i}",
                    "psp_created_at": start.isoformat(),
                    "amount": {"amount": 4200, "currency": "EUR"},
                },
            }
        )


def disputed(psp: str = "stripe", dispute_id: str = "dp_1", **deps: Any) -> tuple[DisputeService, str]:
    """The seeded records with a dispute needing a response on invoice 2; the service and the dispute key."""
    seed_records(psp)
    svc = DisputeService(DisputeDeps(publisher=RecordingPublisher(), clock=lambda: NOW, **deps))
    svc.apply(
        DisputeNeedsResponse(
            psp=psp,  # type: ignore[arg-type]
            psp_payment_id="pay_2",
            livemode=False,
            amount=Money(4200, "EUR"),
            psp_created_at=NOW - dt.timedelta(days=1),
            dispute_id=dispute_id,
            refs=OurRefs(customer_id="c-1", subscription_id="sub_1", invoice_id="inv_2"),
            normalised_reason="subscription_canceled",
            evidence_due_by=NOW + dt.timedelta(days=5),
        ),
        "evt-1",
    )
    return svc, dispute_key(psp, "default", dispute_id)
