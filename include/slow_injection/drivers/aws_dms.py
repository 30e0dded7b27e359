"""Data kept in sync by an AWS DMS replication task (the amazon provider's DmsHook): in sync while the
task is `running` with its full load done and no table errored.

Two drivers share that reading: `DmsTaskHealth` (health check: healthy or not) and `DmsTaskSync`
(data-sync gate: ready, waiting while the task is still being created or started, failed once it
stopped, failed or errored tables). Replication lag is a CloudWatch metric (AWS/DMS CDCLatencyTarget):
gate on it with the `cloudwatch` metric source."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.aws.iam import Statement
from include.slow_injection.ports import Probe, Readiness

# Statuses on the way to `running`: a gate waits them out. Every other status that is not `running`
# (stopping, stopped, failed, deleting, failed-move …) means nothing replicates any more.
_ON_THE_WAY = frozenset({"creating", "ready", "starting", "modifying", "moving", "testing"})


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
        return cls(_dms_hook(settings, connection_id, "dms_task health check"), settings)

    @classmethod
    def iam_statements(cls, settings: Settings) -> list[Statement]:
        # DescribeReplicationTasks has no resource-level permission.
        return [Statement(("dms:DescribeReplicationTasks",), ("*",), "read replication task")]

    def describe(self) -> str:
        return f"dms {self.settings.replication_task_arn.rsplit(':', 1)[-1]}"

    def probe(self) -> Probe:
        readiness = task_readiness(self.hook, self.settings)
        return Probe(readiness.state == "ready", readiness.detail)


class DmsTaskSync:
    """The data-sync gate's view of the same task: `connection` is the Airflow AWS connection."""

    port = "data_sync"
    Settings = DmsTaskHealth.Settings

    def __init__(self, hook: Any, settings: DmsTaskHealth.Settings) -> None:
        self.hook, self.settings = hook, settings

    @classmethod
    def from_spec(cls, settings: DmsTaskHealth.Settings, connection_id: str | None, **_: Any) -> DmsTaskSync:
        return cls(_dms_hook(settings, connection_id, "dms data sync"), settings)

    @classmethod
    def iam_statements(cls, settings: DmsTaskHealth.Settings) -> list[Statement]:
        return DmsTaskHealth.iam_statements(settings)

    def describe(self) -> str:
        return f"dms sync {self.settings.replication_task_arn.rsplit(':', 1)[-1]}"

    def check(self) -> Readiness:
        return task_readiness(self.hook, self.settings)


def _dms_hook(settings: DmsTaskHealth.Settings, connection_id: str | None, what: str) -> Any:
    if not connection_id:
        raise ValueError(f"{what} needs `connection` (an Airflow AWS connection)")
    from airflow.providers.amazon.aws.hooks.dms import DmsHook

    return DmsHook(aws_conn_id=connection_id, region_name=settings.region)


def task_readiness(hook: Any, settings: DmsTaskHealth.Settings) -> Readiness:
    """One replication task: ready, waiting (API unreachable, task not running yet, full load under
    way) or failed (no such task, stopped/failed, too many errored tables)."""
    try:
        task = hook.get_task_description(settings.replication_task_arn)
    except Exception as err:
        return Readiness("waiting", f"dms: {type(err).__name__}: {err}"[:300])
    if task is None:
        return Readiness("failed", f"dms: no replication task {settings.replication_task_arn}")
    status, stats = task.get("Status"), task.get("ReplicationTaskStats") or {}
    progress, errored = stats.get("FullLoadProgressPercent"), stats.get("TablesErrored", 0)
    detail = f"task {status}, full load {progress}%, {errored} table(s) errored"
    if status != "running":
        stop_reason = f"; stopped: {task['StopReason']}" if task.get("StopReason") else ""
        return Readiness("waiting" if status in _ON_THE_WAY else "failed", f"dms: {detail}{stop_reason}")
    if errored > settings.max_tables_errored:
        return Readiness("failed", f"dms: {detail} (at most {settings.max_tables_errored})")
    if settings.full_load_complete and task.get("MigrationType") != "cdc" and progress != 100:  # cdc: no full load
        return Readiness("waiting", f"dms: {detail}, full load not complete")
    return Readiness("ready", f"dms: {detail}")
