"""The parity gate's run: sample blue and green over the same window from the spec's metric source,
classify each metric, score them, and turn the score into a gate verdict."""

from __future__ import annotations

from typing import Any

from include.slow_injection import registry
from include.slow_injection.gates.verdict import Verdict
from include.slow_injection.kinds import parity as parity_kind
from include.slow_injection.measurement.parity_statistics import MetricResult, classify, score
from include.slow_injection.ports import Series
from include.slow_injection.queries import render_query

# A marginal score is a human's call: with an approval stage next it passes on to the approver (who
# sees the score); without one the wave holds.
MARGINAL_STATUS = {True: "pass", False: "hold"}


def _samples(source: Any, query: str, start: float, end: float, step: float) -> Series:
    try:
        return source.query_range(query, start, end, step)
    except Exception as err:
        return Series((), f"{type(err).__name__}: {err}"[:300])


def analyse_parity(parity: dict[str, Any], start: float, end: float, human_decides: bool) -> Verdict:
    source = registry.build("metric_source", parity["source"])
    step = float(parity["step"])
    results: list[MetricResult] = []
    series_errors: list[str] = []
    for metric in parity["metrics"]:
        sides = {
            env: _samples(source, render_query(metric["query"], None, env), start, end, step)
            for env in ("blue", "green")
        }
        series_errors += [f"{metric['name']} {env}: {s.error}" for env, s in sides.items() if s.error]
        results.append(
            classify(
                metric["name"],
                sides["blue"].values,
                sides["green"].values,
                direction=metric["direction"],
                tolerance=float(metric["tolerance"]),
                confidence=float(parity["confidence"]),
                min_samples=int(parity["min_samples"]),
            )
        )
    scored = score(results, parity)
    status = {"pass": "pass", "fail": "fail"}.get(scored.decision) or MARGINAL_STATUS[human_decides]
    reasons = list(scored.reasons) + series_errors
    summary = "; ".join(reasons) or f"score {scored.score:g} ({scored.decision})"
    if scored.decision == "marginal":
        summary += "; a human decides" if human_decides else "; holding for a human"
    data = scored.to_dict()
    return Verdict(
        gate="parity",
        kind=parity_kind.KIND.name,
        service=None,
        env="green",
        status=status,
        reason=summary[:1000],
        score=data["score"],
        decision=data["decision"],
        metrics=[{"name": r["name"], **r} for r in data["results"]],
        measurements=[{"t": 0.0, "value": data["score"], "outcome": scored.decision}],
        window={"start": start, "end": end, "step": step},
    )
