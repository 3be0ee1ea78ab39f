"""Webhook answers per PSP, account and day by status class (2xx/4xx/5xx), read from Cloud Monitoring.

Why Monitoring: requests refused before anything is archived (bad signature, wrong mode, malformed) and 5xx
answers leave only a log line; the log-based metric ``webhook_answers`` (infra/modules/monitoring,
``log_metrics.yaml``) counts every answer labelled by ``psp``, ``account`` and ``status``. The account label is
set once the route's account is known to be configured (so its values stay bounded): answers refused before
that (unknown PSP or account) count under the PSP alone. One ``projects.timeSeries.list`` call (REST v3) with
``ALIGN_SUM`` over 24-hour periods and ``REDUCE_SUM`` grouped by psp, account and status; the periods end at the
request time, so each row is the 24 hours ending at that time of day (UTC). At most :data:`MAX_PAGES` pages.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

METRIC = "logging.googleapis.com/user/webhook_answers"
CLASSES = ("2xx", "4xx", "5xx", "other")
MAX_PAGES = 10
TIMEOUT_S = 10.0
SCOPE = "https://www.googleapis.com/auth/monitoring.read"


class MonitoringUnavailable(Exception):
    """The Monitoring API did not answer usefully (network, status, shape): the section says so."""


def _rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_params(project: str, end: dt.datetime, days: int, page_token: str | None = None) -> list[tuple[str, str]]:
    """The query string of one ``timeSeries.list`` call (a list: ``groupByFields`` repeats)."""
    start = end - dt.timedelta(days=days)
    params = [
        ("filter", f'metric.type="{METRIC}"'),
        ("interval.startTime", _rfc3339(start)),
        ("interval.endTime", _rfc3339(end)),
        ("aggregation.alignmentPeriod", "86400s"),
        ("aggregation.perSeriesAligner", "ALIGN_SUM"),
        ("aggregation.crossSeriesReducer", "REDUCE_SUM"),
        ("aggregation.groupByFields", "metric.label.psp"),
        ("aggregation.groupByFields", "metric.label.account"),
        ("aggregation.groupByFields", "metric.label.status"),
        ("view", "FULL"),
    ]
    return params + ([("pageToken", page_token)] if page_token else [])


def status_class(status: str) -> str:
    return f"{status[0]}xx" if len(status) == 3 and status.isdigit() and status[0] in "245" else "other"


def tally(series: list[dict[str, Any]]) -> dict[str, dict[str, Counter[str]]]:
    """``psp`` or ``psp/account`` -> day (the period's end date, UTC) -> Counter of status classes."""
    out: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for ts in series:
        labels = (ts.get("metric") or {}).get("labels") or {}
        psp = str(labels.get("psp") or "unknown")
        if labels.get("account"):
            psp = f"{psp}/{labels['account']}"
        cls = status_class(str(labels.get("status") or ""))
        for point in ts.get("points") or []:
            end = str((point.get("interval") or {}).get("endTime") or "")
            value = (point.get("value") or {}).get("int64Value", 0)  # INT64 travels as a JSON string
            try:
                day, n = dt.date.fromisoformat(end[:10]).isoformat(), int(value)
            except ValueError as exc:
                raise MonitoringUnavailable(f"unexpected point {point!r:.200}") from exc
            out[psp][day][cls] += n
    return out


def webhook_answers(session: Any, base_url: str, project: str, end: dt.datetime, days: int = 30) -> dict[str, Any]:
    """Answers per PSP and day by status class, and totals per PSP; raises :class:`MonitoringUnavailable`."""
    url = f"{base_url.rstrip('/')}/v3/projects/{project}/timeSeries"
    series: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        try:
            r = session.get(url, params=request_params(project, end, days, token), timeout=TIMEOUT_S)
        except Exception as exc:  # transport, credentials: any of them leaves the page without the section
            raise MonitoringUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        if r.status_code != 200:
            raise MonitoringUnavailable(f"HTTP {r.status_code}")
        try:
            body = r.json()
        except ValueError as exc:
            raise MonitoringUnavailable("not JSON") from exc
        if not isinstance(body, dict):
            raise MonitoringUnavailable("not a ListTimeSeriesResponse")
        series.extend(body.get("timeSeries") or [])
        token = body.get("nextPageToken") or None
        if not token:
            break
    per = tally(series)
    totals = {psp: sum(days_.values(), Counter()) for psp, days_ in per.items()}
    return {"per_day": per, "totals": totals, "truncated": token is not None}


def default_session() -> Any:
    """An authorised session with the runtime's credentials (the console's service account)."""
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=[SCOPE])
    return AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
