"""Set traffic: a service's user traffic moved to a share on green, then read back (the router port).
Placed by the gradual and full transition planners; run by SetTraffic."""

from __future__ import annotations

from include.slow_injection.kinds.base import ActionKind, Task, TaskContext
from include.slow_injection.plan import Action
from include.slow_injection.spec.models import Wave


class SetTrafficKind(ActionKind):
    name = "set_traffic"

    def plan_line(self, action: Action, wave: Wave) -> str:
        return f"route {action.weight} % of {action.service} to green"

    def task(self, action: Action, context: TaskContext) -> Task:
        service = context.wave.service(action.service or "")
        assert service.router is not None and action.weight is not None
        return Task(
            "include.slow_injection.tasks.operators:SetTraffic",
            {"service": service.name, "router": service.router.model_dump(), "weight": action.weight, **context.args},
            publishes=service.name,
        )


KIND = SetTrafficKind()
