"""Least privilege: the IAM policy a wave's AWS drivers need, assembled from the drivers themselves.

A driver class that calls AWS declares `iam_statements(settings) -> list[Statement]`: the actions it
calls and the resource ARNs it calls them on ("*" only where AWS has no resource-level permission).
ARNs follow the partition (aws, aws-cn, aws-us-gov) of their region; where a driver does not know its
region, the wave's policy takes the one partition its regions and ARNs name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

# Region prefix → partition; every other region is in `aws`.
PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-isob-", "aws-iso-b"), ("us-iso-", "aws-iso"))
ARN_PARTITION = re.compile(r"^arn:(aws[a-z-]*):")


def partition(region: str | None) -> str:
    """The partition a region belongs to; `aws` when the region is not known (None or "*")."""
    for prefix, name in PARTITIONS:
        if region and region.startswith(prefix):
            return name
    return "aws"


def arn(service: str, region: str | None, account: str, resource: str, partition_of: str | None = None) -> str:
    """An ARN in the region's partition; region None = any ("*"), "" = none (a global service such as
    Route 53, whose partition then follows `partition_of`, the region its client signs for)."""
    where = "*" if region is None else region
    return (
        f"arn:{partition(partition_of if partition_of is not None else region)}:{service}:{where}:{account}:{resource}"
    )


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
    return in_partition(out, wave_partitions(wave))


def wave_partitions(wave: Any) -> set[str]:
    """The partitions the wave's regions and ARNs name."""
    found: set[str] = set()

    def walk(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str):
            if match := ARN_PARTITION.match(value):
                found.add(match.group(1))
            elif key == "region" or key.endswith("_region"):
                found.add(partition(value))

    walk(wave.model_dump(mode="json"))
    return found


def in_partition(statements: list[Statement], partitions: set[str]) -> list[Statement]:
    """ARNs written for `aws` moved to the wave's partition, when it names exactly one other."""
    if len(partitions) != 1 or partitions == {"aws"}:
        return statements
    (name,) = partitions
    return [
        replace(st, resources=tuple(re.sub(r"^arn:aws:", f"arn:{name}:", r) for r in st.resources)) for st in statements
    ]


def fargate_setup_statements(profile: Any) -> list[Statement]:
    cluster = arn("eks", profile.region, "*", f"cluster/{profile.cluster}")
    profile_arn = arn("eks", profile.region, "*", f"fargateprofile/{profile.cluster}/{profile.name}/*")
    actions = ("eks:CreateFargateProfile", "eks:DescribeFargateProfile") + (
        ("eks:TagResource",) if profile.tags else ()
    )
    return [
        Statement(actions, (cluster, profile_arn), "green fargate profile"),
        # CreateFargateProfile hands the pod execution role to EKS.
        Statement(("iam:PassRole",), (profile.pod_execution_role_arn,), "pass pod execution role"),
        # Subnets must be private first; EC2's Describe* take no resource-level permission.
        Statement(("ec2:DescribeSubnets", "ec2:DescribeRouteTables"), ("*",), "check fargate subnets are private"),
    ]


def _gate_queries(wave: Any) -> dict[str, list[str]]:
    from include.slow_injection.spec.loader import metric_gates

    out = {f"{path}.source": [gate.query] for path, gate in metric_gates(wave)}
    if wave.validation.parity is not None:
        out["validation.parity.source"] = [m.query for m in wave.validation.parity.metrics]
    if wave.report.source is not None:
        out["report.source"] = [p.query for p in wave.report.plots]
    return out
