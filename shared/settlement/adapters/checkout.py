"""Checkout.com settlement intake: the settlement breakdown and payouts reports (CSV), pulled by the Reports API.

Sources: the settlement breakdown CSV (one row per financial action: Charge, Refund, Chargeback, Void,
Merchant Payout fee ...) and the payouts CSV (Payout ID, Payout Date, Holding Currency, Payout Amount), either
dropped in the bucket (:func:`parse_report`, the kind read from the header) or fetched by :func:`pull` through
``GET /reports?created_after&created_before`` (``_links.next`` pagination) and ``GET /reports/{id}/files/{file}``.
The official SDK (checkout-sdk) is not a dependency of this project, so the client is plain ``requests`` with
the documented bearer secret key; it never follows a pagination link to another host.

Amounts are signed decimal major units in the holding currency with up to 8 decimals (``0.19526938``).
Deductions and fee columns are negative; ``Net = Gross + Deduction`` is checked per row. Each fee column
(processing, scheme, interchange, tax, reserve; any remainder of the deduction as ``other``) becomes a
positive fee component. Gross and each fee are rounded half-even to minor units and the line net is their
difference; the exact nets are summed per payout. When the payout amount is within one minor unit of that
exact sum, a ``<payout>:rounding`` adjustment line makes the lines sum to the payout exactly (the rounding row
of Checkout's own reconciliation guidance); a larger gap is left visible to reconciliation. A file of lines
alone cannot be closed this way: :func:`close_payouts` adds the rounding lines once both files are at hand
(API pull), and a breakdown dropped in the bucket carries its exact nets (``payout_nets``) so that
reconciliation adds the same line when the payouts file comes, before or after it.

Join keys: ``Payment ID`` (``pay_...``) as ``psp_reference`` and ``psp_payment_id``; ``Reference`` (ours) as
``our_reference``; line id = (payout, type, payment id). The processing-currency gross and ``FX Rate Applied``
are the presentment side.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from shared.config import ConfigError
from shared.settlement.adapters.common import (
    LineIds,
    SettlementFormatError,
    Where,
    currency,
    decode,
    exponent,
    fee_only,
    fees_of,
    header,
    make_line,
    minor_exact,
    minor_rounded,
    parse_decimal,
    parse_rate,
    records,
    row_dict,
    text,
)
from shared.settlement.config import checkout_settings
from shared.settlement.lines import LineType, Payout, PayoutNet, SettlementBatch, SettlementLine

PAGE_LIMIT = 100
BREAKDOWN = frozenset(
    {
        "Type",
        "Payment ID",
        "Reference",
        "Processed On",
        "Holding Currency",
        "Payout ID",
        "Gross In Holding Currency",
        "Deduction In Holding Currency",
        "Net In Holding Currency",
    }
)
PAYOUTS = frozenset({"Payout ID", "Payout Date", "Holding Currency", "Payout Amount"})
FEE_COLUMNS = {
    "Processing Fee In Holding Currency": "processing_fee",
    "Scheme Fee In Holding Currency": "scheme_fee",
    "Interchange In Holding Currency": "interchange",
    "Tax In Holding Currency": "tax",
    "Reserve In Holding Currency": "reserve",
}
TYPES = {
    "Charge": LineType.CAPTURE,
    "Capture": LineType.CAPTURE,
    "Refund": LineType.REFUND,
    "Chargeback": LineType.CHARGEBACK,
    "Chargeback Reversal": LineType.CHARGEBACK_REVERSAL,
    "Merchant Payout": LineType.FEE,  # the payout-fee row; the payout itself is in the payouts report
    "Void": LineType.FEE,
    "Network Token Provisioning": LineType.FEE,
    "Network Token Update": LineType.FEE,
    "Account Updater": LineType.FEE,
}  # anything else is an adjustment


@dataclass
class Parsed:
    lines: list[SettlementLine] = field(default_factory=list)
    payouts: list[Payout] = field(default_factory=list)
    exact_nets: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (payout, currency) -> exact sum


# -- files ----------------------------------------------------------------------------------------------
def _timestamp(raw: str, where: Where, name: str) -> dt.datetime:
    """Checkout writes UTC (``2026-03-02 10:15:22`` or ISO 8601 with ``Z``); a naive value is read as UTC."""
    value = raw.strip().replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise where.error(f"not a timestamp: {raw[:40]!r}", name) from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def parse(data: bytes, *, account: str, source: str) -> Parsed:
    """A breakdown or a payouts CSV (told apart by header), keeping the exact nets for :func:`close_payouts`."""
    out = Parsed()
    names: list[str] | None = None
    kind = ""
    ids = LineIds()
    for number, fields in records(decode(data, source), source):
        where = Where(source, number)
        if names is None:
            cleaned = {" ".join(f.split()) for f in fields}
            kind = "breakdown" if cleaned >= BREAKDOWN else "payouts" if cleaned >= PAYOUTS else ""
            if not kind:
                raise where.error("neither a settlement breakdown nor a payouts report header")
            names = header(fields, where, BREAKDOWN if kind == "breakdown" else PAYOUTS)
            continue
        row = row_dict(names, fields, where)
        if kind == "payouts":
            out.payouts.append(_payout(row, where, account))
        else:
            _breakdown_row(row, where, account, ids, out)
    if names is None:
        raise SettlementFormatError("empty file (no header)", source=source)
    return out


def _payout(row: dict[str, str], where: Where, account: str) -> Payout:
    code = currency(row["Holding Currency"], where, "Holding Currency")
    return Payout(
        psp="checkout",
        account=account,
        payout_id=text(row["Payout ID"], where, "Payout ID", required=True) or "",
        currency=code,
        amount=minor_exact(parse_decimal(row["Payout Amount"], where, "Payout Amount"), code, where, "Payout Amount"),
        arrival_date=_timestamp(row["Payout Date"], where, "Payout Date").date(),
    )


def _breakdown_row(row: dict[str, str], where: Where, account: str, ids: LineIds, out: Parsed) -> None:
    code = currency(row["Holding Currency"], where, "Holding Currency")
    gross = parse_decimal(row["Gross In Holding Currency"], where, "Gross In Holding Currency", empty_is_zero=True)
    deduction = parse_decimal(row["Deduction In Holding Currency"], where, "Deduction", empty_is_zero=True)
    net = parse_decimal(row["Net In Holding Currency"], where, "Net In Holding Currency")
    half_unit = Decimal(1).scaleb(-exponent(code)) / 2
    if deduction > 0:
        raise where.error("deductions are negative", "Deduction In Holding Currency")
    if abs(gross + deduction - net) >= half_unit:
        raise where.error(f"net {net} is not gross {gross} + deduction {deduction}", "Net In Holding Currency")
    exact_fees: dict[str, Decimal] = {}
    for column, kind_name in FEE_COLUMNS.items():
        value = parse_decimal(row.get(column), where, column, empty_is_zero=True)
        if value > 0 and kind_name != "reserve":
            raise where.error("fee columns are negative", column)
        exact_fees[kind_name] = -value
    other = -deduction - sum(exact_fees.values())
    if abs(other) >= half_unit:
        exact_fees["other"] = other
    fees = fees_of({k: minor_rounded(v, code, where, k) for k, v in exact_fees.items()})
    gross_minor = minor_rounded(gross, code, where, "Gross In Holding Currency")
    journal = text(row["Type"], where, "Type", required=True, max_len=64) or ""
    line_type = TYPES.get(journal, LineType.ADJUSTMENT)
    if line_type is LineType.FEE:
        gross_minor, fees = fee_only("checkout_" + journal.lower().replace(" ", "_"), gross_minor, fees)
    payout_id = text(row["Payout ID"], where, "Payout ID")
    payment = text(row["Payment ID"], where, "Payment ID", max_len=64)
    presentment: dict[str, Any] = {}
    pc_raw = row.get("Processing Currency", "").strip()
    if pc_raw and pc_raw.upper() != code and row.get("Gross In Processing Currency", "").strip():
        pc = currency(pc_raw, where, "Processing Currency")
        pg = parse_decimal(row["Gross In Processing Currency"], where, "Gross In Processing Currency")
        presentment = {
            "presentment_currency": pc,
            "presentment_amount": minor_rounded(pg, pc, where, "Gross In Processing Currency"),
            "fx_rate": parse_rate(row.get("FX Rate Applied"), where, "FX Rate Applied"),
        }
    available = row.get("Available On", "").strip()
    out.lines.append(
        make_line(
            where,
            psp="checkout",
            account=account,
            line_id=ids(f"{payout_id or ''}:{journal}:{payment or ''}"),
            type=line_type,
            psp_reference=payment,
            psp_payment_id=payment,
            our_reference=text(row["Reference"], where, "Reference"),
            currency=code,
            gross=gross_minor,
            fees=fees,
            net=gross_minor - sum(f.amount for f in fees),
            payout_id=payout_id,
            booked_at=_timestamp(row["Processed On"], where, "Processed On"),
            available_at=_timestamp(available, where, "Available On") if available else None,
            **presentment,
        )
    )
    if payout_id:
        key = (payout_id, code)
        out.exact_nets[key] = out.exact_nets.get(key, Decimal(0)) + net


def close_payouts(parsed: Parsed, *, account: str) -> list[SettlementLine]:
    """The rounding line per payout whose amount is within one minor unit of its lines' exact net sum."""
    extra = []
    for payout in parsed.payouts:
        key = (payout.payout_id, payout.currency)
        if key not in parsed.exact_nets:
            continue
        lines = [ln for ln in parsed.lines if ln.payout_id == payout.payout_id and ln.currency == payout.currency]
        diff = payout.amount - sum(ln.net for ln in lines)
        exact = parsed.exact_nets[key].scaleb(exponent(payout.currency))
        if diff and abs(payout.amount - exact) <= 1:
            where = Where(f"checkout:payout/{payout.payout_id}")
            extra.append(
                make_line(
                    where,
                    psp="checkout",
                    account=account,
                    line_id=f"{payout.payout_id}:rounding",
                    type=LineType.ADJUSTMENT,
                    currency=payout.currency,
                    gross=diff,
                    net=diff,
                    payout_id=payout.payout_id,
                    booked_at=max(ln.booked_at for ln in lines),
                )
            )
    return extra


def parse_report(data: bytes, *, account: str, source: str) -> SettlementBatch:
    """One report file: a breakdown yields lines and each payout's exact net, a payouts report yields payouts.

    The two files arrive separately (either order) in the bucket; reconciliation adds the rounding line
    once it has both the payout and the exact nets (see :func:`close_payouts` for the rule).
    """
    parsed = parse(data, account=account, source=source)
    nets = tuple(
        PayoutNet(payout_id=pid, currency=code, exact_net=value.scaleb(exponent(code)))
        for (pid, code), value in sorted(parsed.exact_nets.items())
    )
    return SettlementBatch(lines=tuple(parsed.lines), payouts=tuple(parsed.payouts), payout_nets=nets)


def parse_files(files: Iterable[tuple[str, bytes]], *, account: str) -> SettlementBatch:
    """Breakdown and payouts files together: lines, payouts and the rounding lines that close the payouts."""
    merged = Parsed()
    for source, data in files:
        one = parse(data, account=account, source=source)
        merged.lines.extend(one.lines)
        merged.payouts.extend(one.payouts)
        for key, value in one.exact_nets.items():
            merged.exact_nets[key] = merged.exact_nets.get(key, Decimal(0)) + value
    lines = [*merged.lines, *close_payouts(merged, account=account)]
    return SettlementBatch(lines=tuple(lines), payouts=tuple(merged.payouts))


# -- Reports API ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportsClient:
    """The two Reports API calls this intake needs, over ``requests`` with the bearer secret key."""

    base_url: str
    secret_key: str
    timeout_s: float = 30.0

    def _get(self, url: str, params: dict[str, Any] | None = None) -> Any:
        import requests

        response = requests.get(
            url, params=params, headers={"Authorization": f"Bearer {self.secret_key}"}, timeout=self.timeout_s
        )
        response.raise_for_status()
        return response

    def reports(self, since: dt.datetime, until: dt.datetime) -> Iterable[dict[str, Any]]:
        stamp = {"created_after": _iso(since), "created_before": _iso(until), "limit": PAGE_LIMIT}
        url: str | None = f"{self.base_url}/reports"
        params: dict[str, Any] | None = stamp
        origin = urlsplit(self.base_url)[:2]
        while url:
            body = self._get(url, params).json()
            yield from body.get("data") or ()
            url = ((body.get("_links") or {}).get("next") or {}).get("href")
            params = None  # the next link carries its own query
            if url and urlsplit(url)[:2] != origin:
                raise SettlementFormatError(f"pagination link to another origin: {url[:80]}", source="checkout:reports")

    def file(self, report_id: str, file_id: str) -> bytes:
        content: bytes = self._get(f"{self.base_url}/reports/{report_id}/files/{file_id}").content
        return content


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def client(account: str) -> ReportsClient:
    cfg = checkout_settings(account)
    if not cfg.secret_key:
        raise ConfigError(f"CHECKOUT_SECRET_KEY is not set for account {account!r}")
    return ReportsClient(base_url=cfg.api_base.rstrip("/"), secret_key=cfg.secret_key)


def pull(client: Any, *, account: str, since: dt.datetime, until: dt.datetime) -> SettlementBatch:
    """Every breakdown and payouts file of the reports created in ``[since, until)``, closed per payout.

    Files of other report families (payments, disputes ...) are skipped by their header.
    """
    files = []
    for report in client.reports(since, until):
        report_id = str(report.get("id") or "")
        for f in report.get("files") or ():
            source = f"checkout:reports/{report_id}/files/{f.get('id')}"
            data = client.file(report_id, str(f.get("id") or ""))
            first = decode(data, source).split("\n", 1)[0]
            cells = {" ".join(c.split()) for c in first.replace('"', "").split(",")}
            if cells >= BREAKDOWN or cells >= PAYOUTS:
                files.append((source, data))
    return parse_files(files, account=account)
