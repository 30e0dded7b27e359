"""Kayenta-style parity: is green worse than blue, metric by metric, over the same window?

Pure functions over samples; numpy and scipy are imported inside them, so importing this module
(e.g. while a DAG file is parsed) costs nothing.

One metric — `classify`:
- NaN and ±inf are dropped first; fewer than `min_samples` finite values on either side is NoData.
- Test: Mann-Whitney U at alpha = 1 - confidence, ONE-sided towards the bad direction for
  increase_is_bad (green stochastically greater) and decrease_is_bad (green stochastically less),
  two-sided for `either`. Why: a shift in the harmless direction passes anyway, so testing only the
  bad side spends the whole alpha where it matters (more power for the same false-alarm rate).
- Effect: Hodges-Lehmann shift = median of the pairwise differences green - blue. It needs n²
  memory, so each side is first reduced to at most HL_MAX_SAMPLES evenly spaced order statistics
  (its quantiles: deterministic, and the distribution's shape is kept). The test itself uses every
  sample.
- Relative effect = shift / reference, where reference is |median(blue)|. Zero baseline (an error
  rate that is 0 on blue): when |median(blue)| <= ZERO the reference is mean(|blue|) (blue's
  occasional non-zero values); when that is <= ZERO too, blue is all zero: there is no reference,
  relative_effect is null and the shift is judged absolutely. In every case a shift is beyond
  tolerance when |shift| > max(tolerance * reference, ZERO): against an all-zero blue any real
  significant shift is beyond tolerance, and both sides all zero is a Pass (nothing differs).
- Pass when not significant, or |shift| within tolerance, or the shift is in the harmless direction;
  High / Low when green is significantly higher / lower beyond tolerance in a bad direction.

All metrics — `score`: 100 × weight of Pass / weight of metrics with data; a failing critical metric
or a NoData weight share above max_no_data forces 0 (so does all NoData). score >= pass_score is
"pass", >= marginal_score "marginal" (a human decides), else "fail"; a forced 0 is always "fail".

Every float in the JSON form is finite (non-finite → null): json.dumps(..., allow_nan=False) works.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Direction = Literal["increase_is_bad", "decrease_is_bad", "either"]
Classification = Literal["Pass", "High", "Low", "NoData"]
Decision = Literal["pass", "marginal", "fail"]

ZERO = 1e-9  # |value| at or below this is zero: float noise, never a baseline to divide by
HL_MAX_SAMPLES = 1000  # per side: 10⁶ pairwise differences, ~8 MB
_ALTERNATIVE = {"increase_is_bad": "greater", "decrease_is_bad": "less", "either": "two-sided"}


def _finite(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, numpy scalars plain floats."""
    if isinstance(value, float) or hasattr(value, "dtype"):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


@dataclass(frozen=True)
class MetricResult:
    name: str
    classification: Classification
    reason: str
    direction: str
    tolerance: float
    p_value: float | None = None
    shift: float | None = None  # Hodges-Lehmann, green - blue, in the metric's unit
    relative_effect: float | None = None  # shift / reference; None when blue is all zero
    baseline: Literal["median", "mean", "zero"] | None = None  # what `reference` is of blue
    blue_median: float | None = None
    green_median: float | None = None
    blue_count: int = 0
    green_count: int = 0

    @property
    def failed(self) -> bool:
        return self.classification in ("High", "Low")

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))


@dataclass(frozen=True)
class ParityVerdict:
    score: float
    decision: Decision
    reasons: tuple[str, ...]
    results: tuple[MetricResult, ...]
    no_data_share: float = 0.0
    forced_zero: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _finite(
            {
                "score": self.score,
                "decision": self.decision,
                "reasons": list(self.reasons),
                "no_data_share": self.no_data_share,
                "forced_zero": self.forced_zero,
                "results": [r.to_dict() for r in self.results],
            }
        )


# --- one metric ------------------------------------------------------------------------------------


def _clean(samples: Sequence[float]) -> Any:
    import numpy as np

    values = np.asarray(list(samples), dtype=float)
    return values[np.isfinite(values)]


def _quantile_subsample(values: Any, limit: int) -> Any:
    """At most `limit` evenly spaced order statistics: deterministic, keeps the distribution's shape."""
    import numpy as np

    if len(values) <= limit:
        return values
    ordered = np.sort(values)
    return ordered[np.linspace(0, len(ordered) - 1, limit).round().astype(int)]


def hodges_lehmann(blue: Any, green: Any) -> float:
    """Median of all pairwise differences green - blue (after subsampling each side)."""
    import numpy as np

    b, g = _quantile_subsample(blue, HL_MAX_SAMPLES), _quantile_subsample(green, HL_MAX_SAMPLES)
    return float(np.median(np.subtract.outer(g, b)))


def _p_value(blue: Any, green: Any, direction: Direction) -> float:
    import numpy as np
    from scipy.stats import mannwhitneyu

    if np.ptp(np.concatenate([blue, green])) == 0:
        return 1.0  # every value identical: nothing to test (and no variance to test with)
    p = float(mannwhitneyu(green, blue, alternative=_ALTERNATIVE[direction]).pvalue)
    return p if math.isfinite(p) else 1.0  # a degenerate test is no evidence of a difference


def _reference(blue: Any) -> tuple[float, Literal["median", "mean", "zero"]]:
    import numpy as np

    median = abs(float(np.median(blue)))
    if median > ZERO:
        return median, "median"
    mean = float(np.mean(np.abs(blue)))
    if mean > ZERO:
        return mean, "mean"  # mostly zero (e.g. errors): blue's occasional values set the scale
    return 0.0, "zero"


def _harmless(shift: float, direction: Direction) -> bool:
    return (direction == "increase_is_bad" and shift < 0) or (direction == "decrease_is_bad" and shift > 0)


def classify(
    name: str,
    blue: Sequence[float],
    green: Sequence[float],
    *,
    direction: Direction = "increase_is_bad",
    tolerance: float = 0.1,
    confidence: float = 0.95,
    min_samples: int = 10,
) -> MetricResult:
    import numpy as np

    if direction not in _ALTERNATIVE:
        raise ValueError(f"direction must be one of {', '.join(_ALTERNATIVE)}, got {direction!r}")
    b, g = _clean(blue), _clean(green)
    base: dict[str, Any] = {
        "name": name,
        "direction": direction,
        "tolerance": float(tolerance),
        "blue_count": len(b),
        "green_count": len(g),
    }
    short = [
        f"{side} has {len(v)} finite sample(s) of {len(raw)}"
        for side, v, raw in (("blue", b, blue), ("green", g, green))
        if len(v) < min_samples
    ]
    if short:
        return MetricResult(classification="NoData", reason="; ".join(short) + f" (needs {min_samples})", **base)

    alpha = 1.0 - confidence
    with np.errstate(over="ignore", invalid="ignore"):  # absurd magnitudes overflow to ±inf: to_dict nulls them
        p = _p_value(b, g, direction)
        shift = hodges_lehmann(b, g)
        reference, baseline = _reference(b)
        relative = shift / reference if reference > 0 else None
        medians = float(np.median(b)), float(np.median(g))
    allowed = max(tolerance * reference, ZERO)
    base |= {
        "p_value": p,
        "shift": shift,
        "relative_effect": relative,
        "baseline": baseline,
        "blue_median": medians[0],
        "green_median": medians[1],
    }

    if relative is not None:
        size, limit = f"by {abs(relative):.1%}", f"{tolerance:.1%} tolerance"
    else:
        size, limit = f"by {_g(abs(shift))} (blue is all zero)", "tolerance (blue is all zero: any shift counts)"
    word = "higher" if shift > 0 else "lower" if shift < 0 else "no different"
    if shift == 0:
        size = "(no shift)"
    if p >= alpha:
        test = (
            "no significant increase"
            if direction == "increase_is_bad"
            else "no significant decrease"
            if direction == "decrease_is_bad"
            else "no significant difference"
        )
        return MetricResult(
            classification="Pass", reason=f"{test} (p={p:.3g} >= {alpha:.3g}); green {word} {size}", **base
        )
    if abs(shift) <= allowed:
        return MetricResult(
            classification="Pass", reason=f"green {word} {size}, within {tolerance:.1%} tolerance (p={p:.3g})", **base
        )
    if _harmless(shift, direction):
        return MetricResult(
            classification="Pass", reason=f"green {word} {size}: harmless for {direction} (p={p:.3g})", **base
        )
    return MetricResult(
        classification="High" if shift > 0 else "Low",
        reason=f"green {word} {size}, beyond {limit} (p={p:.3g} < {alpha:.3g})",
        **base,
    )


# --- every metric ----------------------------------------------------------------------------------


def _as_parity(spec: Any) -> Any:
    from include.slow_injection.spec.models import Parity

    return spec if isinstance(spec, Parity) else Parity.model_validate(dict(spec))


def score(results: Iterable[MetricResult], metrics_spec: Any) -> ParityVerdict:
    """`metrics_spec`: the wave's Parity (or its model_dump()). A metric of the spec without a result
    is NoData; a result for a metric the spec does not name is a programming error (ValueError)."""
    spec = _as_parity(metrics_spec)
    by_name: dict[str, MetricResult] = {}
    for result in results:
        if result.name in by_name:
            raise ValueError(f"two results for metric {result.name!r}")
        by_name[result.name] = result
    unknown = set(by_name) - {m.name for m in spec.metrics}
    if unknown:
        raise ValueError(f"results for metrics the parity spec does not name: {', '.join(sorted(unknown))}")
    ordered = tuple(
        by_name.get(m.name) or MetricResult(m.name, "NoData", "not measured", m.direction, m.tolerance)
        for m in spec.metrics
    )
    weights = {m.name: m.weight for m in spec.metrics}
    critical = {m.name for m in spec.metrics if m.critical}

    total = sum(weights.values())
    no_data = sum(weights[r.name] for r in ordered if r.classification == "NoData")
    measured = total - no_data
    passed = sum(weights[r.name] for r in ordered if r.classification == "Pass")
    no_data_share = no_data / total
    reasons = [f"{r.name}: {r.classification}: {r.reason}" for r in ordered if r.classification != "Pass"]

    forced = []
    if measured <= 0:
        forced.append("every metric has no data")
    elif no_data_share > spec.max_no_data:
        forced.append(f"no data for {no_data_share:.0%} of the metric weight (more than {spec.max_no_data:.0%})")
    forced += [
        f"critical metric {r.name} failed ({r.classification})" for r in ordered if r.name in critical and r.failed
    ]
    if forced:
        return ParityVerdict(
            0.0, "fail", tuple([*forced, *reasons, "score forced to 0: fail"]), ordered, no_data_share, forced_zero=True
        )

    # rounded: weights like 0.1 + 0.2 must not miss a threshold by 1e-14
    value = round(100.0 * passed / measured, 6)
    decision: Decision = "pass" if value >= spec.pass_score else "marginal" if value >= spec.marginal_score else "fail"
    summary = f"score {value:g}: {decision} (pass >= {spec.pass_score:g}, marginal >= {spec.marginal_score:g})"
    return ParityVerdict(value, decision, tuple([*reasons, summary]), ordered, no_data_share)
