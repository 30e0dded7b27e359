"""What one run may do: the trigger form's choices, the maintenance window, and where the world
already is (a held wave resumes from its current step; a completed wave is only verified).

Pure: plan_wave reads the world and the form once and pushes a Scope; every forward task asks
`stage_verdict` whether its stage runs, is behind us (skipped) or must wait for a later run (hold).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from include.slow_injection.durations import format_duration, parse_duration

SKIPPABLE_PHASES = ("parallel_operation", "validation", "full_transition", "release_monitoring")
BEFORE_TRAFFIC = ("parallel_operation", "validation")  # validated once; behind us once users moved
MIN_SKIP_REASON = 10


@dataclass(frozen=True)
class Window:
    """A daily maintenance window in a time zone; end ≤ start means it runs past midnight."""

    start: str  # "HH:MM"
    end: str
    timezone: str = "UTC"
    outside: str = "wait"

    def _times(self) -> tuple[dt.time, dt.time]:
        return dt.time.fromisoformat(self.start), dt.time.fromisoformat(self.end)

    def open_interval(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
        """The window occurrence containing `now`, or None when outside."""
        local = now.astimezone(ZoneInfo(self.timezone))
        start, end = self._times()
        for day in (local.date() - dt.timedelta(days=1), local.date()):
            opens = dt.datetime.combine(day, start, tzinfo=local.tzinfo)
            closes = dt.datetime.combine(day if end > start else day + dt.timedelta(days=1), end, tzinfo=local.tzinfo)
            if opens <= local < closes:
                return opens, closes
        return None

    def contains(self, now: dt.datetime) -> bool:
        return self.open_interval(now) is not None

    def next_open(self, now: dt.datetime) -> dt.datetime:
        local = now.astimezone(ZoneInfo(self.timezone))
        start, _ = self._times()
        opens = dt.datetime.combine(local.date(), start, tzinfo=local.tzinfo)
        return opens if opens > local else opens + dt.timedelta(days=1)

    def describe(self) -> str:
        return f"{self.start}–{self.end} {self.timezone}"


@dataclass
class Scope:
    services: list[str]  # the services this run moves (the form's subset, else all)
    all_services: list[str]
    max_weight: int = 100
    skip_phases: list[str] = field(default_factory=list)
    skip_reason: str = ""
    approval_timeout: float | None = None
    ignore_window: bool = False
    window: dict[str, str] | None = None
    green_weights: dict[str, int] = field(default_factory=dict)  # exposed services, read at plan time
    jobs_on_green: list[str] = field(default_factory=list)
    verify: bool = False  # the wave completed earlier: read the world, change nothing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scope:
        return cls(**data)

    @property
    def whole_wave(self) -> bool:
        return set(self.services) == set(self.all_services)

    def window_obj(self) -> Window | None:
        return Window(**self.window) if self.window else None


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_form(
    params: dict[str, Any],
    services: dict[str, dict[str, Any]],
    conf: dict[str, Any] | None = None,
    known: list[str] | None = None,
) -> list[str]:
    """Cross-field rules the form's JSON Schema cannot say; every problem, named by field. A conf key the
    form does not know refuses the run: `{"dryrun": true}` (a typo) must never start a live migration."""
    problems = []
    unknown_keys = sorted(set(conf or {}) - set(known or [])) if known is not None else []
    if unknown_keys:
        problems.append(
            f"conf: unknown key(s) {', '.join(map(repr, unknown_keys))}; this wave's keys are "
            f"{', '.join(sorted(known or []))}"
        )
    chosen = params.get("services") or []
    unknown = [s for s in chosen if s not in services]
    if unknown:
        problems.append(f"services: unknown {', '.join(map(repr, unknown))} (this wave has {', '.join(services)})")
    skip = params.get("skip_phases") or []
    bad = [p for p in skip if p not in SKIPPABLE_PHASES]
    if bad:
        problems.append(
            f"skip_phases: {', '.join(map(repr, bad))} cannot be skipped (only {', '.join(SKIPPABLE_PHASES)})"
        )
    if skip and len((params.get("skip_reason") or "").strip()) < MIN_SKIP_REASON:
        problems.append(
            f"skip_reason: required when skipping {', '.join(skip)} "
            f"(at least {MIN_SKIP_REASON} characters: it goes into the report)"
        )
    weight = params.get("max_weight", 100)
    if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 100:
        problems.append(f"max_weight: must be a whole percent from 1 to 100, got {weight!r}")
    timeout = params.get("approval_timeout")
    if timeout not in (None, ""):
        try:
            if parse_duration(timeout) < 1:
                problems.append(f"approval_timeout: must be at least 1s, got {timeout!r}")
        except ValueError as err:
            problems.append(f"approval_timeout: {err}")
    if not isinstance(params.get("dry_run", False), bool):
        problems.append(f"dry_run: must be true or false, got {params.get('dry_run')!r}")
    return problems


def check_dependencies(scope: Scope, depends_on: dict[str, list[str]]) -> list[str]:
    """A chosen service whose dependency neither moves in this run nor already runs on green."""
    problems = []
    for name in scope.services:
        for dep in depends_on.get(name, []):
            moved = dep in scope.jobs_on_green or scope.green_weights.get(dep) == 100
            if dep not in scope.services and not moved:
                problems.append(
                    f"services: {name!r} depends on {dep!r}, which is neither in this run nor already on green"
                )
    return problems


def stage_verdict(
    scope: Scope, stage: dict[str, Any], role: str, now: dt.datetime, held_actions: list[str] | None = None
) -> dict[str, str] | None:
    """None: the task does its work. Else {"status": "skipped" | "hold", "reason"} for it to report.

    `stage` = {"phase", "service", "weight"}; `role` = "action" (changes the world) or "gate"."""
    phase, service, weight = stage.get("phase"), stage.get("service"), stage.get("weight")
    if service and service not in scope.services:
        return _skip(f"{service} is not in this run's services")
    if role == "gate" and scope.verify:
        return _skip("the wave completed in an earlier run: this run only verifies the world")
    if role == "gate" and phase in scope.skip_phases:
        return _skip(f"phase {phase} skipped by the run's form: {scope.skip_reason}")
    current = scope.green_weights.get(service or "", 0)
    if weight is not None and weight < current:
        return _skip(f"green already at {current} % (an earlier run): this step is behind us")
    if role == "gate" and phase in BEFORE_TRAFFIC and any(w > 0 for w in scope.green_weights.values()):
        return _skip("user traffic already moved in an earlier run: validated then")
    if role == "gate" and phase == "migrate_scheduled_jobs" and service in scope.jobs_on_green:
        return _skip(f"{service} already runs on green (an earlier run's handover)")
    if weight is not None and weight > scope.max_weight:
        return _hold(
            f"this run goes no higher than {scope.max_weight} % (the form's max_weight); "
            "trigger again with a higher max_weight to go on"
        )
    window = scope.window_obj()
    if role == "action" and window and not scope.ignore_window and not window.contains(now):
        return _hold(
            f"outside the maintenance window {window.describe()}: holding at the last validated "
            f"step; the next run resumes from there (window opens {window.next_open(now):%Y-%m-%d %H:%M})"
        )
    if role == "gate" and held_actions:
        return _hold(f"the stage did not start: {held_actions[0]}")
    return None


def _skip(reason: str) -> dict[str, str]:
    return {"status": "skipped", "reason": reason}


def _hold(reason: str) -> dict[str, str]:
    return {"status": "hold", "reason": reason}


def describe(scope: Scope) -> list[str]:
    """The run's scope, said once in plan_wave's log and the report."""
    lines = []
    if not scope.whole_wave:
        lines.append(f"services: {', '.join(scope.services)} (of {', '.join(scope.all_services)})")
    if scope.max_weight < 100:
        lines.append(f"highest traffic step: {scope.max_weight} %")
    if scope.skip_phases:
        lines.append(f"skipping the checks of {', '.join(scope.skip_phases)}: {scope.skip_reason}")
    if scope.approval_timeout is not None:
        lines.append(f"approval timeout: {format_duration(scope.approval_timeout)}")
    moved = {s: w for s, w in scope.green_weights.items() if w > 0}
    if moved or scope.jobs_on_green:
        where = [f"{s} at {w} % green" for s, w in moved.items()] + [f"{j} on green" for j in scope.jobs_on_green]
        lines.append("resuming: " + ", ".join(where))
    if scope.verify:
        lines.append("the wave completed earlier: verifying only, changing nothing")
    if scope.window and scope.ignore_window:
        lines.append("maintenance window ignored (the form's ignore_window)")
    return lines
