"""The tasks of the `emergency_rollback` DAG (builders/emergency_dag.py); the stop flag they record is
tasks/emergency_stop.py's.

`StopWave` checks the request against the wave's spec (loaded by id at run time; an unknown service
fails the run before anything changes), records the flags, announces `rollback_started` to the
wave's notifiers with the reason, and returns the plan (the chosen services' refs). The next four
subclass the wave rollback's own steps and take their refs from that plan: blue's capacity back, the
data migrations' writes back on blue (when every service goes back), traffic to blue (announces
`rollback_finished`), scheduled jobs back on blue (once green's running Job ended).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Variable
from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import refs
from include.slow_injection.spec.models import Wave
from include.slow_injection.tasks.data_migration import DataBackToBlue
from include.slow_injection.tasks.emergency_stop import stop_key
from include.slow_injection.tasks.notify import notify
from include.slow_injection.tasks.rollback_steps import HandJobsBack, RollbackTraffic, RollbackWorkloads


def find_wave(wave_id: Any) -> Wave:
    """The wave's spec as it is now; fails naming the spec's problems when it does not load."""
    from include.slow_injection.spec import load_waves, waves_dir

    result = load_waves()
    for wave in result.waves:
        if wave.id == wave_id:
            return wave
    problems = [e.render() for e in result.errors if Path(e.file).stem == wave_id]
    if problems:
        raise AirflowFailException(
            f"params.wave: the spec of {wave_id!r} does not load, so its refs are unknown:\n"
            + "\n".join(problems)
            + "\nFix the spec, or set its routers to 100 % blue by hand."
        )
    raise AirflowFailException(
        f"params.wave: no wave {wave_id!r} in {waves_dir()} "
        f"(known: {', '.join(sorted(w.id for w in result.waves)) or 'none'})"
    )


def rollback_plan(wave: Wave, names: list[str]) -> dict[str, Any]:
    """The refs the rollback steps act on, for the named services (none named: all of them)."""
    known = [s.name for s in wave.services]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise AirflowFailException(
            f"params.services: wave {wave.id} has no service {', '.join(repr(n) for n in unknown)} "
            f"(its services: {', '.join(known)}; leave the list empty for all). Nothing was changed."
        )
    chosen = [s for s in wave.services if not names or s.name in names]
    return {
        "wave_id": wave.id,
        "services": [s.name for s in chosen],
        "platform": refs.platform_ref(wave),
        "workloads": refs.workloads(chosen),
        "routers": refs.routers(chosen),
        "jobs": refs.scheduled_jobs(chosen),
        "wait_timeout": refs.job_wait_timeout(chosen),
        "notifications": refs.notifications(wave),
        # A database serves the whole wave: its writes go back only with every service (a service left on
        # green would find its database read-only).
        "migrations": refs.data_migrations(wave) if len(chosen) == len(wave.services) else [],
    }


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
        params = context["params"]
        reason = str(params.get("reason") or "").strip()
        if not reason:
            raise AirflowFailException("params.reason: say why (it is recorded with the stop and announced)")
        wave = find_wave(params.get("wave"))  # fails, naming the spec's problems, when there is no such wave
        plan = rollback_plan(wave, _param_list(params.get("services"), "services"))
        run = context["dag_run"]
        # The stop's time is this run's start: the scheduler's clock, which also set the start of
        # the wave runs it is compared with.
        at = (run.start_date or dt.datetime.now(dt.UTC)).isoformat()
        for service in plan["services"]:
            Variable.set(
                stop_key(wave.id, service),
                {
                    "at": at,
                    "wave": wave.id,
                    "service": service,
                    "reason": reason,
                    "run_id": run.run_id,
                    "by": run.triggering_user_name,
                },
                description=f"emergency stop: wave runs of {wave.id} started before {at} may not move "
                f"{service}'s traffic",
                serialize_json=True,
            )
        from include.slow_injection.tasks import wave_state

        wave_state.clear(wave.id)  # no longer completed: its next run migrates (or verifies) afresh
        self.log.warning(
            "wave %s: EMERGENCY STOP recorded at %s for %s (reason: %s)",
            wave.id,
            at,
            ", ".join(plan["services"]),
            reason,
        )
        notify(
            plan["notifications"],
            "rollback_started",
            f"wave {wave.id}: EMERGENCY rollback of {', '.join(plan['services'])}",
            f"Reason: {reason}\nRequested by: {run.triggering_user_name or 'unknown'} ({run.run_id})\n"
            f"Wave runs started before {at} may no longer move these services' traffic.\n"
            "Next: blue's capacity, then traffic to blue, then scheduled jobs back on blue.",
        )
        return {**plan, "at": at, "reason": reason}


class _FromPlan:
    """Takes the wave, its notifiers and this step's refs from StopWave's plan (task `plan_task_id`)
    at run time."""

    wave_id: str
    notifications: list[dict[str, Any]]
    plan_task_id: str | None  # WaveStep's attribute; each step here is given one

    def plan(self, context: Any) -> dict[str, Any]:
        plan = context["ti"].xcom_pull(task_ids=self.plan_task_id)
        if not plan:
            raise AirflowFailException(f"no rollback plan from {self.plan_task_id}")
        self.wave_id = plan["wave_id"]
        return plan


class EmergencyRestore(_FromPlan, RollbackWorkloads):
    """Blue's capacity back for the chosen services (quick when blue was not retired yet), and the
    chosen jobs stop starting runs on green. Announced by stop_wave, so quiet here."""

    def __init__(self, *, plan_task_id: str, **kwargs: Any) -> None:
        super().__init__(platform={}, workloads={}, wave_id="(chosen at run time)", **kwargs)
        self.plan_task_id = plan_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self.plan(context)
        self.platform, self.workloads, self.notifications = plan["platform"], plan["workloads"], []
        return super().execute(context)


class EmergencyData(_FromPlan, DataBackToBlue):
    """The wave's data migrations back on blue (the reverse replication drained first) before traffic
    returns, when every service of the wave goes back; else nothing (the database stays on green)."""

    def __init__(self, *, plan_task_id: str, **kwargs: Any) -> None:
        super().__init__(migrations=[], wave_id="(chosen at run time)", **kwargs)
        self.plan_task_id = plan_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self.plan(context)
        self.migrations, self.notifications = plan.get("migrations") or [], []
        if not self.migrations:
            self.log.info("wave %s: no data migration goes back (none, or not every service chosen)", self.wave_id)
            return {"dry_run": False, "migrations": {}}
        return super().execute(context)


class EmergencyTraffic(_FromPlan, RollbackTraffic):
    """The chosen exposed services at 100 % blue, read back; then, after `guard` seconds, once more:
    a wave step that passed its stop check just before the stop was recorded cannot leave green
    traffic behind."""

    def __init__(self, *, plan_task_id: str, guard: float = 3.0, **kwargs: Any) -> None:
        super().__init__(routers={}, wave_id="(chosen at run time)", **kwargs)
        self.plan_task_id, self.guard = plan_task_id, guard

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self.plan(context)
        self.routers, self.notifications = plan["routers"], []  # announced below, naming the services
        result: dict[str, Any] = {"dry_run": False, "services": {}}
        late: list[str] = []
        if self.routers:
            result = super().execute(context)
            time.sleep(self.guard)
            again = super().execute(context)
            late = [s for s, r in again["services"].items() if r["changed"]]
            for service in late:
                self.log.warning(
                    "%s: green traffic came back after the rollback (%s); set to blue again",
                    service,
                    again["services"][service]["before"],
                )
        else:
            self.log.info("wave %s: no exposed service chosen, no traffic to move", self.wave_id)
        moved = "\n".join(f"{s}: {r['before']} → blue 100, green 0" for s, r in result["services"].items())
        notify(
            plan["notifications"],
            "rollback_finished",
            f"wave {self.wave_id}: traffic of {', '.join(sorted(self.routers)) or 'no exposed service'} "
            "back on blue (emergency)",
            moved + ("\nscheduled jobs go back to blue next, once green's running Job ended" if plan["jobs"] else ""),
        )
        return {**result, "moved_again": late}


class EmergencyJobs(_FromPlan, HandJobsBack):
    """The chosen scheduled jobs run on blue again, once green's running Job (if any) ended."""

    def __init__(self, *, plan_task_id: str, **kwargs: Any) -> None:
        super().__init__(platform={}, workloads={}, wait_timeout=0.0, wave_id="(chosen at run time)", **kwargs)
        self.plan_task_id = plan_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self.plan(context)
        self.platform, self.workloads, self.wait_timeout = plan["platform"], plan["jobs"], plan["wait_timeout"]
        if not self.workloads:
            self.log.info("wave %s: no scheduled job chosen", self.wave_id)
            return {"dry_run": False, "changes": []}
        return super().execute(context)
