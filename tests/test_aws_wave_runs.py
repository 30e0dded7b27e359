"""Whole waves through Airflow (dag.test) on AWS drivers, against moto in server mode: green's Fargate
profile set up, ALB weights stepped, CloudWatch metric and alarm gates, SNS notices read back from an
SQS subscription; one wave promotes, one rolls back on a CloudWatch breach. Every AWS call the run
makes is checked against the policy `slow-injection iam` prints for the wave."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from include.slow_injection.permissions import iam_policy
from include.slow_injection.spec import load_wave
from tests.aws import ACCOUNT, CONNECTION_ID, REGION, ApiCalls, MotoServer, uncovered_calls
from tests.test_alb_router import Alb, alb  # noqa: F401 - fixture
from tests.test_wave_runs import run_wave
from tests.waves import sim, write

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

ROLE = f"arn:aws:iam::{ACCOUNT}:role/fargate-pods"


def cloudwatch_gate(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "comparator": "less_than",
        "threshold": 1,
        "interval": 0.2,
        "bake": 0.4,
        "query": "errors",
        "source": {
            "type": "cloudwatch",
            "connection": CONNECTION_ID,
            "period": 60,
            "lookback": 600,
            "metrics": {
                "errors": {
                    "namespace": "Shop",
                    "metric_name": "Errors5xxPercent",
                    "stat": "Maximum",
                    "dimensions": {"Service": "${service}", "Env": "${env}"},
                }
            },
        },
    }


def aws_wave(world: str, alb: Alb, topic_arn: str) -> dict[str, Any]:
    return {
        "id": "aws",
        "owner": "team-test",
        "environments": {
            "blue": {"name": "eks-ec2", "platform": sim(world)},
            "green": {
                "name": "eks-fargate",
                "platform": sim(world),
                "fargate_profile": {
                    "cluster": "prod",
                    "name": "shop-green",
                    "pod_execution_role_arn": ROLE,
                    "subnets": ["subnet-0a1"],
                    "selectors": [{"namespace": "shop-fargate"}],
                    "aws_connection": CONNECTION_ID,
                    "region": REGION,
                    "timeout": 60,
                },
            },
        },
        "retries": {"count": 2, "delay": 0.5},
        "rollback": {"retries": 2, "retry_delay": 0.5},
        "notifications": [{"notifier": {"type": "sns", "connection": CONNECTION_ID, "topic_arn": topic_arn}}],
        "services": [
            {
                "name": "web",
                "exposure": "exposed",
                "workload": {"kind": "Deployment", "namespace": "shop", "name": "web"},
                "router": {k: v for k, v in alb.settings(min_healthy_targets=2).items()},
                "rollout_timeout": 30,
                "traffic_steps": [{"weight": 25, "bake": 0.4}, {"weight": 100, "bake": 0.4}],
                "gates": [cloudwatch_gate("green-5xx")],
            }
        ],
        "release_monitoring": {
            "gates": [
                {
                    "name": "alarms-quiet",
                    "query": "shop-web-green",
                    "comparator": "less_than",
                    "threshold": 1,
                    "interval": 0.2,
                    "bake": 0.4,
                    "source": {"type": "cloudwatch_alarm", "connection": CONNECTION_ID},
                }
            ]
        },
    }


@pytest.fixture
def aws_world(aws: MotoServer, alb: Alb, world):
    """Green's targets healthy, an EKS cluster, an OK alarm, and an SNS topic read through SQS."""
    alb.elbv2.register_targets(
        TargetGroupArn=alb.green, Targets=[{"Id": f"10.0.0.{i}", "Port": 8080} for i in (11, 12)]
    )
    aws.client("eks").create_cluster(
        name="prod", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["subnet-0a1"]}
    )
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="shop-web-green",
        MetricName="Errors5xxPercent",
        Namespace="Shop",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="shop-web-green", StateValue="OK", StateReason="test")
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name="waves")["TopicArn"]
    queue = sqs.create_queue(QueueName="waves")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    world.reset({"workloads": {"blue": {"Deployment/shop/web": {"replicas": 2}}}, "health": {}})
    return {"server": aws, "topic": topic, "queue": queue, "cloudwatch": cloudwatch, "sqs": sqs, "world": world}


def green_error_percent(cloudwatch: Any, value: float) -> None:
    cloudwatch.put_metric_data(
        Namespace="Shop",
        MetricData=[
            {
                # a minute back: the driver reads complete periods only
                "MetricName": "Errors5xxPercent",
                "Value": value,
                "Timestamp": datetime.now(UTC) - timedelta(seconds=70),
                "Dimensions": [{"Name": "Service", "Value": "web"}, {"Name": "Env", "Value": "green"}],
            }
        ],
    )


def notices(sqs: Any, queue: str) -> list[dict[str, Any]]:
    out = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages"):
        for message in batch:
            envelope = json.loads(message["Body"])
            out.append(
                {
                    "event": envelope["MessageAttributes"]["event"]["Value"],
                    "subject": envelope.get("Subject", ""),
                    "text": envelope["Message"],
                }
            )
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return out


def run(tmp_path: Path, setup: dict[str, Any], alb: Alb) -> tuple[str, dict[str, Any], dict[str, Any]]:
    data = aws_wave(setup["world"].path.stem, alb, setup["topic"])
    state, tis = run_wave(tmp_path, setup["world"], data)
    return state, tis, data


def test_an_aws_wave_promotes_on_quiet_cloudwatch(tmp_path: Path, aws_world, alb: Alb, api_calls: ApiCalls) -> None:
    green_error_percent(aws_world["cloudwatch"], 0.2)
    state, tis, data = run(tmp_path, aws_world, alb)
    assert state == "success", {k: v for k, v in tis.items() if v != "success"}
    assert alb.forward_of(alb.default_actions()) == {alb.blue: 0, alb.green: 100}
    assert tis["preparation.ensure_fargate_profile"] == "success"
    assert tis["validation.web.wait_green_targets"] == "success"
    profile = (
        aws_world["server"].client("eks").describe_fargate_profile(clusterName="prod", fargateProfileName="shop-green")
    )
    assert profile["fargateProfile"]["status"] == "ACTIVE"
    sent = notices(aws_world["sqs"], aws_world["queue"])
    events = [n["event"] for n in sent]
    assert events[0] == "wave_started" and events[-1] == "wave_completed"
    others = [e for e in events if e != "phase_completed"]
    assert others == ["wave_started", "wave_completed"]  # one notice per event, no gate failure
    assert [n["subject"].rsplit(": ", 1)[-1] for n in sent if n["event"] == "phase_completed"] == [
        f"{phase} completed"
        for phase in ("preparation", "validation", "gradual_transition", "full_transition", "release_monitoring")
    ]
    assert sent[-1]["subject"] == "[slow-injection] wave aws completed: all traffic on green"
    denied = uncovered_calls(iam_policy(load_wave(write(tmp_path, data))), api_calls.calls)
    assert denied == []
    assert {
        "eks:CreateFargateProfile",
        "elasticloadbalancing:ModifyListener",
        "cloudwatch:GetMetricData",
        "cloudwatch:DescribeAlarms",
        "sns:Publish",
    } <= api_calls.actions()


def test_an_aws_wave_rolls_back_on_a_cloudwatch_breach(
    tmp_path: Path, aws_world, alb: Alb, api_calls: ApiCalls
) -> None:
    green_error_percent(aws_world["cloudwatch"], 7.5)
    state, tis, data = run(tmp_path, aws_world, alb)
    assert state == "failed"
    assert alb.forward_of(alb.default_actions()) == {alb.blue: 100, alb.green: 0}
    assert tis["gradual_transition.web.step1_25pct.gate_green-5xx"] == "failed"
    assert tis["gradual_transition.web.step2_100pct.set_traffic"] == "skipped"
    assert tis["rollback.traffic_to_blue"] == "success"
    sent = notices(aws_world["sqs"], aws_world["queue"])
    events = [n["event"] for n in sent]
    assert [e for e in events if e != "phase_completed"] == [
        "wave_started",
        "gate_failed",
        "rollback_started",
        "rollback_finished",
    ]
    failed = next(n for n in sent if n["event"] == "gate_failed")
    assert "green-5xx [fail]" in failed["text"] and "7.5" in failed["text"]
    assert "->" in failed["subject"] and "rollback" in failed["subject"]
    assert uncovered_calls(iam_policy(load_wave(write(tmp_path, data))), api_calls.calls) == []
