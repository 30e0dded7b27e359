"""Data kept in sync by an AWS DMS replication task, as a health check (the amazon provider's DmsHook):
healthy while the task is `running` with its full load done and no table errored. Replication lag
is a CloudWatch metric (AWS/DMS CDCLatencyTarget): gate on it with the `cloudwatch` metric source."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.aws.iam import Statement
from include.slow_injection.ports import Probe


class DmsTaskHealth:
    port = "health_check"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        replication_task_arn: str = Field(pattern=r"^arn:aws[a-z-]*:dms:[a-z0-9-]+:\d{12}:task:\S+$")
        full_load_complete: bool = Field(default=True, description="unhealthy until the full load reached 100 %")
        max_tables_errored: int = Field(default=0, ge=0)
        region: str | None = None

    def __init__(self, hook: Any, settings: Settings) -> None:
        self.hook, self.settings = hook, settings

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> DmsTaskHealth:
        if not connection_id:
            raise ValueError("dms_task health check needs `connection` (an Airflow AWS connection)")
        from airflow.providers.amazon.aws.hooks.dms import DmsHook

        return cls(DmsHook(aws_conn_id=connection_id, region_name=settings.region), settings)

    @classmethod
    def iam_statements(cls, settings: Settings) -> list[Statement]:
        # DescribeReplicationTasks has no resource-level permission.
        return [Statement(("dms:DescribeReplicationTasks",), ("*",), "read replication task")]

    def describe(self) -> str:
        return f"dms {self.settings.replication_task_arn.rsplit(':', 1)[-1]}"

    def probe(self) -> Probe:
        try:
            task = self.hook.get_task_description(self.settings.replication_task_arn)
        except Exception as err:  # noqa: BLE001 - an unreachable API is an unhealthy probe, never a pass
            return Probe(False, f"dms: {type(err).__name__}: {err}"[:300])
        if task is None:
            return Probe(False, f"dms: no replication task {self.settings.replication_task_arn}")
        status, stats = task.get("Status"), task.get("ReplicationTaskStats") or {}
        progress, errored = stats.get("FullLoadProgressPercent"), stats.get("TablesErrored", 0)
        detail = f"task {status}, full load {progress}%, {errored} table(s) errored"
        if status != "running":
            return Probe(False, f"dms: {detail}{'; stopped: ' + task['StopReason'] if task.get('StopReason') else ''}")
        if errored > self.settings.max_tables_errored:
            return Probe(False, f"dms: {detail} (at most {self.settings.max_tables_errored})")
        if self.settings.full_load_complete and progress != 100:
            return Probe(False, f"dms: {detail}, full load not complete")
        return Probe(True, f"dms: {detail}")
