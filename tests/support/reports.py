"""Report data as a finished wave leaves it, and the parsed HTML report."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from include.slow_injection.reporting.series import (
    collect_series,
)
from include.slow_injection.reporting.timeline import build_timeline

T0 = 1_764_150_000.0  # the run's start (epoch s)
LATENCY = 'latency_seconds{env="${env}"}'


def step_result(service: str, before: int, after: int, at: float | None) -> dict[str, Any]:
    out = {
        "service": service,
        "before": f"blue {100 - before}, green {before}",
        "after": f"blue {100 - after}, green {after}",
        "changed": True,
        "dry_run": False,
    }
    return out if at is None else {**out, "at": at}


def metric_verdict(gate: str, status: str, reason: str, values: list[float | None]) -> dict[str, Any]:
    return {
        "gate": gate,
        "kind": "metric",
        "service": "web",
        "env": "green",
        "status": status,
        "reason": reason,
        "started_at": T0 + 20,
        "finished_at": T0 + 40,
        "dry_run": False,
        "condition": "< 0.05",
        "query": 'error_ratio{env="green"}',
        "measurements": [
            {"t": 5.0 * i, "value": v, "outcome": "no_data" if v is None else "pass"} for i, v in enumerate(values)
        ],
    }


def side(values: list[float], start: float = T0, step: float = 10.0) -> dict[str, Any]:
    return {"points": [[start + i * step, v] for i, v in enumerate(values)], "error": None, "note": None}


def report_data(**changes: Any) -> dict[str, Any]:
    """What EvaluationReport collects for a run that promoted web after a stress test and parity."""
    actions = {
        "preparation.web.deploy_green": {
            "service": "web",
            "action": "deploy_green",
            "dry_run": False,
            "at": T0 + 5,
            "changes": [
                {"target": "green Deployment/shop/web", "before": "absent", "after": "replicas=2", "applied": True}
            ],
        },
        "gradual_transition.web.step1_25pct.set_traffic": step_result("web", 0, 25, T0 + 15),
        "gradual_transition.web.step2_100pct.set_traffic": step_result("web", 25, 100, T0 + 45),
        "rollback.traffic_to_blue": None,
    }
    gates = {
        "gradual_transition.web.step1_25pct.gate_error-rate": metric_verdict(
            "error-rate", "pass", "4 of 4 measurement(s) < 0.05", [0.001, 0.002, 0.001, 0.0]
        ),
        "validation.stress_green-load": {
            "gate": "green-load",
            "kind": "stress",
            "status": "pass",
            "reason": "p95 0.12s ≤ 0.25s",
            "started_at": T0 + 8,
            "finished_at": T0 + 12,
            "target": "http://green.local/",
            "stats": {
                "requests": 400,
                "requests_per_s": 19.8,
                "failures": 0,
                "failure_ratio": 0.0,
                "p50_ms": 40,
                "p95_ms": 120,
                "p99_ms": 180,
                "elapsed_s": 20.2,
                "errors": [],
            },
            "series": [{"t": 1}],
            "measurements": [
                {"metric": "p95", "value": 0.12, "condition": "≤ 0.25s", "outcome": "pass", "text": "p95 0.12s ≤ 0.25s"}
            ],
        },
        "validation.parity": {
            "gate": "parity",
            "kind": "parity",
            "status": "pass",
            "reason": "score 100 (pass)",
            "score": 100.0,
            "decision": "pass",
            "window": {"start": T0 + 8, "end": T0 + 14, "step": 2.0},
            "measurements": [{"t": 0.0, "value": 100.0, "outcome": "pass"}],
            "metrics": [
                {
                    "name": "mean-latency",
                    "classification": "pass",
                    "reason": "within tolerance",
                    "blue_median": 0.05,
                    "green_median": 0.051,
                    "shift": 0.001,
                    "relative_effect": 0.02,
                    "p_value": 0.61,
                    "blue_count": 30,
                    "green_count": 30,
                }
            ],
        },
        "validation.uat_approval": {
            "gate": "uat_approval",
            "kind": "approval",
            "status": "pass",
            "reason": "Promote chosen by alice",
            "chosen": "Promote",
            "responded_by": {"id": "alice", "name": "alice"},
            "responded_at": "2025-11-26T09:40:20+00:00",
            "timed_out": False,
            "measurements": [],
        },
    }
    data = {
        "wave": "shop",
        "run_id": "manual__2025-11-26T09:40:00+00:00",
        "dry_run": False,
        "outcome": "completed",
        "actions": actions,
        "gates": gates,
        "decisions": [{"stage": "gradual_transition.web.step1_25pct", "outcome": "continue", "reasons": []}],
        "started_at": T0,
        "generated_at": T0 + 60,
    }
    data["timeline"] = build_timeline(actions, gates)
    series = collect_series(actions, {"plots": []}, T0, T0 + 60)
    series["metrics"] = [
        {
            "name": "error-ratio",
            "title": "Error rate",
            "unit": "ratio",
            "query": 'errors{env="${env}"}',
            "step": 10.0,
            "blue": side([0.01, 0.012, 0.011, 0.01, 0.009, 0.01, 0.01]),
            "green": side([0.0, 0.002, 0.004, 0.003, 0.002, 0.002, 0.002]),
        },
        {
            "name": "p95-latency",
            "title": "Latency p95",
            "unit": "s",
            "query": LATENCY,
            "step": 10.0,
            "blue": side([0.2, 0.21, 0.22, 0.2, 0.19, 0.2, 0.2]),
            "green": side([0.15, 0.16, 0.15, 0.14, 0.15, 0.15, 0.15]),
        },
    ]
    series["origin"] = "report"
    data["series"] = series
    data.update(changes)
    return data


HOSTILE = '<script>alert(1)</script>" onmouseover="x'


class Parsed(HTMLParser):
    """What a browser would make of a page: its elements, their attributes and its text."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def shows(self, value: str) -> bool:
        """value is on the page as text or as an attribute's value (never as markup)."""
        return value in "".join(self.text) or any(value in (v or "") for _, v in self.attributes)
