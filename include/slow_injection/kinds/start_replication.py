"""Start replication: a database's forward path blue → green set up (initial copy, then streaming) once
its prerequisites hold; green stays read-only for the application. Placed by the preparation planner;
run by ReplicationStep."""

from __future__ import annotations

from include.slow_injection.kinds.base import ActionKind, Task, TaskContext
from include.slow_injection.kinds.data_migration import migration_of, replication_line
from include.slow_injection.plan import Action
from include.slow_injection.spec.models import Wave

STEP = "include.slow_injection.tasks.data_migration:ReplicationStep"


class StartReplicationKind(ActionKind):
    name = "start_replication"

    def plan_line(self, action: Action, wave: Wave) -> str:
        m = migration_of(wave, action.subject)
        return f"replicate {replication_line(m)} blue → green (prerequisites checked first; green read-only)"

    def task(self, action: Action, context: TaskContext) -> Task:
        m = migration_of(context.wave, action.subject)
        return Task(STEP, {"step": "start", "migration": m.model_dump(), **context.args})


KIND = StartReplicationKind()
