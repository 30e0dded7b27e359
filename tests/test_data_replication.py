"""PostgreSQL logical replication moved blue → green and back, on two real clusters (wal_level=logical),
with a writer inserting and updating orders the whole time: nothing it saw committed may be missing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from include.slow_injection import registry
from include.slow_injection.drivers.postgres_logical import PostgresLogical
from include.slow_injection.lab.postgres import Postgres
from include.slow_injection.ports import (
    Change,
    DataReplication,
    PrerequisitesMissing,
    ReplicationNotReady,
    ReplicationStatus,
)
from tests.support.replication import (
    ORDERS,
    PASSWORD,
    Clusters,
    Database,
    Writer,
    digest,
    make_database,
    start_clusters,
)

SEED = "INSERT INTO orders (ref, amount) SELECT 'seed' || i, i FROM generate_series(1, %s) AS i"


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    yield from start_clusters(tmp_path_factory.mktemp("replication"))


@pytest.fixture
def db(clusters: Clusters, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    yield from make_database(clusters, monkeypatch)


def replication(db: Database, **settings: Any) -> PostgresLogical:
    ref = {
        "type": "postgres_logical",
        "blue_connection": db.connection_id("blue"),
        "green_connection": db.connection_id("green"),
        "tables": ["orders"],
        "name": db.name,
        **settings,
    }
    return registry.build("data_replication", ref)


def wait_ready(repl: PostgresLogical, path: str = "forward", timeout: float = 60.0) -> ReplicationStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = repl.status()
        verdict = status.readiness(max_lag=5.0, max_lag_bytes=1 << 20, path=path)
        if verdict.state == "ready":
            return status
        assert verdict.state == "waiting" and time.monotonic() < deadline, verdict
        time.sleep(0.1)


def texts(changes: list[Change]) -> str:
    return "\n".join(str(c) for c in changes)


def assert_every_write(db: Database, writer: Writer, side: str, seed: int) -> None:
    """`side` holds the seed rows and every write the writer saw committed, nothing else."""
    expected = {i: (f"seed{i}", i) for i in range(1, seed + 1)} | writer.expected()
    found = db.rows(side)
    missing = sorted(set(expected) - set(found))[:5]
    wrong = sorted(i for i in expected if i in found and found[i] != expected[i])[:5]
    assert digest(found) == digest(expected), (
        f"{side}: missing {missing}, wrong {wrong}, extra rows {len(found) - len(expected)}"
    )


# --- prerequisites ---------------------------------------------------------------------------------


def test_a_table_without_a_primary_key_is_refused_by_name(clusters: Clusters, monkeypatch: pytest.MonkeyPatch) -> None:
    schema = ORDERS + "; CREATE TABLE audit_log (at timestamptz, line text)"
    for db in make_database(clusters, monkeypatch, schema):
        repl = replication(db, tables=["orders", "audit_log"])
        problems = repl.prerequisites()
        assert [p for p in problems if "audit_log" in p] == [
            f"{side} {db.name}: table audit_log has no primary key or replica identity: updates and deletes could "
            "not be replicated (add a primary key, or ALTER TABLE … REPLICA IDENTITY USING INDEX / FULL)"
            for side in ("blue", "green")
        ]
        with pytest.raises(PrerequisitesMissing, match="audit_log has no primary key"):
            repl.start(apply=True)
        assert repl.status().path == "none"  # nothing was set up
        db.run("blue", "ALTER TABLE audit_log REPLICA IDENTITY FULL")
        db.run("green", "ALTER TABLE audit_log REPLICA IDENTITY FULL")
        assert repl.prerequisites() == []


def test_prerequisites_name_each_missing_piece(db: Database) -> None:
    db.run("green", "ALTER TABLE orders ADD COLUMN coupon text")
    db.run("green", "INSERT INTO orders (ref, amount) VALUES ('already-here', 1)")
    problems = replication(db, tables=["orders", "public.refunds"]).prerequisites()
    assert f"blue {db.name}: table public.refunds does not exist" in problems
    assert f"green {db.name}: table public.refunds does not exist" in problems
    assert "table orders: schemas differ: only on green: coupon text" in problems
    assert any(p.startswith(f"green {db.name}: table orders already has rows") for p in problems), problems
    assert len(problems) == 4, problems


def test_wal_level_replica_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = Postgres(tmp_path / "plain")  # wal_level=replica, the default
    plain.start()
    try:
        for side in ("blue", "green"):
            plain.create_database(side)
            monkeypatch.setenv(
                f"AIRFLOW_CONN_{side.upper()}_PLAIN", f"postgresql://postgres@127.0.0.1:{plain.port}/{side}"
            )
        ref = {"type": "postgres_logical", "blue_connection": "blue_plain", "green_connection": "green_plain"}
        problems = registry.build("data_replication", {**ref, "tables": ["orders"]}).prerequisites()
        assert problems[0] == (
            "blue blue: wal_level is replica; logical replication needs wal_level=logical on both sides "
            "(the reverse path publishes from green): set it and restart the server"
        )
    finally:
        plain.stop()


# --- cut-over and rollback with writes in flight ---------------------------------------------------


def test_a_cut_over_with_writes_in_flight_loses_none(db: Database) -> None:
    seed = 3000
    db.run("blue", SEED, (seed,))
    db.run("blue", "SELECT setval('orders_id_seq', %s)", (seed,))
    repl = replication(db)
    assert isinstance(repl, DataReplication)
    writer = Writer(db)
    writer.start()
    try:
        writer.wait_for(db.clusters.blue.port, 50)
        repl.start(apply=True)  # the initial copy runs while the writer writes on blue
        assert wait_ready(repl).writable == "blue"
        writer.wait_for(db.clusters.blue.port, 300)
        changes = repl.cut_over(apply=True, timeout=30)
        assert repl.status().writable == "green"
        writer.wait_for(db.clusters.green.port, 300)  # new ids from green's sequence: no key conflict
        wait_ready(repl, "reverse")
        assert repl.remove(apply=True)
    finally:
        writer.stop()
    assert writer.key_conflicts == 0, writer.errors[-3:]
    assert_every_write(db, writer, "green", seed)
    pause = writer.switch_pause()
    print(
        f"\ncut-over: {len(writer.log)} writes ({writer.writes_on(db.clusters.blue.port)} on blue, "
        f"{writer.writes_on(db.clusters.green.port)} on green), 0 lost, writer's pause {pause:.3f}s; "
        f"{changes[-1]}"
    )
    assert "TRUNCATE" not in texts(changes) and "DROP TABLE" not in texts(changes)


def test_a_rollback_after_users_wrote_on_green_brings_every_write_back_to_blue(db: Database) -> None:
    seed = 500
    db.run("blue", SEED, (seed,))
    db.run("blue", "SELECT setval('orders_id_seq', %s)", (seed,))
    repl = replication(db)
    writer = Writer(db)
    writer.start()
    try:
        repl.start(apply=True)
        wait_ready(repl)
        writer.wait_for(db.clusters.blue.port, 200)
        repl.cut_over(apply=True, timeout=30)
        writer.wait_for(db.clusters.green.port, 300)
        rollback = repl.reset(apply=True, timeout=30)
        status = repl.status()
        assert (status.path, status.writable) == ("forward", "blue"), status
        writes_on_blue = writer.writes_on(db.clusters.blue.port)
        writer.wait_for(db.clusters.blue.port, writes_on_blue + 300)  # blue's sequence is past green's
        wait_ready(repl)  # forward again, for the next try
        second = repl.cut_over(apply=True, timeout=30)
        writer.wait_for(db.clusters.green.port, writer.writes_on(db.clusters.green.port) + 100)
        wait_ready(repl, "reverse")
    finally:
        writer.stop()
    assert writer.key_conflicts == 0, writer.errors[-3:]
    assert_every_write(db, writer, "blue", seed)  # the reverse path kept blue up to date
    assert_every_write(db, writer, "green", seed)
    print(f"\nrollback: {len(writer.log)} writes, 0 lost; {rollback[-1]}; second try {second[-1]}")


# --- convergence, dry-run, secrets ------------------------------------------------------------------


def test_every_step_is_convergent_and_dry_run_prints_the_sql_without_the_password(db: Database) -> None:
    db.run("blue", SEED, (100,))
    repl = replication(db)
    planned = repl.start(apply=False)
    assert planned and not any(c.applied for c in planned)
    shown = texts(planned)
    assert f'CREATE PUBLICATION "{db.name}_fwd" FOR TABLE "orders"' in shown
    assert f'CREATE SUBSCRIPTION "{db.name}_fwd" CONNECTION' in shown and "password=********" in shown
    assert repl.status().path == "none" and db.rows("green") == {}  # dry-run changed nothing
    assert repl.start(apply=True) and repl.start(apply=True) == []
    wait_ready(repl)
    would = repl.cut_over(apply=False, timeout=5)
    assert "default_transaction_read_only = on" in texts(would) and "setval" in texts(would)
    assert (repl.status().path, repl.status().writable) == ("forward", "blue")
    assert repl.cut_over(apply=True, timeout=30) and repl.cut_over(apply=True, timeout=30) == []
    assert repl.reset(apply=True, timeout=30) and repl.reset(apply=True, timeout=30) == []
    wait_ready(repl)
    repl.cut_over(apply=True, timeout=30)
    assert repl.remove(apply=False) and repl.status().path == "reverse"
    assert repl.remove(apply=True) and repl.remove(apply=True) == []
    log = texts(planned + would)
    assert PASSWORD not in log and "TRUNCATE" not in log and "DROP TABLE" not in log
    assert len(db.rows("blue")) == len(db.rows("green")) == 100


def test_a_cut_over_refuses_before_fencing_while_the_copy_runs(db: Database) -> None:
    """Replication killed mid-copy (pg_terminate_backend on blue's walsenders): the gate waits, the
    cut-over refuses with blue still taking writes, and the copy converges once it is left alone."""
    db.run("blue", "ALTER TABLE orders ALTER COLUMN note SET STORAGE PLAIN")
    db.run(
        "blue",
        "INSERT INTO orders (ref, amount, note) SELECT 'seed' || i, i, repeat('x', 500) FROM generate_series(1, 60000) i",
    )
    repl = replication(db)
    repl.start(apply=True)
    killed, waiting, refused = 0, [], None
    deadline = time.monotonic() + 20
    while (killed < 3 or refused is None) and time.monotonic() < deadline:
        killed += db.run("blue", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication")[0][0]
        status = repl.status()
        waiting.append(status.readiness(5.0, 1 << 20))
        if refused is None and not status.copy_done:
            with pytest.raises(ReplicationNotReady, match="nothing fenced: initial copy under way") as refused:
                repl.cut_over(apply=True, timeout=5)
            assert repl.status().writable == "blue"
        time.sleep(0.3)
    assert killed >= 3 and refused is not None, (killed, waiting)
    assert all(r.state == "waiting" for r in waiting), waiting
    print(f"\nkilled {killed} walsender(s) mid-copy; last reading: {waiting[-1].detail}")
    wait_ready(repl, timeout=120)  # left alone, the copy starts again and finishes
    assert db.run("green", "SELECT count(*) FROM orders") == [(60000,)]
    assert digest(db.rows("green")) == digest(db.rows("blue"))


def test_each_data_step_run_twice_changes_the_databases_once(db: Database) -> None:
    """The tasks themselves (clear and re-run): a second try of each finds the world as it left it."""
    from include.slow_injection.tasks.data_migration import DataBackToBlue, ReplicationStep
    from tests.support.reruns import context

    db.run("blue", SEED, (200,))
    db.run("blue", "SELECT setval('orders_id_seq', 200)")
    migration = {
        "name": "orders",
        "replication": {
            "type": "postgres_logical",
            "blue_connection": db.connection_id("blue"),
            "green_connection": db.connection_id("green"),
            "tables": ["orders"],
            "name": db.name,
        },
        "drain_timeout": 30.0,
    }

    def step(name: str) -> Any:
        task = ReplicationStep(task_id=f"{name}_orders", step=name, migration=migration, wave_id="twice")
        return task.execute(context())

    def back() -> Any:
        return DataBackToBlue(task_id="data_to_blue", migrations=[migration], wave_id="twice").execute(context())

    first = step("start")
    assert first["changes"] and step("start")["changes"] == []
    wait_ready(replication(db))
    assert step("cut_over")["changes"] and step("cut_over")["changes"] == []
    assert back()["migrations"]["orders"]["changes"] and back()["migrations"]["orders"]["changes"] == []
    wait_ready(replication(db))
    step("cut_over")
    assert step("remove")["changes"] and step("remove")["changes"] == []
    assert step("start")["changes"] == [] and step("cut_over")["changes"] == []  # a finished migration stays
    assert len(db.rows("blue")) == len(db.rows("green")) == 200
