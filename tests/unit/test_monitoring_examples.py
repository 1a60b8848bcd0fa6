"""The shipped recording rules, alerts and dashboard use metrics confide really exports.

Threat: monitoring that silently watches nothing (a renamed metric or label
makes an alert expression empty, and an empty expression never fires).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import Counter, Gauge, Histogram

from confide.telemetry import _metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "confide-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "confide-dashboard.json"
_SELECTOR = re.compile(r"\b(confide_[a-z0-9_]+)(?:\{([^}]*)\})?")


def _exported() -> dict[str, set[str]]:
    """Every sample name confide can export, with its metric's label names."""
    names: dict[str, set[str]] = {}
    for metric in vars(_metrics).values():
        if not isinstance(metric, Counter | Gauge | Histogram):
            continue
        base = metric._name
        labels = set(metric._labelnames)
        if isinstance(metric, Counter):
            samples = [base + "_total"]
        elif isinstance(metric, Histogram):
            samples = [base + s for s in ("_bucket", "_sum", "_count")]
        else:
            samples = [base]
        for sample in samples:
            names[sample] = labels | ({"le"} if sample.endswith("_bucket") else set())
    names["confide_build_info"] = {"version"}
    return names


def _expressions() -> list[str]:
    rules = RULES.read_text()
    exprs = re.findall(r"expr: \|\n((?:\s{10}.*\n)+)|expr: (.*)", rules)
    found = [block or line for block, line in exprs]
    dashboard = json.loads(DASHBOARD.read_text())
    found += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return found


def test_every_expression_names_exported_metrics_and_their_labels() -> None:
    exported = _exported()
    expressions = _expressions()
    assert len(expressions) > 20
    for expr in expressions:
        for name, matchers in _SELECTOR.findall(expr):
            assert name in exported, (name, expr)
            for label in re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)", matchers):
                assert label in exported[name], (label, name, expr)


def test_every_recorded_series_used_is_recorded() -> None:
    recorded = set(re.findall(r"record: (confide:[a-z0-9_:]+)", RULES.read_text()))
    used = {n for expr in _expressions() for n in re.findall(r"confide:[a-z0-9_:]+", expr)}
    assert used <= recorded, used - recorded


@pytest.mark.parametrize("name", ["confide_tasks", "confide_worker_slots",
                                  "confide_health_check_ok"])
def test_the_dashboard_shows_the_core_state(name: str) -> None:
    assert name in DASHBOARD.read_text()
