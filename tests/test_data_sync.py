"""Data-sync gate drivers: PostgreSQL tables compared on a real throwaway cluster, a DMS replication
task on moto in server mode, and the simulated driver."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from include.slow_injection import registry
from include.slow_injection.aws.iam import policy
from include.slow_injection.drivers.aws_dms import DmsTaskSync
from include.slow_injection.drivers.postgres_sync import PostgresSync
from include.slow_injection.drivers.simulated import BackendDown, SimulatedWorld
from include.slow_injection.lab.postgres import Postgres
from include.slow_injection.ports import DataSync, Readiness
from tests.support.aws import CONNECTION_ID, ApiCalls, free_port, uncovered_calls

TABLES = ["public.orders", "LineItems"]  # one schema-qualified, one bare and mixed-case (quoted)
SCHEMA = """
DROP TABLE IF EXISTS orders, "LineItems";
CREATE TABLE orders (id int PRIMARY KEY, amount numeric NOT NULL, updated_at timestamptz NOT NULL);
INSERT INTO orders SELECT i, i * 1.5, now() FROM generate_series(1, 100) AS i;
CREATE TABLE "LineItems" (order_id int NOT NULL, sku text NOT NULL);
INSERT INTO "LineItems" SELECT i, 'sku-' || i FROM generate_series(1, 50) AS i;
"""
LAG_SINCE_LAST_WRITE = "SELECT EXTRACT(EPOCH FROM now() - max(updated_at)) FROM orders"


# --- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    postgres = Postgres(tmp_path_factory.mktemp("data-sync") / "postgres")
    postgres.start()
    for name in ("blue", "green"):
        postgres.create_database(name)
    yield postgres
    postgres.stop()


@pytest.fixture
def db(cluster: Postgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, psycopg.Connection]]:
    """blue and green holding the same rows; Airflow connections `blue_db` and `green_db` to them."""
    sessions = {}
    last_write = datetime.now(UTC)  # the same on both sides: rows equal to the microsecond
    for side in ("blue", "green"):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{side.upper()}_DB",
            f"postgresql://postgres@127.0.0.1:{cluster.port}/{side}?connect_timeout=5",
        )
        sessions[side] = psycopg.connect(
            f"host=127.0.0.1 port={cluster.port} user=postgres dbname={side}", autocommit=True
        )
        sessions[side].execute(SCHEMA)
        sessions[side].execute("UPDATE orders SET updated_at = %s", (last_write,))
    yield sessions
    for session in sessions.values():
        session.close()


def postgres_sync(**settings: Any) -> PostgresSync:
    ref = {
        "type": "postgres",
        "blue_connection": "blue_db",
        "green_connection": "green_db",
        "tables": TABLES,
        **settings,
    }
    return registry.build("data_sync", ref)


def test_tables_in_sync_are_ready_with_the_evidence(db: dict[str, psycopg.Connection]) -> None:
    sync = postgres_sync(lag_query=LAG_SINCE_LAST_WRITE)
    assert isinstance(sync, DataSync)
    result = sync.check()
    assert result.state == "ready", result.detail
    assert result.detail.startswith(
        "in sync: public.orders blue 100 / green 100 rows, checksums match; "
        "LineItems blue 50 / green 50 rows, checksums match; lag "
    )


def test_green_lagging_past_max_lag_waits(db: dict[str, psycopg.Connection]) -> None:
    db["green"].execute("UPDATE orders SET updated_at = now() - interval '120 seconds'")
    lagging = postgres_sync(lag_query=LAG_SINCE_LAST_WRITE, max_lag="30s").check()  # 120 s plus the time since
    behind = re.fullmatch(r"lagging: (\d+(?:\.\d)?)s behind > 30s", lagging.detail)
    assert lagging.state == "waiting" and behind and 120 <= float(behind.group(1)) < 180, lagging
    # Within max_lag the tables are compared: the rows differ (updated_at), and green says it is behind.
    within = postgres_sync(lag_query=LAG_SINCE_LAST_WRITE, max_lag="5m").check()
    behind = re.match(r"catching up \((\d+(?:\.\d)?)s behind\): ", within.detail)
    assert within.state == "waiting" and behind and 120 <= float(behind.group(1)) < 180, within.detail


def test_a_row_count_difference_fails_unless_green_reports_lag(db: dict[str, psycopg.Connection]) -> None:
    db["green"].execute("DELETE FROM orders WHERE id > 90")
    diverged = postgres_sync().check()
    assert diverged.state == "failed"
    assert "public.orders blue 100 / green 90 rows, checksums differ" in diverged.detail
    assert postgres_sync(lag_query="SELECT 0").check().state == "failed"  # caught up, still different
    catching_up = postgres_sync(lag_query="SELECT 5", max_lag=30).check()
    assert catching_up.state == "waiting" and catching_up.detail.startswith("catching up (5s behind): ")


def test_same_row_count_with_different_content_fails_on_the_checksum(db: dict[str, psycopg.Connection]) -> None:
    db["green"].execute("""UPDATE "LineItems" SET sku = 'changed' WHERE order_id = 7""")
    result = postgres_sync().check()
    assert result.state == "failed"
    assert "LineItems blue 50 / green 50 rows, checksums differ" in result.detail
    assert "public.orders blue 100 / green 100 rows, checksums match" in result.detail
    assert postgres_sync(checksum=False).check().state == "ready"  # counts alone cannot see it


def test_the_checksum_ignores_row_order_but_not_duplicates(db: dict[str, psycopg.Connection]) -> None:
    db["green"].execute("""CREATE TABLE shuffled AS SELECT * FROM "LineItems" ORDER BY random();
                           DROP TABLE "LineItems"; ALTER TABLE shuffled RENAME TO "LineItems";""")
    assert postgres_sync().check().state == "ready"
    # Same count, same distinct rows, one duplicated in place of another.
    db["green"].execute("""UPDATE "LineItems" SET sku = 'sku-1', order_id = 1 WHERE order_id = 2""")
    assert postgres_sync().check().state == "failed"


def test_a_missing_table_waits_with_the_error(db: dict[str, psycopg.Connection]) -> None:
    db["green"].execute('DROP TABLE "LineItems"')
    result = postgres_sync().check()
    assert result.state == "waiting"
    assert result.detail.startswith("green: UndefinedTable: ") and '"LineItems" does not exist' in result.detail
    bare_lowercase = postgres_sync(tables=["lineitems"]).check()  # names are case-sensitive, as written
    assert bare_lowercase.state == "waiting" and '"lineitems" does not exist' in bare_lowercase.detail


def test_an_unreachable_database_waits(db: dict[str, psycopg.Connection], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_DOWN_DB", f"postgresql://postgres@127.0.0.1:{free_port()}/blue?connect_timeout=5")
    result = postgres_sync(blue_connection="down_db").check()
    assert result.state == "waiting" and result.detail.startswith("blue: OperationalError: ")


def test_lag_query_is_bounded_by_the_statement_timeout_and_cannot_write(db: dict[str, psycopg.Connection]) -> None:
    slow = postgres_sync(lag_query="SELECT pg_sleep(5)", statement_timeout="200ms").check()
    assert slow.state == "waiting" and "statement timeout" in slow.detail
    writing = postgres_sync(lag_query="DELETE FROM orders RETURNING 1").check()
    assert writing.state == "waiting" and "read-only transaction" in writing.detail
    assert db["green"].execute("SELECT count(*) FROM orders").fetchone() == (100,)
    empty = postgres_sync(lag_query="SELECT NULL").check()
    assert empty == Readiness("waiting", "lag query on green: ValueError: lag query must return one number, got [None]")


def test_an_interval_from_the_lag_query_counts_as_seconds(db: dict[str, psycopg.Connection]) -> None:
    result = postgres_sync(lag_query="SELECT interval '2 minutes'", max_lag=30).check()
    assert result == Readiness("waiting", "lagging: 120s behind > 30s")


@pytest.mark.parametrize(
    "table",
    [
        "orders; DROP TABLE orders",
        'orders"',
        "orders'--",
        "public.orders.id",
        "",
        "1orders",
        "orders\n",
        "pg_catalog.pg_user WHERE true",
        "x" * 64,
    ],
)
def test_table_names_that_are_not_plain_identifiers_are_refused(table: str) -> None:
    with pytest.raises(ValidationError, match="tables.0"):
        PostgresSync.Settings.model_validate({"blue_connection": "b", "green_connection": "g", "tables": [table]})


def test_settings_need_two_different_databases_and_no_shared_connection() -> None:
    with pytest.raises(ValidationError, match="must name different connections"):
        PostgresSync.Settings.model_validate({"blue_connection": "db", "green_connection": "db", "tables": ["t"]})
    with pytest.raises(ValueError, match="not `connection`"):
        registry.build(
            "data_sync",
            {
                "type": "postgres",
                "connection": "green_db",
                "blue_connection": "b",
                "green_connection": "g",
                "tables": ["t"],
            },
        )


# --- AWS DMS -------------------------------------------------------------------------------------


def dms_sync(arn: str) -> DmsTaskSync:
    return registry.build("data_sync", {"type": "dms", "connection": CONNECTION_ID, "replication_task_arn": arn})


def test_a_dms_task_waits_until_running_and_fails_once_stopped(dms: tuple[Any, str], api_calls: ApiCalls) -> None:
    client, arn = dms
    assert isinstance(dms_sync(arn), DataSync)
    created = dms_sync(arn).check()
    assert created.state == "waiting", created.detail
    client.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="start-replication")
    assert dms_sync(arn).check() == Readiness("ready", "dms: task running, full load 100%, 0 table(s) errored")
    client.stop_replication_task(ReplicationTaskArn=arn)
    stopped = dms_sync(arn).check()
    assert stopped.state == "failed" and "task stopped" in stopped.detail
    missing = dms_sync(arn.replace("orders-sync", "nope")).check()
    assert missing.state == "failed" and "no replication task" in missing.detail
    settings = DmsTaskSync.Settings(replication_task_arn=arn)
    assert uncovered_calls(policy(DmsTaskSync.iam_statements(settings)), api_calls.calls) == []


class FakeDmsHook:
    def __init__(self, task: dict[str, Any] | Exception) -> None:
        self.task = task

    def get_task_description(self, arn: str) -> dict[str, Any]:
        if isinstance(self.task, Exception):
            raise self.task
        return self.task


@pytest.mark.parametrize(
    ("task", "state"),
    [
        ({"Status": "running", "ReplicationTaskStats": {"FullLoadProgressPercent": 100, "TablesErrored": 1}}, "failed"),
        ({"Status": "running", "ReplicationTaskStats": {"FullLoadProgressPercent": 40, "TablesErrored": 0}}, "waiting"),
        ({"Status": "starting"}, "waiting"),
        ({"Status": "failed", "StopReason": "endpoint unreachable"}, "failed"),
        (ConnectionError("DMS API unreachable"), "waiting"),
    ],
)
def test_dms_task_states(task: dict[str, Any] | Exception, state: str) -> None:
    settings = DmsTaskSync.Settings(replication_task_arn="arn:aws:dms:eu-west-1:123456789012:task:X")
    assert DmsTaskSync(FakeDmsHook(task), settings).check().state == state


def test_a_dms_sync_needs_an_aws_connection() -> None:
    with pytest.raises(ValueError, match="needs `connection`"):
        registry.build(
            "data_sync", {"type": "dms", "replication_task_arn": "arn:aws:dms:eu-west-1:123456789012:task:X"}
        )


# --- simulated -----------------------------------------------------------------------------------


def test_simulated_data_sync_follows_the_world(world: SimulatedWorld) -> None:
    sync = registry.build("data_sync", {"type": "simulated", "world": world.path.stem})
    assert isinstance(sync, DataSync)
    assert sync.check().state == "ready"  # nothing said: in sync
    world.update(lambda s: s.update(data_sync={"lag": 42, "diverged": False}))
    assert sync.check() == Readiness("waiting", "lagging: 42s behind > 30s")
    world.update(lambda s: s.update(data_sync={"lag": 0, "diverged": True}))
    assert sync.check().state == "failed"
    world.update(lambda s: s.update(faults={"data_sync_down": True}))
    with pytest.raises(BackendDown):
        sync.check()
