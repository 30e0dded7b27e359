"""Hand over: a scheduled job's schedule moves to green (blue suspended first, never both running),
through the platform port. Placed by the scheduled-jobs planner; run by PlatformStep."""

from __future__ import annotations

from typing import Any

from include.slow_injection.kinds.base import PlatformAction
from include.slow_injection.plan import Action
from include.slow_injection.ports import Change
from include.slow_injection.spec.models import Wave


class HandOverKind(PlatformAction):
    name = "hand_over"
    guarded = True
    job_side = "green"

    def plan_line(self, action: Action, wave: Wave) -> str:
        return f"hand {action.service}'s schedule over to green (blue suspended first)"

    def act(self, platform: Any, workload: dict[str, Any], apply: bool) -> list[Change]:
        return platform.activate(workload, "green", apply=apply)


KIND = HandOverKind()
