"""What the Migration board shows, read from the wave specs and Airflow's metadata DB.

Per service: where it runs (the latest event of its asset, see include/slow_injection/assets.py),
its green weight, and the gate verdicts of its wave's latest run (XCom key "verdict"). Gates that
belong to no service (release monitoring, stress, parity, approval…) go on the wave's own row.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from include.slow_injection.spec import Wave

SPEC_TTL = 30.0  # seconds a loaded set of wave specs is reused
NOT_STARTED = "blue (not started)"


@dataclass
class Specs:
    waves: list[Wave]
    errors: list[str]
    gate_services: dict[str, dict[str, str | None]]  # dag_id → gate task_id → service (None: wave-level)
    loaded_at: float = field(default_factory=time.monotonic)

    def wave(self, dag_id: str) -> Wave | None:
        return next((w for w in self.waves if w.dag_id == dag_id), None)


_cache: dict[str, Specs] = {}
_cache_lock = threading.Lock()


def load_specs(ttl: float = SPEC_TTL) -> Specs:
    """The wave specs, loaded at most every `ttl` seconds (parsing them takes ~1 s)."""
    from include.slow_injection.spec import load_waves, waves_dir

    key = str(waves_dir())
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and time.monotonic() - cached.loaded_at < ttl:
            return cached
        result = load_waves()
        specs = Specs(
            waves=list(result.waves),
            errors=[str(e) for e in result.errors],
            gate_services={w.dag_id: gate_services(w) for w in result.waves},
        )
        _cache[key] = specs
        return specs


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def gate_services(wave: Wave) -> dict[str, str | None]:
    """Full gate task id (TaskGroups joined by '.') → the service it checks, from the same pure phase
    planners the DAG factory renders (builders/render.py: a TaskGroup per phase, then per stage path)."""
    from include.slow_injection.phases import STAGE_PHASES

    out: dict[str, str | None] = {}
    for builder in STAGE_PHASES:
        for stage in builder.stages(wave):
            for gate in stage.gates:
                out[".".join((stage.phase, *stage.path, gate.task_id))] = gate.service
    return out


def service_of(task_id: str, verdict: dict[str, Any], services: list[str], known: dict[str, str | None]) -> str | None:
    """Which service a gate verdict belongs to: the verdict says so, else the DAG's structure does,
    else a task group named after the service; None means a wave-level gate."""
    named = verdict.get("service")
    if named in services:
        return named
    if task_id in known:
        return known[task_id]
    return next((part for part in task_id.split(".")[:-1] if part in services), None)


# --- metadata DB ---------------------------------------------------------------------------------


def latest_runs(session: Session, dag_ids: list[str]) -> dict[str, Any]:
    """dag_id → its most recent DagRun (by run_after, then id)."""
    from airflow.models.dagrun import DagRun
    from sqlalchemy import func, select

    if not dag_ids:
        return {}
    ranked = (
        select(
            DagRun.id,
            func.row_number()
            .over(partition_by=DagRun.dag_id, order_by=(DagRun.run_after.desc(), DagRun.id.desc()))
            .label("n"),
        )
        .where(DagRun.dag_id.in_(dag_ids))
        .subquery()
    )
    runs = session.scalars(select(DagRun).join(ranked, ranked.c.id == DagRun.id).where(ranked.c.n == 1))
    return {run.dag_id: run for run in runs}


def verdicts(session: Session, runs: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """dag_id → the gate verdicts (XCom key "verdict") of the given runs, in the order they were pushed."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import or_, select

    if not runs:
        return {}
    rows = session.scalars(
        select(XComModel)
        .where(
            XComModel.key == "verdict",
            or_(*[(XComModel.dag_id == r.dag_id) & (XComModel.run_id == r.run_id) for r in runs]),
        )
        .order_by(XComModel.timestamp, XComModel.task_id)
    )
    from include.slow_injection.gates.verdict import Verdict

    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        value = XComModel.deserialize_value(row)  # a JSON string via the ORM, a dict via the Task API
        task_id = row.task_id if row.map_index < 0 else f"{row.task_id}[{row.map_index}]"
        shown = {
            "task_id": task_id,
            "gate": task_id.rsplit(".", 1)[-1],
            "kind": None,
            "status": "unknown",
            "reason": f"unexpected verdict value: {value!r}"[:300],
            "service": None,
        }
        try:
            verdict = Verdict.read(value)
        except ValueError:
            verdict = None
        if verdict is not None:
            shown.update(
                gate=verdict.gate or shown["gate"],
                kind=verdict.kind,
                # a dry-run's single reading is shown, never judged (the run's decisions pass it)
                status="dry-run" if verdict.dry_run else verdict.status,
                reason=verdict.reason,
                service=verdict.service,
            )
        out[row.dag_id].append({**shown, "at": _iso(row.timestamp)})
    return out


def latest_asset_events(session: Session, uris: list[str]) -> dict[str, Any]:
    """asset uri → its most recent AssetEvent (by timestamp, then id)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from sqlalchemy import func, select

    if not uris:
        return {}
    ranked = (
        select(
            AssetEvent.id,
            AssetModel.uri,
            func.row_number()
            .over(partition_by=AssetModel.uri, order_by=(AssetEvent.timestamp.desc(), AssetEvent.id.desc()))
            .label("n"),
        )
        .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
        .where(AssetModel.uri.in_(uris))
        .subquery()
    )
    rows = session.execute(
        select(AssetEvent, ranked.c.uri).join(ranked, ranked.c.id == AssetEvent.id).where(ranked.c.n == 1)
    )
    return {uri: event for event, uri in rows}


def readable_dag_ids(session: Session, user: Any, dag_ids: list[str]) -> set[str]:
    """The wave DAGs this user may read, asked of the configured auth manager (teams respected)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.dag import DagModel

    teams = DagModel.get_dag_id_to_team_name_mapping(dag_ids, session=session) if dag_ids else {}
    by_team: dict[str | None, set[str]] = defaultdict(set)
    for dag_id in dag_ids:
        by_team[teams.get(dag_id)].add(dag_id)
    manager = get_auth_manager()
    allowed: set[str] = set()
    for team, ids in by_team.items():
        allowed |= manager.filter_authorized_dag_ids(dag_ids=ids, user=user, method="GET", team_name=team)
    return allowed


# --- the board -----------------------------------------------------------------------------------


def run_url(airflow_root: str, dag_id: str, run_id: str) -> str:
    return f"{airflow_root}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def report_url(app_root: str, dag_id: str, run_id: str) -> str:
    return f"{app_root}/reports/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


def where_of(event: Any | None) -> dict[str, Any]:
    """Where a service runs, from its asset's latest event (extra: env, weight, run_id, task_id, at)."""
    if event is None:
        return {
            "env": "blue",
            "weight": None,
            "started": False,
            "where": NOT_STARTED,
            "since": None,
            "by_dag": None,
            "by_run": None,
            "by_task": None,
        }
    extra = event.extra if isinstance(event.extra, dict) else {}
    weight = extra.get("weight")
    env = extra.get("env")
    if env not in ("blue", "green", "split"):
        env = "blue" if weight in (0, None) else "green" if weight == 100 else "split"
    at = extra.get("at")
    when = datetime.fromtimestamp(at, tz=UTC) if isinstance(at, (int, float)) else event.timestamp
    where = f"split ({weight} % green)" if env == "split" and weight is not None else env
    return {
        "env": env,
        "weight": weight,
        "started": True,
        "where": where,
        "since": _iso(when),
        "by_dag": event.source_dag_id,
        "by_run": extra.get("run_id") or event.source_run_id,
        "by_task": extra.get("task_id") or event.source_task_id,
    }


def build_board(session: Session, user: Any, *, airflow_root: str = "", app_root: str = "") -> dict[str, Any]:
    """Every service of every wave the user may read, with where it runs and its latest verdicts."""
    from include.slow_injection.assets import service_asset, wave_asset

    specs = load_specs()
    allowed = readable_dag_ids(session, user, [w.dag_id for w in specs.waves])
    waves = [w for w in specs.waves if w.dag_id in allowed]
    runs = latest_runs(session, [w.dag_id for w in waves])
    gate_rows = verdicts(session, list(runs.values()))
    uris = [service_asset(w.id, s.name).uri for w in waves for s in w.services]
    events = latest_asset_events(session, uris + [wave_asset(w.id).uri for w in waves])

    out_waves = []
    for wave in waves:
        run = runs.get(wave.dag_id)
        latest = None
        if run is not None:
            latest = {
                "run_id": run.run_id,
                "state": str(run.state) if run.state else None,
                "run_after": _iso(run.run_after),
                "start_date": _iso(run.start_date),
                "end_date": _iso(run.end_date),
                "url": run_url(airflow_root, wave.dag_id, run.run_id),
                "report_url": report_url(app_root, wave.dag_id, run.run_id),
            }
        names = [s.name for s in wave.services]
        per_service: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        for verdict in gate_rows.get(wave.dag_id, []):
            owner = service_of(verdict["task_id"], verdict, names, specs.gate_services.get(wave.dag_id, {}))
            per_service[owner].append(verdict)
        completion = events.get(wave_asset(wave.id).uri)
        services = []
        for svc in wave.services:
            services.append(
                {
                    "wave": wave.id,
                    "dag_id": wave.dag_id,
                    "service": svc.name,
                    "exposure": svc.exposure,
                    **(where := where_of(events.get(service_asset(wave.id, svc.name).uri))),
                    "by_run_url": where["by_run"]
                    and run_url(airflow_root, where["by_dag"] or wave.dag_id, where["by_run"]),
                    "verdicts": per_service.get(svc.name, []),
                    "run_id": latest and latest["run_id"],
                    "run_state": latest and latest["state"],
                    "run_url": latest and latest["url"],
                    "report_url": latest and latest["report_url"],
                }
            )
        out_waves.append(
            {
                "wave": wave.id,
                "dag_id": wave.dag_id,
                "owner": wave.owner,
                "description": wave.description,
                "latest_run": latest,
                "verdicts": per_service.get(None, []),
                "completed": None
                if completion is None
                else {
                    "at": _iso(completion.timestamp),
                    "run_id": (completion.extra or {}).get("run_id") or completion.source_run_id,
                },
                "services": services,
            }
        )
    return {"generated_at": _iso(datetime.now(tz=UTC)), "waves": out_waves, "spec_errors": specs.errors}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds")
