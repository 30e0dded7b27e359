"""End-to-end test: the team's test image run once as a pod in green after full transition; exit 0
passes. Written in specs (`full_transition.e2e_test`); run by E2eTestPod (tasks/e2e_test_pod.py). Its
report section: exit code, pod, start/end and log tail (the verdict's `e2e_test`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from include.slow_injection import registry
from include.slow_injection.durations import format_duration
from include.slow_injection.kinds.base import GateKind, Task, TaskContext
from include.slow_injection.plan import Gate
from include.slow_injection.spec.models import E2eTest

REPORT_HTML = """\
{% from "macros.html" import badge %}
<h2>End-to-end test</h2>
{% for verdict in verdicts %}
{% set run = verdict.get("e2e_test") or {} %}
<h3>{{ verdict.get("gate")|string }} {{ badge(verdict.get("status")|string) }}</h3><p>{{ headline(verdict, run) }}</p>
{% if run.get("log_tail") %}
<p class="note">last {{ run["log_tail"]|length }} log line(s)</p><pre><code>{{ run["log_tail"]|join("\\n") }}</code></pre>
{% endif %}
{% endfor %}
"""


class E2eTestKind(GateKind):
    name = "e2e_test"
    spec_model = E2eTest
    report_html = REPORT_HTML

    def plan_line(self, gate: Gate) -> str:
        t = gate.spec
        assert isinstance(t, E2eTest)
        argv = " ".join([*t.command, *t.args]) or "(the image's entrypoint)"
        return (
            f"e2e test {t.name}: pod {t.image} {argv} in {t.namespace} via {t.connection}; "
            f"exit 0 within {format_duration(t.timeout)} passes, else roll back"
        )

    def task(self, gate: Gate, context: TaskContext) -> Task:
        wave = context.wave
        platform, settings = registry.with_settings("platform", wave.environments.green.platform)
        return Task(
            "include.slow_injection.tasks.e2e_test_pod:E2eTestPod",
            {
                "test": gate.spec.model_dump(),
                "pod_labels": platform.pod_labels(settings),
                "retries": wave.retries.count,
                "retry_delay": timedelta(seconds=wave.retries.delay),
                **context.args,
            },
        )

    def report_context(self) -> dict[str, Any]:
        return {"headline": headline}

    def report_lines(self, verdict: dict[str, Any]) -> list[str]:
        run = verdict.get("e2e_test") or {}
        lines = ["", f"### E2e test {verdict.get('gate')} ({verdict.get('status')})", "", headline(verdict, run)]
        if run.get("log_tail"):
            lines += ["", f"Last {len(run['log_tail'])} log line(s):", "", "```"] + list(run["log_tail"]) + ["```"]
        return lines


def headline(verdict: dict[str, Any], run: dict[str, Any]) -> str:
    if verdict.get("dry_run"):
        return f"{verdict.get('reason')}"
    if verdict.get("status") == "skipped":
        return f"skipped: {verdict.get('reason')}"
    return (
        f"pod {run.get('pod')} in {run.get('namespace')} ({run.get('image')}): exit code "
        f"{'-' if run.get('exit_code') is None else run.get('exit_code')}, "
        f"{_when(run.get('started_at'))} → {_when(run.get('finished_at'))} UTC"
    )


def _when(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return datetime.fromtimestamp(float(value), UTC).strftime("%H:%M:%S")


KIND = E2eTestKind()
