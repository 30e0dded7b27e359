"""Side-effecting steps. Each reads the world, then converges it to what the step asks for, so a
retry or a cleared task changes nothing that is already right. Under dry-run each logs the exact
change it would make and changes nothing."""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import kinds, registry
from include.slow_injection.assets import SERVICES_ALIAS, env_of, service_asset
from include.slow_injection.ports import Change, ReadbackMismatch, Weights
from include.slow_injection.run_scope import Scope
from include.slow_injection.tasks.emergency_stop import refuse_if_stopped
from include.slow_injection.tasks.scope import forward_check, refuse_drift, run_scope, verifying


def build_platform(platform: dict[str, Any], **context: Any) -> Any:
    """The platform driver from both environments' references (green's carries the settings)."""
    return registry.build("platform", platform["green"], blue_ref=platform["blue"], **context)


def is_dry_run(context: Any) -> bool:
    value = context["params"].get("dry_run", False)
    if not isinstance(value, bool):
        raise AirflowFailException(f"params.dry_run: must be true or false, got {value!r}")
    return value


class WaveStep(BaseOperator):
    """Common ground of every wave task: which wave, and who hears about it."""

    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        wave_id: str,
        notifications: list[dict[str, Any]] | None = None,
        stage: dict[str, Any] | None = None,
        plan_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wave_id = wave_id
        self.notifications = notifications or []
        self.stage = stage  # {"phase", "service", "weight"}: what the run's scope is asked about
        self.plan_task_id = plan_task_id  # plan_wave, which holds the run's scope (None: no wave run)

    def scope(self, context: Any) -> Scope | None:
        return run_scope(context, self.plan_task_id)

    def verifying(self, context: Any) -> bool:
        return verifying(context, self.plan_task_id)

    def out_of_scope(self, context: Any) -> dict[str, str] | None:
        """A forward step outside the run's scope: skipped (behind us, not chosen) or held."""
        verdict = forward_check(context, self.plan_task_id, self.stage, "action")
        if verdict:
            self.log.info("%s: %s", verdict["status"], verdict["reason"])
        return verdict

    def in_scope(self, context: Any, by_service: dict[str, Any]) -> dict[str, Any]:
        """Rollback acts on the run's services only: a subset run leaves the others where they are."""
        scope = self.scope(context)
        return by_service if scope is None else {s: v for s, v in by_service.items() if s in scope.services}

    def previewing(self, context: Any) -> bool:
        """Forward steps change nothing in a dry-run, nor when a completed wave is only verified."""
        return is_dry_run(context) or self.verifying(context)

    def refuse_drift(self, context: Any, what: str, changes: list[Any]) -> None:
        refuse_drift(context, self.plan_task_id, what, changes)

    def publish(self, context: Any, service: str, green_weight: int | None, job_side: str | None = None) -> None:
        """Where a service runs now, as an event of its Asset (the board and later waves read it)."""
        asset = service_asset(self.wave_id, service)
        extra = {
            "wave": self.wave_id,
            "service": service,
            "env": env_of(green_weight, job_side),
            "weight": green_weight,
            "run_id": context["run_id"],
            "task_id": self.task_id,
            "at": time.time(),
        }
        if any(getattr(o, "uri", None) == asset.uri for o in self.outlets):
            context["outlet_events"][asset].extra = extra
        elif SERVICES_ALIAS in self.outlets:
            context["outlet_events"][SERVICES_ALIAS].add(asset, extra=extra)

    def report_changes(self, changes: list[Change], dry_run: bool) -> list[dict[str, Any]]:
        prefix = "[dry-run] " if dry_run else ""
        for change in changes:
            self.log.info("%s%s", prefix, change)
        if not changes:
            self.log.info("%sno change: already as this step wants it", prefix)
        return [c.to_dict() for c in changes]


class SetTraffic(WaveStep):
    """Move a service's user traffic to `weight` % green, then read it back."""

    ui_color = "#fdf1d6"

    def __init__(self, *, service: str, router: dict[str, Any], weight: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service, self.router, self.weight = service, router, weight

    def execute(self, context: Any) -> dict[str, Any]:
        held = self.out_of_scope(context)
        if held:
            scope = self.scope(context)
            self.publish(context, self.service, scope.green_weights.get(self.service, 0) if scope else None)
            return {"service": self.service, "scope": held, "at": time.time()}
        refuse_if_stopped(self.wave_id, self.service, context)  # an emergency rollback stopped this service
        result = converge_traffic(
            self, self.service, self.router, Weights.green_at(self.weight), self.previewing(context)
        )
        self.refuse_drift(context, f"{self.service}'s traffic", [result["would_set"]] if "would_set" in result else [])
        self.publish(context, self.service, result["green"])
        return result


class AttachGreen(WaveStep):
    """Green joins the service's route at weight 0, so the router health-checks it; no traffic moves."""

    ui_color = "#fdf1d6"

    def __init__(self, *, service: str, router: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service, self.router = service, router

    def execute(self, context: Any) -> dict[str, Any]:
        held = self.out_of_scope(context)
        if held:
            return {"service": self.service, "scope": held}
        dry_run = self.previewing(context)
        router = registry.build("router", self.router, service=self.service)
        changes = router.attach_green(apply=not dry_run)
        self.refuse_drift(context, f"{self.service}'s route", changes)
        return {"dry_run": dry_run, "changes": self.report_changes(changes, dry_run)}


def converge_traffic(
    step: BaseOperator, service: str, router_ref: dict[str, Any], wanted: Weights, dry_run: bool
) -> dict[str, Any]:
    router = registry.build("router", router_ref, service=service)
    foreign = False
    try:
        before = router.get_weights()
    except ReadbackMismatch as err:
        if wanted.green != 0:
            raise  # a traffic step never moves on from a split this project did not set
        # back to blue: the routers allow it whatever split someone else left there (a rollback must not stop)
        step.log.warning("router %s: %s; returning all traffic to blue anyway", router.describe(), err)
        before, foreign = err.found, True
    change = Change(f"router {router.describe()}", str(before or "unreadable"), str(wanted), applied=not dry_run)
    if before == wanted and not foreign:
        step.log.info("router %s: already %s, no change", router.describe(), wanted)
        return {
            "service": service,
            "before": str(before),
            "after": str(before),
            "changed": False,
            "dry_run": dry_run,
            "green": before.green,
            "at": time.time(),
        }
    if dry_run:
        step.log.info("[dry-run] %s", change)
        return {
            "service": service,
            "before": str(before),
            "after": str(before),
            "would_set": str(wanted),
            "changed": False,
            "dry_run": True,
            "green": before.green if before else None,
            "at": time.time(),
        }
    router.set_weights(wanted)
    after = router.get_weights()
    if after != wanted:
        raise RuntimeError(f"router {router.describe()}: set {wanted} but reads back {after}")
    step.log.info("%s", change)
    return {
        "service": service,
        "before": str(before),
        "after": str(after),
        "changed": True,
        "dry_run": False,
        "green": after.green,
        "at": time.time(),
    }


class PlatformStep(WaveStep):
    """One platform action (a kinds/ PlatformAction: deploy green, hand a job over, retire blue) for one
    service's workload."""

    def __init__(
        self, *, action: str, service: str, platform: dict[str, Any], workload: dict[str, Any], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        kinds.platform_action(action)  # an unknown action fails the DAG's parse, not a run
        self.action, self.service, self.platform, self.workload = action, service, platform, workload

    def execute(self, context: Any) -> dict[str, Any]:
        held = self.out_of_scope(context)
        if held:
            return {"service": self.service, "action": self.action, "scope": held}
        kind = kinds.platform_action(self.action)
        if kind.guarded:
            refuse_if_stopped(self.wave_id, self.service, context)  # an emergency rollback stopped this service
        dry_run = self.previewing(context)
        driver = build_platform(self.platform, service=self.service)
        changes = kind.act(driver, self.workload, apply=not dry_run)
        self.refuse_drift(context, f"{self.service}'s {self.workload['kind']}", changes)
        if kind.job_side is not None:  # a dry run that would move the job leaves it where it was
            self.publish(context, self.service, None, "blue" if dry_run and changes else kind.job_side)
        return {
            "service": self.service,
            "action": self.action,
            "dry_run": dry_run,
            "changes": self.report_changes(changes, dry_run),
            "at": time.time(),
        }


class Preflight(WaveStep):
    """Every workload exists in blue and can run on green; lists every problem, then fails."""

    def __init__(self, *, platform: dict[str, Any], workloads: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.platform, self.workloads = platform, workloads

    def execute(self, context: Any) -> dict[str, Any]:
        driver = build_platform(self.platform)
        problems: list[str] = []
        for service, workload in self.workloads.items():
            try:
                problems += [f"{service}: {p}" for p in driver.preflight(workload)]
            except LookupError as err:
                problems.append(f"{service}: {err}")
        if problems:
            raise AirflowFailException("preflight found problems:\n" + "\n".join(f"- {p}" for p in problems))
        self.log.info("preflight: %d workload(s) can move to green", len(self.workloads))
        return {"checked": sorted(self.workloads), "problems": []}
