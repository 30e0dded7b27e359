"""Post-release: retire blue (and remove the data migrations' reverse replication) after a delay, announce,
and report (the report runs on every outcome)."""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from airflow.providers.standard.sensors.time_delta import WaitSensor
from airflow.sdk import BaseOperator

from include.slow_injection import kinds
from include.slow_injection.builders.render import Rendered, WaveBuild, build_task
from include.slow_injection.kinds.base import TaskContext
from include.slow_injection.phases.post_release import PHASE, replication_removals, retirements


class PostRelease(NamedTuple):
    completed: BaseOperator  # marks the wave completed
    action_ids: list[str]  # blue's retirement, service by service


def build(wave_build: WaveBuild, released: Rendered) -> PostRelease:
    """Tasks after a successful release (after `released`'s last decision)."""
    wave = wave_build.wave
    start = released.tail
    assert start is not None
    if wave.retire_blue_after > 0:
        wait = WaitSensor(
            task_id="wait_before_retiring_blue", time_to_wait=timedelta(seconds=wave.retire_blue_after), deferrable=True
        )
        start >> wait
        start = wait
    retire = []
    for action in retirements(wave):
        context = TaskContext(
            wave, {**wave_build.step_args(), "stage": {"phase": PHASE, "service": action.service, "weight": None}}
        )
        retire.append(build_task(wave, action.task_id, kinds.action(action.kind).task(action, context)))
    for action in replication_removals(wave):
        context = TaskContext(
            wave, {**wave_build.step_args(), "stage": {"phase": PHASE, "service": None, "weight": None}}
        )
        retire.append(build_task(wave, action.task_id, kinds.action(action.kind).task(action, context)))
    completed = wave_build.end_of_run("completed", list(released.decision_ids))
    if retire:
        start >> retire
        retire >> completed
    else:
        start >> completed
    return PostRelease(completed, [t.task_id for t in retire])
