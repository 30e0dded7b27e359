"""Deploy green: the service's workload copied to green through the platform port (a job's copy
suspended, a Deployment at blue's size). Placed by the scheduled-jobs and validation planners; run by
PlatformStep."""

from __future__ import annotations

from typing import Any

from include.slow_injection.kinds.base import PlatformAction
from include.slow_injection.plan import Action
from include.slow_injection.ports import Change
from include.slow_injection.spec.models import Wave


class DeployGreenKind(PlatformAction):
    name = "deploy_green"

    def plan_line(self, action: Action, wave: Wave) -> str:
        service = wave.service(action.service or "")
        w = service.workload
        how = "(suspended)" if service.exposure == "scheduled" else "at blue's size"
        return f"copy {w.kind} {w.namespace}/{w.name} to green {how}"

    def act(self, platform: Any, workload: dict[str, Any], apply: bool) -> list[Change]:
        return platform.deploy_green(workload, apply=apply)


KIND = DeployGreenKind()
