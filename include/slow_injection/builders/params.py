"""The trigger form: typed Params with titles and descriptions, defaults from the spec. The JSON
Schema refuses bad values at trigger time (UI and REST API); plan_wave checks what spans fields."""

from __future__ import annotations

from airflow.sdk import Param

from include.slow_injection.durations import format_duration
from include.slow_injection.run_scope import MIN_SKIP_REASON, SKIPPABLE_PHASES
from include.slow_injection.spec.models import Wave

DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h))+$"


def run_params(wave: Wave) -> dict[str, Param]:
    names = [s.name for s in wave.services]
    weights = sorted({step.weight for s in wave.services if s.exposure == "exposed" for step in wave.steps_for(s)})
    params = {
        "dry_run": Param(
            wave.dry_run,
            type="boolean",
            title="Dry run",
            description="Log every change the wave would make (router weights, workloads) and change nothing.",
        ),
        "services": Param(
            [],
            type="array",
            title="Services",
            items={"type": "string", "enum": names},
            uniqueItems=True,
            examples=names,
            description="Move only these services in this run (empty: every service of the wave). "
            "A chosen service's dependencies must move too, or already run on green.",
        ),
        "max_weight": Param(
            100,
            type="integer",
            title="Highest traffic step",
            enum=sorted({*weights, 100}),
            description="Stop (hold) before any traffic step above this % of users on green; the next run "
            "resumes from there.",
        ),
        "skip_phases": Param(
            [],
            type="array",
            title="Skip the checks of these phases",
            items={"type": "string", "enum": list(SKIPPABLE_PHASES)},
            uniqueItems=True,
            examples=list(SKIPPABLE_PHASES),
            description="Their gates do not run in this run (their actions still do). Requires a reason.",
        ),
        "skip_reason": Param(  # null, not "": the UI form treats an empty non-null field as missing
            None,
            type=["null", "string"],
            title="Why skip",
            maxLength=500,
            description=f"Mandatory with skipped phases (at least {MIN_SKIP_REASON} characters); "
            "it goes into the notifications and the report.",
        ),
    }
    if wave.validation.approval is not None:
        params["approval_timeout"] = Param(
            format_duration(wave.validation.approval.timeout),
            type="string",
            title="Approval timeout",
            pattern=DURATION_PATTERN,
            description="How long user acceptance waits for a human (e.g. 30m, 4h); then the spec's "
            f"default ({wave.validation.approval.on_timeout}) applies.",
        )
    if wave.schedule and wave.schedule.window:
        w = wave.schedule.window
        params["ignore_window"] = Param(
            False,
            type="boolean",
            title="Ignore the maintenance window",
            description=f"Run now even outside {w.start}–{w.end} {wave.schedule.timezone} "
            "(otherwise the run waits or skips, and holds at the window's end).",
        )
    return params
