"""A simulated CronJob controller with a controllable clock, for the API test server's store.

It behaves like Kubernetes' controller where it matters for a handover: an unsuspended CronJob
starts the most recent scheduled time it missed since status.lastScheduleTime (or its creation),
if that time is within startingDeadlineSeconds; it records every start in `runs`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from croniter import croniter


def parse(ts: str) -> dt.datetime:
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def fmt(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class CronController:
    def __init__(self, store: Any, start: dt.datetime) -> None:
        self.store, self.now = store, start
        store.clock = lambda: self.now  # objects are created at the simulated time
        self.runs: list[tuple[str, str, dt.datetime]] = []  # (namespace, name, scheduled time)

    def tick(self, seconds: float = 1.0) -> None:
        self.now += dt.timedelta(seconds=seconds)
        for obj in self.store.list("cronjobs", None):
            spec, status, meta = obj["spec"], obj.get("status") or {}, obj["metadata"]
            if spec.get("suspend"):
                continue
            since = parse(status.get("lastScheduleTime") or meta["creationTimestamp"])
            missed = None
            it = croniter(spec["schedule"], since)
            while (t := it.get_next(dt.datetime)) <= self.now:
                missed = t
            if missed is None:
                continue
            deadline = spec.get("startingDeadlineSeconds")
            if deadline is not None and (self.now - missed).total_seconds() > deadline:
                obj.setdefault("status", {})["lastScheduleTime"] = fmt(missed)  # skipped, as the controller does
            else:
                self.runs.append((meta["namespace"], meta["name"], missed))
                obj.setdefault("status", {})["lastScheduleTime"] = fmt(missed)
            self.store.put("cronjobs", obj)
