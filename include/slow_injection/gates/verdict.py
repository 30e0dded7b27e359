"""A gate's verdict: what every gate task pushes (XCom key `verdict`), and what the stage decision, the
report and the board read back. XCom holds its JSON form (`to_xcom`); readers take it back with `read`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

XCOM_KEY = "verdict"
Status = Literal["pass", "fail", "hold", "skipped"]


class BreakerMove(BaseModel):
    """What a failed gate's circuit breaker did to its service's router (gates/breaker.py): the report,
    the rollback and the end of the run say it."""

    model_config = ConfigDict(frozen=True)

    service: str
    router: str  # the router as its driver describes it
    at: float  # epoch s: when the router read back 0 % green (or when it was tried)
    before: str = ""  # the split it found
    changed: bool = False  # False: green was at 0 % already (or a dry-run, or an error)
    dry_run: bool = False  # only logged
    error: str | None = None  # the move failed: the rollback's own traffic step does it

    def line(self) -> str:
        when = datetime.fromtimestamp(self.at, UTC).strftime("%H:%M:%S.%f")[:-3] + " UTC"
        if self.error:
            return f"circuit breaker could not move {self.service} to 0 % green at {when}: {self.error}"
        if self.dry_run:
            return (
                f"[dry-run] circuit breaker would move {self.service} to 0 % green ({self.router}, now {self.before})"
            )
        if not self.changed:
            return f"circuit breaker found {self.service} at 0 % green already at {when} ({self.router})"
        return f"circuit breaker moved {self.service} to 0 % green at {when} ({self.router}, was {self.before})"


class Verdict(BaseModel):
    """The fields every gate gives. Each kind adds its evidence beside them, under the names the report
    and the board read (query and condition, stats, metrics and score, chosen, e2e_test…)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    gate: str
    kind: str
    status: Status  # skipped: outside the run's scope (the reason says why)
    reason: str = ""
    service: str | None = None  # None: a wave-level gate
    env: str = "green"
    measurements: list[dict[str, Any]] = []
    dry_run: bool = False  # a dry-run's single reading: shown, not judged
    started_at: float | None = None
    finished_at: float | None = None
    breaker: BreakerMove | None = None  # a failed gate at a traffic step moved its users to blue itself

    @classmethod
    def read(cls, value: Any) -> Verdict | None:
        """A verdict from XCom (None: the gate gave none); raises ValidationError on anything else."""
        if value is None or isinstance(value, Verdict):
            return value
        return cls.model_validate(value)

    def to_xcom(self) -> dict[str, Any]:
        """JSON, with the fields the gate gave (so XCom and report.json hold what they always held)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def evidence(self, name: str, default: Any = None) -> Any:
        """One of the kind's own fields."""
        return (self.model_extra or {}).get(name, default)

    def headline(self) -> str:
        return f"gate {self.gate} {self.status.upper()}: {self.reason}"

    def summary(self) -> str:
        """The gate, its status and condition, and its last ten values (for notices and report.md)."""
        shown = ", ".join(
            ("ok" if m["ok"] else f"{m.get('state', 'failed')} ({m.get('detail', '')})")
            if "ok" in m
            else ("no data" if m.get("value") is None else f"{m['value']:g}")
            for m in self.measurements[-10:]
        )
        return f"{self.gate} [{self.status}] {self.evidence('condition', '')} measured: {shown or '-'}"


def pull(ti: Any, task_id: str) -> Verdict | None:
    return Verdict.read(ti.xcom_pull(task_ids=task_id, key=XCOM_KEY))


def breaker_moves(ti: Any, task_ids: list[str]) -> list[str]:
    """What these gates' circuit breakers did (gates/breaker.py), one line each."""
    lines = []
    for task_id in task_ids:
        try:
            verdict = pull(ti, task_id)
        except ValueError:
            continue
        if verdict is not None and verdict.breaker is not None:
            lines.append(verdict.breaker.line())
    return lines


def push(context: Any, verdict: Verdict) -> dict[str, Any]:
    value = verdict.to_xcom()
    context["ti"].xcom_push(key=XCOM_KEY, value=value)
    return value
