"""The stress test of green: real locust runs (a few seconds each) against the lab's own demo service,
with its faults injected, and the verdicts they lead to."""

from __future__ import annotations

import socket
import stat
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from include.slow_injection.measurement.load_test import (
    LOCUSTFILE,
    judge_stress,
    percentile,
    run_stress,
    split_target,
    thin,
)
from include.slow_injection.spec.models import StressTest
from tests.support.standins import LabTarget

STARTUP_SLACK = 8.0  # wall clock beyond -t: importing locust takes 1-4 s on a busy 2-CPU box


@pytest.fixture
def green():
    with LabTarget() as target:
        yield target


def stress(**fields: Any) -> dict[str, Any]:
    fields.setdefault("url", "http://placeholder.invalid/")
    return StressTest(**fields).model_dump()


def timed_run(test: dict[str, Any], url: str, workdir: Path, **kwargs: Any):
    start = time.monotonic()
    result = run_stress(test, url, workdir, **kwargs)
    elapsed = time.monotonic() - start
    print(f"{test['name']}: {elapsed:.2f}s for -t {test['duration']:g}s, stats={result.stats}")
    return result, elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_python(tmp_path: Path, body: str) -> str:
    """An executable standing in for `python -m locust …` (cwd is the workdir)."""
    script = tmp_path / "fake-python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


# --- real runs against the lab service ---------------------------------------------------------
def test_a_healthy_green_passes_with_figures_and_only_its_path_is_loaded(green, tmp_path, monkeypatch):
    # a proxy or a LOCUST_HOST in the worker's environment must not divert the load (regression guard:
    # locust 2.47 already ignores env proxies, and --host beats LOCUST_HOST)
    for name in ("http_proxy", "HTTP_PROXY", "LOCUST_HOST"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{free_port()}")
    # limits with head room: the server shares this process's GIL with pytest on a small box
    test = stress(name="healthy", users=4, spawn_rate=4, duration=2, max_p95=0.3, max_p99=1.0)
    result, elapsed = timed_run(test, f"{green.url}/checkout?basket=1", tmp_path)

    verdict = judge_stress(test, result)
    assert verdict.status == "pass", verdict.reason
    assert verdict.kind == "stress" and verdict.gate == "healthy" and verdict.env == "green"
    stats = verdict.stats
    assert stats["requests"] >= 20 and stats["failures"] == 0 and stats["failure_ratio"] == 0
    assert stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] <= stats["max_ms"] < 1000
    assert {m["metric"] for m in verdict.measurements} == {"requests", "failure ratio", "p95", "p99"}
    # the series holds each second's exact count
    assert verdict.series and sum(p["rps"] for p in verdict.series) == stats["requests"]
    # it stops by itself after -t (not ~1 s early: see the locustfile), well before the hard timeout
    assert test["duration"] - 0.5 <= stats["load_seconds"] <= test["duration"] + 0.5
    assert elapsed < test["duration"] + STARTUP_SLACK
    # the server saw the configured path only (more than locust counted: it drops in-flight ones at -t)
    assert set(green.paths) == {"/checkout?basket=1"}
    assert len(green.paths) >= stats["requests"]


def test_thirty_percent_errors_fail_on_the_failure_ratio(green, tmp_path):
    green.state.fault["error_rate"] = 0.3
    test = stress(name="errors", users=4, spawn_rate=4, duration=2, max_failure_ratio=0.05, max_p95=0.2)
    result, elapsed = timed_run(test, green.url, tmp_path)

    verdict = judge_stress(test, result)
    assert verdict.status == "fail"
    assert "failure ratio" in verdict.reason and "0.05" in verdict.reason
    assert "p95" not in verdict.reason
    assert 0.1 < verdict.stats["failure_ratio"] < 0.5  # 30 % injected, a few hundred requests
    assert "500" in verdict.reason  # the most frequent error is named
    assert elapsed < test["duration"] + STARTUP_SLACK


def test_added_latency_fails_on_p95(green, tmp_path):
    green.state.fault["latency_ms"] = 300
    test = stress(name="slow", users=4, spawn_rate=4, duration=2, max_p95=0.2, min_requests=5)
    result, elapsed = timed_run(test, green.url, tmp_path)

    verdict = judge_stress(test, result)
    assert verdict.status == "fail"
    assert "p95" in verdict.reason and "0.2s" in verdict.reason
    assert "failure ratio" not in verdict.reason
    assert verdict.stats["p95_ms"] >= 240
    assert elapsed < test["duration"] + STARTUP_SLACK


def test_the_rate_limit_caps_all_users_together(green, tmp_path):
    test = stress(name="capped", users=20, spawn_rate=20, duration=3, rate_limit=10, min_requests=5)
    result, elapsed = timed_run(test, green.url, tmp_path)

    requests = result.stats["requests"]
    assert 10 <= requests <= 45  # 10/s for 3 s (+ each user's first request); uncapped: thousands
    assert len(green.paths) <= 50
    assert judge_stress(test, result).status == "pass"
    # the same figures with a higher bar on data: too few requests is a fail, never a pass
    too_few = judge_stress({**test, "min_requests": 100}, result)
    assert too_few.status == "fail" and "too few requests" in too_few.reason
    assert elapsed < test["duration"] + STARTUP_SLACK


def test_an_unreachable_target_is_a_fail_not_an_exception(tmp_path):
    test = stress(name="unreachable", users=2, spawn_rate=2, duration=1)
    result, elapsed = timed_run(test, f"http://127.0.0.1:{free_port()}/", tmp_path)

    verdict = judge_stress(test, result)
    assert verdict.status == "fail"
    assert "failure ratio 1" in verdict.reason and "every request failed" in verdict.reason
    assert elapsed < test["duration"] + STARTUP_SLACK


def test_a_redirect_elsewhere_is_not_followed_and_counts_as_failure(tmp_path):
    with LabTarget() as elsewhere, LabTarget(redirect_to=f"{elsewhere.url}/stolen") as green:
        test = stress(name="redirect", users=2, spawn_rate=2, duration=1)
        result, _ = timed_run(test, f"{green.url}/", tmp_path)

        verdict = judge_stress(test, result)
        assert verdict.status == "fail" and "redirect 302" in verdict.reason
        assert result.stats["failure_ratio"] == 1
        assert green.paths and elsewhere.paths == []


# --- refusals and broken runs (no locust needed) -----------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/",
        "file:///etc/passwd",
        "gopher://h/",
        "127.0.0.1:8080/",
        "http:///no-host",
        "http://user:secret@127.0.0.1/",
        "http://127.0.0.1:99999/",
    ],
)
def test_a_target_that_is_not_plain_http_is_refused_before_any_process_starts(tmp_path, url):
    marker = tmp_path / "started"
    python = fake_python(tmp_path, f"touch {marker}")
    workdir = tmp_path / "work"
    with pytest.raises(ValueError):
        run_stress(stress(), url, workdir, python=python)
    assert not marker.exists() and not (workdir / LOCUSTFILE).exists()


def test_host_and_path_come_only_from_the_target_url():
    target = split_target("https://green.example:8443/api/v1?x=1#frag")
    assert (target.host, target.path) == ("https://green.example:8443", "/api/v1?x=1")
    assert split_target("http://green").path == "/"


def test_a_run_that_overruns_is_killed_with_its_children_and_fails(tmp_path):
    python = fake_python(tmp_path, "sleep 60 & echo $! > child.pid; wait")
    test = stress(name="hung", users=1, spawn_rate=1, duration=1)
    workdir = tmp_path / "work"
    result, elapsed = timed_run(test, "http://127.0.0.1:9/", workdir, python=python, grace=0.5)

    assert elapsed < 5  # 1 s + 1 s spawn + 0.5 s grace, then killed
    assert result.exit_code is None and "killed" in result.error
    verdict = judge_stress(test, result)
    assert verdict.status == "fail" and verdict.reason.startswith("no data")
    child = int((workdir / "child.pid").read_text())
    assert not alive(child)


def alive(pid: int) -> bool:
    for _ in range(50):  # the orphan is reaped by init shortly after the kill
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return False
        if state == "Z":
            return False
        time.sleep(0.05)
    return True


def test_a_crashed_locust_fails_naming_its_exit_code(tmp_path):
    result = run_stress(stress(duration=1), "http://127.0.0.1:9/", tmp_path, python=fake_python(tmp_path, "exit 3"))
    verdict = judge_stress(stress(), result)
    assert verdict.status == "fail" and "exited with code 3" in verdict.reason


@pytest.mark.parametrize("written", ["not json", "{}", '[{"num_requests": 5}]'])
def test_unreadable_locust_output_fails(tmp_path, written):
    python = fake_python(tmp_path, f"printf '%s' '{written}' > stress_stats.json")
    result = run_stress(stress(duration=1), "http://127.0.0.1:9/", tmp_path, python=python)
    verdict = judge_stress(stress(), result)
    assert verdict.status == "fail" and "unreadable" in verdict.reason


def test_no_output_at_all_fails_even_in_a_workdir_with_an_earlier_runs_figures(tmp_path):
    earlier = '[{"num_requests": 500, "num_failures": 0, "response_times": {"5": 500}}]'
    (tmp_path / "stress_stats.json").write_text(earlier)
    result = run_stress(stress(duration=1), "http://127.0.0.1:9/", tmp_path, python=fake_python(tmp_path, "true"))
    assert judge_stress(stress(), result).status == "fail"
    assert "missing or unreadable" in result.error


# --- the arithmetic ----------------------------------------------------------------------------
def test_percentiles_are_nearest_rank_over_the_histogram():
    histogram = Counter({5.0: 90, 100.0: 9, 2000.0: 1})
    assert percentile(histogram, 0.50) == 5.0
    assert percentile(histogram, 0.95) == 100.0
    assert percentile(histogram, 0.99) == 100.0
    assert percentile(histogram, 1.0) == 2000.0
    assert percentile(Counter(), 0.95) is None


def test_the_series_is_thinned_to_its_cap_keeping_the_last_point():
    points = [{"t": i} for i in range(1000)]
    thinned = thin(points, 300)
    assert len(thinned) == 300 and thinned[0]["t"] == 0 and thinned[-1]["t"] == 999
    assert thin(points[:10], 300) == points[:10]


def test_a_zero_request_run_never_passes():
    from include.slow_injection.measurement.load_test import StressResult

    empty = {
        "requests": 0,
        "failures": 0,
        "failure_ratio": None,
        "requests_per_s": None,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
        "max_ms": None,
        "errors": [],
    }
    result = StressResult("http://green/", 0.0, 1.0, 0, stats=empty)
    verdict = judge_stress(stress(max_p95=0.2), result)
    assert verdict.status == "fail"
    assert "too few requests" in verdict.reason and "p95: no data" in verdict.reason
