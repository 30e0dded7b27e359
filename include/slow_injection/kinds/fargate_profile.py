"""Fargate profile wait: green's EKS Fargate profile ACTIVE before any workload moves, read through the
Fargate-profiles port. Placed by the preparation planner when the spec sets
`environments.green.fargate_profile`; run by the GateSensor."""

from __future__ import annotations

from typing import Any

from include.slow_injection import refs, registry
from include.slow_injection.durations import format_duration
from include.slow_injection.kinds.base import WaitCheck, WaitKind
from include.slow_injection.plan import Gate
from include.slow_injection.ports import Readiness
from include.slow_injection.spec.models import FargateProfileSetup


class FargateProfileCheck(WaitCheck):
    """Green's Fargate profile ACTIVE, within `timeout`."""

    name: str = "fargate_profile_active"
    check: str = "fargate_profile"
    interval: float = 15.0
    cluster: str
    profile: str
    aws_connection: str
    region: str | None = None


def wait(profile: FargateProfileSetup) -> Gate:
    check = FargateProfileCheck(
        timeout=profile.timeout,
        cluster=profile.cluster,
        profile=profile.name,
        aws_connection=profile.aws_connection,
        region=profile.region,
    )
    return Gate("wait_fargate_profile", KIND.name, check, None, 0.0)


class FargateProfileKind(WaitKind):
    name = "fargate_profile"
    spec_model = FargateProfileCheck

    def plan_line(self, gate: Gate) -> str:
        f = gate.spec
        assert isinstance(f, FargateProfileCheck)
        return (
            f"wait: Fargate profile {f.profile} on EKS cluster {f.cluster} ACTIVE (within {format_duration(f.timeout)})"
        )

    def connect(self, gate: dict[str, Any], service: str | None) -> Any:
        return registry.build("fargate_profiles", refs.fargate_profiles(gate))

    def read(self, profiles: Any, gate: dict[str, Any], service: str | None, started_at: float) -> Readiness:
        return profiles.state(gate["cluster"], gate["profile"])


KIND = FargateProfileKind()
