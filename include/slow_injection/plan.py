"""The plan of a wave's run, as the phase planners (phases/) write it and the kinds (kinds/) and the
DAG builder (builders/) read it: stages of actions, then gates, then a decision."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel


@dataclass(frozen=True)
class Action:
    task_id: str
    kind: str  # an action kind of kinds/
    service: str | None = None
    weight: int | None = None  # the share of users on green it sets (traffic steps)
    summary: str = ""  # the plan line, when the phase words it itself (else the kind's)
    subject: str | None = None  # what it acts on when that is not a service (a data migration's name)


@dataclass(frozen=True)
class Gate:
    task_id: str
    kind: str  # a gate kind of kinds/
    spec: BaseModel  # the kind's spec model
    service: str | None  # None: a wave-level gate
    window: float  # how long it measures (a metric gate's bake)


@dataclass(frozen=True)
class Stage:
    phase: str
    path: tuple[str, ...]  # TaskGroups within the phase's (e.g. service, step)
    title: str
    actions: list[Action] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)

    @property
    def weight(self) -> int | None:
        """The share of users on green once its actions ran (None: it moves no traffic)."""
        return next((a.weight for a in self.actions if a.weight is not None), None)
