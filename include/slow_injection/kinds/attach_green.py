"""Attach green: green joins the service's route at weight 0, so the router health-checks it; no traffic
moves (the router port's attach_green). Placed by the validation planner; run by AttachGreen."""

from __future__ import annotations

from include.slow_injection.kinds.base import ActionKind, Task, TaskContext
from include.slow_injection.plan import Action
from include.slow_injection.spec.models import Wave


class AttachGreenKind(ActionKind):
    name = "attach_green"

    def plan_line(self, action: Action, wave: Wave) -> str:
        return f"attach green to {action.service}'s router at weight 0"

    def task(self, action: Action, context: TaskContext) -> Task:
        service = context.wave.service(action.service or "")
        assert service.router is not None
        return Task(
            "include.slow_injection.tasks.operators:AttachGreen",
            {"service": service.name, "router": service.router.model_dump(), **context.args},
        )


KIND = AttachGreenKind()
