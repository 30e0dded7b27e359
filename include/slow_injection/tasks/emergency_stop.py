"""The emergency stop flag that wave runs obey (tasks/emergency.py's StopWave records it).

An emergency rollback first records, for each named service, an Airflow Variable
`slow_injection_emergency_stop__<wave>__<service>` holding
`{"at", "wave", "service", "reason", "run_id", "by"}`; `at` (ISO 8601, UTC) is when the emergency
run started, by the scheduler's clock, which also dates the wave runs it is compared with.

`SetTraffic` calls `refuse_if_stopped` before it moves a service's traffic (so do a job's handover to
green and blue's retirement, before they act): a wave run that **started before** the stop fails that step (AirflowFailException, no retry), so a run that is mid-step cannot
push the service back onto green. The failed step reaches its stage's decision, which takes the run
into its own rollback (blue too) — or holds it where it is when automatic rollback is off. A run that
started after the stop proceeds: starting a new run of the wave (or clearing a finished one, which
gives it a new start) is how an operator resumes. The flag is never deleted; an old flag only
concerns runs older than it. There is one Variable per service, so two emergencies of one wave never
overwrite each other's services.

A step that read "no stop" just before the flag was written may still set its weight after it; the
emergency's traffic step therefore converges a second time `guard` seconds later (and the wave run's
next traffic step is refused anyway). A flag that cannot be read (edited by hand, not JSON, no time
zone) fails the step: traffic does not move past what might be a stop.

What the flag does not do: end the wave run at once — a run baking at a gate goes on until its next
guarded step (or a gate that fails on green's missing traffic) takes it into its rollback.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowFailException

STOP_PREFIX = "slow_injection_emergency_stop"


def stop_key(wave_id: str, service: str) -> str:
    return f"{STOP_PREFIX}__{wave_id}__{service}"


def read_stop(wave_id: str, service: str) -> dict[str, Any] | None:
    """The service's emergency stop (`at` as an aware datetime), or None. A flag that cannot be read
    is an error: traffic does not move past what might be a stop (fail closed)."""
    key = stop_key(wave_id, service)
    # Read raw and parse here: the Task SDK treats a value that is not JSON as "not found" (it logs the
    # error and falls through), which would let traffic move past a flag someone edited by hand.
    raw = Variable.get(key, default=None)
    if raw is None:
        return None
    try:
        stop = json.loads(raw)
    except ValueError as err:
        raise AirflowFailException(
            f"Variable {key}: not a readable emergency stop ({err}); fix or delete it before traffic may move"
        ) from err
    try:
        at = dt.datetime.fromisoformat(stop["at"])
        if at.tzinfo is None:
            raise ValueError("no time zone")
    except (TypeError, KeyError, ValueError) as err:
        raise AirflowFailException(
            f"Variable {key}: an emergency stop needs `at`, an ISO 8601 time with its "
            f"time zone ({err}), got {raw!r}; fix or delete it before traffic may move"
        ) from err
    return {**stop, "at": at}


def run_started(context: Any) -> dt.datetime:
    """When the task's run started (a cleared finished run starts again, with a new start)."""
    run = context["dag_run"]
    return run.start_date or run.run_after


def refuse_if_stopped(wave_id: str, service: str, context: Any) -> None:
    """Fails the step when an emergency rollback of this service was recorded after this run started."""
    stop = read_stop(wave_id, service)
    if stop is None:
        return
    at, started = stop["at"], run_started(context)
    if started < at:
        raise AirflowFailException(
            f"wave {wave_id}: EMERGENCY ROLLBACK of {service} at {at.isoformat()} (run {stop.get('run_id')}, "
            f"reason: {stop.get('reason')!r}). This run started at {started.isoformat()}, before it, so it "
            f"may not move {service}'s traffic again. To resume the migration, start a new run of "
            f"wave_{wave_id}."
        )
    context["task"].log.info(
        "emergency stop of %s at %s predates this run (started %s): traffic may move",
        service,
        at.isoformat(),
        started.isoformat(),
    )
