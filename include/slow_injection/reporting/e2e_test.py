"""The report's section on the full transition's e2e test: exit code, pod, start/end and log tail
(from the gate's verdict, kind `e2e_test`)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any


def _runs(gates: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(v, v.get("e2e_test") or {}) for v in gates.values()
            if isinstance(v, dict) and v.get("kind") == "e2e_test"]


def _when(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return datetime.fromtimestamp(float(value), UTC).strftime("%H:%M:%S")


def _headline(verdict: dict[str, Any], run: dict[str, Any]) -> str:
    if verdict.get("dry_run"):
        return f"{verdict.get('reason')}"
    if verdict.get("status") == "skipped":
        return f"skipped: {verdict.get('reason')}"
    return (f"pod {run.get('pod')} in {run.get('namespace')} ({run.get('image')}): exit code "
            f"{'-' if run.get('exit_code') is None else run.get('exit_code')}, "
            f"{_when(run.get('started_at'))} → {_when(run.get('finished_at'))} UTC")


def markdown_lines(gates: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for verdict, run in _runs(gates):
        lines += ["", f"### E2e test {verdict.get('gate')} ({verdict.get('status')})", "", _headline(verdict, run)]
        if run.get("log_tail"):
            lines += ["", f"Last {len(run['log_tail'])} log line(s):", "", "```"] + list(run["log_tail"]) + ["```"]
    return lines


def html_section(gates: dict[str, Any]) -> str:
    out = []
    for verdict, run in _runs(gates):
        status = str(verdict.get("status"))
        cls = status if status in ("pass", "fail", "hold") else "unknown"
        out.append(f'<h3>{escape(str(verdict.get("gate")))} <span class="badge {cls}">{escape(status)}</span></h3>'
                   f"<p>{escape(_headline(verdict, run))}</p>")
        if run.get("log_tail"):
            out.append(f'<p class="note">last {len(run["log_tail"])} log line(s)</p><pre><code>'
                       + escape("\n".join(str(line) for line in run["log_tail"])) + "</code></pre>")
    return ("<h2>End-to-end test</h2>" + "\n".join(out)) if out else ""
