"""An AWS DMS full-load-and-CDC task moving a database blue → green, and a CDC-only task green → blue after
the cut-over (data-replication port), through the amazon provider's DmsHook; lag from CloudWatch
(`AWS/DMS` `CDCLatencyTarget`).

Tasks it owns: `<task_identifier>` (forward: blue's endpoint as source, green's as target) and
`<task_identifier>-rev` (reverse, only with `reverse_*_endpoint_arn`). Endpoints and the replication
instance are the operator's (made beforehand, e.g. with Terraform); this driver only checks they exist.

What DMS cannot do that postgres_logical does: fence writes (the operator stops blue's writers for the
cut-over; the drain waits for CDCLatencyTarget 0), set sequences (DMS does not carry them either), tell
bytes behind. A cut-over without reverse endpoints is refused: the wave could not keep blue up to date.
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.slow_injection.aws.iam import Statement
from include.slow_injection.ports import Change, PrerequisitesMissing, ReplicationNotReady, ReplicationStatus
from include.slow_injection.spec.models import Duration

_ARN = r"^arn:aws[a-z-]*:dms:[a-z0-9-]+:\d{12}:{kind}:\S+$"
_INACTIVE = frozenset({"stopped", "failed", "deleting", "failed-move"})


def _arn(kind: str) -> Any:
    return Field(pattern=_ARN.replace("{kind}", kind))


class DmsReplication:
    port = "data_replication"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        replication_instance_arn: str = _arn("rep")
        blue_endpoint_arn: str = Field(pattern=_ARN.replace("{kind}", "endpoint"), description="blue as the source")
        green_endpoint_arn: str = Field(pattern=_ARN.replace("{kind}", "endpoint"), description="green as the target")
        reverse_green_endpoint_arn: str | None = Field(
            default=None, pattern=_ARN.replace("{kind}", "endpoint"), description="green as the reverse path's source"
        )
        reverse_blue_endpoint_arn: str | None = Field(
            default=None, pattern=_ARN.replace("{kind}", "endpoint"), description="blue as the reverse path's target"
        )
        task_identifier: str = Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,250}$", description="the forward task's name")
        table_mappings: dict[str, Any] = Field(description='DMS table mappings, e.g. {"rules": [...]}')
        region: str | None = None
        poll: Annotated[Duration, Field(gt=0)] = 10.0

        @model_validator(mode="after")
        def _both_or_neither(self) -> DmsReplication.Settings:
            if (self.reverse_green_endpoint_arn is None) != (self.reverse_blue_endpoint_arn is None):
                raise ValueError("reverse_green_endpoint_arn and reverse_blue_endpoint_arn: give both or neither")
            if not isinstance(self.table_mappings.get("rules"), list) or not self.table_mappings["rules"]:
                raise ValueError("table_mappings: needs a non-empty `rules` list")
            return self

    def __init__(self, dms: Any, cloudwatch: Any, settings: Settings) -> None:
        self.dms, self.cloudwatch, self.settings = dms, cloudwatch, settings

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> DmsReplication:
        if not connection_id:
            raise ValueError("dms data replication needs `connection` (an Airflow AWS connection)")
        from airflow.providers.amazon.aws.hooks.dms import DmsHook

        from include.slow_injection.aws.hooks import CloudWatchHook

        return cls(
            DmsHook(aws_conn_id=connection_id, region_name=settings.region),
            CloudWatchHook(aws_conn_id=connection_id, region_name=settings.region),
            settings,
        )

    @classmethod
    def iam_statements(cls, settings: Settings) -> list[Statement]:
        return [
            Statement(
                (
                    "dms:DescribeReplicationTasks",
                    "dms:DescribeEndpoints",
                    "dms:DescribeReplicationInstances",
                ),
                ("*",),
                "read tasks, endpoints, instance",
            ),
            Statement(
                (
                    "dms:CreateReplicationTask",
                    "dms:StartReplicationTask",
                    "dms:StopReplicationTask",
                    "dms:DeleteReplicationTask",
                ),
                ("*",),
                "run the forward and reverse tasks",
            ),
            Statement(("cloudwatch:GetMetricStatistics",), ("*",), "read CDCLatencyTarget"),
        ]

    def describe(self) -> str:
        return f"dms {self.settings.task_identifier}"

    @property
    def _rev(self) -> str:
        return f"{self.settings.task_identifier}-rev"

    # --- reading ---------------------------------------------------------------------------------

    def prerequisites(self) -> list[str]:
        s, problems = self.settings, []
        client = self.dms.conn
        instances = client.describe_replication_instances(
            Filters=[{"Name": "replication-instance-arn", "Values": [s.replication_instance_arn]}]
        ).get("ReplicationInstances", [])
        if not instances:
            problems.append(f"replication instance {s.replication_instance_arn} does not exist")
        for field in (
            "blue_endpoint_arn",
            "green_endpoint_arn",
            "reverse_green_endpoint_arn",
            "reverse_blue_endpoint_arn",
        ):
            arn = getattr(s, field)
            if arn is None:
                continue
            found = client.describe_endpoints(Filters=[{"Name": "endpoint-arn", "Values": [arn]}]).get("Endpoints", [])
            if not found:
                problems.append(f"{field}: endpoint {arn} does not exist")
        return problems

    def _task(self, identifier: str) -> dict[str, Any] | None:
        _, tasks = self.dms.describe_replication_tasks(
            Filters=[{"Name": "replication-task-id", "Values": [identifier]}], WithoutSettings=True
        )
        return tasks[0] if tasks else None

    def _instance_identifier(self) -> str:
        """The instance's name, CloudWatch's ReplicationInstanceIdentifier (the task's dimension is its
        ARN's resource id)."""
        instances = self.dms.conn.describe_replication_instances(
            Filters=[{"Name": "replication-instance-arn", "Values": [self.settings.replication_instance_arn]}]
        ).get("ReplicationInstances", [])
        if not instances:
            raise LookupError(f"replication instance {self.settings.replication_instance_arn} does not exist")
        return str(instances[0]["ReplicationInstanceIdentifier"])

    def _lag(self, task: dict[str, Any]) -> float | None:
        """The newest CDCLatencyTarget datapoint of the last 5 minutes (None: none: AWS publishes it
        per minute, only for a running task)."""
        now = datetime.datetime.now(datetime.UTC)
        instance = self._instance_identifier()
        points = self.cloudwatch.conn.get_metric_statistics(
            Namespace="AWS/DMS",
            MetricName="CDCLatencyTarget",
            Dimensions=[
                {"Name": "ReplicationInstanceIdentifier", "Value": instance},
                {"Name": "ReplicationTaskIdentifier", "Value": task["ReplicationTaskArn"].rsplit(":", 1)[-1]},
            ],
            StartTime=now - datetime.timedelta(minutes=5),
            EndTime=now + datetime.timedelta(minutes=1),  # the period still filling included
            Period=60,
            Statistics=["Maximum"],
        ).get("Datapoints", [])
        return float(max(points, key=lambda p: p["Timestamp"])["Maximum"]) if points else None

    def status(self) -> ReplicationStatus:
        fwd, rev = self._task(self.settings.task_identifier), self._task(self._rev)
        active = {name: t is not None and t["Status"] not in _INACTIVE for name, t in (("fwd", fwd), ("rev", rev))}
        path = {(True, False): "forward", (False, True): "reverse", (False, False): "none"}.get(
            (active["fwd"], active["rev"]), "mixed"
        )
        if path not in ("forward", "reverse"):
            states = f"forward {fwd['Status'] if fwd else 'absent'}, reverse {rev['Status'] if rev else 'absent'}"
            return ReplicationStatus(path, "both", False, None, None, False, states)
        task = fwd if path == "forward" else rev
        assert task is not None
        stats = task.get("ReplicationTaskStats") or {}
        errored = stats.get("TablesErrored", 0)
        copy_done = task.get("MigrationType") == "cdc" or (stats.get("FullLoadProgressPercent") == 100 and not errored)
        detail = f"{path} task {task['Status']}, full load {stats.get('FullLoadProgressPercent')}%, {errored} errored"
        streaming = task["Status"] == "running"
        return ReplicationStatus(
            path, "both", copy_done, None, self._lag(task) if streaming else None, streaming, detail
        )

    # --- converging ------------------------------------------------------------------------------

    def start(self, apply: bool) -> list[Change]:
        if self._reverse_active():
            return []  # past the cut-over
        problems = self.prerequisites()
        if problems:
            raise PrerequisitesMissing(problems)
        changes: list[Change] = []
        task = self._task(self.settings.task_identifier)
        if task is None:
            self._call(changes, apply, "CreateReplicationTask", self._create_args(forward=True))
            task = (
                self._task(self.settings.task_identifier) if apply else {"Status": "ready", "ReplicationTaskArn": "?"}
            )
        assert task is not None
        if task["Status"] in ("creating", "ready", "stopped"):
            kind = "resume-processing" if task["Status"] == "stopped" else "start-replication"
            self._start(changes, apply, task, kind)
        return changes

    def cut_over(self, apply: bool, timeout: float) -> list[Change]:
        s = self.settings
        if s.reverse_green_endpoint_arn is None:
            raise ReplicationNotReady(
                "dms cut-over needs reverse_green_endpoint_arn and reverse_blue_endpoint_arn: without a reverse "
                "path blue would miss green's writes and a rollback would lose them"
            )
        changes: list[Change] = []
        fwd, rev = self._task(s.task_identifier), self._task(self._rev)
        if rev is not None and rev["Status"] not in _INACTIVE and (fwd is None or fwd["Status"] in _INACTIVE):
            return []
        if fwd is not None and fwd["Status"] not in _INACTIVE:
            ready = self.status().readiness(float("inf"), 0)
            if ready.state != "ready":
                if apply:
                    raise ReplicationNotReady(f"no cut-over: {ready.detail}")
                changes.append(Change(self.describe(), ready.detail, "refused until the forward task is ready", False))
            self._drain(changes, apply, timeout, "forward")
            self._call(changes, apply, "StopReplicationTask", {"ReplicationTaskArn": fwd["ReplicationTaskArn"]})
        self._reverse(changes, apply, rev, create=True)
        return changes

    def reset(self, apply: bool, timeout: float) -> list[Change]:
        changes: list[Change] = []
        fwd, rev = self._task(self.settings.task_identifier), self._task(self._rev)
        if rev is not None and rev["Status"] not in _INACTIVE:
            self._drain(changes, apply, timeout, "reverse")
            self._call(changes, apply, "StopReplicationTask", {"ReplicationTaskArn": rev["ReplicationTaskArn"]})
        if fwd is not None and fwd["Status"] in _INACTIVE:
            self._start(changes, apply, fwd, "resume-processing", cdc_now=True)  # blue's changes from now on
        return changes

    def remove(self, apply: bool) -> list[Change]:
        changes: list[Change] = []
        fwd, rev = self._task(self.settings.task_identifier), self._task(self._rev)
        if fwd is not None and fwd["Status"] not in _INACTIVE:
            raise ReplicationNotReady("not removing: the forward task still runs; green never took the writes")
        for task in (rev, fwd):
            if task is None:
                continue
            if task["Status"] == "running":
                self._call(changes, apply, "StopReplicationTask", {"ReplicationTaskArn": task["ReplicationTaskArn"]})
            self._call(changes, apply, "DeleteReplicationTask", {"ReplicationTaskArn": task["ReplicationTaskArn"]})
        return changes

    # --- the pieces ------------------------------------------------------------------------------

    def _reverse_active(self) -> bool:
        rev = self._task(self._rev)
        return rev is not None and rev["Status"] not in _INACTIVE

    def _create_args(self, forward: bool) -> dict[str, Any]:
        s = self.settings
        args: dict[str, Any] = {
            "ReplicationTaskIdentifier": s.task_identifier if forward else self._rev,
            "SourceEndpointArn": s.blue_endpoint_arn if forward else s.reverse_green_endpoint_arn,
            "TargetEndpointArn": s.green_endpoint_arn if forward else s.reverse_blue_endpoint_arn,
            "ReplicationInstanceArn": s.replication_instance_arn,
            "MigrationType": "full-load-and-cdc" if forward else "cdc",
            "TableMappings": json.dumps(s.table_mappings, sort_keys=True),
        }
        if not forward:  # green's changes from the cut-over on; what came before, blue has
            args["CdcStartTime"] = datetime.datetime.now(datetime.UTC)
        return args

    def _reverse(self, changes: list[Change], apply: bool, rev: dict[str, Any] | None, create: bool) -> None:
        if rev is None:
            self._call(changes, apply, "CreateReplicationTask", self._create_args(forward=False))
            rev = self._task(self._rev) if apply else {"Status": "ready", "ReplicationTaskArn": "?"}
        assert rev is not None
        if rev["Status"] in ("creating", "ready", "stopped"):
            self._start(changes, apply, rev, "start-replication" if rev["Status"] != "stopped" else "resume-processing")

    def _start(
        self, changes: list[Change], apply: bool, task: dict[str, Any], kind: str, cdc_now: bool = False
    ) -> None:
        args: dict[str, Any] = {"ReplicationTaskArn": task["ReplicationTaskArn"], "StartReplicationTaskType": kind}
        if cdc_now:
            args["CdcStartTime"] = datetime.datetime.now(datetime.UTC)
        try:
            self._call(changes, apply, "StartReplicationTask", args)
        except Exception as err:
            if "InvalidResourceStateFault" in type(err).__name__ or "InvalidResourceState" in str(err):
                raise ReplicationNotReady(f"task {task['ReplicationTaskArn']} not startable yet: {err}") from None
            raise

    def _drain(self, changes: list[Change], apply: bool, timeout: float, path: str) -> None:
        """Wait for CDCLatencyTarget 0: the operator has stopped the source's writers (DMS cannot fence)."""
        if not apply:
            changes.append(Change(self.describe(), f"{path} task running", "drained to CDC latency 0 (waits)", False))
            return
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status.path == path and status.lag_seconds is not None and status.lag_seconds <= 0:
                break
            if time.monotonic() > deadline:
                raise ReplicationNotReady(
                    f"{path} task did not drain within {timeout:g}s (CDC latency {status.lag_seconds}); "
                    "its source's writers must be stopped first"
                )
            time.sleep(self.settings.poll)
        changes.append(Change(self.describe(), f"{path} task running", "drained to CDC latency 0", True))

    def _call(self, changes: list[Change], apply: bool, operation: str, args: dict[str, Any]) -> None:
        shown = json.dumps(args, default=str, sort_keys=True)
        if apply:
            method = "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")
            getattr(self.dms.conn, method)(**args)
        changes.append(Change(self.describe(), "", f"dms {operation} {shown}", apply))
