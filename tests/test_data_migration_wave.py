"""Whole waves (dag.test) that move a real PostgreSQL database with writes in flight: replication starts in
preparation, the data gate waits for the copy, writes cut over before the first traffic step, and either
the wave completes (the reverse path removed) or rolls back (blue brought up to date first)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from include.slow_injection.kinds import data_migration as data_migration_kind
from include.slow_injection.phases.plan_text import plan_lines
from include.slow_injection.ports import ReplicationStatus
from include.slow_injection.spec import load_wave
from include.slow_injection.spec.errors import SpecError
from tests.support.replication import PASSWORD, Clusters, Database, Writer, digest, make_database, start_clusters
from tests.support.waves import _xcom, healthy_world, run_wave, small_wave, weights_history, write

SEED = 1000


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    yield from start_clusters(tmp_path_factory.mktemp("migration-wave"))


@pytest.fixture
def db(clusters: Clusters, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    for database in make_database(clusters, monkeypatch):
        database.run(
            "blue", "INSERT INTO orders (ref, amount) SELECT 'seed' || i, i FROM generate_series(1, %s) i", (SEED,)
        )
        yield database


def migrating_wave(world: str, db: Database | None = None, **migration: Any) -> dict[str, Any]:
    data = small_wave(world)
    data["data_migration"] = [
        {
            "name": "orders",
            "replication": {
                "type": "postgres_logical",
                "blue_connection": db.connection_id("blue") if db else "blue_shop",
                "green_connection": db.connection_id("green") if db else "green_shop",
                "tables": ["orders"],
                "name": db.name if db else "shop",
            },
            "interval": 0.2,
            "copy_timeout": 60,
            "drain_timeout": 30,
            **migration,
        }
    ]
    return data


def every_write(db: Database, writer: Writer, side: str) -> None:
    expected = {i: (f"seed{i}", i) for i in range(1, SEED + 1)} | writer.expected()
    found = db.rows(side)
    assert digest(found) == digest(expected), f"{side}: missing {sorted(set(expected) - set(found))[:5]}"


def test_the_plan_places_each_data_step(tmp_path: Path) -> None:
    lines = plan_lines(load_wave(write(tmp_path, migrating_wave("w"))))
    text = "\n".join(lines)
    preparation, validation = text.index("preparation:"), text.index("validation:")
    gradual, post = text.index("gradual_transition:"), text.index("post_release:")
    assert preparation < text.index("replicate orders (postgres_logical) blue → green") < validation
    assert validation < text.index("wait: orders data copied and replication lag ≤ 5s") < gradual
    cut_over = text.index("cut orders (postgres_logical) writes over to green")
    assert gradual < cut_over < text.index("route 25 % of web to green")
    assert post < text.index("remove orders (postgres_logical) reverse replication")
    assert "writes back on blue once the reverse replication drained (orders)" in lines[-1] or any(
        "writes back on blue once the reverse replication drained (orders)" in line for line in lines
    )


@pytest.mark.parametrize(
    ("cut_over", "message"),
    [
        ({"service": "report-job", "weight": 25}, "data_migration[0].cut_over.service: must be an exposed service"),
        ({"service": "web", "weight": 50}, "data_migration[0].cut_over.weight: must be one of web's traffic steps"),
    ],
)
def test_a_cut_over_at_a_step_that_does_not_exist_is_refused(
    tmp_path: Path, cut_over: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_wave(write(tmp_path, migrating_wave("w", cut_over=cut_over)))


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_a_wave_that_cuts_over_and_completes_leaves_every_write_on_green(tmp_path: Path, world, db: Database) -> None:
    world.reset(healthy_world())
    writer = Writer(db)
    writer.start()
    try:
        writer.wait_for(db.clusters.blue.port, 50)
        state, tis = run_wave(tmp_path, world, migrating_wave(world.path.stem, db))
        writer.wait_for(db.clusters.green.port, writer.writes_on(db.clusters.green.port) + 50)
    finally:
        writer.stop()
    assert state == "success", {k: v for k, v in tis.items() if v != "success"}
    assert tis["gradual_transition.web.step1_25pct.cut_over_writes_orders"] == "success"
    assert tis["post_release.remove_replication_orders"] == "success"
    assert writer.key_conflicts == 0 and writer.writes_on(db.clusters.blue.port) >= 50
    every_write(db, writer, "green")
    assert db.run("blue", "SELECT count(*) FROM pg_subscription") == [(0,)]  # the reverse path is gone
    assert db.run("green", "SELECT count(*) FROM pg_publication") == [(0,)]
    print(
        f"\nwave completed: {len(writer.log)} writes ({writer.writes_on(db.clusters.blue.port)} on blue, "
        f"{writer.writes_on(db.clusters.green.port)} on green), 0 lost; writer's pause {writer.switch_pause():.3f}s"
    )


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_a_wave_rolled_back_after_users_wrote_on_green_leaves_every_write_on_blue(
    tmp_path: Path, world, db: Database
) -> None:
    failing = healthy_world()
    failing["metrics"]['error_ratio{service="web",env="green"}'] = {
        "router": "web",
        "when_green_at_least": 25,
        "value": 0.2,
        "otherwise": 0.001,
    }
    world.reset(failing)
    data = migrating_wave(world.path.stem, db)
    data["services"][1]["traffic_steps"][0]["bake"] = 2.0  # users write on green for a while first
    writer = Writer(db)
    writer.start()
    try:
        state, tis = run_wave(tmp_path, world, data)
        writer.wait_for(db.clusters.blue.port, writer.writes_on(db.clusters.blue.port) + 50)
    finally:
        writer.stop()
    assert state == "failed"
    assert weights_history(world) == [25, 0]
    assert tis["rollback.data_to_blue"] == "success" and tis["rollback.traffic_to_blue"] == "success"
    on_green = writer.writes_on(db.clusters.green.port)
    assert on_green > 0, "the writer never wrote on green: the test would prove nothing"
    assert writer.key_conflicts == 0
    every_write(db, writer, "blue")
    assert db.run("green", "SELECT subname FROM pg_subscription") == [(f"{db.name}_fwd",)]  # ready for the next try
    print(f"\nwave rolled back: {len(writer.log)} writes ({on_green} on green), 0 lost from blue")


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_a_table_without_a_primary_key_stops_the_wave_in_preparation_with_its_name(
    tmp_path: Path, world, db: Database, capfd: pytest.CaptureFixture[str]
) -> None:
    world.reset(healthy_world())
    for side in ("blue", "green"):
        db.run(side, "CREATE TABLE audit_log (at timestamptz, line text)")
    data = migrating_wave(world.path.stem, db)
    data["data_migration"][0]["replication"]["tables"] = ["orders", "audit_log"]
    state, tis = run_wave(tmp_path, world, data)
    assert state == "failed"
    assert tis["preparation.start_replication_orders"] == "failed"
    assert tis["validation.checks.data_migrated_orders"] != "success" and weights_history(world) == []
    assert "table audit_log has no primary key or replica identity" in "".join(capfd.readouterr())
    assert db.run("green", "SELECT count(*) FROM pg_subscription") == [(0,)]  # nothing was set up


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_a_dry_run_wave_records_the_sql_and_changes_nothing(tmp_path: Path, world, db: Database) -> None:
    world.reset(healthy_world())
    state, tis = run_wave(tmp_path, world, migrating_wave(world.path.stem, db), conf={"dry_run": True})
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert db.run("green", "SELECT count(*) FROM pg_subscription") == [(0,)]
    assert db.run("blue", "SELECT count(*) FROM pg_publication") == [(0,)]
    assert db.rows("green") == {}
    start = _xcom(run_wave.last_run_id, "preparation.start_replication_orders", "return_value")
    planned = "\n".join(c["after"] for c in start["changes"])
    assert start["dry_run"] and not any(c["applied"] for c in start["changes"])
    assert f'CREATE PUBLICATION "{db.name}_fwd" FOR TABLE "orders"' in planned
    assert "password=********" in planned and PASSWORD not in planned
    cut_over = _xcom(run_wave.last_run_id, "gradual_transition.web.step1_25pct.cut_over_writes_orders", "return_value")
    assert "ALTER DATABASE" in "\n".join(c["after"] for c in cut_over["changes"])


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_an_emergency_rollback_after_the_cut_over_brings_green_s_writes_back_to_blue_first(
    tmp_path: Path, world, db: Database
) -> None:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    from include.slow_injection import registry
    from include.slow_injection.builders.emergency_dag import build_dag
    from include.slow_injection.spec import load_waves

    world.reset(healthy_world())
    data = migrating_wave(world.path.stem, db)
    repl = registry.build("data_replication", data["data_migration"][0]["replication"])
    repl.start(apply=True)
    deadline = time.monotonic() + 60
    while repl.status().readiness(5.0, 1 << 20).state != "ready":
        assert time.monotonic() < deadline, repl.status()
        time.sleep(0.1)
    repl.cut_over(apply=True, timeout=30)
    db.run("green", "INSERT INTO orders (ref, amount) VALUES ('written-on-green', 7)")
    write(tmp_path, data)
    with pytest.MonkeyPatch.context() as mp:  # the tasks load the wave's spec from this folder
        mp.setenv("SLOW_INJECTION_WAVES_DIR", str(tmp_path))
        dag = build_dag(load_waves(tmp_path).waves)
        run = dag.test(run_conf={"wave": data["id"], "services": [], "reason": "drill"})
    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id)
        states = {ti.task_id: str(ti.state) for ti in tis}
    assert run.state == "success" and states["data_to_blue"] == "success", states
    assert db.run("blue", "SELECT amount FROM orders WHERE ref = 'written-on-green'") == [(7,)]
    status = repl.status()
    assert (status.path, status.writable) == ("forward", "blue")
    assert len(db.rows("blue")) == SEED + 1


class FakeReplication:
    """Our own port, faked: one reading or one error per call."""

    def __init__(self, reading: Any) -> None:
        self.reading = reading

    def status(self) -> Any:
        if isinstance(self.reading, Exception):
            raise self.reading
        return self.reading


@pytest.mark.parametrize(
    ("reading", "state", "detail"),
    [
        (
            ReplicationStatus("forward", "blue", False, 0, None, True, "copying orders"),
            "waiting",
            "initial copy under way",
        ),
        (ReplicationStatus("forward", "blue", True, 0, None, False, ""), "waiting", "no replication worker streaming"),
        (ReplicationStatus("forward", "blue", True, 1 << 30, 0.5, True, ""), "waiting", "lagging: 1073741824 bytes"),
        (ReplicationStatus("forward", "blue", True, 100, 9.0, True, ""), "waiting", "lagging: 100 bytes, 9.00s > 5s"),
        (ReplicationStatus("none", "both", False, None, None, False, ""), "failed", "forward replication not set up"),
        (ReplicationStatus("forward", "blue", True, 0, None, True, ""), "ready", "forward replication streaming"),
        (ConnectionError("blue down"), "waiting", "ConnectionError: blue down"),
    ],
)
def test_the_data_gate_passes_only_on_a_copied_path_within_the_lag_bound(
    tmp_path: Path, reading: Any, state: str, detail: str
) -> None:
    wave = load_wave(write(tmp_path, migrating_wave("w")))
    gate = data_migration_kind.wait(wave.data_migration[0])
    result = data_migration_kind.KIND.read(FakeReplication(reading), gate.spec.model_dump(), None, 0.0)
    assert result.state == state and detail in result.detail, result
