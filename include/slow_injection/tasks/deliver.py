"""How a gate task ends: its verdict pushed (XCom key `verdict`), then the task failed unless it passed."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection.gates.verdict import Verdict, push


def deliver(task: Any, context: Any, verdict: Verdict, *, judged: bool = True) -> dict[str, Any]:
    """Push the verdict, then fail the task unless it passed (a verdict not judged is only logged)."""
    value = push(context, verdict)
    if verdict.status != "pass" and judged:
        raise AirflowFailException(verdict.headline())
    task.log.info("%s", verdict.headline())
    return value
