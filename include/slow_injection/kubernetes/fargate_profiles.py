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
        return all(any(fnmatchcase(k, sk) and fnmatchcase(v, sv) for k, v in labels.items())
                   for sk, sv in self.labels.items())


@dataclass(frozen=True)
class FargateProfile:
    name: str
    selectors: tuple[Selector, ...]

    @classmethod
    def from_eks(cls, profile: dict[str, Any]) -> FargateProfile:
        """From `eks.describe_fargate_profile()['fargateProfile']` or a spec entry of the same shape."""
        name = profile.get("fargateProfileName") or profile["name"]
        return cls(name, tuple(Selector(s["namespace"], dict(s.get("labels") or {})) for s in profile["selectors"]))

    def matches(self, namespace: str, labels: dict[str, str]) -> bool:
        return any(s.matches(namespace, labels) for s in self.selectors)


def choose_profile(profiles: list[FargateProfile], namespace: str, labels: dict[str, str]) -> FargateProfile | None:
    matching = sorted((p for p in profiles if p.matches(namespace, labels)), key=lambda p: p.name)
    wanted = labels.get(PROFILE_LABEL)
    if wanted is not None:
        return next((p for p in matching if p.name == wanted), None)
    return matching[0] if matching else None
