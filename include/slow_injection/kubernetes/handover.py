"""Exactly-once CronJob handover, the timing part (pure).

A scheduled time must run in exactly one environment. So the handover happens only at a safe moment
(no Job of blue's still active, and the next scheduled time at least `margin` away), blue is
suspended before green is unsuspended, and green's status.lastScheduleTime is set to the newest time blue
ran (its status, or its Jobs' scheduled-timestamp annotation when the status write lost a race):
a CronJob controller that sees an older (or no) lastScheduleTime starts the latest "missed" time when
the CronJob is unsuspended — a time blue has already run.

The controller creates a tick's Job and names it in status in two writes; a suspend landing between them
loses the second, and a Job deleted as soon as it finishes (ttlSecondsAfterFinished: 0) then leaves no
trace. So the driver never suspends within a few seconds of a tick, and writes the newest time a side's
Jobs show into that side's own status before anything else (a retry may find the Job gone).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter


@dataclass(frozen=True)
class Moment:
    safe: bool
    reason: str
    next_run: dt.datetime


def next_run(schedule: str, after: dt.datetime, timezone: str | None = None) -> dt.datetime:
    local = after.astimezone(ZoneInfo(timezone)) if timezone else after
    return croniter(schedule, local).get_next(dt.datetime).astimezone(dt.UTC)


def safe_moment(cronjob: dict[str, Any], now: dt.datetime, margin: dt.timedelta) -> Moment:
    """Whether a handover may start now, from the live CronJob (blue's side of it)."""
    spec, status = cronjob.get("spec") or {}, cronjob.get("status") or {}
    upcoming = next_run(spec["schedule"], now, spec.get("timeZone"))
    active = status.get("active") or []
    if active:
        return Moment(False, f"{len(active)} Job(s) still active in blue", upcoming)
    if upcoming - now < margin:
        return Moment(
            False, f"next run at {upcoming:%H:%M:%S} is less than {margin.total_seconds():.0f}s away", upcoming
        )
    return Moment(True, f"no active Job; next run at {upcoming:%H:%M:%S}", upcoming)
