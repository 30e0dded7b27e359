"""A database's data migration, step by step, through the data-replication port: start (preparation),
cut over (before its traffic step), remove (post-release), and back to blue (rollback). Each step reads
both databases and converges them; under dry-run it logs the SQL or API calls it would make."""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.slow_injection import registry
from include.slow_injection.ports import PrerequisitesMissing, ReplicationNotReady
from include.slow_injection.tasks.operators import WaveStep, is_dry_run

STEPS = ("start", "cut_over", "remove")


def _status(driver: Any) -> dict[str, Any] | None:
    """Where the replication stands after the step (the run's record and the demo show the lag)."""
    try:
        return driver.status().to_dict()
    except Exception as err:  # the step itself succeeded; a failed read only loses the figure
        return {"error": f"{type(err).__name__}: {err}"[:300]}


class ReplicationStep(WaveStep):
    """One forward data-migration step for one database."""

    ui_color = "#e3f4e8"

    def __init__(self, *, step: str, migration: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if step not in STEPS:
            raise ValueError(f"step must be one of {', '.join(STEPS)}, got {step!r}")
        self.step, self.migration = step, migration

    def execute(self, context: Any) -> dict[str, Any]:
        name = self.migration["name"]
        held = self.out_of_scope(context)
        if held:
            return {"migration": name, "step": self.step, "scope": held}
        dry_run = self.previewing(context)
        driver = registry.build("data_replication", self.migration["replication"])
        try:
            if self.step == "start":
                changes = driver.start(apply=not dry_run)
            elif self.step == "cut_over":
                changes = driver.cut_over(apply=not dry_run, timeout=float(self.migration["drain_timeout"]))
            else:
                changes = driver.remove(apply=not dry_run)
        except PrerequisitesMissing as err:
            raise AirflowFailException(f"data migration {name}: {err}") from None  # a human fixes the database
        except ReplicationNotReady as err:
            raise RuntimeError(f"data migration {name}: {err}") from None  # retried: copying or draining
        self.refuse_drift(context, f"data migration {name}", changes)
        status = _status(driver)
        self.log.info("data migration %s after %s: %s", name, self.step, status)
        return {
            "migration": name,
            "step": self.step,
            "dry_run": dry_run,
            "changes": self.report_changes(changes, dry_run),
            "status": status,
            "at": time.time(),
        }


class DataBackToBlue(WaveStep):
    """Rollback, before traffic returns to blue: each database's writes back on blue once its reverse path
    drained (blue then has every write green took), and replication reset to blue → green for the next
    try. A database whose writes never moved only has blue's fence lifted (a cut-over cut short)."""

    ui_color = "#fde2e1"

    def __init__(self, *, migrations: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.migrations = migrations

    def execute(self, context: Any) -> dict[str, Any]:
        if self.verifying(context):
            raise AirflowSkipException("the wave completed earlier: this run only verifies, never rolls back")
        dry_run = is_dry_run(context)
        results, failures = {}, []
        for migration in self.migrations:
            name = migration["name"]
            try:
                driver = registry.build("data_replication", migration["replication"])
                changes = driver.reset(apply=not dry_run, timeout=float(migration["drain_timeout"]))
                results[name] = {"changes": self.report_changes(changes, dry_run), "status": _status(driver)}
            except Exception as err:  # the others still go back; this one is retried
                failures.append(f"{name}: {type(err).__name__}: {err}")
        if failures:
            raise RuntimeError("data not back on blue yet (will retry): " + "; ".join(failures))
        return {"dry_run": dry_run, "migrations": results, "at": time.time()}
