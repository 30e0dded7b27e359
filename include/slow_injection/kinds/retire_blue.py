"""Retire blue: blue's capacity released once the service runs on green (the platform port's
retire_blue), for the workloads whose blue still holds some (Platform.retires_blue). Placed by the
post-release builder; run by PlatformStep."""

from __future__ import annotations

from typing import Any

from include.slow_injection.kinds.base import PlatformAction
from include.slow_injection.plan import Action
from include.slow_injection.ports import Change
from include.slow_injection.spec.models import Wave


class RetireBlueKind(PlatformAction):
    name = "retire_blue"
    guarded = True

    def plan_line(self, action: Action, wave: Wave) -> str:
        w = wave.service(action.service or "").workload
        return f"scale blue {w.namespace}/{w.name} down"

    def act(self, platform: Any, workload: dict[str, Any], apply: bool) -> list[Change]:
        return platform.retire_blue(workload, apply=apply)


KIND = RetireBlueKind()
