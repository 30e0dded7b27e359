"""The run report's HTML side: blue-vs-green plots over the run, the timeline, every gate's values,
escaping, and "no data" (never invented data) when a metrics backend fails."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from include.slow_injection.reporting.html import render_html
from include.slow_injection.reporting.series import (
    NO_PLOTS,
    choose_step,
    collect_metric_series,
    collect_series,
    plot_config,
    sample_times,
    traffic_series,
)
from include.slow_injection.reporting.timeline import build_timeline
from include.slow_injection.spec import parse_wave
from include.slow_injection.spec.models import Report
from include.slow_injection.tasks.report import render_markdown
from tests.support.reports import HOSTILE, LATENCY, T0, Parsed, report_data, side, step_result
from tests.support.waves import healthy_world, sim, small_wave


def svgs(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, flags=re.S)


# --- rendering -----------------------------------------------------------------------------------------


def test_the_html_report_plots_traffic_then_blue_against_green_for_each_metric() -> None:
    page = render_html(report_data())
    plots = svgs(page)
    assert len(plots) == 3  # traffic, error rate, latency
    assert 'data-line="web"' in plots[0]  # green weight of the exposed service
    for plot in plots[1:]:
        assert re.search(r'<polyline data-line="blue"[^>]*stroke="#1f6fd1"[^>]*points="[\d., ]+"', plot)
        assert re.search(r'<polyline data-line="green"[^>]*stroke="#1e9e4a"[^>]*points="[\d., ]+"', plot)
    assert "no data" not in page
    # traffic is stepwise: 0 % from the start, 25 % at +15 s, 100 % at +45 s, held to the end
    traffic = re.search(r'data-line="web".*?points="([^"]+)"', plots[0]).group(1).split()
    assert len(traffic) == 2 * 4 - 1


def test_the_html_report_has_every_section_with_its_figures() -> None:
    page = render_html(report_data())
    for heading in (
        "Over the run",
        "Timeline",
        "Gates",
        "Stress tests",
        "Parity with blue",
        "User acceptance",
        "Decisions",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert "Promote by alice at 2025-11-26T09:40:20+00:00" in page
    assert "pass when &lt; 0.05" in page and "4 value(s): 0.001, 0.002, 0.001, 0" in page  # a gate's values
    assert ">400<" in page and ">120<" in page  # stress requests and p95
    assert "mean-latency" in page and ">0.61<" in page  # parity per metric
    assert "<code>rollback.traffic_to_blue</code>" in page.split("<h2>Timeline</h2>")[1]  # did not run
    timeline = page.split("<h2>Timeline</h2>")[1].split("<h2>")[0]
    order = [
        timeline.index(t)
        for t in (
            "deploy_green",
            "stress_green-load",
            "step1_25pct.set_traffic",
            "gate_error-rate",
            "step2_100pct.set_traffic",
        )
    ]
    assert order == sorted(order)
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "").replace(
        "http://green.local/", ""
    )  # self-contained: nothing fetched


def test_text_from_the_run_is_escaped_everywhere() -> None:
    evil = "<script>alert('gate')</script>"
    data = report_data()
    data["gates"]["gradual_transition.web.step1_25pct.gate_error-rate"]["reason"] = evil
    data["decisions"][0]["reasons"] = [evil]
    data["series"]["metrics"][0]["title"] = evil
    data["series"]["metrics"][0]["green"] = {"points": [], "error": evil, "note": None}
    data["timeline"] = build_timeline(data["actions"], data["gates"])
    page = render_html(data)
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 4  # gate table, decision, timeline, plot title, no-data reason


def hostile_report() -> tuple[dict[str, Any], list[str]]:
    """report_data() with every text a spec, a run, a backend or a user writes made hostile, each
    marked with its field's name; and those marked values."""

    def evil(field: str) -> str:
        fields.append(f"{field} {HOSTILE}")
        return fields[-1]

    fields: list[str] = []
    data = report_data(wave=evil("wave"), run_id=evil("run-id"), outcome=evil("outcome"))
    service = evil("service")
    data["actions"] = {evil("action-task"): {**step_result(service, 0, 25, T0 + 15)}, evil("not-run-task"): None}
    gates = data["gates"]
    for task_id, verdict in list(gates.items()):
        verdict.update(gate=evil(f"gate-{task_id}"), reason=evil(f"reason-{task_id}"))
    metric = gates["gradual_transition.web.step1_25pct.gate_error-rate"]
    metric.update(condition=evil("condition"), query=evil("gate-query"))
    metric["measurements"] += [
        {"t": 50.0, "value": None, "error": evil("measurement-error")},
        {"t": 55.0, "ok": False, "state": evil("check-state"), "detail": evil("check-detail")},
    ]
    stress = gates["validation.stress_green-load"]
    stress["target"] = evil("stress-target")
    stress["stats"]["errors"] = [{"error": evil("stress-error"), "count": 3}]
    parity = gates["validation.parity"]
    parity["decision"] = evil("parity-decision")
    parity["metrics"][0].update(
        name=evil("parity-metric"), classification=evil("classification"), reason=evil("parity-why")
    )
    gates["validation.uat_approval"].update(chosen=evil("chosen"), responded_by={"name": evil("approver")})
    gates[evil("gate-task")] = {
        "gate": evil("e2e-gate"),
        "kind": "e2e_test",
        "status": "fail",
        "reason": evil("e2e-reason"),
        "e2e_test": {"pod": evil("pod"), "log_tail": [evil("log-line")]},
    }
    data["decisions"] = [{"stage": evil("stage"), "outcome": evil("decision"), "reasons": [evil("decision-reason")]}]
    data["timeline"] = build_timeline(data["actions"], gates)
    series = data["series"]
    series["traffic"] = {service: {**side([0, 25], step=15.0), "note": evil("traffic-note")}}
    first, second = series["metrics"]
    first.update(title=evil("plot-title"), unit=evil("unit"), query=evil("plot-query"))
    first["green"]["note"] = evil("series-note")
    second["green"] = {"points": [], "error": evil("series-error"), "note": None}
    sized = {
        "service": evil("sized-service"),
        "workload": evil("workload"),
        "error": evil("sizing-error"),
        "groups": [],
    }
    data["right_sizing"] = {"prices": evil("prices"), "headroom": 1.2, "services": [sized]}
    return data, fields


def test_a_hostile_string_in_any_field_appears_on_the_report_only_escaped() -> None:
    data, fields = hostile_report()
    page = render_html(data)
    parsed = Parsed(page)
    assert "script" not in parsed.tags and not [name for name, _ in parsed.attributes if name.startswith("on")]
    assert HOSTILE not in page and "<script" not in page and '" onmouseover' not in page
    assert [f for f in fields if not parsed.shows(f)] == []  # each field reached the page, as text


def test_a_missing_series_says_no_data_with_the_reason_and_draws_nothing_for_it() -> None:
    data = report_data()
    data["series"]["metrics"][0]["green"] = {"points": [], "error": "prometheus unreachable: refused", "note": None}
    data["series"]["metrics"][1]["blue"] = {"points": [], "error": "timeout", "note": None}
    data["series"]["metrics"][1]["green"] = {"points": [], "error": "timeout", "note": None}
    plots = svgs(render_html(data))
    assert 'data-line="blue"' in plots[1] and 'data-line="green"' not in plots[1]
    assert "green: no data (prometheus unreachable: refused)" in plots[1]
    assert "<polyline" not in plots[2] and "no data (timeout)" in plots[2]


def test_without_metric_plots_the_report_says_so() -> None:
    data = report_data()
    data["series"] = collect_series(data["actions"], plot_config(parse_wave(small_wave("w"), "w.yaml")), T0, T0 + 60)
    page = render_html(data)
    assert len(svgs(page)) == 1 and NO_PLOTS in "".join(Parsed(page).text)


def test_a_report_json_from_before_the_plots_still_renders() -> None:
    data = report_data()
    for key in ("series", "timeline", "started_at", "generated_at"):
        del data[key]
    page = render_html(data)
    assert "No plots: this report holds no series." in page and "step1_25pct.set_traffic" in page


def test_the_markdown_summary_points_to_the_html_report_and_summarises_the_plots() -> None:
    md = render_markdown(report_data())
    assert "`report.html`" in md
    assert "- traffic on green, web: 0 → 25 → 100 %" in md
    assert "- Error rate: blue 7 samples, 0.009…0.012; green 7 samples, 0…0.004" in md


# --- collecting the series -----------------------------------------------------------------------------


def test_traffic_is_placed_by_each_result_time_and_results_without_one_are_only_counted() -> None:
    actions = {
        "a": step_result("web", 0, 25, T0 + 10),
        "b": step_result("web", 25, 50, None),  # an older result without "at"
        "c": {
            "dry_run": False,
            "services": {"web": step_result("web", 25, 0, T0 + 30), "api": step_result("api", 10, 0, T0 + 31)},
        },
        "d": None,
        "e": {"service": "web", "action": "deploy_green", "changes": []},
    }
    series = traffic_series(actions, T0, T0 + 60)
    assert series["web"]["points"] == [[T0, 0.0], [T0 + 10, 25.0], [T0 + 30, 0.0], [T0 + 60, 0.0]]
    assert "1 traffic result(s) without a time" in series["web"]["note"]
    assert series["api"]["points"] == [[T0, 10.0], [T0 + 31, 0.0], [T0 + 60, 0.0]]
    assert traffic_series({"b": step_result("web", 0, 25, None)}, T0, T0 + 60)["web"]["points"] == []


def test_metric_series_come_from_the_simulated_source_for_blue_and_green(world) -> None:
    world.reset(
        {
            "metrics": {
                'latency_seconds{env="blue"}': {"samples": [0.2] * 5 + [0.3] * 5},
                'latency_seconds{env="green"}': {"samples": [0.1] * 10},
            }
        }
    )
    config = {
        "source": sim(world.path.stem),
        "step": 1.0,
        "plots": [{"name": "latency", "title": "Latency", "query": LATENCY, "unit": "s"}],
    }
    [plot] = collect_metric_series(config, T0, T0 + 10)
    assert plot["step"] == 1.0
    assert plot["blue"]["points"][:2] == [[T0, 0.2], [T0 + 1, 0.2]] and plot["blue"]["points"][-1] == [T0 + 9, 0.3]
    assert [v for _, v in plot["green"]["points"]] == [0.1] * 10
    assert plot["blue"]["error"] is None and plot["green"]["note"] is None


def test_a_long_run_is_sampled_wider_and_gaps_make_the_times_approximate(world) -> None:
    world.reset(
        {"metrics": {'latency_seconds{env="blue"}': 0.2, 'latency_seconds{env="green"}': {"samples": [0.1, None, 0.1]}}}
    )
    config = {
        "source": sim(world.path.stem),
        "step": 1.0,
        "plots": [{"name": "latency", "title": "Latency", "query": LATENCY, "unit": "s"}],
    }
    [plot] = collect_metric_series(config, T0, T0 + 3600)
    assert plot["step"] == 12.0 and len(plot["blue"]["points"]) == 300
    assert "times approximate" in plot["green"]["note"]
    assert sample_times(0, T0, T0 + 10, 1.0) == ([], None)
    assert choose_step(T0, T0 + 60, 0.1) == 0.2  # a round step below a second too


def test_a_failing_metrics_backend_gives_no_data_with_the_reason_never_an_error(world) -> None:
    world.reset({"faults": {"metrics_down": True}})
    config = {
        "source": sim(world.path.stem),
        "step": 1.0,
        "plots": [{"name": "latency", "title": "Latency", "query": LATENCY, "unit": "s"}],
    }
    [plot] = collect_metric_series(config, T0, T0 + 10)
    assert plot["blue"] == plot["green"] == {"points": [], "error": "simulated metrics backend down", "note": None}

    class Raising:
        def query_range(self, *_: Any) -> Any:
            raise TimeoutError("read timed out")

    [plot] = collect_metric_series(config, T0, T0 + 10, build=lambda *_: Raising())
    assert plot["green"]["error"] == "TimeoutError: read timed out"
    broken = {**config, "source": {"type": "no-such-driver"}}
    [plot] = collect_metric_series(broken, T0, T0 + 10)
    assert "unknown metric source type 'no-such-driver'" in plot["blue"]["error"]
    alarms = {**config, "source": {"type": "cloudwatch_alarm", "connection": "aws"}}
    page = render_html(report_data(series=collect_series({}, alarms, T0, T0 + 10)))
    assert "no data (" in page


# --- the spec ------------------------------------------------------------------------------------------


def test_plots_come_from_the_report_section_else_from_parity() -> None:
    data = small_wave("w")
    data["validation"] = {"parity": {"source": sim("w"), "metrics": [{"name": "latency", "query": LATENCY}]}}
    assert plot_config(parse_wave(data, "w.yaml"))["origin"] == "validation.parity"
    data["report"] = {
        "source": sim("w"),
        "step": "2s",
        "plots": [{"name": "p95", "title": "Latency p95", "query": LATENCY, "unit": "s"}],
    }
    config = plot_config(parse_wave(data, "w.yaml"))
    assert config["origin"] == "report" and config["step"] == 2.0 and config["plots"][0]["title"] == "Latency p95"


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"plots": [{"name": "p95", "query": LATENCY}]}, "source: required when plots are listed"),
        ({"source": {"type": "simulated"}}, "plots: list at least one plot"),
        (
            {"source": {"type": "simulated"}, "plots": [{"name": "p95", "query": "latency_seconds"}]},
            "must contain ${env}",
        ),
    ],
)
def test_a_report_section_that_cannot_plot_is_refused(report: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        Report.model_validate(report)


# --- a whole run ---------------------------------------------------------------------------------------


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_a_wave_run_writes_report_html_with_its_plots(tmp_path: Path, world, reports_dir: Path) -> None:
    from tests.support.waves import run_wave

    state = healthy_world()
    state["metrics"].update(
        {'latency_seconds{env="blue"}': 0.2, 'latency_seconds{env="green"}': 0.1, 'cpu{service="web"}': 0.3}
    )
    state["capacity"] = {
        "Deployment/shop/web": [
            {
                "name": "web-0",
                "capacity_provisioned": "2vCPU 9GB",
                "containers": [{"name": "app", "requests": {"cpu": "1", "memory": "8Gi"}}],
            }
        ]
    }
    world.reset(state)
    wave = small_wave(world.path.stem)
    wave["services"] = [s for s in wave["services"] if s["name"] == "web"]
    wave["services"][0]["gates"] = []
    wave["release_monitoring"] = {}
    wave["report"] = {
        "source": sim(world.path.stem),
        "step": 0.2,
        "plots": [
            {"name": "latency", "title": "Latency", "query": LATENCY, "unit": "s"},
            {"name": "errors", "title": "Errors", "query": 'errors{env="${env}"}'},
        ],
        "usage": {"cpu": 'cpu{service="${service}"}'},
    }
    run_state, tis = run_wave(tmp_path, world, wave)
    assert run_state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    folder = reports_dir / "wave_small" / run_wave.last_run_id.replace(":", "_")
    data = json.loads((folder / "report.json").read_text())
    assert {
        "wave",
        "run_id",
        "outcome",
        "actions",
        "gates",
        "decisions",
        "timeline",
        "series",
        "started_at",
        "generated_at",
    } <= set(data)
    latency, errors = data["series"]["metrics"]
    assert latency["blue"]["points"] and {v for _, v in latency["green"]["points"]} == {0.1}
    assert errors["blue"]["error"] == errors["green"]["error"] == "the source returned no samples"
    page = (folder / "report.html").read_text()
    plots = svgs(page)
    assert len(plots) == 3 and 'data-line="web"' in plots[0]
    assert 'data-line="blue"' in plots[1] and 'data-line="green"' in plots[1]
    assert "no data (the source returned no samples)" in plots[2]
    assert "report.html" in (folder / "report.md").read_text()
    [web] = data["right_sizing"]["services"]  # green's pods and usage over the run (tests/test_right_sizing.py)
    assert web["usage"]["cpu_p95"] == 0.3 and web["groups"][0]["billed"] == "2vCPU 9GB"
    assert "<h2>Right-sizing</h2>" in page and "## Right-sizing" in (folder / "report.md").read_text()
