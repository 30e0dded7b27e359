"""moto in server mode as the AWS endpoint: drivers reach it through an Airflow AWS connection's
endpoint_url, exactly as they would reach AWS. Also records every AWS call made in-process, so the
IAM policy test can check each one is allowed."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import boto3
import pytest

from include.slow_injection import registry
from include.slow_injection.drivers.aws_alb import AlbRouter
from include.slow_injection.lab.free_ports import free_port

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
CONNECTION_ID = "aws_moto"

# botocore's endpoint prefix → the IAM action prefix, where they differ.
IAM_PREFIX = {"monitoring": "cloudwatch"}


class MotoServer:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> MotoServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10).read()

    def client(self, service: str) -> Any:
        """A boto3 client for test setup and assertions (never what a driver uses)."""
        client = boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client._slow_injection_test_setup = True  # not recorded by ApiCalls
        return client

    def connection_uri(self) -> str:
        return json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"region_name": REGION, "endpoint_url": self.url},
            }
        )


@dataclass
class ApiCall:
    action: str  # IAM style, e.g. elasticloadbalancing:ModifyListener
    params: dict[str, Any] = field(default_factory=dict)


class ApiCalls:
    """Every AWS API call botocore makes in this process while recording."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []

    def record(self, client: Any, operation: str, params: dict[str, Any]) -> None:
        if getattr(client, "_slow_injection_test_setup", False):
            return
        prefix = client.meta.service_model.endpoint_prefix
        self.calls.append(ApiCall(f"{IAM_PREFIX.get(prefix, prefix)}:{operation}", dict(params)))

    def actions(self) -> set[str]:
        return {c.action for c in self.calls}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """A clean moto account, and the Airflow connection `aws_moto` pointing at it."""
    moto_server.reset()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONNECTION_ID.upper()}", moto_server.connection_uri())
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    return moto_server


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> ApiCalls:
    from botocore.client import BaseClient

    recorder = ApiCalls()
    original = BaseClient._make_api_call

    def recording(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        recorder.record(self, operation_name, api_params)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    return recorder


def call_resources(call: ApiCall) -> list[str]:
    """The resource ARNs IAM authorises a recorded call against ([] = not derivable: action-only check)."""
    p = call.params
    service, operation = call.action.split(":")
    if service == "elasticloadbalancing" and operation.startswith("Modify"):
        return [p.get("RuleArn") or p["ListenerArn"]]
    if call.action == "sns:Publish":
        return [p.get("TopicArn") or p["TargetArn"]]
    if service == "eks" and "fargateProfileName" in p:
        return [f"arn:aws:eks:{REGION}:{ACCOUNT}:fargateprofile/{p['clusterName']}/{p['fargateProfileName']}/0"]
    if service == "eks" and "clusterName" in p:
        return [f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{p['clusterName']}"]
    if call.action == "cloudwatch:DescribeAlarms" and p.get("AlarmNames"):
        return [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}" for name in p["AlarmNames"]]
    if service == "route53" and "HostedZoneId" in p:
        return [f"arn:aws:route53:::hostedzone/{p['HostedZoneId'].rsplit('/', 1)[-1]}"]
    return []


def uncovered_calls(policy_doc: dict[str, Any], calls: list[ApiCall]) -> list[str]:
    """Calls the policy would deny: action not allowed, or not on the call's resource."""
    from fnmatch import fnmatchcase

    out = []
    for call in calls:
        allowed = [r for st in policy_doc["Statement"] if call.action in st["Action"] for r in st["Resource"]]
        resources = call_resources(call)
        if not allowed or (
            resources and not all(any(fnmatchcase(res, pattern) for pattern in allowed) for res in resources)
        ):
            out.append(f"{call.action} on {resources or '?'} (allowed on {allowed})")
    return sorted(set(out))


@dataclass
class Alb:
    elbv2: Any
    listener: str
    rule: str
    other_rule: str
    blue: str
    green: str
    green_instance: str
    subnets: tuple[str, ...] = ()  # the load balancer's; private (their VPC has no internet gateway)

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "type": "alb",
            "connection": CONNECTION_ID,
            "listener_arn": self.listener,
            "blue_target_group_arn": self.blue,
            "green_target_group_arn": self.green,
            **extra,
        }

    def router(self, **extra: Any) -> AlbRouter:
        return registry.build("router", self.settings(**extra), service="web")

    def forward_of(self, actions: list[dict[str, Any]]) -> dict[str, int]:
        forward = next(a for a in actions if a["Type"] == "forward")
        return {g["TargetGroupArn"]: g["Weight"] for g in forward["ForwardConfig"]["TargetGroups"]}

    def rule_named(self, arn: str) -> dict[str, Any]:
        return self.elbv2.describe_rules(RuleArns=[arn])["Rules"][0]

    def default_actions(self) -> list[dict[str, Any]]:
        return self.elbv2.describe_listeners(ListenerArns=[self.listener])["Listeners"][0]["DefaultActions"]


class NewBalancer(NamedTuple):
    balancer: dict[str, Any]
    target_groups: list[str]  # ARNs, in the order named
    vpc: str
    subnets: list[str]


def load_balancer_in_new_vpc(aws: MotoServer, name: str, cidr: str, group_names: tuple[str, ...]) -> NewBalancer:
    """An application load balancer in a new VPC (`cidr` a /16) with two subnets, and empty IP target
    groups of those names on port 8080."""
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    prefix = cidr.rsplit(".", 2)[0]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"{prefix}.{i}.0/24", AvailabilityZone=f"eu-west-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets, Type="application")["LoadBalancers"][0]
    groups = [
        elbv2.create_target_group(Name=g, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")["TargetGroups"][0][
            "TargetGroupArn"
        ]
        for g in group_names
    ]
    return NewBalancer(lb, groups, vpc, subnets)


@pytest.fixture
def alb(aws: MotoServer) -> Alb:
    elbv2 = aws.client("elbv2")
    lb, _, vpc, subnets = load_balancer_in_new_vpc(aws, "shop", "10.0.0.0/16", ())

    def group(name: str, target_type: str) -> str:
        return elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType=target_type)[
            "TargetGroups"
        ][0]["TargetGroupArn"]

    blue, green, green_instance = (
        group("web-blue", "instance"),
        group("web-green", "ip"),
        group("web-green-i", "instance"),
    )
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}],
    )["Listeners"][0]
    rule = elbv2.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=10,
        Conditions=[
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/shop/*"]}},
            {"Field": "host-header", "HostHeaderConfig": {"Values": ["shop.example.com"]}},
        ],
        Actions=[{"Type": "forward", "TargetGroupArn": blue}],
    )["Rules"][0]
    other = elbv2.create_rule(
        ListenerArn=listener["ListenerArn"],
        Priority=20,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/health"]}}],
        Actions=[
            {
                "Type": "fixed-response",
                "FixedResponseConfig": {"StatusCode": "200", "ContentType": "text/plain", "MessageBody": "ok"},
            }
        ],
    )["Rules"][0]
    return Alb(
        elbv2, listener["ListenerArn"], rule["RuleArn"], other["RuleArn"], blue, green, green_instance, tuple(subnets)
    )


@pytest.fixture
def dms(aws: MotoServer) -> tuple[Any, str]:
    client = aws.client("dms")
    task = client.create_replication_task(
        ReplicationTaskIdentifier="orders-sync",
        SourceEndpointArn="arn:aws:dms:eu-west-1:123456789012:endpoint:SRC",
        TargetEndpointArn="arn:aws:dms:eu-west-1:123456789012:endpoint:TGT",
        ReplicationInstanceArn="arn:aws:dms:eu-west-1:123456789012:rep:RI",
        MigrationType="full-load-and-cdc",
        TableMappings='{"rules": []}',
    )["ReplicationTask"]
    return client, task["ReplicationTaskArn"]
