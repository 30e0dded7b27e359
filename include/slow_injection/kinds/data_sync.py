"""Data in sync: blue's and green's data agree (every data-sync driver ready) before user traffic moves,
and before a rollback sends users back to blue. Written in specs (`validation.data_sync`); run by the
GateSensor through the data-sync port."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from include.slow_injection import registry
from include.slow_injection.durations import format_duration
from include.slow_injection.kinds.base import WaitCheck, WaitKind
from include.slow_injection.plan import Gate
from include.slow_injection.ports import Readiness
from include.slow_injection.spec.models import DataSyncSpec


class DataSyncCheck(WaitCheck):
    """Blue's and green's data agree (every data-sync driver ready), within `timeout`."""

    name: str = "data_in_sync"
    check: str = "data_sync"
    interval: float
    checks: list[dict]

    @classmethod
    def of(cls, data_sync: DataSyncSpec) -> DataSyncCheck:
        return cls(
            interval=data_sync.interval, timeout=data_sync.timeout, checks=[c.model_dump() for c in data_sync.checks]
        )


def wait(data_sync: DataSyncSpec) -> Gate:
    return Gate("data_in_sync", KIND.name, DataSyncCheck.of(data_sync), None, 0.0)


def combine_readiness(readings: list[tuple[str, Readiness]]) -> Readiness:
    """All ready → ready; any failed → failed; else waiting. The detail names every part."""
    states = {r.state for _, r in readings}
    state = "failed" if "failed" in states else "ready" if states == {"ready"} else "waiting"
    return Readiness(state, "; ".join(f"{name}: {r.state} ({r.detail})" for name, r in readings)[:1000])


def _readiness(check: Callable[[], Readiness]) -> Readiness:
    try:
        return check()
    except Exception as err:  # one check's backend down: waiting (its deadline fails the gate)
        return Readiness("waiting", f"{type(err).__name__}: {err}"[:300])


class DataSyncKind(WaitKind):
    name = "data_sync"
    spec_model = DataSyncCheck

    def plan_line(self, gate: Gate) -> str:
        d = gate.spec
        assert isinstance(d, DataSyncCheck)
        kinds = ", ".join(c["type"] for c in d.checks)
        return f"wait: blue's and green's data in sync ({kinds}) within {format_duration(d.timeout)}"

    def connect(self, gate: dict[str, Any], service: str | None) -> Any:
        return [registry.build("data_sync", ref) for ref in gate["checks"]]

    def read(self, checks: Any, gate: dict[str, Any], service: str | None, started_at: float) -> Readiness:
        return combine_readiness([(d.describe(), _readiness(d.check)) for d in checks])


KIND = DataSyncKind()
