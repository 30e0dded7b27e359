"""Durations as written in specs ("500ms", "30s", "5m", "1h30m") and as printed back."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Longer than any wave step; beyond it Airflow's timedeltas overflow and the DAG could not be built.
MAX_SECONDS = 366 * 24 * 3600.0


def parse_duration(value: object) -> float:
    """Return seconds; raise ValueError with a message fit for a spec error."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30s, 5m or 1h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text or _PART.sub("", text) != "":
            raise ValueError("must be a duration like 30s, 5m or 1h")
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError("must be a duration like 30s, 5m or 1h")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("must be a duration ≥ 0 like 30s, 5m or 1h")
    if seconds > MAX_SECONDS:
        raise ValueError(f"must be at most {MAX_SECONDS // 3600:.0f}h (366 days)")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
