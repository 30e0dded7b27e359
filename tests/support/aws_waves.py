"""Waves on moto's AWS: the world, the spec, the green error rate, the notices."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.aws import ACCOUNT, CONNECTION_ID, REGION, Alb, MotoServer
from tests.support.waves import sim

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
            # One-second high-resolution periods, settled when they end: a gate reads only what was
            # published after it started, and these waves bake for fractions of a second.
            "period": 1,
            "settle": 0,
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
                    "subnets": list(alb.subnets[:1]),  # private: Fargate takes no other
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
        name="prod", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": list(alb.subnets)}
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
    yield {"server": aws, "topic": topic, "queue": queue, "cloudwatch": cloudwatch, "sqs": sqs, "world": world}
    stop_publishing()


_PUBLISHERS: list[threading.Event] = []
PUBLISH_FOR = 300.0  # a publisher stops by itself after this, whatever happens to the test


def green_error_percent(cloudwatch: Any, value: float) -> None:
    """Green's error rate published every 0.2 s (a 1 s high-resolution metric) until the aws_world
    fixture ends: a gate judges only datapoints of periods that started after it did."""
    stop = threading.Event()
    _PUBLISHERS.append(stop)
    until = time.monotonic() + PUBLISH_FOR

    def publish() -> None:
        while not stop.is_set() and time.monotonic() < until:
            cloudwatch.put_metric_data(
                Namespace="Shop",
                MetricData=[
                    {
                        "MetricName": "Errors5xxPercent",
                        "Value": value,
                        "Timestamp": datetime.now(UTC),
                        "StorageResolution": 1,
                        "Dimensions": [{"Name": "Service", "Value": "web"}, {"Name": "Env", "Value": "green"}],
                    }
                ],
            )
            stop.wait(0.2)

    threading.Thread(target=publish, name="green-error-percent", daemon=True).start()


def stop_publishing() -> None:
    while _PUBLISHERS:
        _PUBLISHERS.pop().set()


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
