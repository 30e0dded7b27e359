"""A gate's verdict: what every gate task pushes (XCom key `verdict`), and what the stage decision, the
report and the board read back. XCom holds its JSON form (`to_xcom`); readers take it back with `read`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

XCOM_KEY = "verdict"
Status = Literal["pass", "fail", "hold", "skipped"]


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


def push(context: Any, verdict: Verdict) -> dict[str, Any]:
    value = verdict.to_xcom()
    context["ti"].xcom_push(key=XCOM_KEY, value=value)
    return value
