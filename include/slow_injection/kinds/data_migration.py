"""Data migrated: a database's replication blue → green has finished its initial copy and streams within
the spec's lag bound (`data_migration[].max_lag`, `max_lag_bytes`), before writes are cut over. Placed
by the validation planner for every `data_migration` entry; run by the GateSensor through the
data-replication port. The start, cut-over and removal are action kinds of their own (start_replication,
cut_over_writes, remove_replication)."""

from __future__ import annotations

from typing import Any

from include.slow_injection import registry
from include.slow_injection.durations import format_duration
from include.slow_injection.kinds.base import WaitCheck, WaitKind
from include.slow_injection.plan import Gate
from include.slow_injection.ports import Readiness
from include.slow_injection.spec.models import DataMigration, Wave


class DataMigratedCheck(WaitCheck):
    """One database's forward replication copied and within its lag bound, within `timeout`."""

    check: str = "data_replication"
    interval: float
    migration: dict[str, Any]

    @classmethod
    def of(cls, migration: DataMigration) -> DataMigratedCheck:
        return cls(
            name=f"data_migrated_{migration.name}",
            interval=migration.interval,
            timeout=migration.copy_timeout,
            migration=migration.model_dump(),
        )


def wait(migration: DataMigration) -> Gate:
    check = DataMigratedCheck.of(migration)
    return Gate(check.name, KIND.name, check, None, 0.0)


def migration_of(wave: Wave, name: str | None) -> DataMigration:
    """The spec's data migration an action names (Action.subject)."""
    found = next((m for m in wave.data_migration if m.name == name), None)
    if found is None:
        raise LookupError(f"no data migration {name!r} in wave {wave.id}")
    return found


def replication_line(migration: DataMigration) -> str:
    return f"{migration.name} ({migration.replication.type})"


class DataMigrationKind(WaitKind):
    name = "data_migration"
    spec_model = DataMigratedCheck

    def plan_line(self, gate: Gate) -> str:
        d = gate.spec
        assert isinstance(d, DataMigratedCheck)
        m = d.migration
        return (
            f"wait: {m['name']} data copied and replication lag ≤ {format_duration(m['max_lag'])} "
            f"({m['replication']['type']}) within {format_duration(d.timeout)}"
        )

    def connect(self, gate: dict[str, Any], service: str | None) -> Any:
        return registry.build("data_replication", gate["migration"]["replication"])

    def read(self, driver: Any, gate: dict[str, Any], service: str | None, started_at: float) -> Readiness:
        m = gate["migration"]
        try:
            status = driver.status()
        except Exception as err:  # a database down: waiting (the deadline fails the gate)
            return Readiness("waiting", f"{type(err).__name__}: {err}"[:300])
        return status.readiness(float(m["max_lag"]), int(m["max_lag_bytes"]))


KIND = DataMigrationKind()
