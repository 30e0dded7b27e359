"""Two runs never act on one workload at once: each run that changes anything leases its services'
workloads where they live (the platform's own atomic store: a Kubernetes Lease, the simulated world's
lock), in plan_wave, and gives them back in `release_leases` at the end of the run, whatever its outcome.

Which holder may be replaced is Airflow's knowledge (whether its run still lives), decided here; the
platform only creates if absent and replaces exactly the holder it was shown."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from airflow.sdk import BaseOperator

from include.slow_injection.ports import Held, HeldBy, LeaseHolder

log = logging.getLogger(__name__)

LIVE_RUN_STATES = ("queued", "running")
IsLive = Callable[[str, str], bool]


def _order(item: tuple[str, dict[str, Any]]) -> tuple[str, str, str]:
    workload = item[1]
    return workload["namespace"], workload["kind"], workload["name"]


def acquire_leases(
    platform: Any, holder: LeaseHolder, workloads: dict[str, dict[str, Any]], is_live: IsLive | None = None
) -> list[str]:
    """Lease every service's workload for `holder`'s run, or none: returns the conflicts, naming each
    holder (and gives back what this call took). Workloads are leased in one global order, so two runs
    wanting overlapping sets meet on the first shared workload and exactly one of them goes on.

    `is_live(dag_id, run_id)` says whether a holder's run may still act. A live holder always refuses
    (even a run of the same wave). A lease left by an ended run of the same wave is taken over (this
    run reads the world and converges); one left by an ended run of another wave still refuses: that
    wave may have left the service half-moved, and a human decides."""
    held: list[dict[str, Any]] = []
    conflicts: list[str] = []
    try:
        for service, workload in sorted(workloads.items(), key=_order):
            me = dataclasses.replace(holder, service=service)
            if conflicts:  # refused already: only say who else holds what (nothing more is taken)
                other = platform.lease_holder(workload)
                if other is not None and not other.holder.same_run(me):
                    conflicts.append(_conflict(service, workload, other, _holder_live(other.holder, is_live)))
                continue
            answer = platform.acquire_lease(workload, me)
            if isinstance(answer, HeldBy):
                answer = _take_over_if_ended(platform, service, workload, me, answer, is_live)
            if isinstance(answer, Held):
                held.append(workload)
            else:
                conflicts.append(_conflict(service, workload, answer, _holder_live(answer.holder, is_live)))
    except BaseException:
        _give_back(platform, holder, held)
        raise
    if conflicts:
        _give_back(platform, holder, held)
    return conflicts


def _take_over_if_ended(
    platform: Any, service: str, workload: dict[str, Any], me: LeaseHolder, other: HeldBy, is_live: IsLive | None
) -> Held | HeldBy:
    if other.holder.wave != me.wave or _holder_live(other.holder, is_live):
        return other
    log.warning(
        "taking over the lease on %s (%s) left by run %s of this wave, which has ended",
        service,
        other.where,
        other.holder.run_id,
    )
    answer: Held | HeldBy = platform.take_over_lease(workload, me, other)
    return answer


def _conflict(service: str, workload: dict[str, Any], answer: HeldBy, live: bool) -> str:
    where = f"{service} ({workload['kind']} {workload['namespace']}/{workload['name']})"
    if live:
        return (
            f"services: {where} is being migrated by {answer.holder}; two runs never act on one service "
            f"at once (this run may start once that one ends)"
        )
    return (
        f"services: {where} is leased by {answer.holder}, which is no longer running but never released "
        f"it; that wave may have left the service half-moved: check it, then delete {answer.where}"
    )


def _give_back(platform: Any, holder: LeaseHolder, workloads: list[dict[str, Any]]) -> None:
    for workload in workloads:
        try:
            platform.release_lease(workload, holder)
        except Exception:
            log.exception("could not give back the lease on %s/%s", workload["namespace"], workload["name"])


def _holder_live(holder: LeaseHolder, is_live: IsLive | None) -> bool:
    """Unknown counts as live: a lease is never taken over on a guess."""
    if is_live is None or not holder.run_id:
        return True
    try:
        return bool(is_live(holder.dag_id or f"wave_{holder.wave}", holder.run_id))
    except Exception:
        log.warning("could not read the state of run %s holding a lease", holder.run_id, exc_info=True)
        return True


def release_leases(platform: Any, holder: LeaseHolder, workloads: dict[str, dict[str, Any]]) -> list[str]:
    """Give back each workload's lease that `holder`'s run (wave and run id) holds; others' stay.
    Returns the services released. Safe to run again."""
    return [service for service, workload in workloads.items() if platform.release_lease(workload, holder)]


class ReleaseLeases(BaseOperator):
    """Teardown of every run (completed, rolled back, held or refused): gives back this run's leases on
    its services' workloads, so the next run (of this wave or another) may act on them. A lease another
    run holds is left alone."""

    ui_color = "#eeeeee"

    def __init__(
        self, *, wave_id: str, platform: dict[str, Any], workloads: dict[str, dict[str, Any]], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.wave_id, self.platform, self.workloads = wave_id, platform, workloads

    def execute(self, context: Any) -> list[str]:
        from include.slow_injection.tasks.operators import build_platform

        holder = LeaseHolder(wave=self.wave_id, run_id=context["run_id"], acquired_at=0.0, dag_id=self.dag_id)
        released = release_leases(build_platform(self.platform), holder, self.workloads)
        self.log.info("leases released: %s", ", ".join(released) if released else "none held by this run")
        return released
