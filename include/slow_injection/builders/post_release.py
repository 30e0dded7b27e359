"""Post-release: retire blue after a delay, announce, and report (the report runs on every outcome)."""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.sensors.time_delta import WaitSensor
from airflow.sdk import BaseOperator

from include.slow_injection.builders.render import Wiring, notifications, platform_ref, step_args
from include.slow_injection.spec.models import Wave
from include.slow_injection.tasks.flow import EndWave
from include.slow_injection.tasks.operators import PlatformStep

PHASE = "post_release"


def build(wave: Wave, wiring: Wiring) -> BaseOperator:
    """Tasks after a successful release; returns the task that marks the wave completed."""
    start = wiring.tail
    assert start is not None
    if wave.retire_blue_after > 0:
        wait = WaitSensor(task_id="wait_before_retiring_blue", time_to_wait=timedelta(seconds=wave.retire_blue_after),
                          deferrable=True)
        start >> wait
        start = wait
    args = step_args(wave)
    retire = [
        PlatformStep(task_id=f"retire_blue_{s.name}", action="retire_blue", service=s.name,
                     platform=platform_ref(wave), workload=s.workload.model_dump(),
                     stage={"phase": PHASE, "service": s.name, "weight": None}, **args)
        for s in wave.services if s.workload.kind == "Deployment"
    ]
    completed = EndWave(task_id="wave_completed", outcome="completed", decision_ids=wiring.decision_ids,
                        wave_id=wave.id, notifications=notifications(wave))
    wiring.action_ids += [t.task_id for t in retire]
    if retire:
        start >> retire
        retire >> completed
    else:
        start >> completed
    return completed
