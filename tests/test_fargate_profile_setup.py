"""Green's Fargate profile set up in the preparation phase through the Fargate-profiles port (the EKS
driver, the provider's EksHook), against moto in server mode: created, left alone when it matches,
refused when it differs or names a public subnet, created after a busy cluster frees up; the ACTIVE
gate's reading."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import kinds, refs, registry
from include.slow_injection.drivers.aws_eks import profile_differences
from include.slow_injection.tasks.fargate_setup import EnsureFargateProfile
from tests.support.aws import ACCOUNT, CONNECTION_ID, REGION, MotoServer

ROLE = f"arn:aws:iam::{ACCOUNT}:role/fargate-pods"


SUBNETS: dict[str, str] = {}  # role → subnet id in moto, filled by the `eks` fixture


def spec_profile(**changes: Any) -> dict[str, Any]:
    return {
        "cluster": "prod",
        "name": "shop-green",
        "pod_execution_role_arn": ROLE,
        "subnets": [SUBNETS.get("private-a", "subnet-0a1"), SUBNETS.get("private-b", "subnet-0b2")],
        "tags": {"team": "shop"},
        "selectors": [{"namespace": "shop-fargate", "labels": {"compute": "fargate"}}],
        "aws_connection": CONNECTION_ID,
        "region": REGION,
        "timeout": 60.0,
        **changes,
    }


def network(aws: MotoServer) -> dict[str, str]:
    """Subnets in moto: private ones (on the main route table, or on their own without an internet
    route), a public one (its own table routes 0.0.0.0/0 to an internet gateway), and one that is
    public through its VPC's main route table."""
    ec2 = aws.client("ec2")

    def subnet(vpc: str, cidr: str) -> str:
        return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]

    def igw(vpc: str) -> str:
        gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
        return gateway

    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    out = {"private-a": subnet(vpc, "10.2.1.0/24"), "private-b": subnet(vpc, "10.2.2.0/24")}
    out["private-own"], out["public"] = subnet(vpc, "10.2.3.0/24"), subnet(vpc, "10.2.4.0/24")
    gateway = igw(vpc)
    for role, internet in (("private-own", False), ("public", True)):
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.associate_route_table(RouteTableId=table, SubnetId=out[role])
        if internet:
            ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    other = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    out["public-main"] = subnet(other, "10.3.1.0/24")
    main = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [other]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw(other))
    return out


@pytest.fixture
def eks(aws: MotoServer) -> Any:
    SUBNETS.clear()
    SUBNETS.update(network(aws))
    client = aws.client("eks")
    client.create_cluster(
        name="prod",
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": [SUBNETS["private-a"]]},
    )
    yield client
    SUBNETS.clear()


def ensure(profile: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    task = EnsureFargateProfile(task_id="ensure_fargate_profile", wave_id="t", profile=profile)
    return task.execute({"params": {"dry_run": dry_run}})


def test_missing_profile_is_created_then_left_alone(eks: Any) -> None:
    assert ensure(spec_profile())["change"] == "created"
    created = eks.describe_fargate_profile(clusterName="prod", fargateProfileName="shop-green")["fargateProfile"]
    assert created["podExecutionRoleArn"] == ROLE
    assert sorted(created["subnets"]) == sorted([SUBNETS["private-a"], SUBNETS["private-b"]])
    assert created["selectors"] == [{"namespace": "shop-fargate", "labels": {"compute": "fargate"}}]
    assert created["tags"] == {"team": "shop"}
    again = ensure(spec_profile(selectors=[{"namespace": "shop-fargate", "labels": {"compute": "fargate"}}]))
    assert again["change"] == "none" and again["status"] == "ACTIVE"
    assert len(eks.list_fargate_profiles(clusterName="prod")["fargateProfileNames"]) == 1


def test_a_profile_that_differs_is_a_clear_error_not_a_change(eks: Any) -> None:
    ensure(spec_profile())
    with pytest.raises(AirflowFailException) as err:
        ensure(spec_profile(subnets=[SUBNETS["private-own"]], selectors=[{"namespace": "shop-fargate"}]))
    message = str(err.value)
    assert message.startswith(
        "environments.green.fargate_profile: EKS cluster prod, Fargate profile shop-green exists and differs"
    )
    assert "subnets:" in message and "selectors:" in message and "pod_execution_role_arn" not in message
    profile = eks.describe_fargate_profile(clusterName="prod", fargateProfileName="shop-green")["fargateProfile"]
    assert sorted(profile["subnets"]) == sorted([SUBNETS["private-a"], SUBNETS["private-b"]])


def test_dry_run_creates_nothing(eks: Any) -> None:
    assert ensure(spec_profile(), dry_run=True) == {"profile": "shop-green", "change": "would create", "dry_run": True}
    assert eks.list_fargate_profiles(clusterName="prod")["fargateProfileNames"] == []


def test_differences_compare_selectors_as_sets_and_ignore_tags() -> None:
    existing = {
        "podExecutionRoleArn": ROLE,
        "subnets": ["subnet-0b2", "subnet-0a1"],
        "tags": {"other": "x"},
        "selectors": [{"namespace": "b"}, {"namespace": "a", "labels": {"k": "v"}}],
    }
    profile = spec_profile(selectors=[{"namespace": "a", "labels": {"k": "v"}}, {"namespace": "b", "labels": {}}])
    assert profile_differences(existing, profile) == []
    changed = spec_profile(selectors=[{"namespace": "a", "labels": {"k": "w"}}, {"namespace": "b"}])
    assert profile_differences(existing, changed) == [
        "selectors: EKS has a {'k': 'v'}; b, the spec wants a {'k': 'w'}; b"
    ]


def test_the_active_gate_waits_for_a_missing_profile_and_passes_once_it_is_active(eks: Any) -> None:
    gate = {"cluster": "prod", "profile": "shop-green", "aws_connection": CONNECTION_ID, "region": REGION}
    wait = kinds.measured("fargate_profile")

    def reading() -> Any:
        return wait.read(wait.connect(gate, None), gate, None, 0.0)

    missing = reading()
    assert missing.state == "waiting" and "does not exist" in missing.detail
    ensure(spec_profile())
    assert reading().state == "ready"  # moto: ACTIVE at once


def test_public_or_unknown_subnets_are_refused_before_anything_is_created(eks: Any) -> None:
    subnets = [SUBNETS["private-own"], SUBNETS["public"], SUBNETS["public-main"], "subnet-0ffffffffffffffff"]
    for dry_run in (True, False):  # a dry run reads the subnets too: it shows the error the run would hit
        with pytest.raises(AirflowFailException) as err:
            ensure(spec_profile(subnets=subnets), dry_run=dry_run)
        message = str(err.value)
        assert message.startswith("environments.green.fargate_profile: subnets: Fargate pods need private subnets")
        assert f"{SUBNETS['public']} is public: its route table routes to an internet gateway (rtb-" in message
        assert "0.0.0.0/0 → igw-" in message
        assert f"{SUBNETS['public-main']} is public: the VPC's main route table (it has none of its own)" in message
        assert "subnet-0ffffffffffffffff not found (InvalidSubnetID.NotFound)" in message
        assert SUBNETS["private-own"] not in message  # its own table has no internet route: private
    assert eks.list_fargate_profiles(clusterName="prod")["fargateProfileNames"] == []
    assert ensure(spec_profile(subnets=[SUBNETS["private-own"], SUBNETS["private-a"]]))["change"] == "created"


@dataclass
class Busy:
    """EKS answering ResourceInUseException to `times` creates (another profile is being created or
    deleted), on the driver's own client; the calls after that go to moto. Sleeps are recorded."""

    times: int
    now: float = 0.0

    def __post_init__(self) -> None:
        self.sleeps: list[float] = []

    def refuse(self, **_: Any) -> Any:
        if self.times <= 0:
            return None
        self.times -= 1
        message = "Cannot create Fargate Profile while Fargate Profile other is in DELETING status"
        return SimpleNamespace(status_code=409, headers={}), {
            "Error": {"Code": "ResourceInUseException", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 409},
        }

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def driver(self, profile: dict[str, Any]) -> Any:
        profiles = registry.build("fargate_profiles", refs.fargate_profiles(profile))
        profiles.sleep, profiles.clock = self.sleep, lambda: self.now
        profiles.eks.conn.meta.events.register("before-call.eks.CreateFargateProfile", self.refuse)
        return profiles


def test_a_busy_cluster_is_waited_for_minutes_with_backoff(eks: Any) -> None:
    busy = Busy(times=6)
    result = busy.driver(spec_profile()).ensure(spec_profile(), apply=True)
    assert result["change"] == "created"
    assert busy.sleeps == [15.0, 30.0, 60.0, 60.0, 60.0, 60.0]  # 4 min 45 s: longer than a task's retries
    assert eks.describe_fargate_profile(clusterName="prod", fargateProfileName="shop-green")["fargateProfile"]


def test_a_cluster_busy_past_busy_timeout_is_an_error_naming_it(eks: Any) -> None:
    busy = Busy(times=100)
    profile = spec_profile(busy_timeout=120.0)
    with pytest.raises(RuntimeError) as err:
        busy.driver(profile).ensure(profile, apply=True)
    assert "EKS cluster prod still busy with another Fargate profile after 2m (busy_timeout)" in str(err.value)
    assert "DELETING status" in str(err.value)
    assert sum(busy.sleeps) == 120.0 and busy.sleeps == [15.0, 30.0, 60.0, 15.0]
