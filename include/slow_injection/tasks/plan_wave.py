"""The first task of every run: checks the trigger form, keeps to the maintenance window, reads
where the world already is, and decides the run's scope (or refuses the run before it changes
anything)."""

from __future__ import annotations

import time
from typing import Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import registry
from include.slow_injection import run_scope as scopes
from include.slow_injection.durations import parse_duration
from include.slow_injection.run_scope import Scope, Window, check_dependencies, check_form, describe
from include.slow_injection.tasks.notify import notify

WORLD_READ_TRIES = 3


class PlanWave(BaseBranchOperator):
    """Branches into the wave, or into RunRefused (task `refused_task_id`, which fails the run with every
    problem): nothing downstream runs on a refused form, so a bad form is never half-applied."""

    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        wave_id: str,
        plan_text: str,
        refused_task_id: str,
        services: dict[str, dict[str, Any]],
        platform: dict[str, Any],
        window: dict[str, str] | None = None,
        approval_timeout: float | None = None,
        notifications: list[dict[str, Any]] | None = None,
        world_retry_delay: float = 5.0,
        param_names: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.param_names, self.refused_task_id = param_names, refused_task_id
        self.wave_id, self.plan_text, self.services, self.platform = wave_id, plan_text, services, platform
        self.window, self.approval_timeout = window, approval_timeout
        self.notifications = notifications or []
        self.world_retry_delay = world_retry_delay

    def execute(self, context: Any) -> Any:
        params = context["params"]
        conf = getattr(context.get("dag_run"), "conf", None) or {}
        problems = check_form(params, self.services, conf, self.param_names)
        if problems:
            return self._refuse(context, problems)
        window = Window(**self.window) if self.window else None
        now = scopes.now_utc()
        if window and not params.get("ignore_window") and not window.contains(now):
            if window.outside == "skip":
                reason = f"outside the maintenance window {window.describe()}: this run skips (the spec's choice)"
                self.log.info("%s", reason)
                context["ti"].xcom_push(key="plan_outcome", value={"state": "skipped", "reason": reason})
                return self.do_branch(context, None)
            opens = window.next_open(now)
            self.log.info("outside the maintenance window %s: waiting (deferred) until %s", window.describe(), opens)
            import datetime as dt

            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            moment = dt.datetime.now(dt.UTC) + (opens - now)  # the wall clock's moment, however `now` was read
            self.defer(trigger=DateTimeTrigger(moment=moment), method_name="resume_in_window")
        return self._plan(context)

    def resume_in_window(self, context: Any, event: Any = None) -> Any:
        self.log.info("the maintenance window %s is open", Window(**self.window).describe() if self.window else "")
        return self._plan(context)

    def _plan(self, context: Any) -> Any:
        from include.slow_injection.tasks import wave_state

        params = context["params"]
        try:
            green_weights, jobs_on_green = self._read_world()
        except Exception as err:
            return self._refuse(context, [f"could not read where the services run now: {err}"])
        chosen = list(params.get("services") or []) or list(self.services)
        timeout = params.get("approval_timeout")
        scope = Scope(
            services=[s for s in self.services if s in chosen],
            all_services=list(self.services),
            max_weight=int(params.get("max_weight", 100)),
            skip_phases=list(params.get("skip_phases") or []),
            skip_reason=(params.get("skip_reason") or "").strip(),
            approval_timeout=parse_duration(timeout) if timeout else self.approval_timeout,
            ignore_window=bool(params.get("ignore_window")),
            window=self.window,
            green_weights=green_weights,
            jobs_on_green=jobs_on_green,
            verify=wave_state.completed(self.wave_id) is not None,
        )
        problems = check_dependencies(scope, {n: s.get("depends_on", []) for n, s in self.services.items()})
        if not problems and not params.get("dry_run") and not scope.verify:
            problems = self._lease(context, scope.services)
        if problems:
            return self._refuse(context, problems)
        ti = context["ti"]
        ti.xcom_push(key="scope", value=scope.to_dict())
        ti.xcom_push(key="plan_outcome", value={"state": "planned", "scope": describe(scope)})
        dry_run = bool(params.get("dry_run"))
        said = "\n".join(f"- {line}" for line in describe(scope))
        self.log.info(
            "wave %s%s, plan:\n%s%s",
            self.wave_id,
            " (dry-run)" if dry_run else "",
            self.plan_text,
            f"\nthis run:\n{said}" if said else "",
        )
        notify(
            self.notifications,
            "wave_started",
            f"wave {self.wave_id} started{' (dry-run)' if dry_run else ''}",
            self.plan_text + (f"\n\nthis run:\n{said}" if said else ""),
        )
        return self.do_branch(context, sorted(self.downstream_task_ids - {self.refused_task_id}))

    def _lease(self, context: Any, services: list[str]) -> list[str]:
        """This run's leases on its services' workloads, taken where they live (tasks/leases.py)."""
        from include.slow_injection.ports import LeaseHolder
        from include.slow_injection.tasks.leases import acquire_leases
        from include.slow_injection.tasks.operators import build_platform

        holder = LeaseHolder(wave=self.wave_id, run_id=context["run_id"], acquired_at=time.time(), dag_id=self.dag_id)
        try:
            return acquire_leases(
                build_platform(self.platform),
                holder,
                {n: self.services[n]["workload"] for n in services},
                is_live=_run_is_live(context["ti"]),
            )
        except Exception as err:
            self.log.exception("could not lease the services' workloads")
            return [f"services: could not lease the workloads (two runs must never act on one at once): {err}"]

    def _read_world(self) -> tuple[dict[str, int], list[str]]:
        """Green's weight per exposed service and which scheduled jobs already run on green."""
        from include.slow_injection.tasks.operators import build_platform

        for attempt in range(1, WORLD_READ_TRIES + 1):
            try:
                weights: dict[str, int] = {}
                jobs: list[str] = []
                platform = None
                for name, svc in self.services.items():
                    if svc.get("router"):
                        weights[name] = registry.build("router", svc["router"], service=name).get_weights().green
                    elif svc["exposure"] == "scheduled":
                        platform = platform or build_platform(self.platform)
                        try:
                            if not platform.activate(svc["workload"], "green", apply=False):
                                jobs.append(name)
                        except LookupError:
                            pass  # no green copy yet
                return weights, jobs
            except Exception as err:
                if attempt == WORLD_READ_TRIES:
                    raise
                self.log.warning("reading the world failed (%s); trying again in %ss", err, self.world_retry_delay)
                time.sleep(self.world_retry_delay)
        raise AssertionError("unreachable")

    def _refuse(self, context: Any, problems: list[str]) -> Any:
        for p in problems:
            self.log.error("run refused: %s", p)
        context["ti"].xcom_push(key="plan_outcome", value={"state": "refused", "problems": problems})
        return self.do_branch(context, self.refused_task_id)


def _run_is_live(ti: Any) -> Any:
    """Whether another DAG run may still act, read through the Task SDK (the API server's view)."""
    from include.slow_injection.tasks.leases import LIVE_RUN_STATES

    return lambda dag_id, run_id: ti.get_dr_count(dag_id=dag_id, run_ids=[run_id], states=list(LIVE_RUN_STATES)) > 0


class RunRefused(BaseOperator):
    """Fails the run with every problem plan_wave found; nothing else ran."""

    ui_color = "#fde2e1"

    def execute(self, context: Any) -> None:
        outcome = context["ti"].xcom_pull(task_ids=self.upstream_task_ids.copy().pop(), key="plan_outcome") or {}
        problems = outcome.get("problems") or ["plan_wave refused the run"]
        raise AirflowFailException(
            "the run was refused before it changed anything:\n" + "\n".join(f"- {p}" for p in problems)
        )
