"""CloudWatch metric sources: a metric (or metric math over several) through GetMetricData, and the
state of CloudWatch alarms through DescribeAlarms. No data, an alarm that does not exist and every API
or network error are inconclusive: none of them ever passes a gate; an alarm without data follows the
source's `insufficient_data` policy.

CloudWatch data arrives late (ALB's 60 s periods are published 1-3 min after they end), so a gate
reading judges only periods that started at or after the traffic change and have settled: ended at
least `settle` seconds ago. Each returned datapoint's timestamp is checked against that window."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from string import Template
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from include.slow_injection.aws.iam import Statement, arn
from include.slow_injection.ports import Measurement, Series

# CloudWatch's rule for a MetricDataQuery Id.
METRIC_ID = re.compile(r"^[a-z][a-zA-Z0-9_]{0,254}$")

STANDARD_STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 20, 30)
HIGH_RESOLUTION_RETENTION = 3 * 3600  # sub-minute datapoints are kept 3 hours
MAX_LOOKBACK = 86400  # a gate judges recent data; more is almost always a unit mistake (ms for s)
PLACEHOLDERS = ("service", "env")  # what a dimension value may name: ${service}, ${env}
MAX_ALARM_NAMES = 100  # DescribeAlarms AlarmNames limit
MAX_RANGE_PAGES = 100  # GetMetricData pages (100,800 datapoints each) one range query may read
MAX_QUERIES = 500  # MetricDataQueries in one GetMetricData call
MAX_SETTLE = 3600
DEFAULT_SETTLE_CAP = 180  # ALB's 60 s periods are published 1-3 min after they end


# CloudWatch's StandardUnit enum, spelled out: loading botocore's model costs ~0.4 s, and specs are
# validated at every DAG parse (tests compare this with botocore's model).
STANDARD_UNITS = (
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
)


def _standard_units() -> tuple[str, ...]:
    return STANDARD_UNITS


def _client(conn_id: str | None, region: str | None) -> Any:
    # Imported here: spec validation imports this module only for its Settings.
    from include.slow_injection.aws.hooks import CloudWatchHook

    return CloudWatchHook(aws_conn_id=conn_id, region_name=region).conn


def _aws_error(err: Exception) -> str:
    """A short reason for an inconclusive reading, from any boto error."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        return f"cloudwatch {err.operation_name}: {error.get('Code')}: {error.get('Message', '')}"[:300]
    trouble = "unreachable" if isinstance(err, (ConnectionError, HTTPClientError)) else "error"
    return f"cloudwatch {trouble}: {type(err).__name__}: {err}"[:300]


class MetricSpec(BaseModel):
    """One CloudWatch metric and the statistic a gate reads of it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    namespace: str = Field(min_length=1, max_length=255, description="e.g. AWS/ApplicationELB")
    metric_name: str = Field(min_length=1, max_length=255)
    dimensions: dict[str, str] = Field(
        default_factory=dict, max_length=30, description="name → value; values may use ${service} and ${env}"
    )
    stat: str = Field(min_length=1, description="Sum, Average, Minimum, Maximum, SampleCount or e.g. p99")
    unit: str | None = Field(default=None, description="only datapoints in this unit; e.g. Count")
    zero_when_missing_with: str | None = Field(
        default=None,
        description="another metric id: a period without a datapoint of this metric reads 0 when that one has "
        "a datapoint (ALB publishes HTTPCode_* counts only for periods with such responses; RequestCount "
        "shows there was traffic). Applies when the gate queries this id; in an expression use FILL()",
    )

    @field_validator("stat")
    @classmethod
    def _stat_spelled_like_cloudwatch(cls, stat: str) -> str:
        # CloudWatch stats are case sensitive; "sum" silently returns nothing.
        for standard in STANDARD_STATS:
            if stat.lower() == standard.lower() and stat != standard:
                raise ValueError(f"must be spelled {standard!r} (CloudWatch statistics are case sensitive)")
        return stat

    @field_validator("unit")
    @classmethod
    def _unit_is_standard(cls, unit: str | None) -> str | None:
        if unit is not None and unit not in _standard_units():
            raise ValueError(f"unknown CloudWatch unit {unit!r}; one of {', '.join(_standard_units())}")
        return unit

    @field_validator("dimensions")
    @classmethod
    def _dimensions_not_empty(cls, dimensions: dict[str, str]) -> dict[str, str]:
        for name, value in dimensions.items():
            if not name or not value:
                raise ValueError(f"dimension {name!r}: names and values must not be empty")
        return dimensions


class CloudWatchMetrics:
    """Gate query = one of the metric ids, or a metric math expression over them
    (e.g. `100 * errors / requests`). The value is the most recent settled datapoint within
    `lookback`; a gate reading (query_after) also leaves out every period that started before the
    traffic change. A range query (parity) reads every datapoint from start to end instead, its period
    from the step (range_period) rather than `period`; `lookback` does not apply to it."""

    port = "metric_source"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

        metrics: dict[str, MetricSpec] = Field(
            min_length=1,
            max_length=MAX_QUERIES - 1,  # with the expression, one GetMetricData call of ≤ 500 queries
            description="id (lowercase first letter, letters, digits, _) → metric; the ids a query may use",
        )
        period: int = Field(
            default=60, description="seconds per datapoint: 1, 5, 10, 20, 30 (high resolution) or a multiple of 60"
        )
        settle: int | None = Field(
            default=None,
            description="seconds a period's datapoint may take to arrive after the period ends; a reading "
            "never uses a period that ended less than this ago (it may still be filling). Default: three "
            f"periods, at most {DEFAULT_SETTLE_CAP} s (ALB's 60 s metrics arrive 1-3 min late)",
        )
        lookback: int | None = Field(
            default=None,
            description="how far back (s) to look for the latest datapoint; the start is rounded down to a "
            "period boundary. Default: settle + 2 periods (300 s for 60 s periods)",
        )
        region: str | None = Field(default=None, description="defaults to the connection's region")

        @field_validator("metrics")
        @classmethod
        def _ids_cloudwatch_accepts(cls, metrics: dict[str, MetricSpec]) -> dict[str, MetricSpec]:
            for metric_id, metric in metrics.items():
                if not METRIC_ID.match(metric_id):
                    raise ValueError(
                        f"id {metric_id!r}: must start with a lowercase letter, then only letters, "
                        "digits and _ (a CloudWatch query id)"
                    )
                other = metric.zero_when_missing_with
                if other is not None and (other == metric_id or other not in metrics):
                    raise ValueError(
                        f"{metric_id}.zero_when_missing_with: {other!r} must be another metric id of this source "
                        f"(others: {', '.join(m for m in metrics if m != metric_id) or 'none'})"
                    )
            return metrics

        @property
        def settle_seconds(self) -> int:
            return self.settle if self.settle is not None else min(3 * self.period, DEFAULT_SETTLE_CAP)

        @property
        def lookback_seconds(self) -> int:
            return self.lookback if self.lookback is not None else self.settle_seconds + 2 * self.period

        @model_validator(mode="after")
        def _period_settle_and_lookback(self) -> CloudWatchMetrics.Settings:
            if not (self.period in HIGH_RESOLUTION_PERIODS or (self.period >= 60 and self.period % 60 == 0)):
                raise ValueError(f"period: must be 1, 5, 10, 20, 30 or a multiple of 60, got {self.period}")
            if self.settle is not None and not 0 <= self.settle <= MAX_SETTLE:
                raise ValueError(f"settle: must be from 0 to {MAX_SETTLE} s, got {self.settle}")
            settle, lookback = self.settle_seconds, self.lookback_seconds
            if not settle + self.period <= lookback <= MAX_LOOKBACK:
                raise ValueError(
                    f"lookback: must be from settle + period ({settle} + {self.period} s, so that one settled "
                    f"period fits) to {MAX_LOOKBACK} s, got {lookback}"
                )
            if self.period < 60 and lookback > HIGH_RESOLUTION_RETENTION:
                raise ValueError(
                    f"lookback: a {self.period} s period reads high-resolution data, kept only "
                    f"{HIGH_RESOLUTION_RETENTION} s; got {lookback}"
                )
            return self

    def __init__(
        self,
        settings: Settings,
        connection_id: str | None,
        context: dict[str, Any],
        client_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.connection_id, self.context, self.clock = settings, connection_id, context, clock
        self._client_factory = client_factory or (lambda: _client(connection_id, settings.region))
        self._client: Any = None

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **context: Any) -> CloudWatchMetrics:
        """No connection means boto3's default credentials (e.g. the pod's IAM role)."""
        return cls(settings, connection_id, context)

    @classmethod
    def iam_statements(cls, settings: Settings, queries: Iterable[str] | None = None) -> list[Statement]:
        """`queries` is accepted for symmetry with CloudWatchAlarms; it cannot narrow anything here."""
        # GetMetricData has no resource-level permission: "*" is the only resource it takes.
        return [Statement(("cloudwatch:GetMetricData",), ("*",), "read gate metrics")]

    def describe(self) -> str:
        where = ", ".join(filter(None, [self.connection_id, self.settings.region]))
        return (
            f"cloudwatch metrics {', '.join(self.settings.metrics)} ({where or 'default AWS credentials'}, "
            f"period {self.settings.period}s, settle {self.settings.settle_seconds}s)"
        )

    # --- when a reading can judge a change (ports.SettlingSource) ------------------------------------

    def first_settled_at(self, since: float) -> float:
        """When the first period that starts at or after `since` has ended and settled."""
        period = self.settings.period
        return math.ceil(since / period) * period + period + self.settings.settle_seconds

    def longest_settle(self) -> float:
        """The longest first_settled_at(since) - since can be: a change just after a period boundary."""
        return 2 * self.settings.period + self.settings.settle_seconds

    def window(self, since: float | None = None) -> tuple[float, float]:
        """[start, end) of the periods a reading may use now: within lookback, started at or after
        `since`, ended at least `settle` ago. Both on period boundaries; start ≥ end when none may."""
        period, now = self.settings.period, self.clock()
        end = (now - self.settings.settle_seconds) // period * period
        start = (now - self.settings.lookback_seconds) // period * period
        if since is not None:
            start = max(start, math.ceil(since / period) * period)
        return start, end

    # --- the request -------------------------------------------------------------------------------

    def _dimension_values(self) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
        """Each metric's Dimensions with ${service}/${env} filled in, and the placeholders left open."""
        out: dict[str, list[dict[str, str]]] = {}
        unresolved: list[str] = []
        values = {k: str(v) for k, v in self.context.items() if k in PLACEHOLDERS and v not in (None, "")}
        for metric_id, metric in self.settings.metrics.items():
            dims = []
            for name, raw in metric.dimensions.items():
                template = Template(raw)
                unresolved += [
                    f"${{{key}}} in metrics.{metric_id}.dimensions.{name}"
                    for key in template.get_identifiers()
                    if key not in values
                ]
                dims.append({"Name": name, "Value": template.safe_substitute(values)})
            out[metric_id] = dims
        return out, unresolved

    def _metric_data_queries(self, query: str, period: int) -> list[dict[str, Any]]:
        """The MetricDataQueries for a query: the metric id (with the metric that tells a missing
        datapoint is zero, if it has one), or the expression over every metric. Raises ValueError for
        a query it cannot send."""
        query = query.strip()
        dimensions, unresolved = self._dimension_values()
        if unresolved:
            raise ValueError("unresolved placeholder " + "; ".join(unresolved))
        if METRIC_ID.match(query) and query not in self.settings.metrics:
            raise ValueError(f"query {query!r} is not a metric id of this source ({', '.join(self.settings.metrics)})")

        def metric_stat(metric_id: str, return_data: bool) -> dict[str, Any]:
            metric = self.settings.metrics[metric_id]
            stat: dict[str, Any] = {
                "Metric": {
                    "Namespace": metric.namespace,
                    "MetricName": metric.metric_name,
                    "Dimensions": dimensions[metric_id],
                },
                "Period": period,
                "Stat": metric.stat,
            }
            if metric.unit:
                stat["Unit"] = metric.unit
            return {"Id": metric_id, "MetricStat": stat, "ReturnData": return_data}

        if query in self.settings.metrics:
            queries = [metric_stat(query, True)]
            if (present := self.settings.metrics[query].zero_when_missing_with) is not None:
                queries.append(metric_stat(present, True))
        else:
            # Every metric goes along (unreturned) so the expression may use any of them, even
            # through functions like METRICS(); only the expression's result comes back.
            result_id = next(
                f"result{n}" for n in range(len(self.settings.metrics) + 1) if f"result{n}" not in self.settings.metrics
            )
            queries = [metric_stat(metric_id, False) for metric_id in self.settings.metrics]
            queries.append({"Id": result_id, "Expression": query, "ReturnData": True})
        if len(queries) > MAX_QUERIES:  # Settings keep metrics below this; a guard, not a split
            raise ValueError(f"{len(queries)} queries; GetMetricData takes at most {MAX_QUERIES}")
        return queries

    def request(self, query: str, since: float | None = None) -> dict[str, Any]:
        """GetMetricData arguments for a gate query: the settled periods of window(since). Raises
        ValueError for a query it cannot send, or when no such period has settled yet."""
        queries = self._metric_data_queries(query, self.settings.period)
        start, end = self.window(since)
        if end - start < self.settings.period:
            assert since is not None  # lookback ≥ settle + period leaves one period without `since`
            raise ValueError(
                f"no settled {self.settings.period} s period since {_hms(since)} (the gate's start) yet: the first "
                f"settles at {_hms(self.first_settled_at(since))} (read {self.settings.settle_seconds} s after it ends)"
            )
        return {
            "MetricDataQueries": queries,
            "StartTime": datetime.fromtimestamp(start, UTC),
            "EndTime": datetime.fromtimestamp(end, UTC),
            "ScanBy": "TimestampDescending",  # newest first
        }

    def range_request(self, query: str, start: float, end: float, step: float) -> dict[str, Any]:
        """GetMetricData arguments for a range query: Period = range_period(step), oldest first; start
        and end rounded down to period boundaries (so the period still filling at `end` is left out).
        Raises ValueError for a query or range it cannot send."""
        period = range_period(step, age=self.clock() - start)
        first, last = start // period * period, end // period * period
        if last <= first:
            raise ValueError(f"range {start:.0f}..{end:.0f} holds no complete {period} s period")
        return {
            "MetricDataQueries": self._metric_data_queries(query, period),
            "StartTime": datetime.fromtimestamp(first, UTC),
            "EndTime": datetime.fromtimestamp(last, UTC),
            "ScanBy": "TimestampAscending",
        }

    # --- the reading -------------------------------------------------------------------------------

    def query(self, query: str) -> Measurement:
        """The latest settled datapoint within lookback, whenever it was measured."""
        return self._read(query, None)

    def query_after(self, query: str, since: float) -> Measurement:
        """The latest settled datapoint of a period that started at or after `since` (the change)."""
        return self._read(query, since)

    def _read(self, query: str, since: float | None) -> Measurement:
        try:
            request = self.request(query, since)
        except ValueError as err:
            return Measurement(None, str(err))
        try:
            if self._client is None:
                self._client = self._client_factory()
            response = self._client.get_metric_data(**request)
        except Exception as err:  # botocore errors, a missing connection: inconclusive, never raised
            return Measurement(None, _aws_error(err))
        start, end = (request[k].timestamp() for k in ("StartTime", "EndTime"))
        metric = self.settings.metrics.get(query.strip())
        zero_with = metric.zero_when_missing_with if metric is not None else None
        return self.parse(response, start, end, self.settings.period, zero_with)

    @staticmethod
    def parse(
        response: dict[str, Any], start: float, end: float, period: int, zero_when_missing_with: str | None = None
    ) -> Measurement:
        """The value of the newest datapoint whose period lies in [start, end): its timestamp is checked,
        not trusted. With `zero_when_missing_with`, the query's metric reads 0 for a period where only
        that other metric has a datapoint (ALB publishes HTTPCode_* only for periods with such responses)."""
        results = response.get("MetricDataResults") or []
        messages = [*response.get("Messages", []), *(m for r in results for m in r.get("Messages", []))]
        if messages:
            text = "; ".join(f"{m.get('Code')}: {m.get('Value')}" for m in messages)
            return Measurement(None, f"cloudwatch messages: {text}"[:300])
        wanted = 1 if zero_when_missing_with is None else 2
        if len(results) != wanted:
            return Measurement(None, f"cloudwatch returned {len(results)} results; a gate needs exactly {wanted}")
        if any(len(r.get("Timestamps") or []) != len(r.get("Values") or []) for r in results):
            return Measurement(None, "cloudwatch returned values without their timestamps")
        by_id = {r.get("Id"): _settled_points(r, start, end, period) for r in results}
        if zero_when_missing_with is not None:
            presence = by_id.pop(zero_when_missing_with, None)
            if presence is None or len(by_id) != 1:
                return Measurement(None, f"cloudwatch returned ids {sorted(map(str, by_id))}, not the ones asked")
            points = next(iter(by_id.values()))
            points = {**dict.fromkeys(presence, 0.0), **points}
        else:
            points = next(iter(by_id.values()))
        result = results[0]
        if not points:
            status = result.get("StatusCode")
            if all(r.get("StatusCode") == "Complete" for r in results):
                return Measurement(None)  # no data
            return Measurement(None, f"cloudwatch status {status} without values")
        # PartialData with values is fine: more pages would only hold older datapoints.
        value = points[max(points)]
        if math.isnan(value) or math.isinf(value):
            return Measurement(None, f"cloudwatch value is {value}")
        return Measurement(value)

    def query_range(self, query: str, start: float, end: float, step: float) -> Series:
        try:
            request = self.range_request(query, start, end, step)
        except ValueError as err:
            return Series((), str(err))
        pages: list[dict[str, Any]] = []
        try:
            if self._client is None:
                self._client = self._client_factory()
            for page in self._client.get_paginator("get_metric_data").paginate(**request):
                if len(pages) == MAX_RANGE_PAGES:
                    return Series((), f"cloudwatch: more than {MAX_RANGE_PAGES} pages of datapoints")
                pages.append(page)
        except Exception as err:  # botocore errors, a missing connection: an error Series, never raised
            return Series((), _aws_error(err))
        return self.parse_range(pages)

    @staticmethod
    def parse_range(pages: list[dict[str, Any]]) -> Series:
        """Every value of the one returned result over all pages, in the order sent (oldest first),
        NaN dropped."""
        results = [r for page in pages for r in page.get("MetricDataResults") or []]
        messages = [
            *(m for page in pages for m in page.get("Messages", [])),
            *(m for r in results for m in r.get("Messages", [])),
        ]
        if messages:
            text = "; ".join(f"{m.get('Code')}: {m.get('Value')}" for m in messages)
            return Series((), f"cloudwatch messages: {text}"[:300])
        ids = {r.get("Id") for r in results}
        if len(ids) != 1:
            return Series((), f"cloudwatch returned {len(ids)} results; parity needs exactly one")
        status = results[-1].get("StatusCode")
        if status != "Complete":  # the last page of a complete answer says Complete
            return Series((), f"cloudwatch status {status} after the last page")
        values = (float(v) for r in results for v in r.get("Values") or [])
        return Series(tuple(v for v in values if not math.isnan(v)))


def _settled_points(result: dict[str, Any], start: float, end: float, period: int) -> dict[float, float]:
    """Timestamp → value of the datapoints whose whole period lies in [start, end); the others (before
    the change, or still filling) are dropped whatever the request asked for."""
    points = {}
    for stamp, value in zip(result.get("Timestamps") or [], result.get("Values") or [], strict=True):
        at = stamp.timestamp() if isinstance(stamp, datetime) else float(stamp)
        if start <= at and at + period <= end:
            points[at] = float(value)
    return points


def _hms(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")


def range_period(step: float, age: float = 0.0) -> int:
    """The CloudWatch period for a range query's step: the smallest valid period not below it (1, 5,
    10, 20, 30, then multiples of 60), so a range never holds more datapoints than steps; at least 60 when
    the range starts more than 3 h back (`age` s), where sub-minute datapoints are gone. Older data
    needs coarser periods still (300 past 15 days, 3600 past 63 days): CloudWatch answers with
    fewer datapoints or an error, which parity sees as no data."""
    if not step > 0 or not math.isfinite(step):
        raise ValueError(f"step must be a positive number of seconds, got {step}")
    step = round(step, 6)  # 60.0000001 s is a 60 s step, not 120
    if age <= HIGH_RESOLUTION_RETENTION:
        for period in HIGH_RESOLUTION_PERIODS:
            if step <= period:
                return period
    return max(1, math.ceil(step / 60)) * 60


AlarmType = Literal["MetricAlarm", "CompositeAlarm"]
InsufficientData = Literal["no_data", "ok", "breach"]
# The state an INSUFFICIENT_DATA alarm is read as, per policy (None: no verdict).
INSUFFICIENT_AS: dict[str, str | None] = {"no_data": None, "ok": "OK", "breach": "ALARM"}


def _all_alarm_types() -> list[AlarmType]:
    return ["MetricAlarm", "CompositeAlarm"]


class CloudWatchAlarms:
    """Gate query = an alarm name, or several separated by commas. The value is how many of them are
    in ALARM, so `comparator: less_than, threshold: 1` passes only when none is. An alarm in
    INSUFFICIENT_DATA is read as `insufficient_data` says; an alarm that does not exist is no verdict."""

    port = "metric_source"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)

        alarm_types: list[AlarmType] = Field(
            default_factory=_all_alarm_types,
            min_length=1,
            description="which alarms to read; composite alarms need cloudwatch:DescribeAlarms on *",
        )
        insufficient_data: InsufficientData = Field(
            default="no_data",
            description="what an alarm in INSUFFICIENT_DATA says: no_data (inconclusive: the gate's on_no_data "
            "decides, never a pass), ok (as OK: for alarms that go without data when all is well, e.g. an "
            "error-count alarm with TreatMissingData=missing; better: set notBreaching on the alarm) or "
            "breach (as ALARM)",
        )
        region: str | None = Field(default=None, description="defaults to the connection's region")

    def __init__(
        self, settings: Settings, connection_id: str | None, client_factory: Callable[[], Any] | None = None
    ) -> None:
        self.settings, self.connection_id = settings, connection_id
        self._client_factory = client_factory or (lambda: _client(connection_id, settings.region))
        self._client: Any = None

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> CloudWatchAlarms:
        """No connection means boto3's default credentials (e.g. the pod's IAM role)."""
        return cls(settings, connection_id)

    @classmethod
    def iam_statements(cls, settings: Settings, queries: Iterable[str] | None = None) -> list[Statement]:
        """iam_statements(settings, queries=None): `queries` are the gate queries (alarm names) this
        source answers; given, and with metric alarms only, the statement names just those alarms."""
        if "CompositeAlarm" in settings.alarm_types:
            # AWS returns composite alarms only to a DescribeAlarms permission scoped to "*".
            return [Statement(("cloudwatch:DescribeAlarms",), ("*",), "read gate alarms")]
        # Alarm names come from gate queries, not settings: without them, any alarm (read-only).
        names = sorted({_arn_pattern(n) for q in queries or () for n in alarm_names(q)}) or ["*"]
        return [
            Statement(
                ("cloudwatch:DescribeAlarms",),
                tuple(arn("cloudwatch", settings.region, "*", f"alarm:{name}") for name in names),
                "read gate alarms",
            )
        ]

    def describe(self) -> str:
        where = ", ".join(filter(None, [self.connection_id, self.settings.region]))
        return f"cloudwatch alarms ({where or 'default AWS credentials'})"

    def query(self, query: str) -> Measurement:
        names = alarm_names(query)
        if not names:
            return Measurement(None, f"query {query!r} names no alarm")
        if len(names) > MAX_ALARM_NAMES:
            return Measurement(None, f"query names {len(names)} alarms; at most {MAX_ALARM_NAMES}")
        states: dict[str, str] = {}
        try:
            if self._client is None:
                self._client = self._client_factory()
            pages = self._client.get_paginator("describe_alarms").paginate(
                AlarmNames=names, AlarmTypes=list(self.settings.alarm_types)
            )
            keys = [f"{kind}s" for kind in self.settings.alarm_types]  # MetricAlarms, CompositeAlarms
            for page in pages:
                for alarm in (a for key in keys for a in page.get(key, [])):
                    states[alarm["AlarmName"]] = alarm["StateValue"]
        except Exception as err:  # botocore errors, a missing connection: inconclusive, never raised
            return Measurement(None, _aws_error(err))
        return self.judge(names, states, self.settings.insufficient_data)

    @staticmethod
    def judge(names: list[str], states: dict[str, str], insufficient_data: str = "no_data") -> Measurement:
        read_as = INSUFFICIENT_AS[insufficient_data]
        if read_as is not None:
            states = {n: read_as if state == "INSUFFICIENT_DATA" else state for n, state in states.items()}
        missing = [n for n in names if n not in states]
        # INSUFFICIENT_DATA, or a state AWS may add one day: neither OK nor ALARM is no verdict
        undecided = [f"{n} ({states[n]})" for n in names if n in states and states[n] not in ("OK", "ALARM")]
        alarming = [n for n in names if states.get(n) == "ALARM"]
        if alarming:  # one firing alarm is a breach, whatever the others say
            return Measurement(float(len(alarming)))
        if missing or undecided:
            parts = [
                f"not found: {', '.join(missing)}" if missing else "",
                f"no verdict: {', '.join(undecided)}" if undecided else "",
            ]
            return Measurement(None, ("alarm " + "; ".join(p for p in parts if p))[:300])
        return Measurement(0.0)


def alarm_names(query: str) -> list[str]:
    """Comma-separated alarm names, trimmed, in order, without repeats."""
    return list(dict.fromkeys(name.strip() for name in query.split(",") if name.strip()))


def _arn_pattern(name: str) -> str:
    # An unrendered ${service}/${env} may become anything: a wildcard in the policy.
    return re.sub(r"\$\{[^}]*\}|\$\w+", "*", name)
