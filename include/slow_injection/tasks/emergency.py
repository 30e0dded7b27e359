"""Emergency rollback: the stop flag that wave runs obey, and the tasks of the `emergency_rollback` DAG.

The stop flag
-------------
An emergency rollback first records, for each named service, an Airflow Variable
`slow_injection_emergency_stop__<wave>__<service>` holding
`{"at", "wave", "service", "reason", "run_id", "by"}`; `at` (ISO 8601, UTC) is when the emergency
run started, by the scheduler's clock, which also dates the wave runs it is compared with.

`SetTraffic` calls `refuse_if_stopped` before it moves a service's traffic: a wave run that **started
before** the stop fails that step (AirflowFailException, no retry), so a run that is mid-step cannot
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

What the flag does not stop: steps that move no traffic (a job handover to green, retiring blue
after release) are not guarded by it, so a wave run past its last traffic step keeps its own course;
nor does it end the wave run at once — a run baking at a gate goes on until its next traffic step
(or a gate that fails on green's missing traffic) takes it into its rollback.

The tasks
---------
`StopWave` checks the request against the wave's spec (loaded by id at run time; an unknown service
fails the run before anything changes), records the flags, announces `rollback_started` to the
wave's notifiers with the reason, and returns the plan (the chosen services' refs). The next three
subclass the wave rollback's own steps and take their refs from that plan: blue's capacity back,
traffic to blue (announces `rollback_finished`), scheduled jobs back on blue (once green's running
Job ended).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from airflow.sdk import BaseOperator, Variable
from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection.tasks.flow import HandJobsBack, RollbackTraffic, RollbackWorkloads
from include.slow_injection.tasks.notify import notify

STOP_PREFIX = "slow_injection_emergency_stop"
PLAN_TASK = "stop_wave"


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
        raise AirflowFailException(f"Variable {key}: not a readable emergency stop ({err}); "
                                   "fix or delete it before traffic may move") from err
    try:
        at = dt.datetime.fromisoformat(stop["at"])
        if at.tzinfo is None:
            raise ValueError("no time zone")
    except (TypeError, KeyError, ValueError) as err:
        raise AirflowFailException(f"Variable {key}: an emergency stop needs `at`, an ISO 8601 time with its "
                                   f"time zone ({err}), got {raw!r}; fix or delete it before traffic may move") from err
    return {**stop, "at": at}


def run_started(context: Any) -> dt.datetime:
    """When the task's run started (a cleared finished run starts again, with a new start)."""
    run = context["dag_run"]
    return run.start_date or run.run_after


def refuse_if_stopped(wave_id: str, service: str, context: Any) -> None:
    """Called by SetTraffic before it moves traffic: fails the step when an emergency rollback of
    this service was recorded after this run started."""
    stop = read_stop(wave_id, service)
    if stop is None:
        return
    at, started = stop["at"], run_started(context)
    if started < at:
        raise AirflowFailException(
            f"wave {wave_id}: EMERGENCY ROLLBACK of {service} at {at.isoformat()} (run {stop.get('run_id')}, "
            f"reason: {stop.get('reason')!r}). This run started at {started.isoformat()}, before it, so it "
            f"may not move {service}'s traffic again. To resume the migration, start a new run of "
            f"wave_{wave_id}.")
    context["task"].log.info("emergency stop of %s at %s predates this run (started %s): traffic may move",
                             service, at.isoformat(), started.isoformat())


# --- the emergency_rollback DAG's tasks -------------------------------------------------------

def _param_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AirflowFailException(f"params.{name}: must be a list of names, got {value!r}")
    return value


class StopWave(BaseOperator):
    """Checks the request, records the stop flag of each chosen service, announces the rollback, and
    hands the rollback plan (the chosen services' refs) to the next tasks as its return value."""

    ui_color = "#f8c9c4"

    def execute(self, context: Any) -> dict[str, Any]:
        from include.slow_injection.builders.emergency import find_wave, rollback_plan

        params = context["params"]
        reason = str(params.get("reason") or "").strip()
        if not reason:
            raise AirflowFailException("params.reason: say why (it is recorded with the stop and announced)")
        wave = find_wave(params.get("wave"))  # fails, naming the spec's problems, when there is no such wave
        plan = rollback_plan(wave, _param_list(params.get("services"), "services"))
        run = context["dag_run"]
        # The stop's time is this run's start: the scheduler's clock, which also set the start of
        # the wave runs it is compared with.
        at = (run.start_date or dt.datetime.now(dt.timezone.utc)).isoformat()
        for service in plan["services"]:
            Variable.set(stop_key(wave.id, service),
                         {"at": at, "wave": wave.id, "service": service, "reason": reason,
                          "run_id": run.run_id, "by": run.triggering_user_name},
                         description=f"emergency stop: wave runs of {wave.id} started before {at} may not move "
                                     f"{service}'s traffic", serialize_json=True)
        from include.slow_injection.tasks import wave_state

        wave_state.clear(wave.id)  # no longer completed: its next run migrates (or verifies) afresh
        self.log.warning("wave %s: EMERGENCY STOP recorded at %s for %s (reason: %s)", wave.id, at,
                         ", ".join(plan["services"]), reason)
        notify(plan["notifications"], "rollback_started",
               f"wave {wave.id}: EMERGENCY rollback of {', '.join(plan['services'])}",
               f"Reason: {reason}\nRequested by: {run.triggering_user_name or 'unknown'} ({run.run_id})\n"
               f"Wave runs started before {at} may no longer move these services' traffic.\n"
               "Next: blue's capacity, then traffic to blue, then scheduled jobs back on blue.")
        return {**plan, "at": at, "reason": reason}


class _FromPlan:
    """Takes the wave, its notifiers and this step's refs from StopWave's plan at run time."""

    wave_id: str
    notifications: list[dict[str, Any]]

    def plan(self, context: Any) -> dict[str, Any]:
        plan = context["ti"].xcom_pull(task_ids=PLAN_TASK)
        if not plan:
            raise AirflowFailException(f"no rollback plan from {PLAN_TASK}")
        self.wave_id = plan["wave_id"]
        return plan


class EmergencyRestore(_FromPlan, RollbackWorkloads):
    """Blue's capacity back for the chosen services (quick when blue was not retired yet), and the
    chosen jobs stop starting runs on green. Announced by stop_wave, so quiet here."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(platform={}, workloads={}, wave_id="(chosen at run time)", **kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self.plan(context)
        self.platform, self.workloads, self.notifications = plan["platform"], plan["workloads"], []
        return super().execute(context)


class EmergencyTraffic(_FromPlan, RollbackTraffic):
    """The chosen exposed services at 100 % blue, read back; then, after `guard` seconds, once more:
    a wave step that passed its stop check just before the stop was recorded cannot leave green
    traffic behind."""

    def __init__(self, *, guard: float = 3.0, **kwargs: Any) -> None:
        super().__init__(routers={}, wave_id="(chosen at run time)", **kwargs)
        self.guard = guard

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self.plan(context)
        self.routers, self.notifications = plan["routers"], []  # announced below, naming the services
        result, late = {"dry_run": False, "services": {}}, []
        if self.routers:
            result = super().execute(context)
            time.sleep(self.guard)
            again = super().execute(context)
            late = [s for s, r in again["services"].items() if r["changed"]]
            for service in late:
                self.log.warning("%s: green traffic came back after the rollback (%s); set to blue again",
                                 service, again["services"][service]["before"])
        else:
            self.log.info("wave %s: no exposed service chosen, no traffic to move", self.wave_id)
        moved = "\n".join(f"{s}: {r['before']} → blue 100, green 0" for s, r in result["services"].items())
        notify(plan["notifications"], "rollback_finished",
               f"wave {self.wave_id}: traffic of {', '.join(sorted(self.routers)) or 'no exposed service'} "
               "back on blue (emergency)",
               moved + ("\nscheduled jobs go back to blue next, once green's running Job ended"
                        if plan["jobs"] else ""))
        return {**result, "moved_again": late}


class EmergencyJobs(_FromPlan, HandJobsBack):
    """The chosen scheduled jobs run on blue again, once green's running Job (if any) ended."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(platform={}, workloads={}, wait_timeout=0.0, wave_id="(chosen at run time)", **kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self.plan(context)
        self.platform, self.workloads, self.wait_timeout = plan["platform"], plan["jobs"], plan["wait_timeout"]
        if not self.workloads:
            self.log.info("wave %s: no scheduled job chosen", self.wave_id)
            return {"dry_run": False, "changes": []}
        return super().execute(context)
