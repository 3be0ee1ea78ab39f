"""The operations page's webhook answers by status class, read from Cloud Monitoring (a stub server)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

import requests
from pytest_httpserver import HTTPServer

from shared.config import get_settings
from shared.console.app import flask_app
from shared.console.config import load_console_settings
from shared.console.monitoring import status_class
from tests.console.forms import HEADERS
from tests.fixtures.console_world import CONSOLE_ROOT, SETTINGS, World


def _series(psp: str, status: str, points: list[tuple[str, int]], account: str | None = None) -> dict[str, Any]:
    """One aligned series as timeSeries.list answers it (INT64 values are JSON strings; an answer refused
    before its account was known has no account label)."""
    labels = {"psp": psp, "status": status} | ({"account": account} if account else {})
    return {
        "metric": {"type": "logging.googleapis.com/user/webhook_answers", "labels": labels},
        "resource": {"type": "cloud_run_revision", "labels": {"project_id": "p"}},
        "metricKind": "DELTA",
        "valueType": "INT64",
        "points": [
            {
                "interval": {"startTime": f"{day}T14:00:00Z", "endTime": f"{day}T14:00:00Z"},
                "value": {"int64Value": str(n)},
            }
            for day, n in points
        ],
    }


def _page(world: World, server: HTTPServer) -> str:
    from shared.console.app import Console

    settings = dataclasses.replace(SETTINGS, monitoring_url=server.url_for("/"))
    console = Console(root=CONSOLE_ROOT, settings=lambda: settings, monitoring_session=requests.Session)
    r = flask_app(console).test_client().get("/operations", headers=HEADERS)
    assert r.status_code == 200
    return str(r.get_data(as_text=True))


def test_the_page_shows_answers_per_psp_and_day_and_asks_monitoring_exactly(
    world: World, httpserver: HTTPServer
) -> None:
    today = dt.datetime.now(dt.UTC).date()
    d1, d2 = (today - dt.timedelta(days=1)).isoformat(), today.isoformat()
    project = get_settings().project_id
    first = {
        "timeSeries": [
            _series("stripe", "200", [(d1, 41), (d2, 7)]),
            _series("stripe", "401", [(d2, 3)]),
        ],
        "nextPageToken": "page2",
    }
    second = {
        "timeSeries": [
            _series("stripe", "503", [(d2, 2)]),
            _series("adyen", "200", [(d1, 9)]),
            _series("stripe", "200", [(d2, 5)], account="eu"),
            _series("stripe", "401", [(d2, 1)], account="eu"),
        ]
    }
    path = f"/v3/projects/{project}/timeSeries"
    import json

    from werkzeug import Request, Response

    def answer(request: Request) -> Response:
        body = second if request.args.get("pageToken") == "page2" else first
        return Response(json.dumps(body), mimetype="application/json")

    httpserver.expect_request(path, method="GET").respond_with_handler(answer)
    page = _page(world, httpserver)
    table = page.split('<table class="answers">')[1].split("</table>")[0]
    cells = ["|".join(re.findall(r"<td[^>]*>([^<]*)</td>", row)) for row in table.split("<tr>")[2:]]
    assert f"adyen|{d1}|9|0|0|0" in cells
    assert f"stripe|{d1}|41|0|0|0" in cells
    assert f"stripe|{d2}|7|3|2|0" in cells
    assert f"stripe/eu|{d2}|5|1|0|0" in cells  # per account once the account is known
    assert page.count('role="img"') >= 1
    assert "Webhook answers per day" in page

    (req1, _), (req2, _) = httpserver.log[0], httpserver.log[1]
    args = req1.args
    assert args["filter"] == 'metric.type="logging.googleapis.com/user/webhook_answers"'
    assert args["aggregation.alignmentPeriod"] == "86400s"
    assert args["aggregation.perSeriesAligner"] == "ALIGN_SUM"
    assert args["aggregation.crossSeriesReducer"] == "REDUCE_SUM"
    assert args.getlist("aggregation.groupByFields") == [
        "metric.label.psp",
        "metric.label.account",
        "metric.label.status",
    ]
    start = dt.datetime.fromisoformat(args["interval.startTime"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(args["interval.endTime"].replace("Z", "+00:00"))
    assert end - start == dt.timedelta(days=30)
    assert end <= dt.datetime.now(dt.UTC)
    assert "pageToken" not in args
    assert req2.args["pageToken"] == "page2"


def test_a_failing_monitoring_call_leaves_the_page_with_unavailable(world: World, httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"/v3/projects/{get_settings().project_id}/timeSeries").respond_with_data(
        "boom", status=500
    )
    page = _page(world, httpserver)
    assert 'data-monitoring="unavailable"' in page
    assert '<table class="answers">' not in page
    assert "Dead letters" in page
    assert "Reconciliation exceptions" in page


def test_on_the_emulators_the_section_says_monitoring_is_not_there(world: World) -> None:
    r = world.app().test_client().get("/operations", headers=HEADERS)
    assert r.status_code == 200
    assert 'data-monitoring="local"' in r.get_data(as_text=True)


def test_monitoring_url_defaults_to_google_in_the_cloud_and_to_none_locally() -> None:
    cloud = {"CONSOLE_CSRF_SECRET": "s" * 32, "CONSOLE_IAP_AUDIENCE": "/projects/1/global/backendServices/2"}
    assert load_console_settings(cloud).monitoring_url == "https://monitoring.googleapis.com"
    local = {"FIRESTORE_EMULATOR_HOST": "localhost:8080"}
    assert load_console_settings(local).monitoring_url is None
    stub = {**local, "CONSOLE_MONITORING_URL": "http://127.0.0.1:9/"}
    assert load_console_settings(stub).monitoring_url == "http://127.0.0.1:9/"


def test_status_classes() -> None:
    assert [status_class(s) for s in ("200", "204", "401", "498", "503", "302", "", "abc")] == [
        "2xx",
        "2xx",
        "4xx",
        "4xx",
        "5xx",
        "other",
        "other",
        "other",
    ]
