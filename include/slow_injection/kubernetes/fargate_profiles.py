"""Which Fargate profile would run a pod: namespace + labels, `*`/`?` wildcards, an explicit
`eks.amazonaws.com/fargate-profile` label, otherwise the alphabetically first matching profile.
A pod no profile matches is scheduled nowhere and stays Pending."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

PROFILE_LABEL = "eks.amazonaws.com/fargate-profile"


@dataclass(frozen=True)
class Selector:
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)

    def matches(self, namespace: str, labels: dict[str, str]) -> bool:
        if not fnmatchcase(namespace, self.namespace):
            return False
        return all(
            any(fnmatchcase(k, sk) and fnmatchcase(v, sv) for k, v in labels.items()) for sk, sv in self.labels.items()
        )


MAX_SELECTORS = 5  # EKS refuses a profile with more


@dataclass(frozen=True)
class FargateProfile:
    name: str
    selectors: tuple[Selector, ...]
    status: str | None = None  # ACTIVE, CREATING, DELETING, …; None when not read from EKS
    subnets: tuple[str, ...] | None = None

    @classmethod
    def from_eks(cls, profile: dict[str, Any]) -> FargateProfile:
        """From `eks.describe_fargate_profile()['fargateProfile']` or a spec entry of the same shape."""
        name = profile.get("fargateProfileName") or profile["name"]
        subnets = profile.get("subnets")
        return cls(
            name,
            tuple(Selector(s["namespace"], dict(s.get("labels") or {})) for s in profile["selectors"]),
            profile.get("status"),
            None if subnets is None else tuple(subnets),
        )

    def problems(self) -> list[str]:
        """Why pods this profile selects would not start, as EKS reports the profile."""
        out = []
        if self.status is not None and self.status != "ACTIVE":
            out.append(f"Fargate profile {self.name} is {self.status}, not ACTIVE")
        if self.subnets is not None and not self.subnets:
            out.append(f"Fargate profile {self.name} has no subnets (it needs private subnets)")
        if len(self.selectors) > MAX_SELECTORS:
            out.append(f"Fargate profile {self.name} has {len(self.selectors)} selectors; EKS allows {MAX_SELECTORS}")
        return out

    def matches(self, namespace: str, labels: dict[str, str]) -> bool:
        return any(s.matches(namespace, labels) for s in self.selectors)


def choose_profile(profiles: list[FargateProfile], namespace: str, labels: dict[str, str]) -> FargateProfile | None:
    matching = sorted((p for p in profiles if p.matches(namespace, labels)), key=lambda p: p.name)
    wanted = labels.get(PROFILE_LABEL)
    if wanted is not None:
        return next((p for p in matching if p.name == wanted), None)
    return matching[0] if matching else None
