"""Remove replication: after release monitoring and retire_blue_after, a database's reverse path
(green → blue) is removed; the tables stay as they are. Placed by the post-release planner; run by
ReplicationStep."""

from __future__ import annotations

from include.slow_injection.kinds.base import ActionKind, Task, TaskContext
from include.slow_injection.kinds.data_migration import migration_of, replication_line
from include.slow_injection.kinds.start_replication import STEP
from include.slow_injection.plan import Action
from include.slow_injection.spec.models import Wave


class RemoveReplicationKind(ActionKind):
    name = "remove_replication"

    def plan_line(self, action: Action, wave: Wave) -> str:
        return f"remove {replication_line(migration_of(wave, action.subject))} reverse replication"

    def task(self, action: Action, context: TaskContext) -> Task:
        m = migration_of(context.wave, action.subject)
        return Task(STEP, {"step": "remove", "migration": m.model_dump(), **context.args})


KIND = RemoveReplicationKind()
