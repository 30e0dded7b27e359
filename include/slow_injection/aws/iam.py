"""Least privilege: the IAM policy a wave's AWS drivers need, assembled from the drivers themselves.

A driver class that calls AWS declares `iam_statements(settings) -> list[Statement]`: the actions it
calls and the resource ARNs it calls them on ("*" only where AWS has no resource-level permission).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    why: str = ""  # becomes the statement's Sid (letters and digits only)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Effect": "Allow",
            "Action": sorted(set(self.actions)),
            "Resource": sorted(set(self.resources)),
        }
        sid = "".join(ch for ch in self.why.title() if ch.isalnum())
        return {"Sid": sid, **out} if sid else out


def policy(statements: list[Statement]) -> dict[str, Any]:
    """One IAM policy document; statements with the same resources are merged, order is stable."""
    merged: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    for st in statements:
        key = tuple(sorted(set(st.resources)))
        actions, whys = merged.setdefault(key, ([], []))
        actions.extend(a for a in st.actions if a not in actions)
        if st.why and st.why not in whys:
            whys.append(st.why)
    docs = []
    for resources, (actions, whys) in merged.items():
        docs.append(Statement(tuple(actions), resources, " ".join(whys)[:60]).to_dict())
    _unique_sids(docs)
    return {"Version": "2012-10-17", "Statement": docs}


def _unique_sids(docs: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for doc in docs:
        sid = doc.get("Sid")
        if not sid:
            continue
        seen[sid] = seen.get(sid, 0) + 1
        if seen[sid] > 1:
            doc["Sid"] = f"{sid}{seen[sid]}"


def wave_statements(wave: Any) -> list[Statement]:
    """What every AWS-calling piece of a wave needs: its drivers, and green's Fargate profile setup."""
    from inspect import signature

    from include.slow_injection import registry
    from include.slow_injection.spec.loader import driver_refs

    queries = _gate_queries(wave)
    out: list[Statement] = []
    for path, kind, ref in driver_refs(wave):
        cls = registry.driver_class(kind, ref.type)
        declare = getattr(cls, "iam_statements", None)
        if declare is None:
            continue
        settings = cls.Settings.model_validate(ref.settings)
        if "queries" in signature(declare).parameters:
            out += declare(settings, queries=queries.get(path, []))
        else:
            out += declare(settings)
    profile = wave.environments.green.fargate_profile
    if profile is not None:
        out += fargate_setup_statements(profile)
    return out


def fargate_setup_statements(profile: Any) -> list[Statement]:
    region = profile.region or "*"
    cluster = f"arn:aws:eks:{region}:*:cluster/{profile.cluster}"
    arn = f"arn:aws:eks:{region}:*:fargateprofile/{profile.cluster}/{profile.name}/*"
    actions = ("eks:CreateFargateProfile", "eks:DescribeFargateProfile") + (
        ("eks:TagResource",) if profile.tags else ()
    )
    return [
        Statement(actions, (cluster, arn), "green fargate profile"),
        # CreateFargateProfile hands the pod execution role to EKS.
        Statement(("iam:PassRole",), (profile.pod_execution_role_arn,), "pass pod execution role"),
    ]


def _gate_queries(wave: Any) -> dict[str, list[str]]:
    from include.slow_injection.spec.loader import metric_gates

    out = {f"{path}.source": [gate.query] for path, gate in metric_gates(wave)}
    if wave.validation.parity is not None:
        out["validation.parity.source"] = [m.query for m in wave.validation.parity.metrics]
    if wave.report.source is not None:
        out["report.source"] = [p.query for p in wave.report.plots]
    return out
