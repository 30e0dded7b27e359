"""A task run twice: the HAProxy stand-in, its router, a task context and what a run changed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from include.slow_injection.drivers.haproxy import HAProxyRuntime
from include.slow_injection.lab.lab import binary, haproxy_cfg
from include.slow_injection.lab.processes import ProcessBook
from tests.support.aws import ACCOUNT, CONNECTION_ID, REGION, ApiCalls, MotoServer, free_port

HAPROXY_CONN, KUBE_CONN = "rt_haproxy", "rt_kube"
_RUNTIME_RUN = HAProxyRuntime.run  # the test's own reads and writes, never recorded as the driver's
STEP = {"wave_id": "twice"}


class FakeTI:
    """What the steps read from `ti`: the try number, XComs (the report), pushes (ignored)."""

    def __init__(self, try_number: int = 1, xcoms: dict[tuple[str, str], Any] | None = None) -> None:
        self.try_number, self.xcoms = try_number, xcoms or {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def context(try_number: int = 1, ti: FakeTI | None = None) -> dict[str, Any]:
    return {"params": {"dry_run": False}, "ti": ti or FakeTI(try_number), "run_id": "manual__2026-01-01T00:00:00"}


class HAProxy:
    """HAProxy with the lab's configuration (backend `web`, servers blue 100 / green 0)."""

    def __init__(self, root: Path, blue: str | None = None, green: str | None = None) -> None:
        self.root = root
        self.socket = root / "haproxy.sock"
        self.book = ProcessBook(root / "pids.json")
        self.frontend = f"127.0.0.1:{free_port()}"
        (root / "haproxy.cfg").write_text(
            haproxy_cfg(
                f"{self.socket} mode 600",
                self.frontend,
                blue or f"127.0.0.1:{free_port()}",
                green or f"127.0.0.1:{free_port()}",
            )
        )

    def start(self) -> HAProxy:
        self.socket.unlink(missing_ok=True)
        self.book.start(
            "haproxy",
            [binary("haproxy") or "haproxy", "-db", "-f", str(self.root / "haproxy.cfg")],
            self.root / "haproxy.log",
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            assert time.monotonic() < deadline, (self.root / "haproxy.log").read_text()
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.book.stop("haproxy")

    def run(self, command: str) -> str:
        return _RUNTIME_RUN(HAProxyRuntime(str(self.socket)), command)

    def raw_weights(self) -> tuple[str, str]:
        """What HAProxy itself says, e.g. ('75 (initial 100)', '25 (initial 0)')."""
        return self.run("get weight web/blue").strip(), self.run("get weight web/green").strip()

    def green(self) -> int:
        return int(self.raw_weights()[1].split()[0])

    def set_green(self, green: int) -> None:
        assert self.run(f"set weight web/blue {100 - green}; set weight web/green {green}").strip() == ""

    def connection(self) -> str:
        return json.dumps({"conn_type": "generic", "host": str(self.socket)})


@pytest.fixture(scope="module")
def haproxy_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxy]:
    proxy = HAProxy(tmp_path_factory.mktemp("haproxy")).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def haproxy(haproxy_process: HAProxy, monkeypatch: pytest.MonkeyPatch) -> HAProxy:
    """All traffic on blue, the connection `rt_haproxy` pointing at the admin socket."""
    haproxy_process.set_green(0)
    monkeypatch.setenv(f"AIRFLOW_CONN_{HAPROXY_CONN.upper()}", haproxy_process.connection())
    return haproxy_process


@pytest.fixture
def haproxy_commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every runtime-API command a driver sends (the test's own reads go around this)."""
    sent: list[str] = []
    original = HAProxyRuntime.run

    def recording(self: HAProxyRuntime, command: str) -> str:
        sent.append(command)
        return original(self, command)

    monkeypatch.setattr(HAProxyRuntime, "run", recording)
    return sent


def haproxy_router() -> dict[str, Any]:
    return {
        "type": "haproxy",
        "connection": HAPROXY_CONN,
        "backend": "web",
        "blue_server": "blue",
        "green_server": "green",
    }


def sets(commands: list[str]) -> list[str]:
    return [c for c in commands if c.startswith("set ")]


PLATFORM = {
    "blue": {"type": "kubernetes", "connection": KUBE_CONN},
    "green": {"type": "kubernetes", "connection": KUBE_CONN, "add_labels": {"compute": "fargate"}},
}


MUTATING = ("Modify", "Change", "Create", "Delete", "Put", "Update", "Register", "Deregister")
ZONE_NAME = "shop.example.com."


@dataclass
class Aws:
    server: MotoServer
    listener: str
    blue_tg: str
    green_tg: str
    zone_id: str
    subnets: tuple[str, ...] = ()  # private (their VPC has no internet gateway)

    def alb_router(self) -> dict[str, Any]:
        return {
            "type": "alb",
            "connection": CONNECTION_ID,
            "listener_arn": self.listener,
            "blue_target_group_arn": self.blue_tg,
            "green_target_group_arn": self.green_tg,
        }

    def route53_router(self) -> dict[str, Any]:
        return {
            "type": "route53",
            "connection": CONNECTION_ID,
            "hosted_zone_id": self.zone_id,
            "record_name": ZONE_NAME,
            "record_type": "A",
            "poll_interval": 0.01,
            "blue": {"values": ["192.0.2.10"]},
            "green": {"values": ["192.0.2.20"]},
        }

    def listener_actions(self) -> list[dict[str, Any]]:
        elbv2 = self.server.client("elbv2")
        return elbv2.describe_listeners(ListenerArns=[self.listener])["Listeners"][0]["DefaultActions"]

    def alb_weights(self) -> dict[str, int]:
        forward = next(a for a in self.listener_actions() if a["Type"] == "forward")
        groups = (forward.get("ForwardConfig") or {}).get("TargetGroups")
        if not groups:
            return {"blue": 1} if forward.get("TargetGroupArn") == self.blue_tg else {}
        names = {self.blue_tg: "blue", self.green_tg: "green"}
        return {names[g["TargetGroupArn"]]: g["Weight"] for g in groups}

    def records(self) -> list[dict[str, Any]]:
        route53 = self.server.client("route53")
        return route53.list_resource_record_sets(HostedZoneId=self.zone_id)["ResourceRecordSets"]

    def record_weights(self) -> dict[str, int]:
        return {r["SetIdentifier"]: r["Weight"] for r in self.records() if r.get("SetIdentifier")}

    def profiles(self) -> list[dict[str, Any]]:
        eks = self.server.client("eks")
        return [
            eks.describe_fargate_profile(clusterName="prod", fargateProfileName=name)["fargateProfile"]
            for name in eks.list_fargate_profiles(clusterName="prod")["fargateProfileNames"]
        ]

    def state(self) -> Any:
        """Everything the steps here may change, as describe calls return it."""
        return {"listener": self.listener_actions(), "records": self.records(), "profiles": self.profiles()}


def make_aws(server: MotoServer) -> Aws:
    """An ALB listener forwarding to blue only, an empty hosted zone, an EKS cluster without profiles."""
    ec2, elbv2 = server.client("ec2"), server.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    lb = elbv2.create_load_balancer(Name="shop", Subnets=subnets, Type="application")["LoadBalancers"][0]

    def group(name: str) -> str:
        return elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")[
            "TargetGroups"
        ][0]["TargetGroupArn"]

    blue, green = group("web-blue"), group("web-green")
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}],
    )["Listeners"][0]
    zone = server.client("route53").create_hosted_zone(Name="example.com.", CallerReference=str(time.time()))
    server.client("eks").create_cluster(
        name="prod", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": subnets}
    )
    zone_id = zone["HostedZone"]["Id"].removeprefix("/hostedzone/")
    return Aws(server, listener["ListenerArn"], blue, green, zone_id, tuple(subnets))


def mutations(calls: ApiCalls) -> list[str]:
    return [c.action for c in calls.calls if c.action.split(":")[1].startswith(MUTATING)]


class AdminSocketGone:
    """HAProxy keeps routing, but its runtime API cannot be reached (the socket path is gone)."""

    def __init__(self, proxy: HAProxy) -> None:
        self.proxy, self.hidden = proxy, proxy.socket.with_name("hidden.sock")

    def __enter__(self) -> AdminSocketGone:
        self.proxy.socket.rename(self.hidden)
        return self

    def __exit__(self, *exc: object) -> None:
        self.hidden.rename(self.proxy.socket)
