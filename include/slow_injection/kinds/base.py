"""What a gate or an action kind provides. Each kind is one module of this package, registered in
kinds/__init__.py; the DAG builder, the gate sensor, the measuring loop and the report find them there.

Kinds are pure (no Airflow): the task a kind builds is a recipe naming its operator ("module:Class", in
tasks/ or plugins/), which only the DAG builder imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from include.slow_injection.gates.evaluation import Evaluator, PlatformWait
from include.slow_injection.gates.verdict import Verdict
from include.slow_injection.plan import Action, Gate
from include.slow_injection.ports import Change, Readiness
from include.slow_injection.refs import platform_ref
from include.slow_injection.spec.models import Wave

SENSOR = "slow_injection_gates.sensors:GateSensor"
PLATFORM_STEP = "include.slow_injection.tasks.operators:PlatformStep"


@dataclass(frozen=True)
class Task:
    """The task a kind builds: its operator ("module:Class") and arguments; `publishes` names the service
    whose asset the task updates (where it runs now)."""

    operator: str
    args: dict[str, Any]
    publishes: str | None = None


@dataclass(frozen=True)
class TaskContext:
    """What a kind's task is built with besides its gate or action."""

    wave: Wave
    args: dict[str, Any]  # for every task of its stage: the run's scope, the stage (actions: retries, notices)
    earlier_gates: tuple[str, ...] = ()  # task ids of the wave's gates in earlier stages
    earlier_load: tuple[str, ...] = ()  # those of them that put load on green (GateKind.loads_green)


class GateKind:
    """A kind of gate: its spec model, its plan line, the task that runs it, and its report section."""

    name: ClassVar[str]
    spec_model: ClassVar[type[BaseModel]]
    may_hold: ClassVar[bool] = False  # may ask to hold, which only the stage decision can tell
    loads_green: ClassVar[bool] = False  # puts load on green (parity compares over that window)
    report_html: ClassVar[str] = ""  # its report.html section: a Jinja template given this kind's `verdicts`

    def plan_line(self, gate: Gate) -> str:
        raise NotImplementedError

    def task(self, gate: Gate, context: TaskContext) -> Task:
        raise NotImplementedError

    def fails_fast(self, gate: Gate) -> bool:
        """Whether its failure starts the rollback at once, before the stage decision."""
        return not self.may_hold

    def report_context(self) -> dict[str, Any]:
        """What its report_html template uses besides `verdicts`."""
        return {}

    def report_lines(self, verdict: dict[str, Any]) -> list[str]:
        """Its figures in report.md (after the gates' table)."""
        return []

    def evidence_line(self, verdict: Verdict) -> str:
        """One line of evidence for the approver's table."""
        return str(verdict.reason)[:200].replace("|", "/")


class MeasuredGate(GateKind):
    """A gate the GateSensor measures (gates/runner.py's Meter): one reading every interval through a
    port, judged by an evaluator of gates/evaluation.py."""

    trips_breaker: ClassVar[bool] = False  # its failure at a traffic step moves the service to blue at once

    def task(self, gate: Gate, context: TaskContext) -> Task:
        args = {
            "kind": self.name,
            "gate": gate.spec.model_dump(),
            "service": gate.service,
            "window": gate.window,
            **context.args,
        }
        if (armed := self.breaker(gate, context)) is not None:
            args["breaker"] = armed
        return Task(SENSOR, args)

    def breaker(self, gate: Gate, context: TaskContext) -> dict[str, Any] | None:
        """What the gate's circuit breaker (gates/breaker.py) moves when the gate fails: its service's router,
        at a traffic step only, when a failure rolls back on its own, and not when the rollback must wait for
        the data first (users sent to a blue without green's writes would lose them) or must move the writes
        back first (a data migration: after its cut-over blue is fenced read-only until `data_to_blue`)."""
        wave, weight = context.wave, (context.args.get("stage") or {}).get("weight")
        sync = wave.validation.data_sync
        if not self.trips_breaker or not weight or gate.service is None or not wave.rollback.automatic:
            return None
        if (sync is not None and sync.before_rollback) or wave.data_migration:
            return None
        router = wave.service(gate.service).router
        return None if router is None else {"service": gate.service, "router": router.model_dump()}

    def evaluator(self, gate: dict[str, Any], window: float) -> Evaluator:
        raise NotImplementedError

    def connect(self, gate: dict[str, Any], service: str | None) -> Any:
        """The drivers it reads through (built once, on the first reading)."""
        raise NotImplementedError

    def read(self, drivers: Any, gate: dict[str, Any], service: str | None, started_at: float) -> Any:
        raise NotImplementedError

    def inconclusive(self, detail: str) -> Any:
        """A reading for a backend that failed: never a pass."""
        raise NotImplementedError

    def evidence(self, gate: dict[str, Any], evaluator: Any, service: str | None, window: float) -> dict[str, Any]:
        """The verdict's own fields for this kind."""
        return {}

    def first_delay(self, gate: dict[str, Any], window: float) -> float:
        return 0.0

    def ready_at(self, gate: dict[str, Any], started_at: float) -> float:
        """The earliest moment (epoch s) a reading can judge what happened after `started_at`."""
        return started_at

    def longest(self, gate: dict[str, Any], window: float) -> float:
        """How long it may measure before it has a verdict."""
        return float(gate["timeout"])


class WaitCheck(BaseModel):
    """A gate that waits for a condition (made by the planners, not written in specs): the fields the
    measuring loop and the sensor read for every readiness wait."""

    model_config = ConfigDict(frozen=True)
    name: str
    check: str
    env: str = "green"
    interval: float = 5.0
    timeout: float


class WaitKind(MeasuredGate):
    """Waits for a condition (ports.Readiness): passes when ready, fails when it failed for good or at
    its timeout."""

    def evaluator(self, gate: dict[str, Any], window: float) -> Evaluator:
        return PlatformWait(deadline=float(gate["timeout"]))

    def inconclusive(self, detail: str) -> Readiness:
        return Readiness("waiting", detail)

    def evidence(self, gate: dict[str, Any], evaluator: Any, service: str | None, window: float) -> dict[str, Any]:
        return {"check": gate["check"]}


class ActionKind:
    """A kind of action: its plan line and the task that acts."""

    name: ClassVar[str]

    def line(self, action: Action, wave: Wave) -> str:
        return action.summary or self.plan_line(action, wave)

    def plan_line(self, action: Action, wave: Wave) -> str:
        raise NotImplementedError

    def task(self, action: Action, context: TaskContext) -> Task:
        raise NotImplementedError


class PlatformAction(ActionKind):
    """An action on one service's workload through the platform port, run by PlatformStep."""

    guarded: ClassVar[bool] = False  # an emergency stop of the service refuses it
    job_side: ClassVar[str | None] = None  # where the service's scheduled job runs once it acted

    def act(self, platform: Any, workload: dict[str, Any], apply: bool) -> list[Change]:
        raise NotImplementedError

    def task(self, action: Action, context: TaskContext) -> Task:
        service = context.wave.service(action.service or "")
        return Task(
            PLATFORM_STEP,
            {
                "action": self.name,
                "service": service.name,
                "platform": platform_ref(context.wave),
                "workload": service.workload.model_dump(),
                **context.args,
            },
            publishes=service.name if self.job_side else None,
        )
