"""What the console pages read: bounded, projected queries over the platform's collections.

Why bounded: a page must render in time for a customer with years of history, so every list is a page
(``limit``) ordered by an indexed field, and a page costs a small fixed number of queries run concurrently
(the webhooks behind a payment are on that payment's own page, not one query per payment here). Why
defensive ``.get``: each page shows what exists; a collection another area has not written yet (usage,
disputes) shows "none", never an error. Everything shown passes :func:`shared.scrub.scrub_value` first.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.edge import firestore_id_problem
from shared.scrub import scrub, scrub_value

# The collections read here, named as their owners name them. Literals, not imports: importing the billing,
# disputes, invoicing, reconciliation, renewals and webhooks modules for a string cost a cold console about
# 200 ms of CPU before its first page (README, cold start). tests/unit/console/test_cold_imports.py checks
# each against its owner's constant.
BALANCE_ENTRIES = "balance_entries"  # shared.billing.credit.ENTRIES
CUSTOMERS = "customers"  # shared.billing.customers.COLLECTION
DISPUTES = "disputes"  # shared.disputes.service.COLLECTION
SERIES = "number_series"  # shared.invoicing.allocator.SERIES
CREDIT_NOTES = "credit_notes"  # shared.invoicing.repository.CREDIT_NOTES
INVOICES = "invoices"  # shared.invoicing.repository.INVOICES
EXCEPTIONS = "recon_exceptions"  # shared.reconciliation.repository.EXCEPTIONS
ATTEMPTS = "charge_attempts"  # shared.renewals.repository.ATTEMPTS
SUBSCRIPTIONS = "subscriptions"  # shared.renewals.repository.SUBSCRIPTIONS
WEBHOOKS = "webhook_events"  # shared.webhooks.store.COLLECTION

USAGE = "usage_records"  # written by metered billing once it lands; "none" until then
PAGE = 25
PAYMENTS_PAGE = 10  # the timeline pages by ten; each links to its payment page (events and webhooks)
PAYMENT_WEBHOOKS = 50  # archived notifications listed on one payment's page
ATTEMPT_FIELDS = ["invoice_id", "attempt", "status", "psp", "account", "psp_payment_id", "amount", "created_at"]
ATTEMPT_FIELDS += ["category", "decline_code", "subscription_id", "number"]
MAX_PAGE = 100
WEBHOOK_FIELDS = ["psp", "account", "psp_event_id", "psp_event_type", "received_at", "state", "fact_key"]
INVOICE_FIELDS = [
    "invoice_id",
    "number",
    "status",
    "series_id",
    "currency",
    "total",
    "amount_due",
    "credited",
    "created_at",
    "issued_at",
    "paid_at",
    "subscription_id",
    "buyer",
    "pdf_uri",
    "disputed",
]


def _filter(field: str, op: str, value: Any) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter(field, op, value)


def _docs(query: Any) -> list[dict[str, Any]]:
    return [{"_id": s.id, **(s.to_dict() or {})} for s in query.stream()]


def _get(db: Any, collection: str, doc_id: str) -> dict[str, Any] | None:
    if firestore_id_problem(doc_id):
        return None
    snap = db.collection(collection).document(doc_id).get()
    return {"_id": snap.id, **(snap.to_dict() or {})} if snap.exists else None


def _desc() -> Any:
    from google.cloud.firestore import Query

    return Query.DESCENDING


# -- search -------------------------------------------------------------------------------------------


def customer_of(doc: dict[str, Any]) -> str | None:
    """The customer id a stored document names, whatever its kind."""
    for key in ("customer_id",):
        if isinstance(doc.get(key), str):
            return str(doc[key])
    for key in ("buyer", "customer", "refs"):
        inner = doc.get(key)
        if isinstance(inner, dict):
            cid = inner.get("id") or inner.get("customer_id")
            if isinstance(cid, str):
                return cid
    return None


def _ident(kind: str, d: dict[str, Any]) -> str:
    return (customer_of(d) or str(d.get("id") or d["_id"])) if kind == "customer" else str(d["_id"])


def search(db: Any, q: str, limit: int = 20) -> list[dict[str, str]]:
    """Hits for any id or reference, a customer's email, or the start of a customer's name.

    Every probe is a document get or a single-field equality/range query (automatically indexed), run
    concurrently; a hit links to the page that explains it.
    """
    q = q.strip()
    if not q or len(q) > 200:
        return []
    hits: list[dict[str, str]] = []

    def hit(kind: str, ident: str, label: str, url: str) -> None:
        hits.append({"kind": kind, "id": ident, "label": label, "url": url})

    def by_id() -> None:
        if (c := _get(db, CUSTOMERS, q)) is not None:
            hit("customer", q, str(c.get("legal_name") or c.get("email") or q), f"/customers/{q}")
        if (s := _get(db, SUBSCRIPTIONS, q)) is not None:
            cid = customer_of(s) or ""
            hit("subscription", q, f"{s.get('status', '')} · customer {cid}", f"/customers/{cid}#sub-{q}")
        for coll in (INVOICES, CREDIT_NOTES):
            if (d := _get(db, coll, q)) is not None:
                hit(d.get("kind") or "invoice", q, str(d.get("number") or d.get("status") or ""), f"/invoices/{q}")
        if (d := _get(db, DISPUTES, q)) is not None:
            hit("dispute", q, str(d.get("status", "")), f"/customers/{customer_of(d) or ''}#disputes")

    def by_field(coll: str, field: str, kind: str, url: Any, label: Any, *, newest: bool = False) -> Any:
        def run() -> None:
            query = db.collection(coll).where(filter=_filter(field, "==", q))
            if newest:  # served by the composite index (field, created_at DESC): the field itself is exempt
                query = query.order_by("created_at", direction=_desc())
            for d in _docs(query.limit(limit)):
                hit(kind, _ident(kind, d), label(d), url(d))

        return run

    def by_prefix(coll: str, field: str, kind: str, url: Any, label: Any) -> Any:
        def run() -> None:
            query = (
                db.collection(coll)
                .where(filter=_filter(field, ">=", q))
                .where(filter=_filter(field, "<", q + "\uf8ff"))
                .limit(limit)
            )
            for d in _docs(query):
                hit(kind, _ident(kind, d), label(d), url(d))

        return run

    def cust_url(d: dict[str, Any]) -> str:
        return f"/customers/{customer_of(d) or d.get('id') or d['_id']}"

    def inv_url(d: dict[str, Any]) -> str:
        return f"/invoices/{d['_id']}"

    def webhook_url(d: dict[str, Any]) -> str:
        return f"/webhooks/{d['_id']}"

    def customer_label(d: dict[str, Any]) -> str:
        party = d.get("customer") or d.get("buyer") or {}
        return str(party.get("name") or customer_of(d))

    probes = [
        by_id,
        by_field(SUBSCRIPTIONS, "customer_id", "customer", cust_url, customer_label),
        by_field(INVOICES, "buyer.id", "customer", cust_url, customer_label, newest=True),
        by_field(INVOICES, "number", "invoice", inv_url, lambda d: f"{d.get('number')} · {d.get('status')}"),
        by_field(CREDIT_NOTES, "number", "credit_note", inv_url, lambda d: f"{d.get('number')}"),
        by_field(ATTEMPTS, "psp_payment_id", "payment", cust_url, lambda d: f"{d.get('psp')} {d.get('status')}"),
        by_field(DISPUTES, "psp_payment_id", "dispute", cust_url, lambda d: str(d.get("status"))),
        by_field(DISPUTES, "dispute_id", "dispute", cust_url, lambda d: str(d.get("status"))),
        by_field(WEBHOOKS, "psp_event_id", "webhook", webhook_url, lambda d: f"{d.get('psp')} {d.get('state')}"),
        # names and emails: the customer documents (the copies on subscriptions and invoices are exempt
        # from indexing, infra/topology.yaml)
        by_field(CUSTOMERS, "email", "customer", cust_url, lambda d: str(d.get("legal_name") or d.get("email"))),
        by_prefix(CUSTOMERS, "legal_name", "customer", cust_url, lambda d: str(d.get("legal_name"))),
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        for f in [pool.submit(p) for p in probes]:
            f.result()
    seen: set[str] = set()
    unique = []
    for h in hits:
        if h["url"] not in seen:  # one line per page it leads to (a customer's invoices are one hit)
            seen.add(h["url"])
            unique.append(h)
    return scrub_value(unique[:limit])  # type: ignore[no-any-return]


# -- one customer -------------------------------------------------------------------------------------


def webhook_raw(doc: dict[str, Any]) -> str:
    """The archived payload, decompressed and scrubbed again (the archive is scrubbed already)."""
    if doc.get("raw_zlib"):
        text = zlib.decompress(bytes(doc["raw_zlib"])).decode("utf-8", "replace")
    else:
        text = str(doc.get("raw") or "")
    try:
        return json.dumps(json.loads(scrub(text)), indent=2, sort_keys=True)[:20000]
    except ValueError:
        return scrub(text)[:20000]


def webhooks_of_payment(
    db: Any, psp: str, account: str, payment_id: str, limit: int = PAYMENT_WEBHOOKS
) -> list[dict[str, Any]]:
    """The archived notifications behind one payment: their fact key starts ``psp:account:payment_id:``."""
    prefix = f"{psp}:{account}:{payment_id}:"
    query = (
        db.collection(WEBHOOKS)
        .where(filter=_filter("fact_key", ">=", prefix))
        .where(filter=_filter("fact_key", "<", prefix + "\uf8ff"))
        .select(WEBHOOK_FIELDS)
        .limit(limit)
    )
    return sorted(_docs(query), key=lambda d: (str(d.get("received_at") or ""), d["_id"]))


def payment(db: Any, attempt_id: str) -> dict[str, Any] | None:
    """One charge attempt with the canonical events and archived webhooks behind it (one get, one query)."""
    doc = _get(db, ATTEMPTS, attempt_id)
    if doc is None:
        return None
    from shared.renewals.repository import with_results  # loaded with the first payment page (cold start)

    (doc,) = with_results([{k: v for k, v in doc.items() if k in ATTEMPT_FIELDS or k in ("_id", "customer_id")}], db)
    pid = doc.get("psp_payment_id")
    hooks = webhooks_of_payment(db, str(doc.get("psp") or ""), str(doc.get("account") or "default"), pid) if pid else []
    return scrub_value({**doc, "webhooks": hooks})  # type: ignore[no-any-return]


def customer_page(db: Any, customer_id: str, *, before: dt.datetime | None = None) -> dict[str, Any] | None:
    """Everything the customer page shows: seven bounded queries run concurrently, plus the credit notes of
    the listed invoices only when one of them has been credited (one ``in`` query)."""
    if firestore_id_problem(customer_id):
        return None

    def customer() -> Any:
        return _get(db, CUSTOMERS, customer_id)

    def subscriptions() -> Any:
        return _docs(db.collection(SUBSCRIPTIONS).where(filter=_filter("customer_id", "==", customer_id)).limit(50))

    def invoices() -> Any:
        query = (
            db.collection(INVOICES)
            .where(filter=_filter("buyer.id", "==", customer_id))
            .order_by("created_at", direction=_desc())
            .select(INVOICE_FIELDS)
            .limit(PAGE)
        )
        return _docs(query)

    def payments() -> Any:
        query = db.collection(ATTEMPTS).where(filter=_filter("customer_id", "==", customer_id))
        if before is not None:
            query = query.where(filter=_filter("created_at", "<", before))
        return _docs(query.order_by("created_at", direction=_desc()).select(ATTEMPT_FIELDS).limit(PAYMENTS_PAGE))

    def balance() -> Any:
        col = db.collection(CUSTOMERS).document(customer_id).collection(BALANCE_ENTRIES)
        return _docs(col.order_by("seq", direction=_desc()).limit(PAGE))

    def disputes() -> Any:
        return _docs(db.collection(DISPUTES).where(filter=_filter("refs.customer_id", "==", customer_id)).limit(50))

    def usage() -> Any:
        return _docs(db.collection(USAGE).where(filter=_filter("customer_id", "==", customer_id)).limit(PAGE))

    jobs = {
        "customer": customer,
        "subscriptions": subscriptions,
        "invoices": invoices,
        "payments": payments,
        "balance": balance,
        "disputes": disputes,
        "usage": usage,
    }
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {k: pool.submit(fn) for k, fn in jobs.items()}
        out: dict[str, Any] = {k: f.result() for k, f in futures.items()}
    # credit notes exist only for invoices whose ``credited`` is above zero (same transaction): most pages
    # need no query; at most PAGE (25 <= 30) ids, so one ``in`` query
    credited = [i["_id"] for i in out["invoices"] if i.get("credited") != 0][:30]
    out["credit_notes"] = (
        _docs(db.collection(CREDIT_NOTES).where(filter=_filter("invoice_id", "in", credited)).limit(2 * PAGE))
        if credited
        else []
    )
    if not out["customer"] and not out["subscriptions"] and not out["invoices"] and not out["payments"]:
        return None
    if not out["customer"]:  # only known from the copies on subscriptions and invoices
        party = next((s.get("customer") for s in out["subscriptions"] if s.get("customer")), None)
        party = party or next((i.get("buyer") for i in out["invoices"] if i.get("buyer")), None) or {}
        out["customer"] = {"id": customer_id, "legal_name": party.get("name"), "email": party.get("email"), **party}
    out["id"] = customer_id
    from shared.renewals.repository import with_results

    out["payments"] = with_results(out["payments"], db, out["subscriptions"])  # their results live there
    out["more_payments"] = out["payments"][-1]["created_at"] if len(out["payments"]) == PAYMENTS_PAGE else None
    return scrub_value(out)  # type: ignore[no-any-return]


def webhook(db: Any, record_id: str) -> dict[str, Any] | None:
    doc = _get(db, WEBHOOKS, record_id)
    if doc is None:
        return None
    raw = webhook_raw(doc)
    for k in ("raw", "raw_zlib", "headers"):
        doc.pop(k, None)
    return {**scrub_value(doc), "payload": raw}


# -- invoices -----------------------------------------------------------------------------------------


def invoice(db: Any, doc_id: str) -> dict[str, Any] | None:
    coll = CREDIT_NOTES if doc_id.startswith("cn_") else INVOICES
    doc = _get(db, coll, doc_id)
    if doc is None:
        return None
    doc.pop("composed", None)
    return scrub_value(doc)  # type: ignore[no-any-return]


def invoices(
    db: Any,
    *,
    status: str | None = None,
    series: str | None = None,
    currency: str | None = None,
    customer: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Invoices newest first. One equality filter goes to Firestore (an index per field and ``created_at``),
    the others are applied to the page read, so no index per combination of filters is needed."""
    eq = [("buyer.id", customer), ("series_id", series), ("status", status), ("currency", currency)]
    query = db.collection(INVOICES)
    first = next(((f, v) for f, v in eq if v), None)
    if first:
        query = query.where(filter=_filter(first[0], "==", first[1]))
    if since:
        query = query.where(filter=_filter("created_at", ">=", since))
    if until:
        query = query.where(filter=_filter("created_at", "<", until))
    query = query.order_by("created_at", direction=_desc()).select(INVOICE_FIELDS).limit(min(limit, MAX_PAGE) * 4)
    rows = []
    for d in _docs(query):
        if status and d.get("status") != status:
            continue
        if series and d.get("series_id") != series:
            continue
        if currency and d.get("currency") != currency:
            continue
        if customer and customer_of(d) != customer:
            continue
        rows.append(d)
        if len(rows) >= limit:
            break
    return scrub_value(rows)  # type: ignore[no-any-return]


def series_list(db: Any) -> list[dict[str, Any]]:
    return _docs(db.collection(SERIES).select(["counter", "commits"]).limit(200))


# -- operations ---------------------------------------------------------------------------------------


def open_exceptions(db: Any, limit: int = 100) -> list[dict[str, Any]]:
    from shared.reconciliation.reports import open_exceptions as reports_open

    rows = reports_open(db, limit)
    return sorted(rows, key=lambda x: x.get("due_at") or x.get("detected_at") or dt.datetime.max.replace(tzinfo=dt.UTC))


def open_disputes(limit: int = 100) -> list[dict[str, Any]]:
    from shared.disputes.service import DisputeService

    return scrub_value(DisputeService().list_open(limit))  # type: ignore[no-any-return]


def exception(db: Any, exception_id: str) -> dict[str, Any] | None:
    return _get(db, EXCEPTIONS, exception_id)


def day_of(value: Any) -> str | None:
    return value.astimezone(dt.UTC).date().isoformat() if isinstance(value, dt.datetime) else None


def webhook_volume(db: Any, since: dt.datetime, limit: int = 5000) -> dict[str, Any]:
    """Archived notifications per (PSP, account) and day, and per state (rejected = archived, not published).

    Refusals answered 4xx before anything is archived (bad signature, wrong mode) and 5xx answers are in
    the function's log lines (``http_status``), counted by the log-based metrics of the monitoring module.
    """
    query = (
        db.collection(WEBHOOKS)
        .where(filter=_filter("received_at", ">=", since))
        .select(["psp", "account", "received_at", "state"])
        .limit(limit)
    )
    per_day: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    states: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for s in query.stream():
        d = s.to_dict() or {}
        key = (str(d.get("psp")), str(d.get("account") or "default"))
        if day := day_of(d.get("received_at")):
            per_day[key][day] += 1
        states[key][str(d.get("state") or "received")] += 1
    return {"per_day": per_day, "states": states}


def renewal_outcomes(db: Any, since: dt.datetime, limit: int = 5000) -> dict[str, Any]:
    """Renewal charges per day (paid vs failed) and declines by category and PSP, from the charge attempts."""
    query = (
        db.collection(ATTEMPTS)
        .where(filter=_filter("created_at", ">=", since))
        .select(["created_at", "status", "psp", "category", "subscription_id"])
        .limit(limit)
    )
    paid: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    declines: Counter[tuple[str, str]] = Counter()
    from shared.renewals.repository import with_results

    for d in with_results(_docs(query), db):  # a subscription's charge keeps its result on the subscription
        day = day_of(d.get("created_at"))
        if not day:
            continue
        if d.get("status") == "succeeded":
            paid[day] += 1
        elif d.get("status") == "failed":
            failed[day] += 1
            declines[(str(d.get("category") or "unknown"), str(d.get("psp")))] += 1
    return {"paid": paid, "failed": failed, "declines": declines}


def revenue_per_day(db: Any, since: dt.datetime, limit: int = 5000) -> dict[str, Counter[str]]:
    """Subscription invoices paid per day and currency (minor units): the recurring revenue collected."""
    query = (
        db.collection(INVOICES)
        .where(filter=_filter("paid_at", ">=", since))
        .select(["paid_at", "total", "currency", "subscription_id"])
        .limit(limit)
    )
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for s in query.stream():
        d = s.to_dict() or {}
        if d.get("subscription_id") and (day := day_of(d.get("paid_at"))):
            out[str(d.get("currency"))][day] += int(d.get("total") or 0)
    return out


def current_mrr(db: Any, limit: int = 10000) -> dict[str, Any]:
    """MRR now per currency (minor units) over active and past-due subscriptions (rule: :mod:`.mrr`).

    Bounded: at most ``limit`` subscription documents are read; ``truncated`` says the figure is partial.
    Documents whose plan or items cannot be read are counted in ``unreadable``, not guessed.
    """
    from shared.console.mrr import MRR_STATUSES, subscription_mrr

    query = (
        db.collection(SUBSCRIPTIONS)
        .where(filter=_filter("status", "in", list(MRR_STATUSES)))
        .select(["status", "plan", "items"])
        .limit(limit)
    )
    totals: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    read = unreadable = 0
    for s in query.stream():
        read += 1
        try:
            got = subscription_mrr(s.to_dict() or {})
        except (ValueError, KeyError, TypeError):
            unreadable += 1
            continue
        if got is not None:
            totals[got[0]] += got[1]
            counts[got[0]] += 1
    return {
        "totals": dict(sorted(totals.items())),
        "counts": counts,
        "unreadable": unreadable,
        "truncated": read >= limit,
    }
