"""The console's HTTP layer: routes, rendering, the HTML answer of every refusal.

Server-rendered with Jinja2 (autoescaped) from the function's own ``templates/`` and ``static/`` folders;
pages work without JavaScript (a small script only adds conveniences), every action is a POST behind the
guard of :mod:`shared.console.actions`. Answers carry a strict Content-Security-Policy (same-origin
scripts and styles only, no framing) and ``Cache-Control: no-store`` (pages show customer data).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Response

from shared.console import actions as act
from shared.console import auth, charts, monitoring, queries
from shared.console.config import ConsoleSettings, console_settings
from shared.domain.money import Money
from shared.edge import EdgeError, firestore_id_problem, http_entry
from shared.log import get_logger
from shared.scrub import scrub_value

log = get_logger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
_STATIC_NAME = re.compile(r"^[a-z0-9-]{1,40}\.(css|js|svg)$")
INVOICE_STATUSES = ("draft", "open", "paid", "void", "uncollectible")
CONFIRM_TEXT = {
    "invoice.void": "Void invoice",
    "invoice.uncollectible": "Mark invoice uncollectible",
    "invoice.mark_paid": "Mark invoice paid out of band",
    "deadletters.replay": "Replay dead letters",
    "reconciliation.resolve": "Resolve reconciliation exception",
    "dispute.accept": "Accept dispute (a loss)",
}


def money(amount: Any, currency: Any) -> str:
    """Minor units shown with the currency's exponent; never through a float."""
    if isinstance(amount, bool) or not isinstance(amount, int) or not isinstance(currency, str):
        return "—"
    try:
        return str(Money(amount, currency))
    except ValueError:
        return "—"


def when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "" if value is None else str(value)


def _default_db() -> Any:
    from shared import clients

    return clients.firestore()


def pretty(value: Any) -> str:
    import json

    return json.dumps(value, indent=1, sort_keys=True, default=when)


@dataclass
class Console:
    """One console: its folders, collaborators and settings (tests hand in their own)."""

    root: Path  # the function folder: templates/ and static/
    db: Callable[[], Any] = field(default=_default_db)
    services: Callable[[], act.Services] | None = None
    settings: Callable[[], ConsoleSettings] = console_settings
    monitoring_session: Callable[[], Any] = monitoring.default_session
    _monitoring: Any = None
    _env: Any = None
    _services: act.Services | None = None

    # -- rendering ------------------------------------------------------------------------------------
    def env(self) -> Any:
        if self._env is None:
            from jinja2 import Environment, FileSystemLoader, select_autoescape

            env = Environment(
                loader=FileSystemLoader(self.root / "templates"),
                autoescape=select_autoescape(default=True, default_for_string=True),
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.filters["money"] = money
            env.filters["when"] = when
            env.filters["pretty"] = pretty
            self._env = env
        return self._env

    def page(self, template: str, http_status: int = 200, /, **ctx: Any) -> Response:
        html = self.env().get_template(template).render(**ctx)
        return Response(html, status=http_status, mimetype="text/html", headers=SECURITY_HEADERS)

    def svc(self) -> act.Services:
        if self._services is None:
            from shared.config import get_settings

            self._services = self.services() if self.services else act.Services(self.db(), get_settings().project_id)
        return self._services

    # -- the entry point ------------------------------------------------------------------------------
    def handle(self, request: Any) -> Response:
        """Answer one request; a refusal becomes an HTML page with its precise status."""
        return _entry(request, self)

    def _answer(self, request: Any) -> Response:
        settings = self.settings()
        user = ""
        try:
            user = auth.identity(request, settings.dev_identity, settings.iap_audience, settings.iap_certs_url)
            return self._route(request, user, settings)
        except EdgeError as exc:
            log.info("console request refused", extra={"http_status": exc.status, "error_code": exc.code})
            detail = exc.detail if isinstance(exc.detail, str) else _errors(exc.detail)
            return self.page("error.html", exc.status, user=user, code=exc.code, detail=detail, status=exc.status)

    def _route(self, request: Any, user: str, settings: ConsoleSettings) -> Response:
        path = request.path or "/"
        if len(path) > 512:
            raise EdgeError(404, "not_found", "no such page")
        parts = [p for p in path.split("/") if p]
        method = request.method
        base = {"user": user, "csrf": auth.csrf_token(settings.csrf_secret, user)}
        if method == "POST":
            if len(parts) == 2 and parts[0] == "actions":
                return self.post_action(request, parts[1], user, settings)
            raise EdgeError(405, "method_not_allowed", "only actions are posted")
        if method not in ("GET", "HEAD"):
            raise EdgeError(405, "method_not_allowed", "GET pages, POST actions")
        args = request.args
        if not parts:
            q = (args.get("q") or "").strip()[:200]
            hits = queries.search(self.db(), q) if q else []
            return self.page("search.html", **base, q=q, hits=hits)
        head, rest = parts[0], parts[1:]
        if head == "static" and len(rest) == 1:
            return self.static(rest[0])
        if head == "customers" and len(rest) == 1:
            return self.customer(rest[0], args, base)
        if head == "invoices" and not rest:
            return self.invoice_list(args, base)
        if head == "invoices" and len(rest) in (1, 2):
            return self.invoice(rest[0], rest[1] if len(rest) == 2 else None, base)
        if head == "payments" and len(rest) == 1:
            pay = queries.payment(self.db(), rest[0])
            if pay is None:
                raise EdgeError(404, "not_found", "no such payment (charge attempt)")
            return self.page("payment.html", **base, p=pay)
        if head == "webhooks" and len(rest) == 1:
            doc = queries.webhook(self.db(), rest[0]) if not firestore_id_problem(rest[0]) else None
            if doc is None:
                raise EdgeError(404, "not_found", "no such webhook record")
            return self.page("webhook.html", **base, hook=doc)
        if head == "operations" and not rest:
            return self.operations(base)
        if head == "charts" and not rest:
            return self.charts(base)
        if head == "confirm" and len(rest) == 1:
            return self.confirm(rest[0], args, base)
        if head == "audit" and len(rest) <= 1:
            if rest:
                snap = self.db().collection(act.AUDIT).document(rest[0]).get() if rest[0].isalnum() else None
                if snap is None or not snap.exists:
                    raise EdgeError(404, "not_found", "no such audit entry")
                return self.page("audit.html", **base, entries=[snap.to_dict()], single=True)
            return self.page("audit.html", **base, entries=act.recent_audit(self.db()), single=False)
        raise EdgeError(404, "not_found", "no such page")

    # -- pages --------------------------------------------------------------------------------------------
    def static(self, name: str) -> Response:
        target = self.root / "static" / name
        if not _STATIC_NAME.match(name) or not target.is_file():
            raise EdgeError(404, "not_found", "no such file")
        headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=300"}
        return Response(target.read_bytes(), mimetype=STATIC_TYPES[target.suffix], headers=headers)

    def customer(self, customer_id: str, args: Any, base: dict[str, Any]) -> Response:
        before = _parse_time(args.get("before"))
        data = queries.customer_page(self.db(), customer_id, before=before)
        if data is None:
            raise EdgeError(404, "not_found", f"no customer {customer_id[:128]}")
        return self.page("customer.html", **base, c=data)

    def invoice_list(self, args: Any, base: dict[str, Any]) -> Response:
        status = args.get("status") or None
        if status and status not in INVOICE_STATUSES:
            raise EdgeError(422, "invalid_filter", f"status must be one of {', '.join(INVOICE_STATUSES)}")
        series = args.get("series") or None
        if series and firestore_id_problem(series):
            raise EdgeError(422, "invalid_filter", "series is not a series id")
        currency = (args.get("currency") or "").upper() or None
        if currency and not re.fullmatch(r"[A-Z]{3}", currency):
            raise EdgeError(422, "invalid_filter", "currency is a three-letter ISO 4217 code")
        customer = args.get("customer") or None
        if customer and firestore_id_problem(customer):
            raise EdgeError(422, "invalid_filter", "customer is not a customer id")
        since, until = _parse_day(args.get("from")), _parse_day(args.get("to"))
        until = until + dt.timedelta(days=1) if until else None
        db = self.db()
        rows = queries.invoices(
            db, status=status, series=series, currency=currency, customer=customer, since=since, until=until
        )
        audit = None
        if series:
            from shared.invoicing.audit import audit_series

            audit = audit_series(db, series)
        filters = {
            "status": status or "",
            "series": series or "",
            "currency": currency or "",
            "customer": customer or "",
        }
        filters |= {"from": args.get("from") or "", "to": args.get("to") or ""}
        return self.page(
            "invoices.html",
            **base,
            rows=rows,
            filters=filters,
            statuses=INVOICE_STATUSES,
            series=queries.series_list(db),
            audit=audit,
        )

    def invoice(self, doc_id: str, sub: str | None, base: dict[str, Any]) -> Response:
        if firestore_id_problem(doc_id):
            raise EdgeError(404, "not_found", "no such invoice")
        doc = queries.invoice(self.db(), doc_id)
        if doc is None:
            raise EdgeError(404, "not_found", f"no invoice or credit note {doc_id}")
        if sub == "pdf":
            uri = doc.get("pdf_uri")
            if not uri:
                raise EdgeError(404, "no_pdf", "this document has no PDF yet (not finalized)")
            from shared.invoicing import storage

            data = storage.get(str(uri))
            name = f"{doc.get('number') or doc_id}.pdf"
            headers = {**SECURITY_HEADERS, "Content-Disposition": f'inline; filename="{name}"'}
            return Response(data, mimetype="application/pdf", headers=headers)
        if sub is not None:
            raise EdgeError(404, "not_found", "no such page")
        return self.page("invoice.html", **base, inv=doc)

    def operations(self, base: dict[str, Any]) -> Response:
        db = self.db()
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        dlq = self.dead_letter_view()
        volume = queries.webhook_volume(db, since)
        return self.page(
            "operations.html",
            **base,
            dlq=dlq,
            volume=volume,
            exceptions=queries.open_exceptions(db),
            disputes=queries.open_disputes(),
            answers=self.webhook_answers(),
        )

    def webhook_answers(self) -> dict[str, Any]:
        """The Monitoring section: ``state`` is ``ok``, ``local`` (no Monitoring) or ``unavailable``."""
        settings = self.settings()
        if not settings.monitoring_url:
            return {"state": "local"}
        from shared.config import get_settings

        end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        try:
            if self._monitoring is None:
                self._monitoring = self.monitoring_session()
            data = monitoring.webhook_answers(
                self._monitoring, settings.monitoring_url, get_settings().project_id, end, days=30
            )
        except Exception as exc:  # credentials or the API: the rest of the page still renders
            log.warning("webhook answers unavailable", extra={"error": str(exc)[:300]})
            return {"state": "unavailable"}
        labels = charts.days((end.date() - dt.timedelta(days=29)).isoformat(), 30)
        rows = [
            (psp, day, counts)
            for psp, per_day in sorted(data["per_day"].items())
            for day, counts in sorted(per_day.items())
            if any(counts.values())
        ]
        series = {
            f"{psp} {cls}": [data["per_day"][psp].get(d, {}).get(cls, 0) for d in labels]
            for psp in sorted(data["per_day"])
            for cls in ("2xx", "4xx", "5xx")
        }
        svg = charts.bars("Webhook answers per day, PSP and status class (Cloud Monitoring)", labels, series)
        return {"state": "ok", "rows": rows, "totals": data["totals"], "svg": svg, "truncated": data["truncated"]}

    def dead_letter_view(self) -> list[dict[str, Any]]:
        from shared.events.deadletters import DLQ_SUFFIX

        tool = self.svc().dead_letters()
        names = list(self.settings().deadletter_subscriptions)
        if not names:
            project = self.svc().project
            listed = tool.subscriber.list_subscriptions(request={"project": f"projects/{project}"})
            names = sorted(
                s.name.rsplit("/", 1)[-1].removesuffix(DLQ_SUFFIX) for s in listed if s.name.endswith(DLQ_SUFFIX)
            )
        from google.api_core.exceptions import NotFound

        out = []
        for name in names:
            try:
                letters = tool.list(name, 50)
            except NotFound:
                out.append({"subscription": name, "letters": [], "missing": True})
                continue
            rows = [{**d.summary(), "reason": diagnose(d.attributes, d.data)} for d in letters]
            out.append({"subscription": name, "letters": scrub_value(rows), "missing": False})
        return out

    def charts(self, base: dict[str, Any]) -> Response:
        db = self.db()
        today = dt.datetime.now(dt.UTC).date()
        first = today - dt.timedelta(days=29)
        since = dt.datetime.combine(first, dt.time(), dt.UTC)
        labels = charts.days(first.isoformat(), 30)
        renewals = queries.renewal_outcomes(db, since)
        revenue = queries.revenue_per_day(db, since)
        volume = queries.webhook_volume(db, since)
        per_psp: dict[str, list[int]] = {}
        for (psp, _account), counts in sorted(volume["per_day"].items()):
            row = per_psp.setdefault(psp, [0] * len(labels))
            for i, day in enumerate(labels):
                row[i] += counts.get(day, 0)
        declines = renewals["declines"]
        cats = sorted({c for c, _ in declines})
        psps = sorted({p for _, p in declines})
        svgs = [
            charts.line(
                "Subscription revenue collected per day (paid subscription invoices, minor units; not MRR)",
                labels,
                {cur: [by_day.get(d, 0) for d in labels] for cur, by_day in sorted(revenue.items())},
            ),
            charts.bars(
                "Renewal charges per day: paid vs failed",
                labels,
                {
                    "paid": [renewals["paid"].get(d, 0) for d in labels],
                    "failed": [renewals["failed"].get(d, 0) for d in labels],
                },
            ),
            charts.bars(
                "Declines by category and PSP", cats, {p: [declines.get((c, p), 0) for c in cats] for p in psps}
            ),
            charts.bars("Webhooks received per day and PSP", labels, per_psp),
        ]
        rows = [
            (d, renewals["paid"][d], renewals["failed"][d], {c: v[d] for c, v in revenue.items() if v[d]})
            for d in labels
        ]
        rows = [r for r in rows if r[1] or r[2] or r[3]]
        tables = {"revenue": sorted(revenue), "declines": declines, "rows": rows}
        return self.page("charts.html", **base, svgs=svgs, tables=tables, mrr=queries.current_mrr(db))

    def confirm(self, kind: str, args: Any, base: dict[str, Any]) -> Response:
        """The confirmation step: what will happen, to what, with the reason field; nothing changes on GET."""
        if kind not in act.MODELS:
            raise EdgeError(404, "unknown_action", "no such action")
        fields = {k: str(v)[:200] for k, v in args.items() if k in act.MODELS[kind].model_fields}
        target: Any = None
        if "invoice_id" in fields:
            target = (
                queries.invoice(self.db(), fields["invoice_id"])
                if not firestore_id_problem(fields["invoice_id"])
                else None
            )
            if target is None:
                raise EdgeError(404, "not_found", "no such invoice")
        return self.page(
            "confirm.html",
            **base,
            kind=kind,
            title=CONFIRM_TEXT[kind],
            fields=fields,
            needs_reason="reason" in act.MODELS[kind].model_fields,
            target=target,
            key=act.new_idempotency_key(),
        )

    def post_action(self, request: Any, kind: str, user: str, settings: ConsoleSettings) -> Response:
        if kind not in act.MODELS:
            raise EdgeError(404, "unknown_action", "no such action")
        form = act.read_form(request)
        auth.check_csrf(request, form, settings.csrf_secret, user, settings.csrf_max_age_s)
        envelope, action = act.validate(kind, form)
        done = act.perform(self.svc(), kind, envelope, action, user)
        return self.page("done.html", 200, user=user, csrf="", done=done)


def diagnose(attributes: dict[str, str], data: bytes) -> str:
    """Why a dead letter was refused, as the consumer would classify it today (the delivery's own reason
    is in the function's ERROR log line with its ``message_id``)."""
    from shared.events.consumer import known_event_types, supported_versions

    etype = attributes.get("event_type")
    if not etype:
        return "no event_type attribute: the message cannot be classified"
    if etype not in known_event_types():
        return f"event type {etype!r} is unknown to the contracts (a producer ahead of its consumers?)"
    raw = attributes.get("schema_version")
    if raw is not None and (not raw.isdigit() or int(raw) not in supported_versions(etype)):
        return f"{etype} v{raw} is not supported (supported: {supported_versions(etype)})"
    from shared.events.envelope import parse_message

    try:
        parse_message(data, attributes, "console")
    except Exception as exc:
        return f"refused by the contract: {str(exc)[:300]}"
    return "the handler failed on every delivery (see the function's ERROR log line with this message id)"


def _errors(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in detail)[:1000]
    return str(detail)[:1000]


def _parse_day(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(raw[:10]), dt.time(), dt.UTC)
    except ValueError as exc:
        raise EdgeError(422, "invalid_filter", "dates are YYYY-MM-DD") from exc


def _parse_time(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw[:40])
    except ValueError as exc:
        raise EdgeError(422, "invalid_cursor", "not a time") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@http_entry("console")
def _entry(request: Any, console: Console) -> Response:
    return console._answer(request)


def flask_app(console: Console) -> Any:
    """A Flask app answering every path with ``console`` (functions-framework's catch-all, for local
    servers, the browser tests and the benchmark)."""
    from flask import Flask, request

    app = Flask("console", static_folder=None)
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

    def every(path: str = "") -> Response:
        return console.handle(request)

    app.add_url_rule("/", "root", every, methods=methods)
    app.add_url_rule("/<path:path>", "every", every, methods=methods)
    return app
