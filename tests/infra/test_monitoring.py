"""Every log-based metric counts the lines the code really writes, and the module wires them to alerts,
the dashboard and the SLOs.

The code paths run for real on the emulators (the webhook endpoint through its HTTP entry, the backfill,
the invoice audit); their JSON lines are captured as Cloud Logging receives them and each metric's
filter and label extractors are evaluated on them (tests/infra/logfilter.py: the supported subset).
Renewal charge lines: tests/integration/renewals/test_charge_log_lines.py. Metrics of features that
land separately (reconciliation, disputes) are checked against the contract lines in the README.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from shared import clients
from shared.backfill.base import Page, SourceError, Window
from shared.backfill.config import BackfillSettings, SourceSettings
from shared.backfill.runner import Backfill, BackfillFailed
from shared.ops.invoices import audit_series
from shared.psp import signing
from shared.psp.base import Notification
from shared.webhooks.service import WebhookService
from tests.conftest import Gcp
from tests.fixtures.psp import compact, load
from tests.infra.hcl import INFRA, ROOT, attr, blocks, named, parse
from tests.infra.logfilter import compile_filter, extract
from tests.infra.monitoring import counted, log_metrics
from tests.integration.webhooks.support import ENV, STRIPE_SECRET, Harness, harness
from tests.logcapture import captured_lines

METRICS = log_metrics()
MODULE = INFRA / "modules" / "monitoring"


def test_every_filter_and_extractor_is_within_the_evaluated_subset() -> None:
    assert len(METRICS) >= 10
    for m in METRICS.values():
        compile_filter(m.filter)  # raises Unsupported otherwise
        for extractor in [*m.labels.values(), *([m.value] if m.value else [])]:
            extract(extractor, {})


def _one(lines: Sequence[dict[str, Any]], **where: Any) -> dict[str, Any]:
    found = [ln for ln in lines if all(ln.get(k) == v for k, v in where.items())]
    assert len(found) == 1, (where, found)
    return found[0]


def test_webhook_metrics_count_every_answer_line_with_its_psp_and_status(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness(gcp, monkeypatch)
    ev = load("stripe_payment_intent_succeeded.json")
    body = compact(ev)
    good = {"Stripe-Signature": signing.stripe_header(body, STRIPE_SECRET)}
    gc_body = compact(load("gocardless_batch.json"))
    with captured_lines() as lines:
        statuses = [
            h.post("/stripe", body, good).status_code,
            h.post("/stripe", body, {"Stripe-Signature": signing.stripe_header(body, "whsec_wrong")}).status_code,
            h.post("/gocardless", gc_body, {"Webhook-Signature": "00" * 32}).status_code,
            h.post("/wp-login.php", b"{}").status_code,
        ]
        down = WebhookService(adapters=h.service.adapters, db=clients.firestore, publisher=_pubsub_down)
        broken = Harness(gcp, h.subscription, down)
        ev2 = {**ev, "id": "evt_outage"}
        b2 = compact(ev2)
        statuses.append(
            broken.post("/stripe", b2, {"Stripe-Signature": signing.stripe_header(b2, STRIPE_SECRET)}).status_code
        )

        def bug(**_: Any) -> Any:
            raise RuntimeError("a bug")

        monkeypatch.setattr(h.service, "handle", bug)
        statuses.append(h.post("/adyen", b"{}").status_code)
    assert statuses == [200, 401, 498, 404, 503, 500]
    answers = [ln for ln in lines if "http_status" in ln]
    assert [ln["http_status"] for ln in answers] == statuses  # exactly one answer line per request
    psps = [ln["logging.googleapis.com/labels"]["psp"] for ln in answers]
    assert psps == ["stripe", "stripe", "gocardless", "unknown", "stripe", "adyen"]

    all_answers = counted(METRICS["webhook_answers"], lines)
    assert all_answers == answers
    assert METRICS["webhook_answers"].labels_of(all_answers[0]) == {
        "psp": "stripe",
        "account": "default",
        "status": "200",
    }
    # the account is a label once the route's account is known to be configured (bounded values), else absent
    accounts = [METRICS["webhook_answers"].labels_of(ln)["account"] for ln in all_answers]
    assert accounts == ["default", "default", "default", None, "default", None]
    assert [ln["http_status"] for ln in counted(METRICS["webhook_5xx"], lines)] == [503, 500]
    assert [METRICS["webhook_5xx"].labels_of(ln)["psp"] for ln in counted(METRICS["webhook_5xx"], lines)] == [
        "stripe",
        "adyen",
    ]
    four = counted(METRICS["webhook_4xx"], lines)
    assert [METRICS["webhook_4xx"].labels_of(ln) for ln in four] == [
        {"psp": "stripe", "error_code": "invalid_signature"},
        {"psp": "gocardless", "error_code": "invalid_signature"},
        {"psp": "unknown", "error_code": "unknown_psp"},
    ]
    sig = counted(METRICS["webhook_signature_failures"], lines)
    assert [METRICS["webhook_signature_failures"].labels_of(ln) for ln in sig] == [
        {"psp": "stripe"},
        {"psp": "gocardless"},
    ]
    for name in ("webhook_gap_detected", "renewal_charges", "invoice_audit_failures"):
        assert counted(METRICS[name], lines) == [], name
    assert set(ENV) >= {"STRIPE_WEBHOOK_SECRETS", "GOCARDLESS_WEBHOOK_SECRETS"}


def _pubsub_down(_: Any) -> str:
    raise ConnectionError("pubsub down")


class ListSource:
    """An event list without HTTP: the backfill's own logic and log lines are what is under test."""

    psp = "stripe"

    def __init__(self, notes: list[Notification], fail: bool = False) -> None:
        self.notes, self.fail = notes, fail

    def page(self, settings: SourceSettings, window: Window, cursor: str | None, size: int) -> Page:
        if self.fail:
            raise SourceError("stripe events list: APIConnectionError")
        return Page(self.notes, None)

    def full(self, settings: SourceSettings, note: Notification) -> Notification:
        return note


def test_backfill_metrics_count_gaps_and_failures_per_psp_and_account(
    gcp: Gcp, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness(gcp, monkeypatch)
    monkeypatch.setenv("STRIPE_API_KEY__EU", "rk_test_eu")
    ev = {**load("stripe_payment_intent_succeeded.json"), "id": "evt_gap_metric"}
    note = Notification(ev["id"], ev["type"], ev, json.dumps(ev))
    cfg = BackfillSettings((("stripe", "eu"),), 86400, 3600, 60, 3 * 86400, 100, 5, 360)
    with captured_lines() as lines:
        Backfill(h.service, db=clients.firestore, sources={"stripe": ListSource([note])}).run_tick(cfg)
        failing = Backfill(h.service, db=clients.firestore, sources={"stripe": ListSource([], fail=True)})
        with pytest.raises(BackfillFailed):
            failing.run_tick(cfg)
    (gap,) = counted(METRICS["webhook_gap_detected"], lines)
    assert METRICS["webhook_gap_detected"].labels_of(gap) == {"psp": "stripe", "account": "eu", "outcome": "published"}
    (failure,) = counted(METRICS["webhook_backfill_failures"], lines)
    assert METRICS["webhook_backfill_failures"].labels_of(failure) == {"psp": "stripe", "account": "eu"}
    assert counted(METRICS["webhook_answers"], lines) == []


def test_invoice_audit_metric_counts_a_failed_audit_only(gcp: Gcp) -> None:
    db = clients.firestore()
    db.collection("number_series").document("acme-fr.INV.2026").set({"counter": 3})
    for doc_id, seq in (("in_a", 1), ("in_b", 1)):  # 1 twice, 2 and 3 missing
        db.collection("invoices").document(doc_id).set({"series_id": "acme-fr.INV.2026", "seq": seq})
    db.collection("number_series").document("acme-fr.INV.2025").set({"counter": 1})
    db.collection("invoices").document("in_c").set({"series_id": "acme-fr.INV.2025", "seq": 1})
    with captured_lines() as lines:
        assert not audit_series(db, "acme-fr.INV.2026").ok
        assert audit_series(db, "acme-fr.INV.2025").ok
    (line,) = counted(METRICS["invoice_audit_failures"], lines)
    assert METRICS["invoice_audit_failures"].labels_of(line) == {"series_id": "acme-fr.INV.2026"}
    assert line["missing_numbers"] == 2
    assert line["duplicate_numbers"] == 1


def _readme_contract_lines() -> list[dict[str, Any]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Operator runbook") : text.index("## Benchmarks")]
    block = re.search(r"```json contract\n(.*?)```", section, re.S)
    assert block, "the runbook documents the log contract of the features landing in parallel"
    return [json.loads(ln) for ln in block.group(1).splitlines() if ln.strip()]


def test_contract_metrics_count_the_documented_lines() -> None:
    lines = _readme_contract_lines()
    for name in ("reconciliation_exceptions", "dispute_deadlines"):
        (line,) = counted(METRICS[name], lines)
        labels = METRICS[name].labels_of(line)
        assert all(v for v in labels.values()), (name, labels)
    for ln in lines:  # each documented line is counted by exactly one metric
        assert len([m for m in METRICS.values() if m.counts(ln)]) == 1, ln


# --- the module ------------------------------------------------------------------------------


def _module() -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for p in sorted(MODULE.glob("*.tf")):
        for kind, entries in parse(p).items():
            doc.setdefault(kind, []).extend(entries)
    return doc


def test_alerts_dashboard_and_slos_use_the_metrics_and_notify_the_channels() -> None:
    text = (MODULE / "main.tf").read_text()
    for name in METRICS:  # every log metric has an alert or an SLO on it (the dashboard charts them all)
        assert f"${{local.user}}/{name}" in text, name
    doc = _module()
    res = {(t, n): b for e in doc["resource"] for t, named_ in e.items() for n, b in named_.items()}
    for key in (("google_monitoring_alert_policy", "this"), ("google_monitoring_alert_policy", "slo_burn")):
        assert attr(res[key], "notification_channels") == "${var.notification_channels}"
        assert blocks(res[key], "documentation")
    assert attr(res[("google_logging_metric", "this")], "for_each") == "${local.log_metrics}"
    assert ("google_monitoring_dashboard", "this") in res
    assert ("google_monitoring_custom_service", "webhooks") in res
    assert ("google_monitoring_custom_service", "renewals") in res
    slos = {n for t, n in res if t == "google_monitoring_slo"}
    assert slos == {"webhook_availability", "webhook_latency", "renewals_on_time"}
    root: dict[str, Any] = {}
    for p in sorted(INFRA.glob("*.tf")):
        for kind, entries in parse(p).items():
            root.setdefault(kind, []).extend(entries)
    call = named(root, "module")["monitoring"]
    assert attr(call, "notification_channels") == "${var.notification_channels}"
    assert "local.topology.monitoring.webhook_function" in attr(call, "webhook_service")


def test_the_runbook_explains_every_alert() -> None:
    text = (ROOT / "README.md").read_text()
    runbook = text[text.index("## Operator runbook") : text.index("## Benchmarks")]
    alerts = re.findall(r"^    (\w+) = \{\n      name", (MODULE / "main.tf").read_text(), re.M)
    assert len(alerts) >= 12
    for key in alerts:
        assert f"`{key}`" in runbook, f"alert {key} is not in the README's Operator runbook"


def test_dates_in_the_contract_are_iso() -> None:
    for ln in _readme_contract_lines():
        if "due_at" in ln:
            dt.datetime.fromisoformat(ln["due_at"])


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_evaluates_the_module_locals(tmp_path: Path) -> None:
    """Real yamldecode of log_metrics.yaml and the alert and chart expressions (no provider needed)."""
    for name in ("variables.tf", "log_metrics.yaml"):
        shutil.copy(MODULE / name, tmp_path / name)
    main = (MODULE / "main.tf").read_text()
    (tmp_path / "locals.tf").write_text("\n".join(re.findall(r"^locals \{\n.*?^\}\n", main, re.M | re.S)))
    expr = "jsonencode({m = keys(local.log_metrics), a = local.alerts, c = length(local.charts)})"
    proc = subprocess.run(
        [
            "terraform",
            "console",
            "-var",
            "project_id=demo-eval-1",
            "-var",
            'services=["webhooks","renewals"]',
            "-var",
            "webhook_service=webhooks",
            "-var",
            "renewals_service=renewals",
        ],
        input=expr,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert got["m"] == sorted(METRICS)
    assert got["c"] == len(METRICS) + 4
    assert got["a"]["webhook_5xx"]["threshold"] == 0.02
    assert got["a"]["function_errors"]["filter"].endswith('metric.label.response_code_class="5xx"')
    assert 'one_of("webhooks","renewals")' in got["a"]["function_errors"]["filter"]
