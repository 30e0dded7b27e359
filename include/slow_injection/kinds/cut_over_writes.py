"""Cut over writes: a database's writes move to green before the traffic step that sends them there —
blue fenced, replication drained, green's sequences set past blue's, the path reversed (green → blue)
so blue keeps up, green writable. Placed by the gradual-transition planner; run by ReplicationStep."""

from __future__ import annotations

from include.slow_injection.durations import format_duration
from include.slow_injection.kinds.base import ActionKind, Task, TaskContext
from include.slow_injection.kinds.data_migration import migration_of, replication_line
from include.slow_injection.kinds.start_replication import STEP
from include.slow_injection.plan import Action
from include.slow_injection.spec.models import Wave


class CutOverWritesKind(ActionKind):
    name = "cut_over_writes"

    def plan_line(self, action: Action, wave: Wave) -> str:
        m = migration_of(wave, action.subject)
        return (
            f"cut {replication_line(m)} writes over to green (drain ≤ {format_duration(m.drain_timeout)}, "
            "sequences, reverse replication green → blue)"
        )

    def task(self, action: Action, context: TaskContext) -> Task:
        m = migration_of(context.wave, action.subject)
        return Task(STEP, {"step": "cut_over", "migration": m.model_dump(), **context.args})


KIND = CutOverWritesKind()
