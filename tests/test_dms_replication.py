"""The dms data-replication driver on moto in server mode: a full-load-and-CDC task created, started and
watched; the cut-over to a CDC-only reverse task and the reset back. What moto cannot show is listed in
docs/data-migration.md (moto moves no data, publishes no CDCLatencyTarget, never leaves `creating` by
itself, ignores CdcStartTime and StartReplicationTaskType)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from include.slow_injection import registry
from include.slow_injection.aws.iam import policy
from include.slow_injection.drivers.aws_dms_replication import DmsReplication
from include.slow_injection.ports import DataReplication, PrerequisitesMissing, ReplicationNotReady
from tests.support.aws import CONNECTION_ID, REGION, ApiCalls, MotoServer, uncovered_calls

MAPPINGS = {
    "rules": [
        {
            "rule-type": "selection",
            "rule-id": "1",
            "rule-name": "orders",
            "object-locator": {"schema-name": "public", "table-name": "orders"},
            "rule-action": "include",
        }
    ]
}


@pytest.fixture
def dms_world(aws: MotoServer) -> dict[str, Any]:
    """A replication instance and four endpoints (blue and green, each as source and as target)."""
    client = aws.client("dms")
    instance = client.create_replication_instance(
        ReplicationInstanceIdentifier="shop-ri", ReplicationInstanceClass="dms.t3.medium"
    )["ReplicationInstance"]["ReplicationInstanceArn"]

    def endpoint(name: str, kind: str) -> str:
        return client.create_endpoint(
            EndpointIdentifier=name,
            EndpointType=kind,
            EngineName="postgres",
            ServerName=f"{name}.example",
            Port=5432,
            DatabaseName="shop",
            Username="dms",
            Password="dms-secret",
        )["Endpoint"]["EndpointArn"]

    return {
        "connection": CONNECTION_ID,
        "replication_instance_arn": instance,
        "blue_endpoint_arn": endpoint("blue-src", "source"),
        "green_endpoint_arn": endpoint("green-tgt", "target"),
        "reverse_green_endpoint_arn": endpoint("green-src", "source"),
        "reverse_blue_endpoint_arn": endpoint("blue-tgt", "target"),
        "task_identifier": "shop-move",
        "table_mappings": MAPPINGS,
        "poll": 0.1,
    }


def dms(settings: dict[str, Any]) -> DmsReplication:
    return registry.build("data_replication", {"type": "dms", **settings})


def publish_latency(aws: MotoServer, task_arn: str, seconds: float) -> None:
    """What AWS publishes once a minute for a running task; moto publishes nothing."""
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/DMS",
        MetricData=[
            {
                "MetricName": "CDCLatencyTarget",
                "Dimensions": [
                    {"Name": "ReplicationInstanceIdentifier", "Value": "shop-ri"},
                    {"Name": "ReplicationTaskIdentifier", "Value": task_arn.rsplit(":", 1)[-1]},
                ],
                "Timestamp": datetime.datetime.now(datetime.UTC),
                "Value": seconds,
            }
        ],
    )


def test_a_full_load_and_cdc_task_is_created_started_and_watched(
    aws: MotoServer, dms_world: dict[str, Any], api_calls: ApiCalls
) -> None:
    repl = dms(dms_world)
    assert isinstance(repl, DataReplication)
    assert repl.prerequisites() == []
    planned = repl.start(apply=False)
    assert [c.after.split(" ")[1] for c in planned] == ["CreateReplicationTask", "StartReplicationTask"]
    assert repl.status().path == "none"  # the dry run created nothing
    started = repl.start(apply=True)
    assert len(started) == 2 and all(c.applied for c in started)
    assert repl.start(apply=True) == []  # running: nothing to do
    task = aws.client("dms").describe_replication_tasks()["ReplicationTasks"][0]
    assert (task["MigrationType"], task["Status"]) == ("full-load-and-cdc", "running")
    waiting = repl.status().readiness(5.0, 0)
    assert waiting.state == "waiting" and waiting.detail.startswith("lag unknown"), waiting
    publish_latency(aws, task["ReplicationTaskArn"], 2.0)
    ready = repl.status().readiness(5.0, 0)
    assert ready.state == "ready" and "lag 2.00s" in ready.detail, ready
    publish_latency(aws, task["ReplicationTaskArn"], 30.0)
    assert repl.status().readiness(5.0, 0).state == "waiting"
    settings = DmsReplication.Settings.model_validate({k: v for k, v in dms_world.items() if k != "connection"})
    assert uncovered_calls(policy(DmsReplication.iam_statements(settings)), api_calls.calls) == []


def test_cut_over_reverses_to_a_cdc_task_and_a_reset_resumes_the_forward_one(
    aws: MotoServer, dms_world: dict[str, Any]
) -> None:
    repl = dms(dms_world)
    repl.start(apply=True)
    forward = aws.client("dms").describe_replication_tasks()["ReplicationTasks"][0]["ReplicationTaskArn"]
    publish_latency(aws, forward, 0.0)
    changes = repl.cut_over(apply=True, timeout=5)
    assert [c.after.split(" ")[1] for c in changes if c.after.startswith("dms ")] == [
        "StopReplicationTask",
        "CreateReplicationTask",
        "StartReplicationTask",
    ]
    tasks = {
        t["ReplicationTaskIdentifier"]: t for t in aws.client("dms").describe_replication_tasks()["ReplicationTasks"]
    }
    assert tasks["shop-move"]["Status"] == "stopped"
    assert (tasks["shop-move-rev"]["MigrationType"], tasks["shop-move-rev"]["Status"]) == ("cdc", "running")
    assert tasks["shop-move-rev"]["SourceEndpointArn"] == dms_world["reverse_green_endpoint_arn"]
    assert repl.status().path == "reverse" and repl.cut_over(apply=True, timeout=5) == []
    publish_latency(aws, tasks["shop-move-rev"]["ReplicationTaskArn"], 0.0)
    reset = repl.reset(apply=True, timeout=5)
    assert "StartReplicationTask" in reset[-1].after and "resume-processing" in reset[-1].after
    assert repl.status().path == "forward" and repl.reset(apply=True, timeout=5) == []
    publish_latency(aws, forward, 0.0)
    repl.cut_over(apply=True, timeout=5)
    assert repl.remove(apply=True)
    assert aws.client("dms").describe_replication_tasks()["ReplicationTasks"] == []
    assert repl.remove(apply=True) == []


def test_a_cut_over_waits_for_the_drain_and_refuses_without_a_reverse_path(
    aws: MotoServer, dms_world: dict[str, Any]
) -> None:
    repl = dms(dms_world)
    repl.start(apply=True)
    forward = aws.client("dms").describe_replication_tasks()["ReplicationTasks"][0]["ReplicationTaskArn"]
    with pytest.raises(ReplicationNotReady, match="no cut-over: lag unknown"):  # no latency reading: never promoted
        repl.cut_over(apply=True, timeout=0.3)
    publish_latency(aws, forward, 12.0)
    with pytest.raises(ReplicationNotReady, match="did not drain within 0.3s"):
        repl.cut_over(apply=True, timeout=0.3)
    assert repl.status().path == "forward"  # still running: nothing was stopped
    one_way = dms({k: v for k, v in dms_world.items() if not k.startswith("reverse_")})
    with pytest.raises(ReplicationNotReady, match="needs reverse_green_endpoint_arn"):
        one_way.cut_over(apply=True, timeout=1)


def test_missing_endpoints_are_named(aws: MotoServer, dms_world: dict[str, Any]) -> None:
    gone = f"arn:aws:dms:{REGION}:123456789012:endpoint:GONE"
    repl = dms({**dms_world, "green_endpoint_arn": gone})
    with pytest.raises(PrerequisitesMissing, match=f"green_endpoint_arn: endpoint {gone} does not exist"):
        repl.start(apply=True)
    with pytest.raises(ValidationError, match="give both or neither"):
        DmsReplication.Settings.model_validate(
            {**{k: v for k, v in dms_world.items() if k != "connection"}, "reverse_blue_endpoint_arn": None}
        )
