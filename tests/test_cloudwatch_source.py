"""CloudWatch metric sources against moto in server mode, judged by the real gate evaluation:
a passing series passes, a breaching one fails, and no data, unknown alarms, alarms without data
and an unreachable endpoint are inconclusive (hold under on_no_data=hold, never a pass)."""

from __future__ import annotations

import fnmatch
import json
import math
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from include.slow_injection import kinds, registry
from include.slow_injection.drivers.aws_cloudwatch import CloudWatchAlarms, CloudWatchMetrics
from include.slow_injection.gates.runner import GateRun
from include.slow_injection.gates.verdict import Verdict
from include.slow_injection.spec.loader import driver_settings_errors
from include.slow_injection.spec.models import DriverRef, MetricGate
from tests.support.aws import ACCOUNT, CONNECTION_ID, REGION, free_port

METRIC = kinds.measured("metric")

NAMESPACE = "SlowInjection/Test"
ERRORS = {
    "namespace": NAMESPACE,
    "metric_name": "Errors",
    "stat": "Sum",
    "dimensions": {"Service": "${service}", "Env": "${env}"},
}
REQUESTS = {
    "namespace": NAMESPACE,
    "metric_name": "Requests",
    "stat": "Sum",
    "dimensions": {"Service": "${service}", "Env": "${env}"},
}


def metrics_source(**settings: Any) -> dict[str, Any]:
    return {"type": "cloudwatch", "connection": CONNECTION_ID, "metrics": {"errors": ERRORS}, **settings}


def alarms_source(**settings: Any) -> dict[str, Any]:
    return {"type": "cloudwatch_alarm", "connection": CONNECTION_ID, **settings}


def gate(source: dict[str, Any], query: str, threshold: float = 5.0, **overrides: Any) -> dict[str, Any]:
    """A gate dict exactly as the spec produces it (MetricGate.model_dump())."""
    spec = {
        "name": "errors",
        "source": source,
        "query": query,
        "comparator": "less_than",
        "threshold": threshold,
        **overrides,
    }
    return MetricGate.model_validate(spec).model_dump()


def judge(gate_dict: dict[str, Any], service: str = "web", since_ago: float = 900.0) -> Verdict:
    """One reading through the real gate runner: the dry-run verdict (pass / fail / hold) of a gate
    that started (after its traffic step) `since_ago` seconds ago."""
    return GateRun(METRIC, gate_dict, service, 60.0, time.time() - since_ago).run_once()


def put(
    aws: Any,
    metric: str,
    values_ago: list[tuple[float, float]],
    service: str = "web",
    env: str = "green",
    now: float | None = None,
) -> None:
    """Datapoints `seconds` ago: ≥ 240 s lands in a settled period (60 s periods settle 180 s after
    they end), ≤ 300 s within the default lookback."""
    now = time.time() if now is None else now
    aws.client("cloudwatch").put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": metric,
                "Value": value,
                "Unit": "Count",
                "Timestamp": datetime.fromtimestamp(now - ago, UTC),
                "Dimensions": [{"Name": "Service", "Value": service}, {"Name": "Env", "Value": env}],
            }
            for value, ago in values_ago
        ],
    )


# --- CloudWatchMetrics against moto -----------------------------------------------------------------
# moto's GetMetricData does not evaluate metric math (its parser only returns a series whose id is the
# expression itself), so end to end against moto a gate queries one metric id; the math is tested
# at the request level below.


@pytest.mark.parametrize(
    ("series", "status", "value"),
    [
        ([(9.0, 420), (1.0, 250)], "pass", 1.0),  # an old breach, recovered: the latest datapoint decides
        ([(1.0, 420), (9.0, 250)], "fail", 9.0),  # fine before, breaching now
    ],
    ids=["recovered", "breaching"],
)
def test_the_most_recent_settled_datapoint_decides_the_gate(aws, series, status, value) -> None:
    put(aws, "Errors", [*series, (50.0, 30)])  # the newest period has not settled: never read
    result = judge(gate(metrics_source(lookback=600), "errors"))
    assert (result.status, result.measurements[0]["value"]) == (status, value)


def test_no_datapoints_is_no_data_and_never_a_pass(aws) -> None:
    put(aws, "Errors", [(0.0, 400), (0.0, 30)])  # outside the 300 s lookback, or not settled
    failed = judge(gate(metrics_source(), "errors"))
    held = judge(gate(metrics_source(), "errors", on_no_data="hold"))
    assert (failed.status, held.status) == ("fail", "hold")
    assert held.measurements[0] == {"t": held.measurements[0]["t"], "value": None, "outcome": "no_data"}


def test_dimensions_follow_the_gates_service_and_env(aws) -> None:
    put(aws, "Errors", [(1.0, 250)], env="green")
    put(aws, "Errors", [(50.0, 250)], env="blue")
    put(aws, "Errors", [(70.0, 250)], service="api")
    assert judge(gate(metrics_source(), "errors", env="green")).measurements[0]["value"] == 1.0
    assert judge(gate(metrics_source(), "errors", env="blue")).measurements[0]["value"] == 50.0
    assert judge(gate(metrics_source(), "errors"), service="api").measurements[0]["value"] == 70.0


def test_a_placeholder_nobody_fills_is_inconclusive_and_named(aws, api_calls) -> None:
    regional = {**ERRORS, "dimensions": {"Service": "${service}", "Region": "${region}"}}
    result = judge(gate(metrics_source(metrics={"errors": regional}), "errors", on_no_data="hold"))
    assert result.status == "hold"
    assert "${region} in metrics.errors.dimensions.Region" in result.measurements[0]["error"]
    # without env in the context, ${env} stays open too: no silent default
    driver = registry.build("metric_source", metrics_source(), service="web")
    assert "${env}" in driver.query("errors").error
    assert api_calls.calls == []  # nothing was sent with a literal "${...}" dimension


def test_a_query_that_is_no_metric_id_is_inconclusive_without_a_call(aws, api_calls) -> None:
    driver = registry.build("metric_source", metrics_source(), service="web", env="green")
    reading = driver.query("latency")
    assert reading.value is None and "'latency' is not a metric id" in reading.error
    assert api_calls.calls == []


def test_metric_math_is_one_expression_returning_data_over_unreturned_metrics() -> None:
    from botocore.session import get_session
    from botocore.validate import validate_parameters

    settings = CloudWatchMetrics.Settings.model_validate(
        {"metrics": {"errors": ERRORS, "requests": {**REQUESTS, "unit": "Count"}}, "period": 60, "lookback": 300}
    )
    driver = CloudWatchMetrics(settings, None, {"service": "web", "env": "blue"}, clock=lambda: 1_000_030.0)
    request = driver.request("100 * errors / requests")
    queries = {q["Id"]: q for q in request["MetricDataQueries"]}
    assert [q["Id"] for q in request["MetricDataQueries"] if q["ReturnData"]] == ["result0"]
    assert queries["result0"]["Expression"] == "100 * errors / requests"
    assert queries["requests"]["MetricStat"]["Unit"] == "Count"
    assert queries["errors"]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "Service", "Value": "web"},
        {"Name": "Env", "Value": "blue"},
    ]
    assert request["ScanBy"] == "TimestampDescending"
    assert request["StartTime"].timestamp() == 999_720.0  # 300 s back, on a period boundary
    # the last settled period ends here: now - 180 s (three 60 s periods), down to a boundary
    assert request["EndTime"].timestamp() == 999_840.0
    model = get_session().get_service_model("cloudwatch").operation_model("GetMetricData")
    validate_parameters(request, model.input_shape)  # raises if botocore would reject it
    # a single id is sent alone, as the returned query
    assert [(q["Id"], q["ReturnData"]) for q in driver.request("requests")["MetricDataQueries"]] == [("requests", True)]


def test_an_expression_id_never_collides_with_a_metric_id() -> None:
    settings = CloudWatchMetrics.Settings.model_validate({"metrics": {"result0": ERRORS, "b": REQUESTS}})
    driver = CloudWatchMetrics(settings, None, {"service": "web", "env": "green"})
    ids = [q["Id"] for q in driver.request("result0 / b")["MetricDataQueries"]]
    assert ids == ["result0", "b", "result1"]


START, END = 1_000_020.0, 1_000_200.0  # the periods a reading may use: 1_000_020 .. 1_000_140


def at(*stamps: float) -> list[datetime]:
    return [datetime.fromtimestamp(t, UTC) for t in stamps]


def result(values: list[float], stamps: list[float], status: str = "Complete", **extra: Any) -> dict[str, Any]:
    return {"Id": "e", "StatusCode": status, "Values": values, "Timestamps": at(*stamps), **extra}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ({"MetricDataResults": [result([], [])]}, (None, None)),
        ({"MetricDataResults": [result([3.0, 9.0], [1_000_080, 1_000_020], "PartialData")]}, (3.0, None)),
        (
            {"MetricDataResults": [result([], [], "InternalError")]},
            (None, "cloudwatch status InternalError without values"),
        ),
        (
            {
                "MetricDataResults": [
                    result([1.0], [1_000_080], Messages=[{"Code": "ArithmeticError", "Value": "division by zero"}])
                ]
            },
            (None, "cloudwatch messages: ArithmeticError: division by zero"),
        ),
        ({"MetricDataResults": [result([float("nan")], [1_000_080])]}, (None, "cloudwatch value is nan")),
        ({"MetricDataResults": []}, (None, "cloudwatch returned 0 results; a gate needs exactly 1")),
        # the timestamp decides, not the order sent: the newest datapoint is read wherever it stands
        ({"MetricDataResults": [result([9.0, 3.0], [1_000_020, 1_000_140])]}, (3.0, None)),
        # datapoints outside what was asked (before the change, or a period still filling) are dropped
        ({"MetricDataResults": [result([9.0, 8.0], [1_000_200, 1_000_160])]}, (None, None)),
        ({"MetricDataResults": [result([9.0, 2.0], [999_960, 1_000_020])]}, (2.0, None)),
        (
            {"MetricDataResults": [{"Id": "e", "StatusCode": "Complete", "Values": [1.0], "Timestamps": []}]},
            (None, "cloudwatch returned values without their timestamps"),
        ),
    ],
    ids=[
        "empty",
        "partial-with-values",
        "internal-error",
        "messages",
        "nan",
        "no-result",
        "newest-by-timestamp",
        "still-filling",
        "before-the-change",
        "no-timestamps",
    ],
)
def test_responses_moto_cannot_produce(response, expected) -> None:
    reading = CloudWatchMetrics.parse(response, START, END, 60)
    assert (reading.value, reading.error) == expected


@pytest.mark.parametrize(
    ("settings", "path", "words"),
    [
        ({"metrics": {"Errors": ERRORS}}, "metrics", "'Errors': must start with a lowercase letter"),
        ({"metrics": {"e": {**ERRORS, "stat": "sum"}}}, "metrics.e.stat", "'Sum'"),
        ({"metrics": {"e": {**ERRORS, "unit": "count"}}}, "metrics.e.unit", "unknown CloudWatch unit 'count'"),
        ({"metrics": {"e": ERRORS}, "period": 45}, "period", "1, 5, 10, 20, 30 or a multiple of 60"),
        ({"metrics": {"e": ERRORS}, "period": 120, "lookback": 240}, "lookback", "from settle + period (180 + 120 s"),
        ({"metrics": {"e": ERRORS}, "settle": -1}, "settle", "from 0 to 3600"),
        (
            {"metrics": {"e": {**ERRORS, "zero_when_missing_with": "r"}}},
            "metrics.e.zero_when_missing_with",
            "'r' must be another",
        ),
        ({"metrics": {"e": ERRORS}, "period": 10, "lookback": 86400}, "lookback", "high-resolution"),
        ({"metrics": {}}, "metrics", ""),
        # an expression goes with every metric in one GetMetricData call, which takes 500 queries at most
        ({"metrics": {f"m{i}": ERRORS for i in range(500)}}, "metrics", "at most 499 items"),
        ({"metrics": {"e": ERRORS}, "step": 60}, "step", ""),
    ],
)
def test_settings_errors_name_the_setting(settings, path, words) -> None:
    errors = driver_settings_errors("metric_source", DriverRef(type="cloudwatch", **settings))
    assert any(p == path and words in why for p, why in errors), errors


# --- CloudWatchAlarms against moto (moto never evaluates alarms: set_alarm_state sets them) ---------


def alarm(aws: Any, name: str, state: str | None) -> None:
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName=name,
        Namespace=NAMESPACE,
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    if state:
        cw.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


@pytest.mark.parametrize(
    ("state", "status", "value"),
    [
        ("OK", "pass", 0.0),
        ("ALARM", "fail", 1.0),
        ("INSUFFICIENT_DATA", "hold", None),
    ],
)
def test_alarm_state_decides_the_gate(aws, state, status, value) -> None:
    alarm(aws, "web-green-latency", "OK")
    alarm(aws, "web-green-5xx", state)
    result = judge(
        gate(alarms_source(), "${service}-${env}-5xx, ${service}-${env}-latency", threshold=1.0, on_no_data="hold")
    )
    assert (result.status, result.measurements[0]["value"]) == (status, value)
    if status == "hold":
        assert result.measurements[0]["error"] == "alarm no verdict: web-green-5xx (INSUFFICIENT_DATA)"


@pytest.mark.parametrize(
    ("policy", "status", "value"),
    [
        ("no_data", "hold", None),  # the default: inconclusive, so the gate's on_no_data decides
        ("ok", "pass", 0.0),  # a healthy green's 5xx alarm with TreatMissingData=missing
        ("breach", "fail", 1.0),
    ],
)
def test_an_alarm_without_data_reads_as_its_sources_policy_says(aws, policy, status, value) -> None:
    alarm(aws, "web-green-latency", "OK")
    alarm(aws, "web-green-5xx", "INSUFFICIENT_DATA")
    source = alarms_source(insufficient_data=policy)
    result = judge(gate(source, "web-green-5xx, web-green-latency", threshold=1.0, on_no_data="hold"))
    assert (result.status, result.measurements[0]["value"]) == (status, value)
    # whatever the policy, a firing alarm is a breach and an unknown alarm is no verdict
    alarm(aws, "web-green-latency", "ALARM")
    assert judge(gate(source, "web-green-5xx, web-green-latency", threshold=1.0)).status == "fail"
    unknown = judge(gate(source, "web-green-5xx, web-green-typo", threshold=1.0, on_no_data="hold"))
    assert unknown.status == ("fail" if policy == "breach" else "hold")


def test_an_insufficient_data_policy_is_one_of_three() -> None:
    errors = driver_settings_errors("metric_source", DriverRef(type="cloudwatch_alarm", insufficient_data="pass"))
    assert [p for p, _ in errors] == ["insufficient_data"], errors


def test_every_alarm_in_alarm_is_counted(aws) -> None:
    for name in ("a", "b", "c"):
        alarm(aws, name, "ALARM" if name != "b" else "OK")
    driver = registry.build("metric_source", alarms_source())
    reading = driver.query("a,b,c")
    assert (reading.value, reading.error) == (2.0, None)
    assert driver.describe() == "cloudwatch alarms (aws_moto)"


def test_an_alarm_that_does_not_exist_is_inconclusive_and_named(aws) -> None:
    alarm(aws, "web-green-5xx", "OK")
    result = judge(gate(alarms_source(), "web-green-5xx, web-green-typo", threshold=1.0, on_no_data="hold"))
    assert result.status == "hold"
    assert result.measurements[0]["error"] == "alarm not found: web-green-typo"


def test_composite_alarms_are_read_unless_left_out() -> None:
    # moto has no PutCompositeAlarm: a stubbed client answers (and checks the request) instead.
    import boto3
    from botocore.stub import Stubber

    def reading(**settings: Any) -> Any:
        client = boto3.client("cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        stub = Stubber(client)
        types = settings.get("alarm_types", ["MetricAlarm", "CompositeAlarm"])
        # like moto, answer with the composite alarm whatever AlarmTypes asked for
        stub.add_response(
            "describe_alarms",
            {"MetricAlarms": [], "CompositeAlarms": [{"AlarmName": "web-health", "StateValue": "ALARM"}]},
            {"AlarmNames": ["web-health"], "AlarmTypes": types},
        )
        with stub:
            settings_model = CloudWatchAlarms.Settings.model_validate(settings)
            return CloudWatchAlarms(settings_model, None, client_factory=lambda: client).query("web-health")

    assert reading().value == 1.0
    assert reading(alarm_types=["MetricAlarm"]).error == "alarm not found: web-health"


# --- both: trouble is inconclusive, never an exception ------------------------------------------------


def test_an_unreachable_endpoint_is_inconclusive_not_an_exception(monkeypatch) -> None:
    dead = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {
                "region_name": REGION,
                "endpoint_url": f"http://127.0.0.1:{free_port()}",
                "config_kwargs": {"connect_timeout": 1, "read_timeout": 1, "retries": {"max_attempts": 1}},
            },
        }
    )
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEAD", dead)
    started = time.monotonic()
    for source, query in [
        (metrics_source(connection="aws_dead"), "errors"),
        (alarms_source(connection="aws_dead"), "web-green-5xx"),
    ]:
        result = judge(gate(source, query, on_no_data="hold"))
        assert result.status == "hold"
        assert result.measurements[0]["error"].startswith("cloudwatch unreachable: EndpointConnectionError")
    assert time.monotonic() - started < 10


def test_a_client_that_cannot_be_made_is_inconclusive_not_an_exception(monkeypatch) -> None:
    # the provider falls back to boto3's defaults for an unknown connection; here they have no region
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    reading = registry.build("metric_source", alarms_source(connection="aws_nowhere")).query("web-green-5xx")
    assert (reading.value, reading.error) == (None, "cloudwatch error: NoRegionError: You must specify a region.")


# --- least privilege ----------------------------------------------------------------------------------


def covered(statements: list[Any], action: str, resource: str) -> bool:
    return any(
        action in st.actions and any(fnmatch.fnmatchcase(resource, r) for r in st.resources) for st in statements
    )


def test_every_call_made_is_allowed_by_iam_statements(aws, api_calls) -> None:
    put(aws, "Errors", [(1.0, 250)])
    alarm(aws, "web-green-5xx", "OK")
    queries = {"metrics": "errors", "alarms": "${service}-${env}-5xx"}
    sources = {"metrics": metrics_source(), "alarms": alarms_source(alarm_types=["MetricAlarm"])}
    for name, source in sources.items():
        assert judge(gate(source, queries[name], threshold=1.0 if name == "alarms" else 5.0)).status == "pass"
    assert api_calls.actions() == {"cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"}

    metric_settings = CloudWatchMetrics.Settings.model_validate({"metrics": {"errors": ERRORS}})
    alarm_settings = CloudWatchAlarms.Settings.model_validate({"alarm_types": ["MetricAlarm"]})
    statements = [
        *CloudWatchMetrics.iam_statements(metric_settings),
        *CloudWatchAlarms.iam_statements(alarm_settings, queries=[queries["alarms"]]),
    ]
    for call in api_calls.calls:
        resources = [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{n}" for n in call.params.get("AlarmNames", [])]
        for resource in resources or ["*"]:
            assert covered(statements, call.action, resource), (call, statements)
    # narrowed to the gate's alarms: another alarm would not be readable
    assert not covered(statements, "cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:db-5xx")


def test_alarm_statements_widen_only_where_aws_requires_it() -> None:
    def resources(**settings: Any) -> list[str]:
        statements = CloudWatchAlarms.iam_statements(CloudWatchAlarms.Settings.model_validate(settings))
        return [r for st in statements for r in st.resources]

    # composite alarms are only returned to a DescribeAlarms permission on "*"
    assert resources() == ["*"]
    assert resources(alarm_types=["MetricAlarm"]) == ["arn:aws:cloudwatch:*:*:alarm:*"]
    settings = CloudWatchAlarms.Settings.model_validate({"alarm_types": ["MetricAlarm"], "region": "eu-west-1"})
    narrowed = CloudWatchAlarms.iam_statements(settings, queries=["a-${env}, b", "b"])
    assert narrowed[0].resources == (
        "arn:aws:cloudwatch:eu-west-1:*:alarm:a-*",
        "arn:aws:cloudwatch:eu-west-1:*:alarm:b",
    )


def test_a_state_neither_ok_nor_alarm_is_no_verdict() -> None:
    reading = CloudWatchAlarms.judge(["a", "b"], {"a": "OK", "b": "MAINTENANCE"})
    assert (reading.value, reading.error) == (None, "alarm no verdict: b (MAINTENANCE)")
    firing = CloudWatchAlarms.judge(["a", "b", "c"], {"a": "ALARM", "b": "MAINTENANCE"})
    assert (firing.value, firing.error) == (1.0, None)  # one firing alarm is a breach, whatever the others say


def test_the_spelled_out_units_are_botocore_s_standard_units() -> None:
    import botocore.session

    from include.slow_injection.drivers.aws_cloudwatch import STANDARD_UNITS

    model = botocore.session.get_session().get_service_model("cloudwatch")
    assert STANDARD_UNITS == tuple(model.shape_for("StandardUnit").enum)


# --- late data: a gate judges the minutes after its traffic step -------------------------------------
# ALB publishes a 60 s period 1-3 min after it ends. Here every period after the change is put 2 min
# after it ends (moto keeps the Timestamp given), while the periods before the change - including the
# one the change falls in - are there from the start with the opposite verdict: read, they would flip it.

LATE = 120.0
ALB_ERRORS = {**ERRORS, "zero_when_missing_with": "requests"}  # HTTPCode_* exists only when non-zero


class Timeline:
    """A clock the gate runner and the driver share; each sleep publishes what has come due by then."""

    def __init__(self, aws: Any, start: float, errors_after: float | None) -> None:
        self.aws, self.now, self.errors_after = aws, start, errors_after
        self.published: set[float] = set()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.publish()

    def publish(self) -> None:
        period = 60.0
        first = math.ceil(SHIFT / period) * period
        t = first
        while t + period + LATE <= self.now:
            if t not in self.published:
                ago = self.now - (t + 30)  # mid-period
                put(self.aws, "Requests", [(100.0, ago)], now=self.now)
                if self.errors_after is not None:
                    put(self.aws, "Errors", [(self.errors_after, ago)], now=self.now)
                self.published.add(t)
            t += period


T0 = (time.time() // 60 - 120) * 60  # two hours back: every simulated moment is in the past for moto
SHIFT = T0 + 25  # the traffic step's change, mid-period: the period [T0, T0+60) is mostly blue's


def before_the_change(aws: Any, errors: float | None) -> None:
    for start in (T0 - 180, T0 - 120, T0 - 60, T0):
        put(aws, "Requests", [(100.0, 0)], now=start + 20)
        if errors is not None:
            put(aws, "Errors", [(errors, 0)], now=start + 20)


@pytest.mark.parametrize(
    ("errors_before", "errors_after", "status"),
    [(50.0, None, "pass"), (None, 30.0, "fail")],
    ids=["healthy-green-after-a-bad-blue", "unhealthy-green-after-a-quiet-blue"],
)
def test_a_gate_judges_settled_periods_after_the_change_only(
    aws, api_calls, errors_before, errors_after, status
) -> None:
    import asyncio

    before_the_change(aws, errors_before)
    timeline = Timeline(aws, SHIFT, errors_after)
    source = metrics_source(metrics={"errors": ALB_ERRORS, "requests": REQUESTS})
    spec = gate(source, "errors", threshold=5.0, interval="1m", bake="3m")
    run = GateRun(METRIC, spec, "web", 180.0, started_at=SHIFT)
    run._drivers = CloudWatchMetrics(  # the registry's driver, on the simulated clock
        CloudWatchMetrics.Settings.model_validate({k: v for k, v in source.items() if k not in ("type", "connection")}),
        CONNECTION_ID,
        {"service": "web", "env": "green"},
        clock=timeline.clock,
    )
    verdict = asyncio.run(run.run(clock=timeline.clock, sleep=timeline.sleep, call=lambda fn: asyncio.sleep(0, fn())))

    assert verdict is not None and verdict.status == status, verdict
    readings = verdict.measurements
    # the first reading waited for the first period after the change to settle: T0+60 + 60 + 180 s
    assert readings[0]["t"] == pytest.approx(T0 + 300 - SHIFT)
    assert all(r["outcome"] != "no_data" for r in readings), readings
    if status == "pass":  # a healthy green: no 5xx datapoint at all, read as 0 because requests came
        assert [r["value"] for r in readings] == [0.0, 0.0, 0.0]
    else:
        assert [r["value"] for r in readings] == [30.0]  # failure_limit 1: the first breach decides
    asked = [c.params for c in api_calls.calls if c.action == "cloudwatch:GetMetricData"]
    assert asked and all(p["StartTime"].timestamp() >= T0 + 60 for p in asked)  # no period the change fell in
    assert all(p["EndTime"].timestamp() <= timeline.now - 180 for p in asked)


def test_a_reading_without_a_settled_period_since_the_change_is_inconclusive(aws) -> None:
    now = time.time()
    put(aws, "Errors", [(1.0, 400), (1.0, 250)])  # settled, but before the change
    put(aws, "Errors", [(1.0, 100)])  # after it, not settled
    driver = registry.build("metric_source", metrics_source(lookback=600), service="web", env="green")
    assert driver.query("errors").value == 1.0  # without a change to judge, the latest settled datapoint
    reading = driver.query_after("errors", since=now - 200)
    assert reading.value is None and "(the gate's start) yet: the first settles at" in reading.error
    assert driver.first_settled_at(now - 200) == math.ceil((now - 200) / 60) * 60 + 240


def test_the_metric_gate_plans_for_the_wait_and_lasts_long_enough() -> None:
    spec = gate(metrics_source(), "errors", interval="1m", bake="3m")
    assert METRIC.ready_at(spec, 1_000_010.0) == 1_000_020.0 + 60 + 180
    assert METRIC.longest(spec, 180.0) == 2 * 60 + 180 + 2 * 180
    fast = gate(metrics_source(period=10), "errors")  # high resolution: three 10 s periods settle it
    assert METRIC.ready_at(fast, 1_000_005.0) == 1_000_010.0 + 10 + 30
    unbuildable = {**spec, "source": {"type": "cloudwatch", "metrics": {}}}  # fails at its first reading instead
    assert METRIC.ready_at(unbuildable, 5.0) == 5.0
    from include.slow_injection.plan import Gate

    line = METRIC.plan_line(Gate("gate_errors", "metric", MetricGate.model_validate(spec), "web", 180.0))
    assert "measured 3× every 1m over 3m, the first up to 5m after the step (its data arrives late)" in line
