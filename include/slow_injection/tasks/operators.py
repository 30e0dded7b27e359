"""Side-effecting steps. Each reads the world, then converges it to what the step asks for, so a
retry or a cleared task changes nothing that is already right. Under dry-run each logs the exact
change it would make and changes nothing."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import registry
from include.slow_injection.ports import Change, Weights
from include.slow_injection.tasks.notify import notify


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

    def __init__(self, *, wave_id: str, notifications: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wave_id = wave_id
        self.notifications = notifications or []

    def report_changes(self, changes: list[Change], dry_run: bool) -> list[dict[str, Any]]:
        prefix = "[dry-run] " if dry_run else ""
        for change in changes:
            self.log.info("%s%s", prefix, change)
        if not changes:
            self.log.info("%sno change: already as this step wants it", prefix)
        return [c.to_dict() for c in changes]


class PlanWave(WaveStep):
    """Setup of every run: checks the run's switches, logs the plan, announces the wave."""

    def __init__(self, *, plan_text: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_text = plan_text

    def execute(self, context: Any) -> dict[str, Any]:
        dry_run = is_dry_run(context)
        self.log.info("wave %s%s, plan:\n%s", self.wave_id, " (dry-run)" if dry_run else "", self.plan_text)
        notify(self.notifications, "wave_started", f"wave {self.wave_id} started{' (dry-run)' if dry_run else ''}",
               self.plan_text)
        return {"dry_run": dry_run, "run_id": context["run_id"]}


class SetTraffic(WaveStep):
    """Move a service's user traffic to `weight` % green, then read it back."""

    ui_color = "#fdf1d6"

    def __init__(self, *, service: str, router: dict[str, Any], weight: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service, self.router, self.weight = service, router, weight

    def execute(self, context: Any) -> dict[str, Any]:
        dry_run = is_dry_run(context)
        return converge_traffic(self, self.service, self.router, Weights.green_at(self.weight), dry_run)


class AttachGreen(WaveStep):
    """Green joins the service's route at weight 0, so the router health-checks it; no traffic moves."""

    ui_color = "#fdf1d6"

    def __init__(self, *, service: str, router: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service, self.router = service, router

    def execute(self, context: Any) -> dict[str, Any]:
        dry_run = is_dry_run(context)
        router = registry.build("router", self.router, service=self.service)
        return {"dry_run": dry_run, "changes": self.report_changes(router.attach_green(apply=not dry_run), dry_run)}


def converge_traffic(step: BaseOperator, service: str, router_ref: dict[str, Any], wanted: Weights,
                     dry_run: bool) -> dict[str, Any]:
    router = registry.build("router", router_ref, service=service)
    before = router.get_weights()
    change = Change(f"router {router.describe()}", str(before), str(wanted), applied=not dry_run)
    if before == wanted:
        step.log.info("router %s: already %s, no change", router.describe(), wanted)
        return {"service": service, "before": str(before), "after": str(before), "changed": False, "dry_run": dry_run}
    if dry_run:
        step.log.info("[dry-run] %s", change)
        return {"service": service, "before": str(before), "after": str(before), "would_set": str(wanted),
                "changed": False, "dry_run": True}
    router.set_weights(wanted)
    after = router.get_weights()
    if after != wanted:
        raise RuntimeError(f"router {router.describe()}: set {wanted} but reads back {after}")
    step.log.info("%s", change)
    return {"service": service, "before": str(before), "after": str(after), "changed": True, "dry_run": False}


class PlatformStep(WaveStep):
    """One platform action for one service's workload (deploy green, hand jobs over, retire blue)."""

    ACTIONS = ("deploy_green", "activate_green", "retire_blue")

    def __init__(self, *, action: str, service: str, platform: dict[str, Any], workload: dict[str, Any],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if action not in self.ACTIONS:
            raise ValueError(f"unknown platform action {action!r}")
        self.action, self.service, self.platform, self.workload = action, service, platform, workload

    def execute(self, context: Any) -> dict[str, Any]:
        dry_run = is_dry_run(context)
        driver = build_platform(self.platform, service=self.service)
        if self.action == "deploy_green":
            changes = driver.deploy_green(self.workload, apply=not dry_run)
        elif self.action == "activate_green":
            changes = driver.activate(self.workload, "green", apply=not dry_run)
        else:
            changes = driver.retire_blue(self.workload, apply=not dry_run)
        return {"service": self.service, "action": self.action, "dry_run": dry_run,
                "changes": self.report_changes(changes, dry_run)}


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
