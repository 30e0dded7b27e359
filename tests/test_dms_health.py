"""Data-sync building block: a DMS replication task as a health check, against moto in server mode."""

from __future__ import annotations

from typing import Any

from include.slow_injection import registry
from include.slow_injection.aws.iam import policy
from include.slow_injection.drivers.aws_dms import DmsTaskHealth
from tests.support.aws import CONNECTION_ID, ApiCalls, uncovered_calls


def check(arn: str) -> DmsTaskHealth:
    return registry.build(
        "health_check", {"type": "dms_task", "connection": CONNECTION_ID, "replication_task_arn": arn}
    )


def test_a_running_task_is_healthy_and_a_stopped_or_missing_one_is_not(
    dms: tuple[Any, str], api_calls: ApiCalls
) -> None:
    client, arn = dms
    assert check(arn).probe().ok is False  # created, not started
    client.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="start-replication")
    running = check(arn).probe()
    assert running.ok and running.detail == "dms: task running, full load 100%, 0 table(s) errored"
    client.stop_replication_task(ReplicationTaskArn=arn)
    stopped = check(arn).probe()
    assert not stopped.ok and "task stopped" in stopped.detail
    missing = check(arn.replace("orders-sync", "nope")).probe()
    assert not missing.ok and "no replication task" in missing.detail
    settings = DmsTaskHealth.Settings(replication_task_arn=arn)
    assert uncovered_calls(policy(DmsTaskHealth.iam_statements(settings)), api_calls.calls) == []


def test_errored_tables_and_an_unfinished_full_load_are_unhealthy() -> None:
    class Hook:
        def __init__(self, stats: dict[str, Any]) -> None:
            self.stats = stats

        def get_task_description(self, arn: str) -> dict[str, Any]:
            return {"Status": "running", "ReplicationTaskStats": self.stats}

    settings = DmsTaskHealth.Settings(replication_task_arn="arn:aws:dms:eu-west-1:123456789012:task:X")
    assert not DmsTaskHealth(Hook({"FullLoadProgressPercent": 100, "TablesErrored": 1}), settings).probe().ok
    assert not DmsTaskHealth(Hook({"FullLoadProgressPercent": 40, "TablesErrored": 0}), settings).probe().ok
    lenient = settings.model_copy(update={"full_load_complete": False})
    assert DmsTaskHealth(Hook({"FullLoadProgressPercent": 40, "TablesErrored": 0}), lenient).probe().ok
