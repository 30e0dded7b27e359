"""Where a run's evaluation report lives (include/slow_injection/tasks/report.py writes it):
<reports base>/<dag_id>/<run_id with ':' → '_'>/report.{html,md,json}, read with ObjectStoragePath so
a file:// or s3:// base works alike. Only those three names, a known wave DAG and a safe run id are
ever turned into a path."""

from __future__ import annotations

import re
from typing import Any

NAMES = {
    "report.html": "text/html; charset=utf-8",
    "report.md": "text/plain; charset=utf-8",
    "report.json": "application/json",
}
DEFAULT = "report.html"
# Airflow's default [core] allowed_run_id_pattern; no '/', so one path segment at most.
RUN_ID = re.compile(r"^[A-Za-z0-9_.~:+-]{1,250}$")


class Refused(ValueError):
    """The request names something that is not a report; the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check(dag_id: str, run_id: str, name: str, known_dag_ids: set[str]) -> None:
    if name not in NAMES:
        raise Refused(404, f"unknown report {name!r}: one of {', '.join(sorted(NAMES))}")
    if dag_id not in known_dag_ids:
        known = ", ".join(sorted(known_dag_ids)) or "none"
        raise Refused(404, f"{dag_id!r} is not a Slow Injection wave DAG (known: {known})")
    if not RUN_ID.match(run_id) or set(run_id) == {"."}:
        raise Refused(400, f"{run_id!r} is not a valid run id (letters, digits and _ . ~ : + - only)")


def folder(dag_id: str, run_id: str) -> Any:
    """The run's report folder, as EvaluationReport names it."""
    from airflow.sdk import ObjectStoragePath

    from include.slow_injection.tasks.report import reports_base

    return ObjectStoragePath(reports_base()) / dag_id / run_id.replace(":", "_")


def read(dag_id: str, run_id: str, name: str) -> str | None:
    """The report's text, or None when the run has none (yet)."""
    path = folder(dag_id, run_id) / name
    try:
        if not path.is_file():
            return None
        return path.read_text()
    except FileNotFoundError:
        return None
