"""The log-based metrics of infra/modules/monitoring, read the way Terraform reads them, and a check
that a metric counts a captured line (filter matches, every label it needs extracted)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from tests.infra.hcl import INFRA
from tests.infra.logfilter import compile_filter, entry_of, extract

METRICS_FILE = INFRA / "modules" / "monitoring" / "log_metrics.yaml"


@dataclass(frozen=True)
class LogMetric:
    name: str
    filter: str
    labels: Mapping[str, str]
    value: str | None

    def counts(self, line: Mapping[str, Any]) -> bool:
        return compile_filter(self.filter)(entry_of(line))

    def labels_of(self, line: Mapping[str, Any]) -> dict[str, str | None]:
        return {k: extract(v, line) for k, v in self.labels.items()}


def log_metrics() -> dict[str, LogMetric]:
    data = yaml.safe_load(METRICS_FILE.read_text())["metrics"]
    return {name: LogMetric(name, m["filter"], dict(m.get("labels") or {}), m.get("value")) for name, m in data.items()}


def counted(metric: LogMetric, lines: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [ln for ln in lines if metric.counts(ln)]
