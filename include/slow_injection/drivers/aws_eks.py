"""Green's EKS Fargate profile (the spec's `environments.green.fargate_profile`), through the amazon
provider's EksHook: its state for the gate that waits for it ACTIVE, and an idempotent create for the
preparation phase (missing → created; exists and matches → no change; exists and differs → an error:
EKS profiles are immutable, a changed spec needs a new profile name).

Before creating, every subnet must be private (Fargate refuses public ones): its route table - its own,
or the VPC's main one - has no route to an internet gateway. EKS creates or deletes one profile of a
cluster at a time, minutes each: while it is busy, the create is retried with backoff up to the
profile's `busy_timeout`.

Not the provider's EksCreateFargateProfileOperator nor its EksFargateProfileStateSensor: their modules
cost every DAG parse ~5.7 s (the operator pulls the Kubernetes client) and ~0.6 s (boto3), measured."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from include.slow_injection.durations import format_duration
from include.slow_injection.ports import ProfileConflict, Readiness

log = logging.getLogger(__name__)

UNUSABLE = ("CREATE_FAILED", "DELETING", "DELETE_FAILED")
BUSY_TIMEOUT = 900.0  # the spec's default: a profile create or delete takes minutes
FIRST_BACKOFF, MAX_BACKOFF = 15.0, 60.0


def public_routes(route_tables: list[dict[str, Any]]) -> list[str]:
    """The routes of these tables that lead to an internet gateway, shown as `rtb: destination → igw`."""
    return [
        f"{table.get('RouteTableId')}: "
        f"{route.get('DestinationCidrBlock') or route.get('DestinationIpv6CidrBlock') or route.get('DestinationPrefixListId')}"
        f" → {route['GatewayId']}"
        for table in route_tables
        for route in table.get("Routes") or []
        if str(route.get("GatewayId", "")).startswith("igw-")
    ]


def wanted_selectors(profile: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"namespace": s["namespace"], **({"labels": dict(s["labels"])} if s.get("labels") else {})}
        for s in profile["selectors"]
    ]


def _selector_key(selector: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return selector["namespace"], tuple(sorted((selector.get("labels") or {}).items()))


def profile_differences(existing: dict[str, Any], profile: dict[str, Any]) -> list[str]:
    """What differs between an EKS profile (describe_fargate_profile) and the spec's; tags are left
    out (they can change in place)."""
    out = []
    if existing.get("podExecutionRoleArn") != profile["pod_execution_role_arn"]:
        out.append(
            f"pod_execution_role_arn: EKS has {existing.get('podExecutionRoleArn')}, "
            f"the spec wants {profile['pod_execution_role_arn']}"
        )
    if sorted(existing.get("subnets") or []) != sorted(profile["subnets"]):
        out.append(
            f"subnets: EKS has {sorted(existing.get('subnets') or [])}, the spec wants {sorted(profile['subnets'])}"
        )
    have = sorted(_selector_key(s) for s in existing.get("selectors") or [])
    want = sorted(_selector_key(s) for s in wanted_selectors(profile))
    if have != want:
        out.append(f"selectors: EKS has {_shown(have)}, the spec wants {_shown(want)}")
    return out


def _shown(keys: list[tuple[str, tuple[tuple[str, str], ...]]]) -> str:
    return "; ".join(f"{ns} {dict(labels) if labels else ''}".strip() for ns, labels in keys)


class EksFargateProfiles:
    port = "fargate_profiles"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        region: str | None = None

    def __init__(
        self,
        settings: Settings,
        connection_id: str | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from airflow.providers.amazon.aws.hooks.ec2 import EC2Hook
        from airflow.providers.amazon.aws.hooks.eks import EksHook

        self.settings, self.connection_id, self.sleep, self.clock = settings, connection_id, sleep, clock
        self.eks = EksHook(aws_conn_id=connection_id, region_name=settings.region)
        self.ec2 = EC2Hook(api_type="client_type", aws_conn_id=connection_id, region_name=settings.region)

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> EksFargateProfiles:
        return cls(settings, connection_id)

    def describe(self) -> str:
        return f"eks fargate profiles ({', '.join(filter(None, [self.connection_id, self.settings.region]))})"

    def _describe(self, cluster: str, name: str) -> dict[str, Any] | None:
        try:
            found = self.eks.conn.describe_fargate_profile(clusterName=cluster, fargateProfileName=name)
            return found["fargateProfile"]
        except self.eks.conn.exceptions.ResourceNotFoundException:
            return None

    def state(self, cluster: str, name: str) -> Readiness:
        """ACTIVE ready, CREATING (or not visible yet) waiting, a failed or deleting profile failed for good."""
        where = f"Fargate profile {name} on EKS cluster {cluster}"
        existing = self._describe(cluster, name)
        if existing is None:
            return Readiness("waiting", f"{where} does not exist (yet)")
        status = existing["status"]
        if status == "ACTIVE":
            return Readiness("ready", f"{where} is ACTIVE")
        return Readiness("failed" if status in UNUSABLE else "waiting", f"{where} is {status}")

    def ensure(self, profile: dict[str, Any], apply: bool) -> dict[str, Any]:
        """The spec's profile on EKS: {"profile", "change": none | would create | created[, "status"]}.
        Raises ProfileConflict when the one there cannot be it; RuntimeError while EKS is busy."""
        cluster, name = profile["cluster"], profile["name"]
        existing = self._describe(cluster, name)
        if existing is not None:
            return self._judge(existing, profile)
        self.check_private(profile["subnets"])
        if not apply:
            return {"profile": name, "change": "would create"}
        extra: dict[str, Any] = {"subnets": list(profile["subnets"])}
        if profile.get("tags"):
            extra["tags"] = dict(profile["tags"])
        busy_timeout = float(profile.get("busy_timeout", BUSY_TIMEOUT))
        deadline, backoff = self.clock() + busy_timeout, FIRST_BACKOFF
        while True:
            try:
                self.eks.create_fargate_profile(
                    clusterName=cluster,
                    fargateProfileName=name,
                    podExecutionRoleArn=profile["pod_execution_role_arn"],
                    selectors=wanted_selectors(profile),
                    **extra,
                )
                return {"profile": name, "change": "created"}
            except self.eks.conn.exceptions.ResourceInUseException as err:
                # Created meanwhile (or by a try whose answer was lost): judge what is there now. None
                # there: EKS is busy with another profile of the cluster (one create/delete at a time).
                existing = self._describe(cluster, name)
                if existing is not None:
                    return self._judge(existing, profile)
                left = deadline - self.clock()
                if left <= 0:
                    raise RuntimeError(
                        f"EKS cluster {cluster} still busy with another Fargate profile after "
                        f"{format_duration(busy_timeout)} (busy_timeout): {err}"
                    ) from err
                log.info("EKS cluster %s is busy (%s); trying again in %.0fs", cluster, err, min(backoff, left))
                self.sleep(min(backoff, left))
                backoff = min(2 * backoff, MAX_BACKOFF)

    def check_private(self, subnets: list[str]) -> None:
        """Raises ProfileConflict naming each subnet that is public (a route to an internet gateway) or
        unknown: EKS refuses a Fargate profile with a public subnet."""
        from botocore.exceptions import ClientError

        ec2, problems = self.ec2.conn, []
        for subnet in subnets:
            try:
                vpc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
            except ClientError as err:
                problems.append(f"{subnet} not found ({err.response.get('Error', {}).get('Code')})")
                continue
            tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])
            own = tables["RouteTables"]
            # A subnet without a table of its own uses the VPC's main route table.
            used = (
                own
                or ec2.describe_route_tables(
                    Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
                )["RouteTables"]
            )
            if routes := public_routes(used):
                which = "its route table" if own else "the VPC's main route table (it has none of its own)"
                problems.append(f"{subnet} is public: {which} routes to an internet gateway ({'; '.join(routes)})")
        if problems:
            raise ProfileConflict(
                "subnets: Fargate pods need private subnets (no route to an internet gateway; reach out through a "
                "NAT gateway instead): " + "; ".join(problems)
            )

    @staticmethod
    def _judge(existing: dict[str, Any], profile: dict[str, Any]) -> dict[str, Any]:
        where = f"EKS cluster {profile['cluster']}, Fargate profile {profile['name']}"
        problems = profile_differences(existing, profile)
        if problems:
            raise ProfileConflict(
                f"{where} exists and differs from the spec; profiles are immutable, so give the "
                f"spec a new profile name (or delete the old profile): " + "; ".join(problems)
            )
        if existing.get("status") in UNUSABLE:
            raise ProfileConflict(
                f"{where} is {existing['status']}; delete it (or pick another name) before the wave can set green up"
            )
        return {"profile": profile["name"], "change": "none", "status": existing.get("status")}
