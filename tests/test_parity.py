"""Parity analysis (green vs blue, Mann-Whitney U + Hodges-Lehmann, Kayenta-style scoring) on
synthetic samples with fixed seeds, and the range queries that feed it: Prometheus against a tiny
local HTTP server, CloudWatch against moto, the simulated world's series."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from include.slow_injection.drivers.aws_cloudwatch import CloudWatchMetrics, range_period
from include.slow_injection.drivers.prometheus import PrometheusSource
from include.slow_injection.drivers.simulated import SimulatedMetricSource
from include.slow_injection.measurement.parity_statistics import MetricResult, classify, score
from include.slow_injection.spec.models import Parity
from tests.support.aws import REGION, free_port

LATENCY = 0.2  # seconds, blue's true median


def latencies(seed: int, n: int = 200, median: float = LATENCY, sigma: float = 0.3) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(median), sigma, n)


def error_rates(seed: int, rate: float, n: int = 60, requests: int = 1000) -> np.ndarray:
    """Per-step error ratios of `requests` requests each."""
    return np.random.default_rng(seed).binomial(requests, rate, n) / requests


def no_nan_json(data: dict[str, Any]) -> str:
    return json.dumps(data, allow_nan=False)  # raises on NaN / inf


# --- classify ------------------------------------------------------------------------------------


def test_green_like_blue_passes() -> None:
    result = classify("latency", latencies(1), latencies(2), direction="increase_is_bad")
    assert result.classification == "Pass"
    assert result.p_value > 0.05 and abs(result.relative_effect) < 0.1


def test_green_forty_percent_slower_is_high_with_the_known_effect() -> None:
    blue = latencies(1, n=500)
    green = latencies(2, n=500) + 0.4 * LATENCY  # a known shift: +40 % of blue's median
    result = classify("latency", blue, green, direction="increase_is_bad", tolerance=0.1)
    assert result.classification == "High"
    assert result.shift == pytest.approx(0.4 * LATENCY, rel=0.15)
    assert result.relative_effect == pytest.approx(0.4, abs=0.06)
    assert result.p_value < 1e-10 and "beyond 10.0% tolerance" in result.reason


def test_noisier_green_with_the_same_median_passes() -> None:
    result = classify("latency", latencies(1), latencies(2, sigma=0.7), direction="increase_is_bad")
    assert result.classification == "Pass"


def test_a_significant_shift_within_tolerance_passes() -> None:
    # n large enough that +5 % is clearly significant; 10 % tolerance still lets it pass
    blue, green = latencies(1, n=5000), latencies(2, n=5000) * 1.05
    result = classify("latency", blue, green, tolerance=0.1)
    assert result.p_value < 0.001
    assert result.classification == "Pass" and "within 10.0% tolerance" in result.reason


def test_too_few_samples_is_no_data_naming_the_side() -> None:
    result = classify("latency", latencies(1), [], min_samples=10)
    assert result.classification == "NoData"
    assert result.reason == "green has 0 finite sample(s) of 0 (needs 10)"
    both = classify("latency", [1.0] * 3, [float("nan")] * 20, min_samples=10)
    assert both.reason.startswith("blue has 3 finite sample(s) of 3; green has 0 finite sample(s) of 20")


def test_nan_and_inf_are_dropped_not_counted() -> None:
    blue = [*latencies(1, n=10), float("nan"), float("inf"), float("-inf")]
    green = [*latencies(2, n=10), float("nan")]
    result = classify("latency", blue, green, min_samples=10)
    assert (result.classification, result.blue_count, result.green_count) == ("Pass", 10, 10)


def test_zero_baseline_both_zero_passes() -> None:
    result = classify("errors", [0.0] * 60, [0.0] * 60, direction="increase_is_bad")
    assert (result.classification, result.shift, result.relative_effect) == ("Pass", 0.0, None)
    assert result.baseline == "zero"
    no_nan_json(result.to_dict())


def test_zero_baseline_blue_never_errs_green_two_percent_is_high() -> None:
    result = classify("errors", [0.0] * 60, error_rates(3, 0.02), direction="increase_is_bad", tolerance=0.5)
    assert result.classification == "High"
    assert result.relative_effect is None and result.baseline == "zero"
    assert result.shift == pytest.approx(0.02, abs=0.005)  # reported as an absolute shift
    assert "blue is all zero" in result.reason
    assert '"relative_effect": null' in no_nan_json(result.to_dict())


def test_mostly_zero_blue_is_judged_against_its_mean() -> None:
    blue = np.zeros(60)
    blue[::20] = 0.003  # blue errs now and then: median 0, mean 0.0001
    same = classify("errors", blue, np.roll(blue, 7))
    worse = classify("errors", blue, error_rates(3, 0.02))
    assert (same.classification, same.baseline) == ("Pass", "mean")
    assert (worse.classification, worse.baseline) == ("High", "mean")
    assert worse.relative_effect > 100


def test_lower_throughput_on_decrease_is_bad_is_low() -> None:
    blue, green = latencies(1, median=500.0), latencies(2, median=350.0)  # requests/s, -30 %
    result = classify("throughput", blue, green, direction="decrease_is_bad")
    assert result.classification == "Low"
    assert result.relative_effect == pytest.approx(-0.3, abs=0.06)


@pytest.mark.parametrize(
    ("direction", "green_median"),
    [
        ("increase_is_bad", LATENCY * 0.6),  # faster
        ("decrease_is_bad", LATENCY * 1.6),  # more throughput
    ],
    ids=["faster-latency", "more-throughput"],
)
def test_an_improvement_in_the_harmless_direction_passes(direction: str, green_median: float) -> None:
    result = classify("m", latencies(1), latencies(2, median=green_median), direction=direction)
    assert result.classification == "Pass"
    assert abs(result.relative_effect) > 0.3  # a big shift, yet harmless


@pytest.mark.parametrize(("factor", "expected"), [(1.4, "High"), (0.6, "Low"), (1.0, "Pass")])
def test_either_direction_flags_both_ways(factor: float, expected: str) -> None:
    result = classify("m", latencies(1), latencies(2, median=LATENCY * factor), direction="either")
    assert result.classification == expected


def test_large_samples_are_subsampled_for_the_shift() -> None:
    # 20 000 per side: all pairwise differences would need 3.2 GB
    blue, green = latencies(1, n=20_000), latencies(2, n=20_000) + 0.4 * LATENCY
    started = time.monotonic()
    result = classify("latency", blue, green)
    assert time.monotonic() - started < 2
    assert result.relative_effect == pytest.approx(0.4, abs=0.03)
    assert classify("latency", blue, green).shift == result.shift  # deterministic


def test_extreme_values_never_put_nan_or_inf_in_json() -> None:
    result = classify("m", [1e308] * 20, [-1e308] * 20, direction="either")
    data = result.to_dict()
    no_nan_json(data)
    assert data["shift"] is None  # -inf is not a JSON number


# --- score ----------------------------------------------------------------------------------------


def parity(*metrics: dict[str, Any], **settings: Any) -> Parity:
    return Parity.model_validate({"source": {"type": "simulated"}, "metrics": list(metrics), **settings})


def metric(name: str, weight: float = 1.0, critical: bool = False) -> dict[str, Any]:
    return {"name": name, "query": f"{name}{{env='${{env}}'}}", "weight": weight, "critical": critical}


def result(name: str, classification: str) -> MetricResult:
    return MetricResult(name, classification, f"{classification.lower()} by test", "increase_is_bad", 0.1)


def test_all_pass_scores_100_and_passes() -> None:
    verdict = score([result("a", "Pass"), result("b", "Pass")], parity(metric("a"), metric("b")))
    assert (verdict.score, verdict.decision, verdict.forced_zero) == (100.0, "pass", False)


@pytest.mark.parametrize(
    ("failing", "expected_score", "decision"),
    [
        ("c", 75.0, "marginal"),  # weight 1 of 4 fails
        ("d", 50.0, "fail"),  # weight 2 of 4 fails
    ],
    ids=["light-metric", "heavy-metric"],
)
def test_score_is_the_weight_share_of_passing_metrics(failing: str, expected_score: float, decision: str) -> None:
    spec = parity(metric("b"), metric("c"), metric("d", weight=2.0))
    verdict = score([result(n, "High" if n == failing else "Pass") for n in "bcd"], spec)
    assert (verdict.score, verdict.decision) == (expected_score, decision)
    assert any(reason.startswith(f"{failing}: High") for reason in verdict.reasons)


def test_thresholds_are_inclusive() -> None:
    spec = parity(*(metric(f"m{i}") for i in range(20)), pass_score=95.0, marginal_score=75.0)
    one_fails = [result(f"m{i}", "High" if i == 0 else "Pass") for i in range(20)]
    assert score(one_fails, spec).score == 95.0 and score(one_fails, spec).decision == "pass"


def test_a_failing_critical_metric_forces_zero() -> None:
    spec = parity(metric("errors", critical=True), *(metric(f"m{i}", weight=10) for i in range(5)))
    verdict = score([result("errors", "High"), *(result(f"m{i}", "Pass") for i in range(5))], spec)
    assert (verdict.score, verdict.decision, verdict.forced_zero) == (0.0, "fail", True)
    assert verdict.reasons[0] == "critical metric errors failed (High)"


def test_a_passing_critical_metric_forces_nothing() -> None:
    spec = parity(metric("errors", critical=True), metric("latency"))
    assert score([result("errors", "Pass"), result("latency", "Pass")], spec).score == 100.0


def test_no_data_is_left_out_of_the_score_up_to_max_no_data() -> None:
    spec = parity(metric("a"), metric("b"), metric("c"), metric("d"), max_no_data=0.5)
    some = score([result("a", "NoData"), *(result(n, "Pass") for n in "bcd")], spec)
    assert (some.score, some.decision, some.no_data_share) == (100.0, "pass", 0.25)
    too_much = score([*(result(n, "NoData") for n in "abc"), result("d", "Pass")], spec)
    assert (too_much.score, too_much.decision, too_much.forced_zero) == (0.0, "fail", True)
    assert "no data for 75% of the metric weight" in too_much.reasons[0]


def test_every_metric_without_data_forces_zero() -> None:
    spec = parity(metric("a"), max_no_data=1.0)
    verdict = score([result("a", "NoData")], spec)
    assert (verdict.score, verdict.decision) == (0.0, "fail")
    assert verdict.reasons[0] == "every metric has no data"


def test_a_metric_without_a_result_is_no_data_and_an_unknown_one_an_error() -> None:
    spec = parity(metric("a"), metric("b"), max_no_data=0.0)
    assert score([result("a", "Pass")], spec).decision == "fail"
    assert score([result("a", "Pass")], spec).results[1].reason == "not measured"
    with pytest.raises(ValueError, match="does not name: zzz"):
        score([result("zzz", "Pass")], spec)


def test_the_spec_may_come_as_its_dump_and_the_verdict_is_json() -> None:
    spec = parity(metric("latency"), metric("errors", critical=True))
    results = [
        classify("latency", latencies(1), latencies(2) + 0.4 * LATENCY),
        classify("errors", [0.0] * 60, [0.0] * 60),
    ]
    verdict = score(results, spec.model_dump())
    data = json.loads(no_nan_json(verdict.to_dict()))
    assert (data["score"], data["decision"]) == (50.0, "fail")
    assert [r["classification"] for r in data["results"]] == ["High", "Pass"]


# --- Prometheus range queries against a tiny local server -----------------------------------------


def matrix(*series: list[tuple[float, str]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": {"env": f"e{i}"}, "values": [[t, v] for t, v in values]} for i, values in enumerate(series)
            ],
        },
    }


ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "one": (200, matrix([(1.0, "0.2"), (11.0, "NaN"), (21.0, "0.3")])),
    "none": (200, matrix()),
    "two": (200, matrix([(1.0, "1")], [(1.0, "2")])),
    "bad": (400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}),
    "boom": (500, {"status": "error", "errorType": "internal", "error": "boom"}),
    "vector": (
        200,
        {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "7"]}]}},
    ),
}


@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A stand-in Prometheus: answers by query text, records each request's path and parameters."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query))
            seen.append({"path": url.path, **params})
            status, body = ANSWERS.get(params.get("query", ""), (404, {}))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_prometheus_range_reads_one_series_oldest_first_without_nan(prometheus) -> None:
    url, seen = prometheus
    series = PrometheusSource(url, timeout=3).query_range("one", 1000.0, 1300.0, 10.0)
    assert (series.values, series.error) == ((0.2, 0.3), None)
    assert seen[-1] == {
        "path": "/api/v1/query_range",
        "query": "one",
        "start": "1000.000",
        "end": "1300.000",
        "step": "10",
    }


@pytest.mark.parametrize(
    ("query", "values", "error"),
    [
        ("none", (), None),  # no data, not an error
        ("two", (), "query returned 2 series; parity needs exactly one"),
        (
            "bad",
            (),
            'prometheus HTTP 400: {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}',
        ),
        ("boom", (), "prometheus HTTP 500: " + json.dumps(ANSWERS["boom"][1])),
        ("vector", (), "unsupported result type 'vector' for a range query"),
    ],
)
def test_prometheus_range_trouble_is_an_error_series(prometheus, query, values, error) -> None:
    series = PrometheusSource(prometheus[0], timeout=3).query_range(query, 1000.0, 1300.0, 10.0)
    assert (series.values, series.error) == (values, error)
    assert not series.usable


def test_prometheus_instant_query_still_reads_a_vector(prometheus) -> None:
    url, seen = prometheus
    assert PrometheusSource(url, timeout=3).query("vector").value == 7.0
    assert seen[-1]["path"] == "/api/v1/query"


def test_prometheus_error_body_and_unreachable_server_are_error_series() -> None:
    assert (
        PrometheusSource.parse_range({"status": "error", "errorType": "timeout", "error": "slow"}).error
        == "prometheus error: timeout: slow"
    )
    started = time.monotonic()
    down = PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout=1).query_range("up", 0.0, 60.0, 10.0)
    assert down.values == () and down.error.startswith("prometheus unreachable")
    assert time.monotonic() - started < 5


# --- CloudWatch range queries --------------------------------------------------------------------

NAMESPACE = "SlowInjection/Parity"
LATENCY_METRIC = {
    "namespace": NAMESPACE,
    "metric_name": "Latency",
    "stat": "Average",
    "dimensions": {"Service": "${service}", "Env": "${env}"},
}


def cloudwatch(client: Any, env: str | None = "green", clock: Any = time.time) -> CloudWatchMetrics:
    """The driver around a given boto3 client: the Airflow hook path (connection → client) is
    test_cloudwatch_source's, and importing it here would cost seconds."""
    settings = CloudWatchMetrics.Settings.model_validate({"metrics": {"latency": LATENCY_METRIC}})
    context = {"service": "web", **({"env": env} if env else {})}
    return CloudWatchMetrics(settings, None, context, client_factory=lambda: client, clock=clock)


def boto_client(endpoint_url: str, **config: Any) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "cloudwatch",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config) if config else None,
    )


def put_latencies(aws: Any, env: str, value_of_minute: Any) -> None:
    """One datapoint per minute, 10 down to 2 minutes back."""
    now = time.time()
    aws.client("cloudwatch").put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": "Latency",
                "Value": value_of_minute(minutes),
                "Unit": "Seconds",
                "Timestamp": datetime.fromtimestamp(now - minutes * 60, UTC),
                "Dimensions": [{"Name": "Service", "Value": "web"}, {"Name": "Env", "Value": env}],
            }
            for minutes in range(10, 1, -1)
        ],
    )


def test_cloudwatch_range_reads_every_datapoint_oldest_first(aws) -> None:
    put_latencies(aws, "green", lambda minutes: float(minutes))
    put_latencies(aws, "blue", lambda minutes: 100.0 + minutes)
    now = time.time()
    green = cloudwatch(boto_client(aws.url), "green").query_range("latency", now - 660, now, 45)  # → 60 s period
    blue = cloudwatch(boto_client(aws.url), "blue").query_range("latency", now - 660, now, 60)
    assert (green.values, green.error) == (tuple(float(m) for m in range(10, 1, -1)), None)
    assert blue.values == tuple(100.0 + m for m in range(10, 1, -1))


def test_cloudwatch_range_without_datapoints_is_no_data(aws) -> None:
    put_latencies(aws, "blue", lambda minutes: 1.0)  # another env's data is not green's
    now = time.time()
    series = cloudwatch(boto_client(aws.url), "green").query_range("latency", now - 600, now, 60)
    assert (series.values, series.error) == ((), None)


@pytest.mark.parametrize(
    ("step", "age", "period"),
    [
        (1, 0, 1),
        (3, 0, 5),
        (10, 0, 10),
        (10.0000001, 0, 10),
        (11, 0, 20),  # 20 s is a valid high-resolution period too
        (21, 0, 30),
        (45, 0, 60),
        (60, 0, 60),
        (61, 0, 120),
        (10, 4 * 3600, 60),
        (300, 0, 300),
    ],
)
def test_range_period_is_the_smallest_valid_period_not_below_the_step(step, age, period) -> None:
    assert range_period(step, age) == period


def test_range_request_is_aligned_ascending_and_valid_for_botocore() -> None:
    from botocore.session import get_session
    from botocore.validate import validate_parameters

    driver = cloudwatch(object(), clock=lambda: 1_000_030.0)
    request = driver.range_request("latency", 1_000_030.0 - 300, 1_000_030.0, 45)
    assert request["ScanBy"] == "TimestampAscending"
    assert request["MetricDataQueries"][0]["MetricStat"]["Period"] == 60
    assert (request["StartTime"].timestamp(), request["EndTime"].timestamp()) == (999_720.0, 1_000_020.0)
    model = get_session().get_service_model("cloudwatch").operation_model("GetMetricData").input_shape
    validate_parameters(request, model)  # raises on a request AWS would refuse


def test_cloudwatch_range_follows_next_token() -> None:
    import boto3
    from botocore.stub import ANY, Stubber

    client = boto3.client("cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    expected = {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "ScanBy": "TimestampAscending"}
    stub.add_response(
        "get_metric_data",
        {
            "NextToken": "page2",
            "MetricDataResults": [{"Id": "latency", "StatusCode": "PartialData", "Values": [1.0, 2.0]}],
        },
        expected,
    )
    stub.add_response(
        "get_metric_data",
        {"MetricDataResults": [{"Id": "latency", "StatusCode": "Complete", "Values": [3.0, float("nan")]}]},
        {**expected, "NextToken": "page2"},
    )
    with stub:
        series = cloudwatch(client).query_range("latency", time.time() - 600, time.time(), 60)
    assert (series.values, series.error) == ((1.0, 2.0, 3.0), None)


@pytest.mark.parametrize(
    ("pages", "error"),
    [
        (
            [{"MetricDataResults": [{"Id": "a", "StatusCode": "PartialData", "Values": [1.0]}]}],
            "cloudwatch status PartialData after the last page",
        ),
        ([{"MetricDataResults": []}], "cloudwatch returned 0 results; parity needs exactly one"),
        (
            [
                {
                    "MetricDataResults": [
                        {"Id": "a", "StatusCode": "Complete", "Values": [1.0]},
                        {"Id": "b", "StatusCode": "Complete", "Values": [2.0]},
                    ]
                }
            ],
            "cloudwatch returned 2 results; parity needs exactly one",
        ),
        (
            [{"Messages": [{"Code": "MaxQueryTimeRangeExceed", "Value": "too long"}], "MetricDataResults": []}],
            "cloudwatch messages: MaxQueryTimeRangeExceed: too long",
        ),
    ],
    ids=["partial", "no-result", "two-results", "messages"],
)
def test_cloudwatch_range_answers_moto_cannot_produce(pages, error) -> None:
    assert CloudWatchMetrics.parse_range(pages).error == error


def test_cloudwatch_range_trouble_never_raises(aws, api_calls) -> None:
    client = boto_client(aws.url)
    assert "${env}" in cloudwatch(client, env=None).query_range("latency", time.time() - 600, time.time(), 60).error
    assert "no complete 60 s period" in cloudwatch(client).query_range("latency", 1_000_000.0, 1_000_010.0, 60).error
    assert cloudwatch(client).query_range("latency", 0.0, 600.0, 0).error.startswith("step must be a positive")
    assert api_calls.calls == []  # none of those was sent
    dead = boto_client(
        f"http://127.0.0.1:{free_port()}", connect_timeout=1, read_timeout=1, retries={"max_attempts": 1}
    )
    started = time.monotonic()
    assert (
        cloudwatch(dead)
        .query_range("latency", time.time() - 600, time.time(), 60)
        .error.startswith("cloudwatch unreachable: EndpointConnectionError")
    )
    assert time.monotonic() - started < 5


# --- the simulated world's series ----------------------------------------------------------------


def lognormal(seed: int | None = None, median: float = LATENCY, n: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": "lognormal", "median": median, "sigma": 0.3}
    spec |= {"seed": seed} if seed is not None else {}
    spec |= {"n": n} if n is not None else {}
    return {"distribution": spec}


def test_a_distribution_series_is_deterministic_per_seed(world) -> None:
    world.reset({"metrics": {"a": lognormal(seed=1), "b": lognormal(seed=1), "c": lognormal(seed=2)}})
    source = SimulatedMetricSource(world)
    a, b, c = (source.query_range(q, 0.0, 300.0, 10.0).values for q in "abc")
    assert len(a) == 30 and a == b and a != c
    assert a == source.query_range("a", 0.0, 300.0, 10.0).values


def test_without_a_seed_blue_and_green_queries_draw_different_series(world) -> None:
    world.reset({"metrics": {"latency{env='blue'}": lognormal(), "latency{env='green'}": lognormal()}})
    source = SimulatedMetricSource(world)
    blue, green = (source.query_range(f"latency{{env='{env}'}}", 0.0, 300.0, 10.0).values for env in ("blue", "green"))
    assert blue != green
    assert blue == source.query_range("latency{env='blue'}", 0.0, 300.0, 10.0).values


def test_a_distribution_has_the_median_it_is_given(world) -> None:
    world.reset({"metrics": {"a": lognormal(seed=4, n=2000)}})
    values = SimulatedMetricSource(world).query_range("a", 0.0, 300.0, 10.0).values
    assert len(values) == 2000 and float(np.median(values)) == pytest.approx(LATENCY, rel=0.05)


def test_plain_numbers_samples_and_router_rules_as_series(world) -> None:
    world.reset(
        {
            "routers": {"web": {"blue": 90, "green": 10}},
            "metrics": {
                "constant": 0.5,
                "missing": None,
                "listed": {"samples": [1.0, None, 3.0]},
                "ruled": {
                    "router": "web",
                    "when_green_at_least": 5,
                    "value": {"samples": [9.0, 8.0]},
                    "otherwise": 1.0,
                },
            },
        }
    )
    source = SimulatedMetricSource(world)
    assert source.query_range("constant", 0.0, 60.0, 10.0) == source.query_range("constant", 0.0, 60.0, 10.0)
    assert source.query_range("constant", 0.0, 60.0, 10.0).values == (0.5,) * 6
    assert source.query_range("missing", 0.0, 60.0, 10.0).values == ()
    assert source.query_range("unknown", 0.0, 60.0, 10.0).values == ()
    assert source.query_range("listed", 0.0, 60.0, 10.0).values == (1.0, 3.0)
    assert source.query_range("ruled", 0.0, 60.0, 10.0).values == (9.0, 8.0)
    # instant queries: numbers as before, a series gives its latest sample
    assert [source.query(q).value for q in ("constant", "missing", "listed", "ruled")] == [0.5, None, 3.0, 8.0]


def test_simulated_trouble_is_an_error_series(world) -> None:
    world.reset({"metrics": {"a": 1.0, "odd": {"distribution": {"kind": "cauchy", "median": 1}}}})
    source = SimulatedMetricSource(world)
    assert (
        source.query_range("odd", 0.0, 60.0, 10.0).error
        == "simulated metric 'odd' malformed: distribution kind 'cauchy': lognormal or normal"
    )
    world.update(lambda s: s.setdefault("faults", {}).update(metrics_down=True))
    assert source.query_range("a", 0.0, 60.0, 10.0).error == "simulated metrics backend down"


def test_a_slower_simulated_green_is_found_high(world) -> None:
    world.reset(
        {
            "metrics": {
                "latency_blue": lognormal(seed=1, n=200),
                "latency_green": lognormal(seed=2, median=LATENCY * 1.4, n=200),
            }
        }
    )
    source = SimulatedMetricSource(world)
    blue, green = (source.query_range(f"latency_{env}", 0.0, 300.0, 10.0).values for env in ("blue", "green"))
    assert classify("latency", blue, green).classification == "High"
